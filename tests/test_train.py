"""Tests of nets.train: the regularizer forms (Eq. 1, 2, Section 4.4), the nu rule
(Section 4.1), the stacked fast path against separate ordinary models, resuming,
best-validation selection, determinism and that training learns.

Everything runs on small synthetic data (18x18 images) with small models.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import nets.train.loop as loop
from nets.data import Split, Splits, synthetic_splits
from nets.experiments.cnn import MODEL_NAME, build_cnn
from nets.groups import get_group
from nets.metrics import saliency_invariance
from nets.models import MLP, InvariantMLP
from nets.stacked import StackedMLP
from nets.train import (
    NORMALIZED_LOGIT_EPS,
    TrainConfig,
    TrainingDiverged,
    batch_inputs,
    member_losses,
    orbit_cayley,
    OrbitData,
    ResumedElsewhere,
    checkpoint_path,
    invariance_regularizer,
    orbit_accuracy,
    select_nu,
    stream_seed,
    train_runs,
    tune_nu,
)

SMALL = dict(hidden=16, n_hidden_layers=2, batch_size=32)


@pytest.fixture(scope="module")
def splits() -> Splits:
    return synthetic_splits(n_train=96, n_val=24, n_test=8, seed=0, size=18)


def small(method: str = "DA", epochs: int = 4, **kw) -> TrainConfig:
    return TrainConfig(method=method, epochs=epochs, **{**SMALL, **kw})


def weights(run) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in run.model.state_dict().items()}


# ---------------------------------------------------------------------------
# Regularizer forms
# ---------------------------------------------------------------------------
# Orbit of |G| = 3 members, 2 samples, 2 classes. Sample 0: f(x) = [1, 2],
# f(h1 x) = [1, 0], f(h2 x) = [3, 2]; sample 1: all members equal.
HAND = torch.tensor(
    [[[1.0, 2.0], [5.0, 5.0]],
     [[1.0, 0.0], [5.0, 5.0]],
     [[3.0, 2.0], [5.0, 5.0]]], dtype=torch.float64
)


def test_logit_regularizer_matches_hand_computed_eq2():
    # sample 0: 1/2 ||(0, 2)||^2 = 2 and 1/2 ||(-2, 0)||^2 = 2; sample 1: 0 -> mean 1.
    assert invariance_regularizer(HAND, "logit").item() == pytest.approx(1.0, abs=1e-12)


def test_kl_regularizer_matches_hand_computed_eq1():
    # u = softmax(1, 2), q = softmax(1, 0) = softmax(3, 2): KL(u || q) = (e - 1) / (e + 1) = tanh(1/2).
    assert invariance_regularizer(HAND, "kl").item() == pytest.approx(math.tanh(0.5) / 2, abs=1e-12)


def test_normalized_logit_regularizer_matches_hand_computed_section_4_4():
    # sample 0: ||d||^2 / ||f(x)||^2 = 4 / 5 for both members; sample 1: 0.
    expected = (4 / (5 + NORMALIZED_LOGIT_EPS)) / 2
    assert invariance_regularizer(HAND, "normalized_logit").item() == pytest.approx(expected, abs=1e-12)


logit_arrays = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 5)),
                      elements=st.floats(-20, 20, allow_nan=False))


@settings(max_examples=25, deadline=None)
@given(logits=logit_arrays, order=st.integers(2, 5), form=st.sampled_from(["logit", "kl", "normalized_logit"]))
def test_every_regularizer_vanishes_when_orbit_logits_are_equal(logits, order, form):
    orbit = torch.from_numpy(logits).unsqueeze(0).expand(order, -1, -1)
    assert invariance_regularizer(orbit, form).item() == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(logits=arrays(np.float64, (3, 2, 4), elements=st.floats(-10, 10, allow_nan=False)),
       shift=arrays(np.float64, (3, 2, 1), elements=st.floats(-10, 10, allow_nan=False)))
def test_kl_regularizer_is_unchanged_by_a_constant_added_to_each_logit_vector(logits, shift):
    a, c = torch.from_numpy(logits), torch.from_numpy(shift)
    assert invariance_regularizer(a + c, "kl").item() == pytest.approx(invariance_regularizer(a, "kl").item(),
                                                                      abs=1e-9)


def test_logit_regularizer_changes_when_a_constant_is_added_to_one_logit_vector():
    a = torch.zeros(2, 1, 3, dtype=torch.float64)
    shifted = a.clone()
    shifted[1] += 1.0  # f(hx) = f(x) + 1: the same distribution, different logits
    assert invariance_regularizer(shifted, "kl").item() == pytest.approx(0.0, abs=1e-12)
    assert invariance_regularizer(shifted, "logit").item() == pytest.approx(1.5)  # 1/2 * 3


def test_regularizer_refuses_an_orbit_of_one_member():
    with pytest.raises(ValueError, match="at least two"):
        invariance_regularizer(torch.zeros(1, 2, 3), "logit")


# ---------------------------------------------------------------------------
# The nu rule
# ---------------------------------------------------------------------------
def test_select_nu_picks_the_smallest_nu_reaching_the_target():
    assert select_nu([0.1, 1.0, 10.0], [0.5, 0.96, 0.99], target=0.95) == 1.0
    assert select_nu([0.1, 1.0], [0.95, 0.99], target=0.95) == 0.1  # SI >= target passes


def test_select_nu_returns_none_when_no_nu_reaches_the_target():
    assert select_nu([0.1, 1.0, 10.0], [0.5, 0.9, 0.94], target=0.95) is None
    assert select_nu([1.0], [float("nan")]) is None


def test_select_nu_handles_an_unsorted_grid():
    assert select_nu([10.0, 0.1, 1.0, 3.0], [0.99, 0.5, 0.97, 0.98], target=0.95) == 1.0


def test_select_nu_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        select_nu([0.1, 1.0], [0.9])


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
def test_config_defaults_are_the_papers_protocol():
    c = TrainConfig()
    assert (c.epochs, c.batch_size, c.lr, c.method, c.regularizer, c.pool) == (300, 512, 8e-4, "DA", "logit", "max")
    assert (c.hidden, c.n_hidden_layers, c.n_classes) == (128, 5, 9)


def test_config_key_is_stable_and_distinguishes_runs():
    assert TrainConfig(method="IR", nu=1.0).key() == "r4-IR-logit-nu1"
    assert TrainConfig(method="IR", group="T3", regularizer="kl", nu=0.05).key() == "t3-IR-kl-nu0.05"
    assert TrainConfig(method="DA").key() == "r4-DA"
    assert TrainConfig(method="WT", pool="mean").key() == "r4-WT-mean"
    keys = {small("DA").key(), small("WT").key(), small("IR", nu=1.0).key(), small("IR", nu=2.0).key(),
            small("DA", epochs=5).key()}
    assert len(keys) == 5
    assert all(set(k) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_+") for k in keys)


def test_config_refuses_nu_for_methods_without_regularizer():
    with pytest.raises(ValueError, match="nu=0"):
        TrainConfig(method="DA", nu=1.0)
    with pytest.raises(ValueError, match="unknown group"):
        TrainConfig(group="so3")


# ---------------------------------------------------------------------------
# Fast path == reference
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("group_name", ["r4", "t3", "d4"])
def test_batch_inputs_are_the_group_action_and_its_orbit(splits, group_name):
    group = get_group(group_name)
    data = OrbitData(splits.train, group, torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, len(splits.train), (2, 5), generator=gen)
    elem = torch.randint(0, group.order, (2, 5), generator=gen)
    x = splits.train.x
    da = batch_inputs(data, "DA", elem, idx, orbit_cayley(group, torch.device("cpu")))
    ir = batch_inputs(data, "IR", elem, idx, orbit_cayley(group, torch.device("cpu")))
    for s in range(2):
        aug = group.act(x[idx[s]], elem[s])
        assert torch.equal(da[s], aug.flatten(1))
        assert torch.equal(ir[s], group.orbit(aug).flatten(2))  # member h = h (g x), h = e first


def test_each_run_seed_and_stream_gets_its_own_seed_the_same_every_time():
    """Initial weights (stream 0), data order (1) and the rest are independent streams of each run seed."""
    seeds = {(s, k): stream_seed(s, k) for s in range(20) for k in range(4)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= v < 2**63 for v in seeds.values())
    assert seeds == {(s, k): stream_seed(s, k) for s in range(20) for k in range(4)}


@pytest.mark.parametrize("method", ["DA", "IR"])
def test_each_epoch_draws_every_group_element_for_the_samples_uniformly(splits, method, monkeypatch):
    """DA augments, and IR's orbit starts, with an element drawn per sample and epoch: all of D4's 8, each
    about 1/8 of the time (a draw that missed one, or favoured the identity, would pass every loss test)."""
    seen: list[torch.Tensor] = []
    inputs = loop.batch_inputs
    monkeypatch.setattr(loop, "batch_inputs", lambda data, m, elem, idx, c: seen.append(elem) or inputs(
        data, m, elem, idx, c))
    train_runs([small(method, epochs=10, group="d4", nu=1.0 if method == "IR" else 0.0)], [0], splits,
               device="cpu", progress=False)
    counts = torch.bincount(torch.cat([e.flatten() for e in seen]), minlength=8)
    assert counts.shape == (8,) and int(counts.sum()) == 10 * len(splits.train)
    expected = float(counts.sum()) / 8
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24.3, counts  # the 0.999 quantile of chi-square with 7 degrees of freedom


@pytest.mark.parametrize(
    "method,form",
    [("DA", "logit"), ("WT", "logit"), ("IR", "logit"), ("IR", "kl"), ("IR", "normalized_logit")],
)
def test_stacked_losses_and_gradients_equal_separate_models(splits, method, form):
    """The vectorized multi-model (baddbmm, orbit table, one forward per orbit)
    gives every member the loss and gradient of an ordinary MLP / InvariantMLP
    trained alone on the same batch (float64, so the tolerance is tight)."""
    group = get_group("r4")
    S, n, dev = 3, 7, torch.device("cpu")
    nus = [0.0, 0.5, 2.0] if method == "IR" else [0.0] * S
    data = OrbitData(splits.train, group, dev, dtype=torch.float64)
    stacked = StackedMLP(S, (18, 18), 9, 16, 2, group=group if method == "WT" else None, dtype=torch.float64)
    stacked.reset_parameters([torch.Generator().manual_seed(s) for s in range(S)])
    gen = torch.Generator().manual_seed(2)
    idx = torch.randint(0, len(splits.train), (S, n), generator=gen)
    elem = torch.randint(0, group.order, (S, n), generator=gen)
    y = data.y[idx]
    x = batch_inputs(data, method, elem, idx, orbit_cayley(group, dev))
    task, reg = member_losses(stacked, x, y, method, form)
    (task + torch.tensor(nus, dtype=torch.float64) * reg).sum().backward()

    for s in range(S):
        kw = dict(in_shape=(18, 18), n_classes=9, hidden=16, n_hidden_layers=2)
        ref = (InvariantMLP(group, **kw) if method == "WT" else MLP(**kw)).double()
        ref.load_state_dict(stacked.member_state_dict(s))
        aug = group.act(splits.train.x[idx[s]].double(), elem[s])
        if method == "IR":
            orbit = group.orbit(aug)  # (|G|, n, H, W), [0] = aug
            logits = ref(orbit.reshape(-1, 18, 18)).view(group.order, n, -1)
            ref_task = F.cross_entropy(logits[0], y[s])
            ref_reg = invariance_regularizer(logits, form)
        else:
            ref_task = F.cross_entropy(ref(aug), y[s])
            ref_reg = torch.zeros((), dtype=torch.float64)
        (ref_task + nus[s] * ref_reg).backward()
        assert task[s].item() == pytest.approx(ref_task.item(), rel=1e-10, abs=1e-12)
        assert reg[s].item() == pytest.approx(ref_reg.item(), rel=1e-10, abs=1e-12)
        for l, layer in enumerate(ref.layers):
            torch.testing.assert_close(stacked.weights[l].grad[s], layer.weight.grad, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(stacked.biases[l].grad[s], layer.bias.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_stacked_forward_on_shared_inputs_equals_each_member(splits, tied):
    group = get_group("r4")
    stacked = StackedMLP(2, (18, 18), 9, 16, 2, group=group if tied else None, dtype=torch.float64)
    stacked.reset_parameters([torch.Generator().manual_seed(s) for s in range(2)])
    x = splits.val.x.double()
    out = stacked.forward_shared(x.flatten(1))
    for s in range(2):
        kw = dict(in_shape=(18, 18), n_classes=9, hidden=16, n_hidden_layers=2)
        ref = (InvariantMLP(group, **kw) if tied else MLP(**kw)).double()
        ref.load_state_dict(stacked.member_state_dict(s))
        torch.testing.assert_close(out[s], ref(x), rtol=1e-10, atol=1e-12)
        if tied:  # the orbit form gives the logits of every orbit member
            orbit_out = stacked.forward_shared_orbit(group.orbit(x).flatten(2))
            for g in group.elements:
                torch.testing.assert_close(orbit_out[s], ref(group.act(x, g)), rtol=1e-10, atol=1e-12)


def test_per_pixel_gather_fallback_trains_exactly_like_the_orbit_table(splits, monkeypatch):
    import nets.train.batches as T

    configs = [small("IR", epochs=2, nu=1.0), small("WT", epochs=2)]
    with_table = train_runs(configs, [0], splits, device="cpu", progress=False)
    monkeypatch.setattr(T, "MAX_ORBIT_TABLE_BYTES", 0)
    without = train_runs(configs, [0], splits, device="cpu", progress=False)
    for a, b in zip(with_table, without):
        assert a.history == b.history
        assert all(torch.equal(v, weights(b)[k]) for k, v in weights(a).items())


def test_stacked_training_matches_training_each_run_alone(splits):
    configs = [small("IR", epochs=2, nu=0.5), small("IR", epochs=2, nu=2.0)]
    together = train_runs(configs, [0, 1], splits, device="cpu", progress=False, stack=True)
    alone = train_runs(configs, [0, 1], splits, device="cpu", progress=False, stack=False)
    assert [r.stack_size for r in together] == [4] * 4 and [r.stack_size for r in alone] == [1] * 4
    for a, b in zip(together, alone):
        assert (a.config, a.seed) == (b.config, b.seed)
        np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-4)
        for k, v in weights(a).items():
            torch.testing.assert_close(v, weights(b)[k], rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------------
# Protocol: selection, determinism, learning
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["DA", "WT"])
def test_final_model_is_the_best_validation_epoch(splits, method):
    (run,) = train_runs([small(method, epochs=6, lr=0.05)], [0], splits, device="cpu", progress=False)
    acc = run.history["val_accuracy"]
    assert len(acc) == 6 and all(len(v) == 6 for v in run.history.values())
    assert run.best_epoch == int(np.argmax(acc))  # first epoch among ties
    assert run.best_val_accuracy == acc[run.best_epoch] == max(acc)
    # The returned model holds that epoch's weights: its orbit accuracy is the recorded one.
    assert orbit_accuracy(run.model, splits.val, "r4") == pytest.approx(run.best_val_accuracy, abs=1e-12)


def test_orbit_accuracy_averages_over_every_group_element(splits):
    group = get_group("t3")
    model = MLP(in_shape=(18, 18), hidden=8, n_hidden_layers=1)
    with torch.no_grad():
        per_g = [(model(group.act(splits.val.x, g)).argmax(-1) == splits.val.y).double().mean().item()
                 for g in group.elements]
    assert orbit_accuracy(model, splits.val, group, chunk_size=5) == pytest.approx(np.mean(per_g), abs=1e-12)


def test_same_seed_gives_the_same_numbers(splits):
    cfg = [small("IR", epochs=2, nu=1.0, regularizer="kl")]
    a = train_runs(cfg, [3], splits, device="cpu", progress=False)[0]
    b = train_runs(cfg, [3], splits, device="cpu", progress=False)[0]
    c = train_runs(cfg, [4], splits, device="cpu", progress=False)[0]
    assert a.history == b.history
    assert all(torch.equal(v, weights(b)[k]) for k, v in weights(a).items())
    assert a.history["loss"] != c.history["loss"]


def test_same_seed_starts_every_method_from_the_same_weights(splits):
    runs = train_runs([small("DA", epochs=1, lr=1e-12), small("WT", epochs=1, lr=1e-12)], [0], splits,
                      device="cpu", progress=False)
    for k, v in weights(runs[0]).items():
        torch.testing.assert_close(v, weights(runs[1])[k], rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_training_decreases_the_loss(splits, method):
    cfg = small(method, epochs=8, lr=1e-2, nu=0.1 if method == "IR" else 0.0)
    (run,) = train_runs([cfg], [0], splits, device="cpu", progress=False)
    loss = run.history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert run.best_val_accuracy > 1.5 / 9  # better than chance


def test_weight_tied_run_is_exactly_invariant(splits):
    (run,) = train_runs([small("WT", epochs=2)], [0], splits, device="cpu", progress=False)
    x = splits.val.x
    group = get_group("r4")
    with torch.no_grad():
        ref = run.model(x)
        for g in group.elements:
            torch.testing.assert_close(run.model(group.act(x, g)), ref, rtol=1e-5, atol=1e-5)


def test_nan_loss_stops_with_an_error_naming_the_run_and_epoch(splits):
    x = splits.train.x.clone()
    x[0] = 3e38  # finite (a NaN image is refused before training), but its logits overflow
    bad = replace(splits, train=Split(x, splits.train.y))
    with pytest.raises(TrainingDiverged, match=r"epoch 1 of run\(s\) r4-DA-e4-bs32-h16-l2 seed 5"):
        train_runs([small("DA")], [5], bad, device="cpu", progress=False)


# ---------------------------------------------------------------------------
# Checkpoints and resuming
# ---------------------------------------------------------------------------
class _Interrupt(Exception):
    pass


def _interrupt_at(k: int):
    def hook(done: int) -> None:
        if done == k:
            raise _Interrupt

    return hook


def test_checkpoints_wait_min_checkpoint_s_and_the_last_one_is_always_written(splits, tmp_path):
    configs = [small("DA", epochs=3)]
    seen = []

    def look(done: int) -> None:
        path = checkpoint_path(tmp_path, configs[0], 0)
        seen.append(torch.load(path, weights_only=True)["epoch"] if path.exists() else None)

    train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path, checkpoint_every=1,
               min_checkpoint_s=1e9, on_epoch_end=look)
    assert seen == [None, None, 3]  # only the final checkpoint, however soon
    with pytest.raises(ValueError, match="min_checkpoint_s must be >= 0"):
        train_runs(configs, [0], splits, device="cpu", progress=False, min_checkpoint_s=-1.0)


@pytest.mark.parametrize("method", ["DA", "IR"])
def test_resumed_run_gives_the_same_result_as_an_uninterrupted_one(splits, tmp_path, method):
    configs = [small(method, epochs=5, nu=1.0 if method == "IR" else 0.0)]
    seeds = [0, 1]
    straight = train_runs(configs, seeds, splits, device="cpu", progress=False)
    # Interrupt after epoch 3; the last checkpoint is from epoch 2, so epoch 3 is redone.
    with pytest.raises(_Interrupt):
        train_runs(configs, seeds, splits, device="cpu", progress=False, run_dir=tmp_path, checkpoint_every=2,
                   on_epoch_end=_interrupt_at(3))
    ckpt = torch.load(checkpoint_path(tmp_path, configs[0], 0), weights_only=True)
    assert ckpt["epoch"] == 2 and not ckpt["finished"]
    epochs_run = []
    resumed = train_runs(configs, seeds, splits, device="cpu", progress=False, run_dir=tmp_path,
                         checkpoint_every=2, on_epoch_end=epochs_run.append)
    assert epochs_run == [3, 4, 5]
    for a, b in zip(straight, resumed):
        assert a.history == b.history and a.best_epoch == b.best_epoch
        assert all(torch.equal(v, weights(b)[k]) for k, v in weights(a).items())


@pytest.fixture
def threads_restored():
    """Tests that set torch's thread count get it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _stopped_after(epoch: int, configs, splits, run_dir, threads: int) -> None:
    """Train ``configs`` (seed 0) on ``threads`` threads, checkpointing every epoch, and stop after ``epoch``."""
    torch.set_num_threads(threads)
    with pytest.raises(_Interrupt):
        train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=run_dir, checkpoint_every=1,
                   on_epoch_end=_interrupt_at(epoch))


def test_a_run_resumed_on_another_thread_count_says_its_numbers_match_no_uninterrupted_run(splits, tmp_path,
                                                                                             threads_restored):
    configs = [small("DA", epochs=3)]
    _stopped_after(1, configs, splits, tmp_path, threads=1)
    assert torch.load(checkpoint_path(tmp_path, configs[0], 0), weights_only=True)["torch_threads"] == 1
    torch.set_num_threads(2)
    with pytest.warns(ResumedElsewhere, match=r"^1 run\(s\) resume from checkpoints trained so far under another "
                                              r"setting \(r4-DA-e3-\S+ seed 0 at epoch 1: torch_threads 1 -> 2\)"):
        train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path)


def test_a_run_resumed_twice_under_a_new_thread_count_is_still_named_the_second_time(splits, tmp_path,
                                                                                      threads_restored):
    configs = [small("DA", epochs=3)]
    _stopped_after(1, configs, splits, tmp_path, threads=1)
    with pytest.warns(ResumedElsewhere):
        _stopped_after(2, configs, splits, tmp_path, threads=2)
    ckpt = torch.load(checkpoint_path(tmp_path, configs[0], 0), weights_only=True)
    assert [s["torch_threads"] for s in ckpt["trained_under"]] == [1, 2]
    with pytest.warns(ResumedElsewhere, match=r"at epoch 2: torch_threads 1 -> 2\)"):  # its start still differs
        train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path)


def test_a_run_resumed_with_the_threads_it_started_with_says_nothing(splits, tmp_path, recwarn):
    configs = [small("DA", epochs=2)]
    with pytest.raises(_Interrupt):
        train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path, checkpoint_every=1,
                   on_epoch_end=_interrupt_at(1))
    train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path)
    assert not [w for w in recwarn if issubclass(w.category, ResumedElsewhere)]


def test_finished_runs_are_loaded_not_retrained(splits, tmp_path):
    configs = [small("WT", epochs=2)]
    first = train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path)
    ckpt = torch.load(checkpoint_path(tmp_path, configs[0], 0), weights_only=True)
    assert ckpt["finished"] and ckpt["epoch"] == 2
    calls = []
    again = train_runs(configs, [0], splits, device="cpu", progress=False, run_dir=tmp_path,
                       on_epoch_end=calls.append)
    assert calls == []
    assert isinstance(again[0].model, InvariantMLP)
    assert again[0].history == first[0].history and again[0].best_val_accuracy == first[0].best_val_accuracy
    assert all(torch.equal(v, weights(again[0])[k]) for k, v in weights(first[0]).items())


def test_a_checkpoint_of_another_config_is_refused(splits, tmp_path):
    cfg = small("DA", epochs=1)
    train_runs([cfg], [0], splits, device="cpu", progress=False, run_dir=tmp_path)
    other = torch.load(checkpoint_path(tmp_path, cfg, 0), weights_only=True)
    other["config"]["lr"] = 1.0
    torch.save(other, checkpoint_path(tmp_path, cfg, 0))
    with pytest.raises(ValueError, match="checkpoint is for config"):
        train_runs([cfg], [0], splits, device="cpu", progress=False, run_dir=tmp_path)


# ---------------------------------------------------------------------------
# tune_nu
# ---------------------------------------------------------------------------
def test_tune_nu_reports_every_grid_value_and_applies_the_rule(splits):
    base = small("IR", epochs=1)
    sel, runs = tune_nu(base, [1.0, 0.0], [0, 1], splits, n_si_samples=4, device="cpu", progress=False,
                        n_steps=4, search="full")
    assert sel.grid == [1.0, 0.0] and len(sel.si) == 2 and len(sel.accuracy) == 2
    assert None not in sel.si and None not in sel.accuracy
    assert {nu: [(r.config.nu, r.seed) for r in rs] for nu, rs in runs.items()} == {
        1.0: [(1.0, 0), (1.0, 1)], 0.0: [(0.0, 0), (0.0, 1)]}
    assert sel.chosen == select_nu(sel.grid, sel.si, sel.target)
    assert sel.to_dict()["target"] == 0.95 and sel.to_dict()["search"] == "full"


def test_tune_nu_records_each_seeds_si_whose_mean_is_the_si(splits):
    base = small("IR", epochs=1)
    sel, _ = tune_nu(base, [1.0, 0.0], [0, 1, 2], splits, n_si_samples=4, device="cpu", progress=False,
                     n_steps=4, search="full")
    assert [len(v) for v in sel.si_per_seed] == [3, 3]
    assert any(np.mean(v) != np.median(v) for v in sel.si_per_seed)  # three seeds: the mean is not the median
    assert sel.si == [float(np.mean(v)) for v in sel.si_per_seed]
    assert sel.to_dict()["si_per_seed"] == sel.si_per_seed


def test_ascending_nu_search_stops_at_the_first_nu_reaching_the_target(splits):
    base = small("IR", epochs=1)
    full, _ = tune_nu(base, [3.0, 0.0, 1.0], [0], splits, n_si_samples=4, device="cpu", progress=False,
                      n_steps=4, search="full")
    target = full.si[1] - 1e-4  # the smallest nu (0.0) reaches it: nothing else is trained
    sel, runs = tune_nu(base, [3.0, 0.0, 1.0], [0], splits, si_target=target, n_si_samples=4, device="cpu",
                        progress=False, n_steps=4, search="ascending")
    assert sel.search == "ascending" and sel.trained == [0.0] and list(runs) == [0.0]
    assert sel.si == [None, full.si[1], None] and sel.chosen == 0.0
    assert sel.si_per_seed == [None, [full.si[1]], None]


def test_ascending_nu_search_picks_the_same_nu_as_the_full_grid(splits):
    base = small("IR", epochs=1)
    grid = [1.0, 0.0, 10.0]
    full, _ = tune_nu(base, grid, [0], splits, n_si_samples=4, device="cpu", progress=False, n_steps=4,
                      search="full")
    for target in [v - 1e-4 for v in full.si] + [2.0]:  # each SI just reached, and a target nobody reaches
        full_choice = select_nu(full.grid, full.si, target)
        sel, _ = tune_nu(base, grid, [0], splits, si_target=target, n_si_samples=4, device="cpu",
                         progress=False, n_steps=4, search="ascending")
        assert sel.chosen == full_choice
        trained = sel.trained
        assert sorted(trained) == sorted(grid)[:len(trained)]  # a prefix of the ascending grid
        assert all(sel.si[grid.index(v)] == pytest.approx(full.si[grid.index(v)], abs=1e-5) for v in trained)
        if full_choice is None:
            assert sorted(trained) == sorted(grid)  # nothing reached it: the whole grid was tried


def test_committed_paper_checkpoints_load_as_finished_runs_under_their_unchanged_keys(tmp_path):
    """Every paper checkpoint (restored from the repository's history into a temporary folder by its
    manifest) is found under its config's key, loads as a finished run (nothing trains), and gives
    back the stored selection and weights."""
    import shutil
    from pathlib import Path

    from nets.checkpoint_archive import manifest_path, read_manifest, restore

    paper = Path(__file__).resolve().parent.parent / "results" / "paper"
    (tmp_path / "paper").mkdir()
    shutil.copy(manifest_path(paper), manifest_path(tmp_path / "paper"))
    ckpt_dir = restore(tmp_path / "paper").directory
    files = sorted(ckpt_dir.glob("*.pt"))
    assert len(files) == len(read_manifest(paper)["files"])  # the sweep's 140, the centered form's 8, the CNN's 16
    data = synthetic_splits(n_train=4, n_val=4, n_test=0, seed=0, size=36)
    for f in files:
        ckpt = torch.load(f, map_location="cpu", weights_only=True)
        config = TrainConfig(**ckpt["config"])
        assert checkpoint_path(ckpt_dir, config, ckpt["seed"]) == f
        (run,) = train_runs([config], [ckpt["seed"]], data, device="cpu", progress=False, run_dir=ckpt_dir,
                            on_epoch_end=lambda done: pytest.fail(f"{f.name} trained instead of loading"),
                            model_fn={MODEL_NAME: build_cnn})
        assert (run.best_epoch, run.best_val_accuracy) == (ckpt["best_epoch"], ckpt["best_val_accuracy"])
        state = run.model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in ckpt["best_state"].items()), f.name


def test_irs_loss_is_the_task_loss_plus_nu_times_the_regularizer_for_each_member(splits):
    configs = [small("IR", epochs=1, nu=nu) for nu in (0.5, 3.0)]
    for run in train_runs(configs, [0], splits, device="cpu", progress=False, stack=True):
        h = run.history
        assert h["reg_loss"][0] > 0
        assert h["loss"][0] == pytest.approx(h["task_loss"][0] + run.config.nu * h["reg_loss"][0], rel=1e-6)  # float32 sums


def test_different_seeds_start_from_different_weights(splits):
    """Each seed draws its own initial weights (stream 0): two seeds trained with a vanishing step keep
    different weights, so the seeds' spread is that of independent models."""
    a, b = train_runs([small("DA", epochs=1, lr=1e-12)], [0, 1], splits, device="cpu", progress=False)
    wa, wb = weights(a), weights(b)
    assert all(not torch.allclose(v, wb[k]) for k, v in wa.items() if "weight" in k)


def test_the_detached_forms_gradient_treats_the_denominator_as_a_constant():
    """The oracle: ||f(x) - f(hx)||^2 / c with c = ||f(x)||^2 + eps a number, not a function of f(x);
    the paper's normalized form, at the same value, has another gradient."""
    orbit = torch.randn(4, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    (got,) = torch.autograd.grad(invariance_regularizer(orbit, "detached_normalized_logit"), orbit)
    leaf = orbit.detach().clone().requires_grad_(True)
    c = [float(orbit[0, i].detach().pow(2).sum()) + NORMALIZED_LOGIT_EPS for i in range(5)]
    oracle = sum((leaf[0, i] - leaf[h, i]).pow(2).sum() / c[i] for h in range(1, 4) for i in range(5)) / 15
    (expected,) = torch.autograd.grad(oracle, leaf)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    (paper,) = torch.autograd.grad(invariance_regularizer(orbit, "normalized_logit"), orbit)
    assert not torch.allclose(got, paper)


def test_nu_is_chosen_on_si_measured_on_the_validation_split(splits):
    selection, runs = tune_nu(small("IR", epochs=1), [1.0], [0], splits, n_si_samples=4, device="cpu",
                              progress=False, n_steps=4, search="full")
    x, y = splits.val.x[:4], splits.val.y[:4]
    expected = float(saliency_invariance(runs[1.0][0].model, x, y, get_group("r4"), n_steps=4))
    assert selection.si_per_seed[0][0] == pytest.approx(expected, abs=1e-6)


def test_the_logged_epoch_loss_is_the_mean_over_samples_with_a_partial_last_batch():
    """100 training images in batches of 32 (the last of 4) and a step too small to move the weights: the
    epoch's logged task loss is the cross-entropy of the model over all 100, each image counted once."""
    data = synthetic_splits(n_train=100, n_val=24, n_test=8, seed=0, size=18)
    (run,) = train_runs([small("WT", epochs=1, lr=1e-12)], [0], data, device="cpu", progress=False)
    with torch.no_grad():
        expected = F.cross_entropy(run.model(data.train.x), data.train.y).item()
    assert run.history["task_loss"][0] == pytest.approx(expected, rel=1e-6)
    assert run.history["loss"][0] == run.history["task_loss"][0]  # WT has no regularizer
