"""The trainer and the measures on CUDA (``cuda`` marker; ``pytest -m cuda`` runs only these).

Each test needs a CUDA device and skips, saying so, where there is none. They check on
the GPU what the CPU tests check on the CPU (stacked training against training each run
alone, the same seed twice, bitwise resume), and that the GPU agrees with the CPU: every
measure of one model within relative 1e-4 in float32, and one fused Adam step (the
optimizer the trainer builds) equal to the CPU's step. A small CNN checks what
``nets.precision.exact_float32`` is for: its measures agree with the CPU's within 1e-4 (cuDNN's
convolutions in IEEE float32, not TF32) and one seed trains it twice to the same weights (cuDNN's
deterministic algorithms).

Only public names of ``nets.train`` and ``nets.metrics`` are used. Small synthetic
data (18x18 images) and small models keep each test to seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nets.cnn import SmallCNN
from nets.data import synthetic_splits
from nets.groups import get_group
from nets.models import MLP
from nets.metrics import (
    class_common_logit_share,
    distribution_invariance,
    jacobian_spectral_norm,
    logit_invariance,
    orbit_measures,
    saliency_invariance,
    saliency_map,
)
from nets.precision import exact_float32
from nets.results_io import cuda_float32
from nets.train import TrainConfig, checkpoint_path, orbit_accuracy, train_runs
from nets.train.pooling import GroupPooled

HAS_CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device: torch.cuda.is_available() is False "
                                            f"(torch {torch.__version__}, CUDA build {torch.version.cuda})"),
]

SMALL = dict(hidden=16, n_hidden_layers=2, batch_size=32)


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(n_train=96, n_val=24, n_test=8, seed=0, size=18)


def small(method: str = "DA", epochs: int = 3, **kw) -> TrainConfig:
    return TrainConfig(method=method, epochs=epochs, **{**SMALL, **kw})


def weights(run) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in run.model.state_dict().items()}


def test_stacked_training_on_cuda_matches_training_each_run_alone(splits):
    configs = [small("IR", epochs=2, nu=0.5), small("IR", epochs=2, nu=2.0)]
    together = train_runs(configs, [0, 1], splits, device="cuda", progress=False, stack=True)
    alone = train_runs(configs, [0, 1], splits, device="cuda", progress=False, stack=False)
    assert [r.stack_size for r in together] == [4] * 4 and [r.stack_size for r in alone] == [1] * 4
    for a, b in zip(together, alone):
        assert (a.config, a.seed) == (b.config, b.seed)
        np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-4)
        for k, v in weights(a).items():
            torch.testing.assert_close(v, weights(b)[k], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_the_same_seed_twice_on_cuda_gives_the_same_numbers(splits, method):
    cfg = [small(method, nu=1.0 if method == "IR" else 0.0)]
    a = train_runs(cfg, [3, 4], splits, device="cuda", progress=False)
    b = train_runs(cfg, [3, 4], splits, device="cuda", progress=False)
    for ra, rb in zip(a, b):
        assert ra.history == rb.history and ra.best_epoch == rb.best_epoch
        assert all(torch.equal(v, weights(rb)[k]) for k, v in weights(ra).items())


class _Interrupt(Exception):
    pass


def _interrupt_at(epoch: int):
    def hook(done: int) -> None:
        if done == epoch:
            raise _Interrupt
    return hook


@pytest.mark.parametrize("method", ["DA", "IR"])
def test_a_resumed_cuda_run_is_bitwise_the_uninterrupted_one(splits, tmp_path, method):
    configs = [small(method, epochs=5, nu=1.0 if method == "IR" else 0.0)]
    straight = train_runs(configs, [0, 1], splits, device="cuda", progress=False)
    with pytest.raises(_Interrupt):
        train_runs(configs, [0, 1], splits, device="cuda", progress=False, run_dir=tmp_path, checkpoint_every=2,
                   min_checkpoint_s=0, on_epoch_end=_interrupt_at(3))  # on CUDA 30 s between checkpoints otherwise
    assert checkpoint_path(tmp_path, configs[0], 0).exists()
    resumed = train_runs(configs, [0, 1], splits, device="cuda", progress=False, run_dir=tmp_path,
                         checkpoint_every=2)
    for a, b in zip(straight, resumed):
        assert a.history == b.history and a.best_epoch == b.best_epoch
        assert all(torch.equal(v, weights(b)[k]) for k, v in weights(a).items())


def _measures(model, x, y, group) -> dict[str, np.ndarray]:
    """Every measure of ``nets.metrics`` the experiments report, as float64 arrays."""
    om = orbit_measures(model, x, y, group)
    with torch.no_grad():
        logits = model(x)
    out = {
        "orbit accuracy": om["accuracy"], "orbit LI": om["LI"], "orbit DI": om["DI"],
        "LI": logit_invariance(model, x, group),
        "DI": distribution_invariance(model, x, group),
        "SI": saliency_invariance(model, x, y, group, n_steps=16),
        "saliency map": saliency_map(model, x, y, n_steps=16),
        "sigma_max": jacobian_spectral_norm(model, x),
        "class-common share": class_common_logit_share(logits),
    }
    return {k: np.asarray(torch.as_tensor(v).detach().cpu().double()) for k, v in out.items()}


def test_every_measure_agrees_between_cpu_and_cuda_within_1e_4(splits):
    group = get_group("r4")
    torch.manual_seed(0)
    model = MLP(in_shape=(18, 18), hidden=32, n_hidden_layers=2).eval()
    x, y = splits.test.x, splits.test.y
    cpu = _measures(model, x, y, group)
    gpu = _measures(model.to("cuda"), x.to("cuda"), y.to("cuda"), group)
    for name, v in cpu.items():
        np.testing.assert_allclose(gpu[name], v, rtol=1e-4, atol=1e-6, err_msg=name)
    assert orbit_accuracy(model, splits.val.to("cuda"), group) == pytest.approx(
        orbit_accuracy(model.cpu(), splits.val, group), abs=1e-12)


def _cnn(config: TrainConfig | None = None) -> SmallCNN:
    return SmallCNN(9, channels=(8, 16), strides=(2, 2), image_size=18)


def test_a_cnns_measures_agree_between_cpu_and_cuda_within_1e_4(splits):
    group = get_group("r4")
    torch.manual_seed(0)
    model = _cnn().eval()
    x, y = splits.test.x, splits.test.y
    cpu = _measures(model, x, y, group)
    with exact_float32("cuda"):
        gpu = _measures(model.to("cuda"), x.to("cuda"), y.to("cuda"), group)
    for name, v in cpu.items():
        np.testing.assert_allclose(gpu[name], v, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("method", ["DA", "WT"])
def test_one_seed_trains_a_cnn_on_cuda_twice_to_the_same_weights(splits, method):
    cfg = [small(method, model="cnn")]
    before = cuda_float32()
    a = train_runs(cfg, [0, 1], splits, device="cuda", progress=False, model_fn=_cnn)
    b = train_runs(cfg, [0, 1], splits, device="cuda", progress=False, model_fn=_cnn)
    assert cuda_float32() == before  # the trainer puts torch's settings back
    for ra, rb in zip(a, b):
        assert ra.history == rb.history and ra.best_epoch == rb.best_epoch
        assert all(torch.equal(v, weights(rb)[k]) for k, v in weights(ra).items())


def test_a_weight_tied_cnns_input_gradients_are_the_same_twice_on_cuda(splits):
    """SI and sigma_max differentiate through the group's orbit of the input: one gather per
    element (nets.group_action.orbit), so no atomic adds, the same sums each time."""
    torch.manual_seed(0)
    model = GroupPooled(_cnn(), "r4").to("cuda").eval()
    x, y = splits.test.x.to("cuda"), splits.test.y.to("cuda")
    with exact_float32("cuda"):
        first = [saliency_invariance(model, x, y, "r4", n_steps=8, reduction="none"), jacobian_spectral_norm(model, x)]
        again = [saliency_invariance(model, x, y, "r4", n_steps=8, reduction="none"), jacobian_spectral_norm(model, x)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


@pytest.mark.parametrize("where", ["model", "images"])
def test_a_model_and_images_on_different_devices_are_refused_in_one_line(splits, where):
    model = _cnn().eval()
    x = splits.test.x
    model, x = (model.to("cuda"), x) if where == "model" else (model, x.to("cuda"))
    with pytest.raises(ValueError, match=r"x is on .* but the model's parameters and buffers are on .*; move one") as e:
        logit_invariance(model, x, "r4")
    assert "\n" not in str(e.value)


def test_a_fused_adam_step_on_cuda_matches_the_cpu_step():
    """The trainer's optimizer (Adam, fused; lr of the paper) given the same weights and
    gradients takes the same steps on both devices (3 steps, float32)."""
    lr = TrainConfig().lr
    gen = torch.Generator().manual_seed(0)
    shapes = [(128, 1296), (128,), (9, 128), (9,)]
    start = [torch.randn(s, generator=gen) * 0.05 for s in shapes]
    grads = [[torch.randn(s, generator=gen) * 10.0 ** -k for s in shapes] for k in range(1, 4)]
    params = {}
    for dev in ("cpu", "cuda"):
        ps = [torch.nn.Parameter(p.clone().to(dev)) for p in start]
        opt = torch.optim.Adam(ps, lr=lr, fused=True)
        for step in grads:
            for p, g in zip(ps, step):
                p.grad = g.to(dev)
            opt.step()
        params[dev] = [p.detach().cpu() for p in ps]
    for a, b in zip(params["cpu"], params["cuda"]):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
