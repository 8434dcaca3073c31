"""nets.experiments.intervals: per-sample values that average to the experiments' numbers,
and a refusal to train."""

from __future__ import annotations

import pytest
import torch

from nets.data import Split
from nets.experiments.intervals import WouldTrain, load_runs, orbit_correct
from nets.groups import get_group
from nets.models import MLP
from nets.train import TrainConfig, orbit_accuracy


def test_per_sample_orbit_correctness_averages_to_the_orbit_accuracy():
    torch.manual_seed(0)
    model = MLP(in_shape=(12, 12), n_classes=3, hidden=16, n_hidden_layers=2).eval()
    x, y = torch.randn(50, 12, 12), torch.randint(0, 3, (50,))
    for g in ("r4", "t3"):
        per_sample = orbit_correct(model, x, y, get_group(g), chunk=7)
        assert per_sample.shape == (50,)
        assert per_sample.mean() == pytest.approx(orbit_accuracy(model, Split(x, y), g))


def test_a_missing_checkpoint_is_an_error_not_a_training_run(tmp_path):
    with pytest.raises(WouldTrain, match="evaluates only"):
        load_runs([TrainConfig(method="DA", group="r4", epochs=1)], [0], None, tmp_path, "cpu")
