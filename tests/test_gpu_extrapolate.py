"""benchmarks/gpu_extrapolate.py on its own: the time per run read from checkpoints where no
results file has it (a stage stopped at its limit), and whether the paper's target is met when
the total is only a lower bound."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_extrapolate import TARGET_S, checkpoint_runs, extrapolate  # noqa: E402
from nets.train import TrainConfig  # noqa: E402

STARTUP = [{"stage": "startup", "seconds": "1.0", "status": "ok"}]


def _checkpoint(folder: Path, method: str, group: str, epoch: int, epochs: int, wall: float, seed: int = 0,
                model: str = "mlp") -> None:
    cfg = TrainConfig(method=method, group=group, epochs=epochs, nu=1.0 if method == "IR" else 0.0, model=model)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "seed": seed, "epoch": epoch, "wall_time_s": wall},
               folder / f"{cfg.key()}-seed{seed}.pt")


def test_a_runs_time_is_its_checkpoints_time_per_epoch_times_its_epochs(tmp_path):
    _checkpoint(tmp_path / "checkpoints", "WT", "r4", epoch=3, epochs=300, wall=1.5)
    _checkpoint(tmp_path / "checkpoints", "WT", "r4", epoch=30, epochs=300, wall=15.0, seed=1)
    assert checkpoint_runs(tmp_path) == {("r4", "WT"): [150.0, 150.0]}


def test_a_damaged_checkpoint_and_another_models_are_passed_over(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "broken.pt").write_bytes(b"not a checkpoint")
    _checkpoint(tmp_path / "checkpoints", "DA", "t3", epoch=1, epochs=2, wall=0.5)
    _checkpoint(tmp_path / "checkpoints", "DA", "t3", epoch=1, epochs=2, wall=9.0, seed=1, model="cnn")
    assert checkpoint_runs(tmp_path) == {("t3", "DA"): [1.0]}


def test_kinds_no_results_file_records_are_taken_from_checkpoints_and_say_so(tmp_path):
    _checkpoint(tmp_path / "checkpoints", "WT", "r4", epoch=1, epochs=2, wall=0.5)
    parts = extrapolate(STARTUP, tmp_path, "smoke", "cpu")["protocol"]["training"]["parts"]
    assert parts["r4 WT"]["basis"] == "checkpoints" and parts["r4 WT"]["s_per_run"] == 1.0
    assert parts["t3 WT"]["basis"] == "scaled from r4 (checkpoints)" and parts["r4 DA"]["basis"] == "not measured"


@pytest.mark.parametrize("wall, meets", [(1e-4, None), (1e4, False)])
def test_a_lower_bound_meets_the_target_unknown_unless_it_already_exceeds_it(tmp_path, wall, meets):
    _checkpoint(tmp_path / "checkpoints", "WT", "r4", epoch=300, epochs=300, wall=wall)
    res = extrapolate(STARTUP, tmp_path, "paper", "cuda")
    assert res["protocol"]["lower_bound"] is True  # DA and IR were not measured
    assert (res["protocol"]["total_s"] > TARGET_S) == (meets is False)
    assert res["meets_target"] is meets
