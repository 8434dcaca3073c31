"""`python -m nets train-size` (nets.experiments.train_size): Table 1 on smaller training sets at the
paper's number of Adam steps, its report section and figure."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats

from nets.experiments import train_size as ts
from nets.experiments.profiles import get_profile
from nets.results_io import write_json
from nets.plots_train_size import wt_minus_da
from nets.train_size_report import train_size_rows, train_size_section

PAPER, SMOKE = get_profile("paper"), get_profile("smoke")


# ---- sizes and batch sizes -------------------------------------------------------------------
def test_paper_sizes_are_a_fortieth_to_a_quarter_of_the_training_set():
    assert ts.train_sizes(PAPER) == (250, 500, 1000, 2500)
    assert all(2 <= n < SMOKE.n_train for n in ts.train_sizes(SMOKE))


@pytest.mark.parametrize("n", [250, 500, 1000, 2500, 10_000])
def test_every_paper_size_trains_as_many_steps_per_epoch_as_table1(n):
    b = ts.batch_size_for(n, PAPER.n_train)
    assert math.ceil(n / b) == math.ceil(PAPER.n_train / ts.PAPER_BATCH) == 20
    assert ts.batch_size_for(PAPER.n_train, PAPER.n_train) == ts.PAPER_BATCH


@pytest.mark.parametrize("n_full", [512, 10_000, 777])
def test_a_batch_never_leaves_one_sample_alone_and_steps_never_exceed_the_full_runs(n_full):
    assert ts.batch_size_for(n_full, n_full) == ts.PAPER_BATCH
    steps = math.ceil(n_full / ts.PAPER_BATCH)
    for n in range(2, n_full + 1):
        b = ts.batch_size_for(n, n_full)
        assert 2 <= b <= n and (n % b != 1 or b == n), n  # no batch of one sample, first or last
        assert math.ceil(n / b) <= steps


def test_bad_sizes_are_refused_naming_the_first():
    assert ts.check_sizes(PAPER, [1000, 250, 1000]) == (250, 1000)
    for bad in ([1], [10_000], [300, 2.5], []):
        with pytest.raises(ValueError, match="--sizes needs integers from 2 to 9999"):
            ts.check_sizes(PAPER, bad)
    with pytest.raises(ValueError, match="n must be in"):
        ts.batch_size_for(0, 100)


def test_each_size_trains_on_the_first_n_images_with_its_batch_in_its_own_folder(tmp_path, table1_smoke, monkeypatch):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    seen = []
    real = ts.train_runs

    def spy(configs, seeds, splits, **kw):
        seen.append((len(splits.train), {c.batch_size for c in configs}, kw["run_dir"].name, splits.train.y.clone()))
        return real(configs, seeds, splits, **kw)

    monkeypatch.setattr(ts, "train_runs", spy)
    ts.run_train_size(SMOKE.with_groups(["r4"]), tmp_path, device="cpu", progress=False, sizes=[13, 40])
    assert [(n, b, d) for n, b, d, _ in seen] == [(13, {13}, "n13"), (40, {40}, "n40")]
    assert bool((seen[1][3][:13] == seen[0][3]).all())  # nested: the smaller set is the larger's start


# ---- the command -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, table1_smoke, main_one_thread):
    root = tmp_path_factory.mktemp("train-size")
    shutil.copytree(table1_smoke / "smoke", root / "smoke")
    main_one_thread("train-size", "--profile", "smoke", "--results", str(root), "--sizes", "13", "51")
    return root


def test_the_command_writes_every_size_then_table1s_runs(smoke_run):
    result = json.loads((smoke_run / "smoke" / "train_size.json").read_text())
    table1 = json.loads((smoke_run / "smoke" / "table1.json").read_text())
    assert result["meta"]["experiment"] == "train_size" and result["sizes"] == [13, 51]
    for g, entry in result["groups"].items():
        assert [p["n_train"] for p in entry["points"]] == [13, 51, SMOKE.n_train]
        assert [p["source"] for p in entry["points"]] == ["trained", "trained", "table1.json"]
        assert entry["nu_IR"] == table1["groups"][g]["methods"]["IR"]["nu"]
        full = entry["points"][-1]
        for m, v in table1["groups"][g]["methods"].items():
            assert [r["accuracy"] for r in full["methods"][m]["runs"]] == [r["accuracy"] for r in v["runs"]]
            assert "history" not in full["methods"][m]["runs"][0]
        for p in entry["points"]:
            for m in ("WT", "DA", "IR"):
                assert set(p["methods"][m]) >= {"accuracy", "LI", "DI", "SI", "runs"}
        wt = entry["points"][0]["methods"]["WT"]["runs"][0]
        assert wt["LI"] < 1e-8 and wt["SI"] == pytest.approx(1.0)  # weight tying stays exact on 13 images
    assert (smoke_run / "smoke" / "checkpoints" / "train_size" / "n13" / "r4-WT-e2-bs13-seed0.pt").exists()
    assert (smoke_run / "smoke" / "figures" / "train_size.png").exists()


def test_running_it_again_trains_nothing_and_gives_the_same_numbers(tmp_path, smoke_run, run_cli, checkpoint_mtimes):
    shutil.copytree(smoke_run / "smoke", tmp_path / "smoke")
    before = checkpoint_mtimes(tmp_path / "smoke")
    first = json.loads((tmp_path / "smoke" / "train_size.json").read_text())
    rc, _, err = run_cli("train-size", "--profile", "smoke", "--results", str(tmp_path), "--sizes", "13", "51",
                         "--no-progress", "--threads", "1")
    assert rc == 0, err
    assert checkpoint_mtimes(tmp_path / "smoke") == before
    again = json.loads((tmp_path / "smoke" / "train_size.json").read_text())
    assert again["groups"] == first["groups"]


def test_other_sizes_on_the_same_folder_are_refused_in_one_line(tmp_path, smoke_run, run_cli):
    shutil.copytree(smoke_run / "smoke", tmp_path / "smoke")
    rc, _, err = run_cli("train-size", "--profile", "smoke", "--results", str(tmp_path), "--sizes", "26",
                         "--no-progress")
    assert rc == 2 and "used the sizes [13, 51]" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, code, words", [
    (["--sizes", "512"], 2, "--sizes needs integers from 2 to 511"),
    ([], 1, "train-size takes its full-size point and IR's nu from it; run `python -m nets table1"),
])
def test_bad_input_gets_one_line(tmp_path, run_cli, argv, code, words):
    rc, _, err = run_cli("train-size", "--profile", "smoke", "--results", str(tmp_path), "--no-progress", *argv)
    assert rc == code and words in err and len(err.strip().splitlines()) == 1


def _table1_with_meta(tmp_path, table1_smoke, **meta):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    path = tmp_path / "smoke" / "table1.json"
    t1 = json.loads(path.read_text())
    for k, v in meta.items():
        if k == "epochs":
            t1["meta"]["profile"]["epochs"] = v
        else:
            t1["meta"][k] = v
    write_json(path, t1)  # as a run of those settings would have written it


@pytest.mark.parametrize("meta, words", [
    ({"epochs": 3}, "was computed with other settings (epochs) than this train-size run"),
    ({"precision": "bf16"}, "records precision 'bf16'; train-size compares with Table 1's float32 runs"),
])
def test_a_table1_of_other_settings_or_precision_is_refused_before_training(tmp_path, table1_smoke, run_cli, meta,
                                                                            words):
    _table1_with_meta(tmp_path, table1_smoke, **meta)
    rc, _, err = run_cli("train-size", "--profile", "smoke", "--results", str(tmp_path), "--no-progress",
                         "--sizes", "13", "--overwrite")  # without it, the folder's settings check refuses first
    errors = [line for line in err.strip().splitlines() if not line.startswith("--overwrite: ")]
    assert rc == 1 and len(errors) == 1 and words in errors[0]
    assert not (tmp_path / "smoke" / "train_size.json").exists()
    assert not (tmp_path / "smoke" / "checkpoints" / "train_size").exists()


def test_an_interrupted_run_lists_its_unfinished_group_as_pending_not_done(tmp_path, table1_smoke, monkeypatch):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    real, calls = ts.train_runs, []

    def dies_at_the_fourth(configs, seeds, splits, **kw):  # r4 13, r4 40, t3 13, then t3 40 fails
        calls.append(len(splits.train))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(configs, seeds, splits, **kw)

    monkeypatch.setattr(ts, "train_runs", dies_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        ts.run_train_size(SMOKE, tmp_path, device="cpu", progress=False, sizes=[13, 40])
    result = json.loads((tmp_path / "smoke" / "train_size.json").read_text())
    assert list(result["groups"]) == ["r4"] and len(result["groups"]["r4"]["points"]) == 3
    assert [p["n_train"] for p in result["in_progress"]["t3"]["points"]] == [13]
    assert result["pending_groups"] == ["t3"] and result["complete"] is False
    monkeypatch.setattr(ts, "train_runs", real)  # resumed: t3 completes, in_progress goes
    done = ts.run_train_size(SMOKE, tmp_path, device="cpu", progress=False, sizes=[13, 40])
    assert list(done["groups"]) == ["r4", "t3"] and "in_progress" not in done and done["complete"] is True


def test_the_report_gains_the_section(tmp_path, smoke_run, run_cli):
    shutil.copytree(smoke_run / "smoke", tmp_path / "smoke")
    assert run_cli("report", "--profile", "smoke", "--results", str(tmp_path))[0] == 0
    report = (tmp_path / "smoke" / "REPORT.md").read_text()
    assert "### Beyond the paper: smaller training sets" in report and "| 512 (Table 1) | 512 |" in report


# ---- the report's numbers --------------------------------------------------------------------
def _point(n, acc):
    return {"n_train": n, "batch_size": n, "source": "trained",
            "methods": {m: {"runs": [{"seed": s, "accuracy": a, "LI": 0.0, "DI": 0.0, "SI": 0.5}
                                     for s, a in enumerate(v)]} for m, v in acc.items()}}


def test_wt_minus_da_is_scipys_paired_t_interval_in_points():
    wt, da = [0.90, 0.91, 0.93, 0.92], [0.88, 0.90, 0.90, 0.91]
    iv = wt_minus_da(_point(100, {"WT": wt, "DA": da, "IR": da}))
    ci = stats.ttest_rel(100 * np.array(wt), 100 * np.array(da)).confidence_interval(0.95)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((100 * np.mean(np.subtract(wt, da)), ci.low, ci.high))


def test_wt_minus_da_pairs_by_seed_and_a_null_accuracy_keeps_the_check_from_holding():
    # seeds were paired by position, and one null accuracy stopped REPORT.md from rendering
    point = _point(100, {"WT": [0.9, 0.91, 0.93, 0.92], "DA": [0.8, 0.8, 0.81, 0.82], "IR": [0.7] * 4})
    point["methods"]["DA"]["runs"][3]["seed"] = 7  # DA ran seeds 0, 1, 2, 7: WT's seed 3 has no pair
    assert wt_minus_da(point).n == 3
    point["methods"]["WT"]["runs"][1]["accuracy"] = None  # null on disk: NaN or an infinity
    _, rows = train_size_rows({"nu_IR": 10.0, "points": [point]})
    assert wt_minus_da(point).n == 2 and rows[0][5].endswith("(undecided; seed 1 not finite)")


def test_the_table_decides_claim_1bs_wt_minus_da_check_per_size():
    entry = {"nu_IR": 10.0, "points": [_point(100, {"WT": [0.9, 0.91, 0.93], "DA": [0.8, 0.8, 0.81],
                                                    "IR": [0.7] * 3}),
                                       _point(200, {"WT": [0.9, 0.91, 0.93], "DA": [0.91, 0.9, 0.94],
                                                    "IR": [0.7] * 3})]}
    _, rows = train_size_rows(entry)
    assert rows[0][5].endswith("(holds)") and rows[1][5].endswith("(undecided)")
    lines = train_size_section({"protocol": {}, "groups": {"r4": entry}}, available_figures=set())
    assert any("on 100 training images" in line for line in lines)
    assert train_size_section(None) == []


@pytest.mark.parametrize("lead", [0.0, 2 / 200_000])
def test_seeds_whose_accuracies_agree_exactly_leave_claim_1b_undecided_not_held(lead):
    """The table decided without check's tie rule: equal accuracies on every seed read "0 [0, 0] (holds)"."""
    da = [0.94777, 0.938335, 0.92023, 0.963795]
    _, rows = train_size_rows({"nu_IR": 10.0, "points": [_point(100, {"WT": [a + lead for a in da], "DA": da,
                                                                       "IR": [0.7] * 4})]})
    assert rows[0][5].endswith("(undecided)")

