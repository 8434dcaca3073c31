"""benchmarks/sweep_time.py adds up what a sweep recorded: checkpoint training times and FLOPs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.flops import train_flops, validation_flops  # noqa: E402
from benchmarks.sweep_time import main, sweep_time  # noqa: E402
from nets.experiments.profiles import PROFILES  # noqa: E402


def _checkpoint(path, *, method, group, seed, epoch, wall, regularizer="logit", nu=1.0, finished=True,
                epochs=300, model=None):
    cfg = {"method": method, "group": group, "regularizer": regularizer, "nu": nu, "epochs": epochs}
    if model is not None:
        cfg["model"] = model
    torch.save({"config": cfg, "seed": seed, "epoch": epoch, "finished": finished, "wall_time_s": wall,
                "stack_size": 2}, path)


@pytest.fixture
def sweep_dir(tmp_path):
    run_dir = tmp_path / "paper" / "checkpoints"
    run_dir.mkdir(parents=True)
    for seed in (0, 1):
        _checkpoint(run_dir / f"r4-DA-seed{seed}.pt", method="DA", group="r4", seed=seed, epoch=300, wall=60.0)
        _checkpoint(run_dir / f"t3-IR-logit-nu10-seed{seed}.pt", method="IR", group="t3", seed=seed, epoch=150,
                    wall=90.0, nu=10.0, finished=False)
        _checkpoint(run_dir / f"t3-IR-logit-nu3-seed{seed}.pt", method="IR", group="t3", seed=seed, epoch=300,
                    wall=180.0, nu=3.0)
    (tmp_path / "paper" / "drift.json").write_text(json.dumps(
        {"meta": {"command": "python -m nets drift", "wall_time_s": 120.0}, "groups": {"r4": {}},
         "pending_groups": ["t3"]}))
    return tmp_path / "paper"


def test_training_time_and_flops_are_summed_per_configuration(sweep_dir):
    p = PROFILES["paper"]
    res = sweep_time(sweep_dir, p, matmul_gflops=100.0)
    da = res["training_by_config"]["r4 DA"]
    assert da["seeds"] == [0, 1] and da["epochs"] == 600 and da["finished"] == 2 and da["wall_time_s"] == 120.0
    per_epoch = p.n_train * train_flops("DA", 4, executed=True) + p.n_val * validation_flops("DA", 4)
    assert da["gflop"] == pytest.approx(600 * per_epoch / 1e9)
    assert da["gflop_per_s"] == pytest.approx(da["gflop"] / 120.0)
    assert da["pct_of_matmul"] == pytest.approx(da["gflop_per_s"])  # matmul rate 100 GFLOP/s
    unfinished = res["training_by_config"]["t3 IR logit nu=10"]
    assert unfinished["finished"] == 0 and unfinished["epochs"] == 300  # counted as far as it went


def test_configurations_are_ordered_by_nu_as_a_number(sweep_dir):
    labels = list(sweep_time(sweep_dir, PROFILES["paper"])["training_by_config"])
    assert labels == ["r4 DA", "t3 IR logit nu=3", "t3 IR logit nu=10"]


def test_total_is_the_sum_over_every_checkpoint(sweep_dir):
    res = sweep_time(sweep_dir, PROFILES["paper"])
    total = res["training_total"]
    assert total["runs"] == 6 and total["finished"] == 4
    assert total["wall_time_s"] == pytest.approx(2 * (60 + 90 + 180))
    assert total["gflop"] == pytest.approx(sum(c["gflop"] for c in res["training_by_config"].values()))
    assert total["pct_of_matmul"] is None  # no matmul rate given


def test_experiment_wall_times_and_pending_groups_come_from_the_json(sweep_dir):
    drift = sweep_time(sweep_dir, PROFILES["paper"])["experiments"]["drift"]
    assert drift["wall_time_s"] == 120.0 and drift["groups"] == ["r4"] and drift["pending_groups"] == ["t3"]
    assert [s["command"] for s in drift["sittings"]] == ["python -m nets drift"]


def test_an_experiment_run_in_two_sittings_counts_both(sweep_dir):
    prov = {"r4": {"command": "first", "wall_time_s": 100.0}, "t3": {"command": "second", "wall_time_s": 30.0}}
    (sweep_dir / "tsne.json").write_text(json.dumps(
        {"meta": {"command": "second", "wall_time_s": 30.0}, "groups": {"r4": {}, "t3": {}},
         "group_provenance": prov, "pending_groups": []}))
    tsne = sweep_time(sweep_dir, PROFILES["paper"])["experiments"]["tsne"]
    assert tsne["wall_time_s"] == 130.0
    assert [(s["groups"], s["command"]) for s in tsne["sittings"]] == [(["r4"], "first"), (["t3"], "second")]


def test_cli_refuses_a_folder_without_checkpoints(tmp_path):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])


def test_cli_writes_the_json(sweep_dir, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main([str(sweep_dir), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["training_total"]["runs"] == 6
    assert "r4 DA" in capsys.readouterr().out


def test_other_experiments_checkpoints_are_listed_apart_and_left_out_of_the_total(sweep_dir):
    run_dir = sweep_dir / "checkpoints"
    _checkpoint(run_dir / "cnn-r4-DA-e6-seed0.pt", method="DA", group="r4", seed=0, epoch=6, wall=30.0,
                epochs=6, model="cnn")
    _checkpoint(run_dir / "r4-IR-centered_normalized_logit-nu150-seed0.pt", method="IR", group="r4", seed=0,
                epoch=300, wall=50.0, regularizer="centered_normalized_logit", nu=150.0)
    _checkpoint(run_dir / "r4-DA-e6-seed0.pt", method="DA", group="r4", seed=0, epoch=6, wall=5.0, epochs=6)
    res = sweep_time(sweep_dir, PROFILES["paper"], matmul_gflops=100.0)
    assert res["training_total"]["runs"] == 6 and res["training_total"]["wall_time_s"] == pytest.approx(660.0)
    others = res["beyond_protocol"]["training_by_config"]
    assert list(others) == ["cnn r4 DA (6 epochs)", "r4 DA (6 epochs)",
                            "r4 IR centered_normalized_logit nu=150"]
    assert others["cnn r4 DA (6 epochs)"]["gflop"] is None  # the FLOP model is the paper MLP's
    assert others["cnn r4 DA (6 epochs)"]["gflop_per_s"] is None
    assert others["r4 DA (6 epochs)"]["gflop"] > 0


def test_the_table_names_the_checkpoints_beyond_the_protocol(sweep_dir, capsys):
    _checkpoint(sweep_dir / "checkpoints" / "cnn-t3-DA-e6-seed0.pt", method="DA", group="t3", seed=0, epoch=6,
                wall=30.0, epochs=6, model="cnn")
    assert main([str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "beyond the paper protocol" in out and "cnn t3 DA (6 epochs)" in out
