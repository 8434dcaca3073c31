"""nets.experiments.intervals: per-sample values that average to the experiments' numbers,
and a refusal to train."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from scipy import stats

from nets.data import Split, Splits
from nets.experiments.intervals import (
    METHOD,
    N_RESAMPLES,
    WouldTrain,
    load_runs,
    orbit_correct,
    paired_difference,
    sample_summary,
    sigma_ratio,
)
from nets.sample_bootstrap import paired_bootstrap
from nets.stats import bootstrap_interval
from nets.groups import get_group
from nets.models import MLP
from nets.train import TrainConfig, checkpoint_path, orbit_accuracy, train_runs


def test_per_sample_orbit_correctness_averages_to_the_orbit_accuracy():
    torch.manual_seed(0)
    model = MLP(in_shape=(12, 12), n_classes=3, hidden=16, n_hidden_layers=2).eval()
    x, y = torch.randn(50, 12, 12), torch.randint(0, 3, (50,))
    for g in ("r4", "t3"):
        per_sample = orbit_correct(model, x, y, get_group(g), chunk=7)
        assert per_sample.shape == (50,)
        assert per_sample.mean() == pytest.approx(orbit_accuracy(model, Split(x, y), g))


def _tiny_splits(n=24):
    g = torch.Generator().manual_seed(0)
    make = lambda: Split(torch.randn(n, 12, 12, generator=g), torch.arange(n) % 3)  # noqa: E731
    return Splits("synthetic", make(), make(), make(), 0.0, 1.0, 0)


def _tiny_config(epochs):
    return TrainConfig(method="DA", group="r4", epochs=epochs, n_classes=3, hidden=8, n_hidden_layers=1,
                       batch_size=8)


def test_a_missing_checkpoint_is_an_error_not_a_training_run(tmp_path):
    with pytest.raises(WouldTrain, match="evaluates only"):
        load_runs([_tiny_config(1)], [0], _tiny_splits(), tmp_path, "cpu")
    assert list(tmp_path.iterdir()) == []


def test_an_unfinished_checkpoint_is_named_with_its_epoch_and_trains_no_further(tmp_path):
    splits = _tiny_splits()
    with pytest.raises(_Stop):
        train_runs([_tiny_config(2)], [0], splits, device="cpu", run_dir=tmp_path, progress=False,
                   checkpoint_every=1, on_epoch_end=_stop_after_first_epoch)
    path = checkpoint_path(tmp_path, _tiny_config(2), 0)
    before = path.read_bytes()
    with pytest.raises(WouldTrain, match=rf"checkpoint {re.escape(str(path))} is unfinished "
                                         r"\(training reached epoch 1 of 2\); this command evaluates only"):
        load_runs([_tiny_config(2)], [0], splits, tmp_path, "cpu")
    assert path.read_bytes() == before


def test_finished_runs_load_as_the_trainer_returned_them(tmp_path):
    splits = _tiny_splits()
    trained = train_runs([_tiny_config(1)], [0], splits, device="cpu", run_dir=tmp_path, progress=False)[0]
    loaded = load_runs([_tiny_config(1)], [0], splits, tmp_path, "cpu")[0]
    assert loaded.best_val_accuracy == trained.best_val_accuracy
    for a, b in zip(trained.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)


class _Stop(Exception):
    pass


def _stop_after_first_epoch(done):
    if done == 1:
        raise _Stop


def test_the_test_set_error_script_bootstraps_the_seed_averaged_differences_of_table1s_models(table1_smoke, tmp_path):
    """scripts/test_set_error.py measures the same models as table1.json (its per-seed accuracies), and its
    difference of seed-averaged per-sample accuracies is the mean of the per-seed differences."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "t.json"
    done = subprocess.run([sys.executable, "scripts/test_set_error.py", "--profile", "smoke", "--results",
                           str(table1_smoke), "--device", "cpu", "--out", str(out)], cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["meta"]["experiment"] == "test_set_error" and "content_sha256" in record["meta"]
    for g, entry in record["groups"].items():
        for m, values in entry["per_seed"].items():
            assert values == pytest.approx(entry["per_seed_json"][m], abs=1e-12)
        for pair, e in entry["accuracy_points"].items():
            a, b = pair.split(" - ")
            per_seed_diff = [100 * (x - y) for x, y in zip(entry["per_seed"][a], entry["per_seed"][b])]
            assert e["test_set"]["difference"] == pytest.approx(sum(per_seed_diff) / len(per_seed_diff), abs=1e-9)
            assert e["over_seeds"]["difference"] == pytest.approx(e["test_set"]["difference"], abs=1e-9)
            assert e["test_set"]["low"] <= e["test_set"]["difference"] <= e["test_set"]["high"]
        assert f"{g} WT - DA accuracy (points): over " in done.stdout


def _shares(n, seed):
    return np.random.default_rng(seed).integers(0, 5, n) / 4  # shares of an orbit of 4


def test_an_orbit_accuracy_of_every_sample_right_gets_clopper_pearsons_bound_not_one_one():
    """Every seed right on every orbit: the bootstrap read [1, 1]."""
    s = sample_summary([np.ones(40), np.ones(40)], None, shares=True)
    exact = stats.binomtest(40, 40).proportion_ci(0.95, method="exact")
    assert (s["mean"], s["low"], s["high"]) == pytest.approx((1.0, exact.low, 1.0), rel=1e-9)


def test_an_orbit_accuracy_off_the_edge_keeps_the_bootstrap_interval_the_committed_files_hold():
    per_seed = [_shares(200, 1), _shares(200, 2)]
    s = sample_summary(per_seed, None, shares=True)
    iv = bootstrap_interval(np.mean(np.stack(per_seed), 0), np.mean, n_resamples=N_RESAMPLES, seed=0, method=METHOD)
    assert (s["mean"], s["low"], s["high"]) == (iv.estimate, iv.low, iv.high)


def test_the_test_set_difference_keeps_the_paired_bootstrap_and_bounds_models_that_agree_everywhere():
    a, b = [_shares(200, 1), _shares(200, 2)], [_shares(200, 3), _shares(200, 4)]
    u, v = np.mean(np.stack(a), 0), np.mean(np.stack(b), 0)
    boot = paired_bootstrap((u, v), lambda p, q, axis=-1: p.mean(axis) - q.mean(axis), n_resamples=N_RESAMPLES)
    d = paired_difference(a, b, scale=100.0)
    assert (d["difference"], d["low"], d["high"]) == pytest.approx((100 * boot.value, 100 * boot.low, 100 * boot.high),
                                                                   rel=1e-12)
    same = paired_difference(a, [x.copy() for x in a], scale=100.0)
    edge = 100 * stats.binomtest(0, 200).proportion_ci(0.95, method="exact").high
    assert (same["difference"], same["low"], same["high"]) == pytest.approx((0.0, -edge, edge), rel=1e-9)


def test_the_sigma_ratio_is_ir_over_da_paired_over_samples():
    """IR's sigma_max half DA's on every sample: every paired resample gives exactly 0.5 (an unpaired one
    would not, a swapped one 2); with noise, scipy's paired bootstrap of the ratio of means over the
    seed-averaged samples is the oracle."""
    da = np.linspace(1.0, 2.0, 50)
    exact = sigma_ratio([0.5 * da, 0.5 * da], [da, da])
    assert exact["ratio"] == pytest.approx(0.5) and exact["low"] == pytest.approx(0.5) == exact["high"]
    assert exact["n_samples"] == 50
    g = np.random.default_rng(3)
    ir_seeds, da_seeds = [g.uniform(0.2, 1.0, 40) for _ in range(2)], [g.uniform(0.5, 2.0, 40) for _ in range(2)]
    got = sigma_ratio(ir_seeds, da_seeds)
    ir, da_mean = np.mean(ir_seeds, 0), np.mean(da_seeds, 0)
    ref = stats.bootstrap((ir, da_mean), lambda u, v: np.mean(u) / np.mean(v), paired=True, vectorized=False,
                          n_resamples=N_RESAMPLES, method=METHOD, confidence_level=0.95,
                          rng=np.random.default_rng(0)).confidence_interval
    assert got["ratio"] == pytest.approx(ir.mean() / da_mean.mean(), rel=1e-12)
    assert (got["low"], got["high"]) == pytest.approx((ref.low, ref.high), rel=1e-12)
