"""nets.sequential: the cost of adding seeds until a check is decided, and the checks so decided
held to a Bonferroni interval over the plan's looks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nets.results_io import write_json
from nets.sequential import DECIDED_AFTER_MORE_SEEDS, PLAN_LOOKS, adjusted_check, main, stopping_error
from nets.stats import t_interval

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_one_look_is_wrong_at_the_nominal_rate():
    (rate,) = stopping_error([4], n_sims=100_000)
    assert rate == pytest.approx(0.025, abs=0.002)


def test_every_further_look_adds_to_the_chance_of_a_wrong_decision():
    rates = stopping_error([4, 12, 36], n_sims=100_000)
    assert rates[0] < rates[1] < rates[2] and rates[2] > 0.05


def test_a_first_look_at_the_full_rate_keeps_the_procedure_above_it_whatever_the_later_looks():
    """Bonferroni after a first look at 95% does not bring the whole procedure back to 2.5%."""
    later = 1 - 0.05 / 3
    as_run = stopping_error([4, 12, 36], confidence=[0.95, later, later], n_sims=100_000)
    split = stopping_error([4, 12, 36], confidence=[later] * 3, n_sims=100_000)
    assert as_run[-1] > 0.03 and split[-1] < 0.025


def test_a_confidence_per_look_must_match_the_looks():
    with pytest.raises(ValueError, match=r"one per look \(3\)"):
        stopping_error([4, 12, 36], confidence=[0.95, 0.975])


def test_looks_must_be_increasing_seed_counts():
    with pytest.raises(ValueError, match="increasing seed counts >= 2"):
        stopping_error([12, 4])


@pytest.mark.parametrize("shift, side", [(0.0, "greater"), (-0.012, "less")])
def test_the_one_sided_p_value_tests_the_bound_on_the_side_the_check_was_decided(shift, side):
    x = np.array([0.951, 0.948, 0.957, 0.953, 0.949]) + shift  # wholly above 0.945, then wholly below it
    for op in (">=", "<="):
        row = adjusted_check(x, op, 0.945, looks=2)
        assert row["outcome"] == ("holds" if (op == ">=") == (side == "greater") else "fails")
        assert row["one_sided_p"] == pytest.approx(stats.ttest_1samp(x, 0.945, alternative=side).pvalue)


def test_an_undecided_check_tests_the_bound_in_the_claims_direction():
    x = np.array([0.951, 0.940, 0.957, 0.939, 0.949])
    for op, alternative in ((">=", "greater"), ("<=", "less")):
        row = adjusted_check(x, op, 0.945, looks=2)
        assert row["outcome"] == "undecided"
        assert row["one_sided_p"] == pytest.approx(stats.ttest_1samp(x, 0.945, alternative=alternative).pvalue)


def test_the_adjusted_interval_is_the_t_interval_at_the_bonferroni_confidence():
    x = np.array([0.3, -0.1, 0.5, 0.2, 0.4, 0.1])
    row = adjusted_check(x, ">=", 0.0, looks=3)
    iv = t_interval(x, 1 - 0.05 / 3)
    assert row["adjusted_confidence"] == pytest.approx(1 - 0.05 / 3)
    assert row["adjusted_interval"] == pytest.approx([iv.low, iv.high])
    assert row["interval"][0] > row["adjusted_interval"][0]  # the adjusted interval is wider


def test_a_check_that_holds_only_at_the_nominal_confidence_is_undecided_after_adjustment():
    z = np.random.default_rng(0).standard_normal(12)
    x = (z - z.mean()) / z.std(ddof=1) + 2.5 / np.sqrt(12)  # t = 2.5: past t(0.975, 11) = 2.20, not t(0.9917, 11)
    row = adjusted_check(x, ">=", 0.0, looks=3)
    assert (row["outcome"], row["adjusted_outcome"]) == ("holds", "undecided")


@pytest.mark.parametrize("claim, what, op, bound, looks, values", DECIDED_AFTER_MORE_SEEDS,
                         ids=[c[1] for c in DECIDED_AFTER_MORE_SEEDS])
def test_the_committed_checks_decided_after_more_seeds_stay_decided_after_adjustment(claim, what, op, bound, looks,
                                                                                     values):
    found = values(RESULTS)
    row = adjusted_check(found.values, op, bound, len(PLAN_LOOKS), magnitude=found.magnitude,
                         counts=found.counts)  # the plan's looks, whichever decided it
    assert row["n"] in (10, 12, 20, 21, 36) and row["outcome"] == row["adjusted_outcome"] != "undecided"


def test_the_command_writes_the_rates_and_the_checks(tmp_path, capsys):
    assert main(["--results", str(RESULTS), "--out", str(tmp_path / "s.json"), "--sims", "2000"]) == 0
    record = json.loads((tmp_path / "s.json").read_text())
    assert list(record["stopping_error"]["4, 12, 36"]) == ["4", "12", "36"]
    assert [len(c["looks"]) for c in record["checks"]] == [2, 2, 2, 3, 2, 2, 2, 3] and "versions" in record["meta"]
    assert all(c["looks"][0] == 4 and c["looks"][-1] == c["n"] for c in record["checks"])  # 4 seeds, then its n
    assert [c["outcome"] for c in record["checks"]] == ["holds"] * 6 + ["fails", "holds"]  # the centered form fails
    assert [c["adjusted_confidence"] for c in record["checks"]] == pytest.approx([1 - 0.05 / 3] * 8)
    assert [list(v) for v in record["procedure_error"].values()] == [["4", "12", "36"]] * 2
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, says", [(["--sims", "0"], "--sims: must be at least 1"),
                                        (["--out", "."], "it is a folder; name a file in it")])
def test_bad_options_are_one_line_and_exit_2(args, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_a_sigma_max_of_0_is_refused_in_one_line_naming_the_seed(tmp_path, capsys):
    for folder in ("paper-s12", "paper-s36", "fmnist-s12", "detached-seeds", "centered-seeds", "detached-e600-s20"):
        shutil.copytree(RESULTS / folder / "paper", tmp_path / folder / "paper",
                        ignore=shutil.ignore_patterns("checkpoints", "figures", "*.md"))
    path = tmp_path / "detached-seeds" / "paper" / "detached.json"
    record = json.loads(path.read_text())
    record["groups"]["r4"]["comparison"]["DA"]["runs"][3]["sigma_max"] = 0.0
    write_json(path, record)  # sealed again, as a run would write it
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "s.json"), "--sims", "100"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "R4 detached normalized form" in err
    assert "seed 3 has a sigma_max <= 0, which has no log-ratio" in err


@pytest.mark.parametrize("path, where, key", [
    ("paper-s12/paper/table1.json", ("groups", "t3", "methods", "IR", "runs", 5), "SI"),
    ("paper-s12/paper/table1.json", ("groups", "r4", "methods", "DA", "runs", 2), "accuracy"),
    ("detached-seeds/paper/detached.json", ("groups", "r4", "model", "runs", 1), "sigma_max"),
])
def test_a_seed_with_no_finite_value_is_refused_in_one_line_naming_it(path, where, key, tmp_path, capsys):
    # REPORT.md leaves such a check undecided; a re-check on the other seeds would decide it
    for folder in ("paper-s12", "paper-s36", "fmnist-s12", "detached-seeds", "centered-seeds", "detached-e600-s20"):
        shutil.copytree(RESULTS / folder / "paper", tmp_path / folder / "paper",
                        ignore=shutil.ignore_patterns("checkpoints", "figures", "*.md"))
    record = json.loads((tmp_path / path).read_text())
    run = record
    for k in where:
        run = run[k]
    run[key] = float("nan")
    write_json(tmp_path / path, record)  # sealed again: null, as a run writes a NaN
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "s.json"), "--sims", "100"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert f"seed {where[-1]} has no finite {key} (missing, NaN or infinite)" in err


def test_a_results_root_without_the_runs_is_one_line_exit_1(tmp_path, capsys):
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "s.json"), "--sims", "100"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "holds the committed runs (paper-s12/" in err
    assert not (tmp_path / "s.json").exists()


def test_values_that_differ_only_by_rounding_have_no_p_value_beside_their_interval_of_no_width():
    """ptp > 0 saw a spread in 0.1 + 0.2 against 0.3 and gave ttest_1samp's p beside t_interval's point."""
    check = adjusted_check([0.1 + 0.2, 0.3, 0.3, 0.3], ">=", 0.25, 3)
    assert check["interval"][0] == check["interval"][1] and np.isnan(check["one_sided_p"])


def test_accuracies_tied_on_every_seed_stay_undecided_as_in_the_report():
    """WT equal to DA on 12 seeds read "holds" for WT >= DA; REPORT.md's tie rule says undecided."""
    row = adjusted_check([0.0] * 12, ">=", 0.0, 3, counts=True)
    assert (row["outcome"], row["adjusted_outcome"]) == ("undecided", "undecided") and np.isnan(row["one_sided_p"])
    assert adjusted_check([0.0] * 12, ">=", 0.0, 3)["outcome"] == "holds"  # a continuous measure: exact


def test_a_lead_of_one_image_on_every_seed_is_a_tie_not_a_spread_of_rounding():
    """Differences of accuracies near 97 points carry their rounding: 1e-14 of 0.01 read as a spread (p 5e-38)."""
    wt = np.array([9753, 9741, 9760, 9748]) / 1e4 * 100
    da = (np.array([9753, 9741, 9760, 9748]) - 1) / 1e4 * 100
    row = adjusted_check(list(wt - da), ">=", 0.0, 3, magnitude=float(wt.max()), counts=True)
    assert row["interval"][0] == row["interval"][1] and np.isnan(row["one_sided_p"])
    assert (row["outcome"], row["adjusted_outcome"]) == ("undecided", "undecided")


def test_the_committed_accuracy_checks_are_read_as_differences_of_accuracies():
    found = {what: values(RESULTS) for _, what, *_, values in DECIDED_AFTER_MORE_SEEDS}
    assert [what for what, f in found.items() if f.counts] == [
        "R4 WT - DA accuracy (points), 12 seeds", "T3 WT - DA mean Acc ratio over beta > 0, 12 seeds",
        "T3 WT - DA accuracy (points), 36 seeds", "FMNIST R4 WT - DA mean Acc ratio over beta > 0, 12 seeds"]
    assert all(f.magnitude >= max(map(abs, f.values)) for f in found.values() if f.counts)
