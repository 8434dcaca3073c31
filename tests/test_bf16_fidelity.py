"""``benchmarks/bf16_fidelity.py``: a Table 1 number "moved" exactly when it differs from the
float32 one by more than k times its seed spread (oracle: the committed quick and paper files), or,
with the same seeds in both precisions, when its paired t interval over seeds excludes 0 (oracle:
scipy's ttest_rel)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmarks.bf16_fidelity import chance_rate, compare, compare_paired, spread

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files():
    load = lambda p: json.loads((ROOT / "results" / p / "table1.json").read_text())  # noqa: E731
    return load("quick"), load("paper")


def test_identical_tables_move_nothing(files):
    quick, paper = files
    out = compare(quick, copy.deepcopy(quick), paper)
    assert out["moved"] == [] and out["n_numbers"] == 24 and out["groups_pending"] == []


@pytest.mark.parametrize("factor,moved", [(1.9, False), (2.1, True)])
def test_a_number_moves_beyond_k_spreads_only(files, factor, moved):
    quick, paper = files
    bf16 = copy.deepcopy(quick)
    s = spread("accuracy", 0.0, paper["groups"]["r4"]["methods"]["DA"]["accuracy"])
    bf16["groups"]["r4"]["methods"]["DA"]["accuracy"]["mean"] += factor * s
    assert compare(quick, bf16, paper, k=2.0)["moved"] == (["r4 DA accuracy"] if moved else [])


def test_li_spread_is_the_paper_coefficient_of_variation_times_the_quick_value(files):
    _, paper = files
    ref = paper["groups"]["r4"]["methods"]["DA"]["LI"]
    assert spread("LI", 5.0, ref) == pytest.approx(ref["std"] / ref["mean"] * 5.0)


def test_a_group_the_bf16_run_has_not_reached_is_pending_not_compared(files):
    quick, paper = files
    bf16 = copy.deepcopy(quick)
    del bf16["groups"]["t3"]
    out = compare(quick, bf16, paper)
    assert out["groups_pending"] == ["t3"] and out["n_numbers"] == 12


# ---- paired by seed (both precisions trained the same seeds) ---------------------------------
def _table(shift: float = 0.0, seeds=(0, 1, 2, 3), nu=10.0):
    """A table1.json-shaped dict: r4 with WT (LI, DI round-off), DA and IR, 4 seeds; DA's accuracy
    per seed is 0.9 + seed / 100 + ``shift``."""
    rng = np.random.default_rng(0)
    methods = {}
    for m in ("WT", "DA", "IR"):
        runs = [{"seed": s, "accuracy": 0.9 + s / 100 + (shift if m == "DA" else 0.0),
                 "LI": 1e-11 if m == "WT" else 5.0 + rng.normal(), "DI": 1e-12 if m == "WT" else 0.3 + s / 50,
                 "SI": 1.0 if m == "WT" else 0.5 + s / 20} for s in seeds]
        methods[m] = {"runs": runs, **({"nu": nu} if m == "IR" else {})}
    return {"meta": {}, "groups": {"r4": {"methods": methods}}}


def test_paired_identical_runs_move_nothing_and_test_nothing():
    out = compare_paired(_table(), _table())
    assert out["moved"] == [] and out["moved_fdr"] == [] and out["n_numbers"] == 12 and out["n_tested"] == 0
    notes = {(r["method"], r["measure"]): r["note"] for r in out["rows"] if r["measure"] != "nu"}
    assert notes[("WT", "LI")] == notes[("WT", "DI")] == "round-off in both (below 1e-6)"
    assert notes[("WT", "SI")] == notes[("DA", "accuracy")] == "equal on every seed"


def test_paired_interval_is_scipys_over_per_seed_differences():
    fp32, bf16 = _table(), _table()
    for i, r in enumerate(bf16["groups"]["r4"]["methods"]["DA"]["runs"]):
        r["accuracy"] += 0.01 + 0.002 * (-1) ** i
    out = compare_paired(fp32, bf16)
    row = next(r for r in out["rows"] if r["method"] == "DA" and r["measure"] == "accuracy")
    a = [r["accuracy"] for r in bf16["groups"]["r4"]["methods"]["DA"]["runs"]]
    b = [r["accuracy"] for r in fp32["groups"]["r4"]["methods"]["DA"]["runs"]]
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (row["diff"], row["low"], row["high"]) == pytest.approx((0.01, ci.low, ci.high))
    assert row["moved"] and out["moved"] == ["r4 DA accuracy"] and row["q_value"] >= row["p_value"]


def test_paired_needs_the_same_two_or_more_seeds():
    with pytest.raises(ValueError, match="same two or more seeds"):
        compare_paired(_table(), _table(seeds=(0, 1, 2, 5)))
    with pytest.raises(ValueError, match="same two or more seeds"):
        compare_paired(_table(seeds=(0,)), _table(seeds=(0,)))


def test_a_different_nu_is_reported_and_marks_irs_rows():
    out = compare_paired(_table(), _table(nu=30.0))
    assert "r4 IR nu" in out["moved"]
    assert all("different models" in r["note"] for r in out["rows"] if r["method"] == "IR" and r["measure"] != "nu")


def test_q_values_are_benjamini_hochberg_over_every_tested_number_and_a_constant_shift_counts():
    fp32, bf16 = _table(seeds=range(8)), _table(seeds=range(8))
    for i, r in enumerate(bf16["groups"]["r4"]["methods"]["DA"]["runs"]):
        r["accuracy"] += 0.05  # the same shift on every seed: no spread, the sign test's p = 2 / 2 ** 8
        r["SI"] += 0.01 * (-1) ** i + 0.002  # a small, noisy shift
    for i, r in enumerate(bf16["groups"]["r4"]["methods"]["IR"]["runs"]):
        r["DI"] += 0.02 + 0.01 * (-1) ** i
    out = compare_paired(fp32, bf16)
    tested = [r for r in out["rows"] if r.get("tested")]
    assert len(tested) == out["n_tested"] == out["n_fdr_family"] == 3  # the rest are equal on every seed
    q = stats.false_discovery_control([r["p_value"] for r in tested])
    assert [r["q_value"] for r in tested] == pytest.approx(list(q))
    assert "r4 DA accuracy" in out["moved_fdr"] and "r4 DA SI" not in out["moved_fdr"]


@pytest.mark.parametrize("n_seeds, moved", [(4, False), (6, True)])
def test_the_same_difference_on_every_seed_gets_the_exact_sign_tests_p_not_zero(n_seeds, moved):
    """Accuracies move in steps of one image: one image more on each of 4 seeds is not p = 0."""
    fp32, bf16 = _table(seeds=range(n_seeds)), _table(seeds=range(n_seeds))
    for r in bf16["groups"]["r4"]["methods"]["DA"]["runs"]:
        r["accuracy"] += 1e-4  # one test image of 10,000 on every seed
    row = next(r for r in compare_paired(fp32, bf16)["rows"] if r["method"] == "DA" and r["measure"] == "accuracy")
    p = stats.binomtest(n_seeds, n_seeds).pvalue
    assert row["p_value"] == pytest.approx(p) and row["moved"] is moved and "sign test" in row["note"]


def test_irs_rows_at_a_different_nu_are_tested_but_left_out_of_the_false_discovery_family():
    fp32, bf16 = _table(), _table(nu=30.0)
    for i, (r, d) in enumerate(zip(bf16["groups"]["r4"]["methods"]["IR"]["runs"], (0.03, 0.05, 0.04, 0.06))):
        r["accuracy"] += d
    for i, r in enumerate(bf16["groups"]["r4"]["methods"]["DA"]["runs"]):
        r["SI"] += 0.01 * (i - 1.5) + 0.002
    out = compare_paired(fp32, bf16)
    ir = next(r for r in out["rows"] if r["method"] == "IR" and r["measure"] == "accuracy")
    da = next(r for r in out["rows"] if r["method"] == "DA" and r["measure"] == "SI")
    assert ir["tested"] and ir["moved"] and not ir["same_model"] and "q_value" not in ir
    assert out["n_tested"] == 2 and out["n_fdr_family"] == 1 and da["q_value"] == pytest.approx(da["p_value"])
    assert "r4 IR accuracy" not in out["moved_fdr"]


def test_the_chance_rate_of_the_spread_rule_is_what_seed_noise_gives():
    rng = np.random.default_rng(0)
    sigma, n, k = 1.0, 4, 2.0
    spread = rng.normal(0, sigma, (200_000, n)).std(axis=1)  # a population std of n seeds
    diff = rng.normal(0, sigma, 200_000) - rng.normal(0, sigma, 200_000)  # two one-seed runs
    assert chance_rate(k, n) == pytest.approx(np.mean(np.abs(diff) > k * spread), abs=0.005)


def test_files_with_other_methods_are_refused():
    bf16 = _table()
    del bf16["groups"]["r4"]["methods"]["WT"]
    with pytest.raises(ValueError, match="methods"):
        compare_paired(_table(), bf16)


def test_an_accuracy_whose_reference_seeds_agree_exactly_is_not_judged_moved(files):
    """A spread of 0 made any difference "moved"; for accuracies it is a tie, which can be chance."""
    quick, paper = files
    paper, bf16 = copy.deepcopy(paper), copy.deepcopy(quick)
    paper["groups"]["r4"]["methods"]["IR"]["accuracy"]["std"] = 0.0
    bf16["groups"]["r4"]["methods"]["IR"]["accuracy"]["mean"] += 1e-4
    out = compare(quick, bf16, paper)
    row = next(r for r in out["rows"] if (r["group"], r["method"], r["measure"]) == ("r4", "IR", "accuracy"))
    assert not row["moved"] and "not judged" in row["note"] and "r4 IR accuracy" not in out["moved"]


def test_a_continuous_measure_the_same_on_every_seed_is_exact_not_a_sign_test():
    fp32, bf16 = _table(), _table()
    for r in bf16["groups"]["r4"]["methods"]["DA"]["runs"]:
        r["SI"] += 0.01
    row = next(r for r in compare_paired(fp32, bf16)["rows"] if r["method"] == "DA" and r["measure"] == "SI")
    assert row["moved"] and row["p_value"] == 0.0 and "sign test" not in row["note"]
