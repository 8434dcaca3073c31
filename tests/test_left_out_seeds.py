"""A seed a check cannot read: its value missing or not finite (a results file writes NaN and both
infinities as ``null``), or with no log-ratio (a value <= 0). Such a seed is left out of the check's
interval and named in its claim's notes; where it lies, or may lie, on the check's failing side, the
check is undecided rather than holding on the other seeds (``left_out`` of ``nets.claim_checks.check``;
docs/statistics.md). Every kind of check is covered: Table 1's single-model and paired accuracy checks,
claim 4's three, claim 5's ratio (and the centered and detached forms' own), Figure 2's."""

from __future__ import annotations

import math

import pytest

import nets.evidence as ev
from nets.centered_report import centered_checks
from nets.claim_checks import Check, check, not_finite, sigma_ratio_check
from nets.evidence import left_out, measure, unread
from nets.nu_selection_notes import selection_ties
from nets.report import render_report
from nets.results_io import read_json, write_json
from nets.stats import Interval
from nets.verdicts import Verdict, verdicts
from test_report import fake_results


def _status(results, claim):
    return {v.claim: v for v in verdicts(results)}[claim]


def _check(results, claim, what):
    return next(c for c in _status(results, claim).checks if c.what == what)


def test_a_seed_with_a_non_finite_measure_is_left_out_and_keeps_its_check_from_holding():
    # the other three seeds alone would decide it; the seed left out may lie on the failing side
    r = fake_results()
    r["table1"]["groups"]["r4"]["methods"]["IR"]["runs"][2]["SI"] = float("nan")
    v = _status(r, "3")
    assert any("R4 IR: SI is missing or not finite for seed 2 of 4" in n for n in v.notes)
    si = next(c for c in v.checks if c.what == "R4 IR SI")
    assert si.outcome == "undecided" and "seed 2, left out, has no finite SI" in si.detail
    assert si.n == 4 and v.status == "undecided at n = 4 seeds"  # the seeds run, not the 3 the interval rests on
    assert "? undecided (on the other seeds ✓ holds)" in si.detail and "✓ holds (" not in si.detail
    assert _status(fake_results(), "3").status == "holds"
    assert not any("SI is missing" in n for n in _status(r, "1b").notes)  # 1b reads accuracy only


def _on_disk(results, tmp_path):
    """``results`` as a run writes and report reads them: NaN and inf become null."""
    out = {}
    for name, record in results.items():
        write_json(tmp_path / f"{name}.json", record)
        out[name] = read_json(tmp_path / f"{name}.json")
    return out


def test_a_nan_at_a_later_beta_leaves_the_seed_out_of_max_di_instead_of_skipping_the_nan(tmp_path):
    """Python's max skips a NaN that is not first: the seed was read at its other betas' maximum."""
    r = fake_results()
    r["drift"]["groups"]["r4"]["IR"]["runs"][0]["DI"][-1] = float("nan")
    v = _status(_on_disk(r, tmp_path), "4")
    worst = next(c for c in v.checks if c.what == "R4 IR max DI over beta")
    assert worst.outcome == "undecided" and "[" in worst.detail and "seed 0, left out" in worst.detail
    assert any("R4 IR: max DI over beta is missing or not finite for seed 0 of 4" in n for n in v.notes)


def test_a_di_that_is_not_finite_keeps_its_check_from_holding(tmp_path):
    """On disk an infinite DI is null, as a NaN is: either may be the worst seed, so neither may be dropped."""
    r = fake_results()
    r["drift"]["groups"]["t3"]["WT"]["runs"][1]["DI"][2] = float("inf")
    for results in (r, _on_disk(r, tmp_path)):
        v = _status(results, "4")
        c = next(c for c in v.checks if c.what == "T3 WT max DI over beta")
        assert c.outcome == "undecided" and "seed 1, left out, has no finite DI" in c.detail
        assert any("T3 WT: max DI over beta is missing or not finite for seed 1 of 4" in n for n in v.notes)


def test_a_zero_at_the_first_beta_leaves_that_seed_out_of_the_growth_not_the_whole_check():
    r = fake_results()
    r["drift"]["groups"]["r4"]["DA"]["runs"][3]["DI"][0] = 0.0  # DI(beta = 0) = 0: unbounded growth, no log-ratio
    v = _status(r, "4")
    growth = next(c for c in v.checks if c.what.startswith("R4 DA DI("))
    assert growth.outcome == "holds" and growth.n == 4  # the seeds run, the one left out named in its line
    assert "seed 3, left out, grows without bound (DI 0 at the smallest beta)" in growth.detail
    assert any("R4 DA DI growth: seed 3 left out of the ratio (a value <= 0 has no log-ratio)" in n for n in v.notes)


def test_no_growth_left_out_of_the_ratio_keeps_the_growth_check_from_holding():
    r = fake_results()
    r["drift"]["groups"]["r4"]["DA"]["runs"][2]["DI"][-1] = 0.0  # DI(beta = 1) = 0: growth 0, against the claim
    growth = next(c for c in _status(r, "4").checks if c.what.startswith("R4 DA DI("))
    assert growth.outcome == "undecided" and "seed 2, left out, has no growth" in growth.detail


def test_a_note_names_only_what_a_check_reads(tmp_path):
    r = fake_results()
    r["drift"]["groups"]["r4"]["DA"]["runs"][0]["DI"][2] = float("nan")  # a middle beta: DA's check reads none
    r["drift"]["groups"]["r4"]["IR"]["runs"][0]["accuracy_ratio"][2] = float("nan")  # no check reads IR's
    assert not any(n.startswith("R4 DA") or n.startswith("R4 IR") for n in _status(_on_disk(r, tmp_path), "4").notes)


def test_a_null_accuracy_ratio_leaves_the_seed_out_of_the_drift_share(tmp_path):
    r = fake_results()
    r["drift"]["groups"]["t3"]["WT"]["runs"][0]["accuracy_ratio"][3] = float("inf")
    v = _status(_on_disk(r, tmp_path), "4")
    share = next(c for c in v.checks if c.what == "T3 WT mean Acc ratio over beta>0")
    assert share.n == 4 and share.outcome == "undecided" and "seed 0, left out, has no finite mean Acc" in share.detail
    assert any("T3 WT: mean Acc ratio over beta>0 is missing or not finite for seed 0 of 4" in n for n in v.notes)


def test_a_seed_whose_tsne_ratio_is_null_is_named_and_keeps_the_check_from_holding(tmp_path):
    r = fake_results()
    r["tsne"]["groups"]["r4"]["methods"]["DA"]["ratio_per_seed"][1] = float("nan")
    v = _status(_on_disk(r, tmp_path), "Fig. 2")
    assert any("R4 DA: orbit/class distance is missing or not finite for seed 1 of" in n for n in v.notes)
    c = next(c for c in v.checks if c.what == "R4 DA orbit/class distance")
    assert c.outcome == "undecided" and "seed 1, left out, has no finite orbit/class distance" in c.detail


@pytest.mark.parametrize("model", ["IR-kl", "DA"])
def test_a_seed_whose_sigma_max_is_not_finite_is_named_and_keeps_claim_5_from_holding(model, tmp_path):
    # an IR sigma_max that overflowed lies on the failing side; on disk it is null, as a NaN is
    r = fake_results()
    r["spectral"]["groups"]["r4"]["models"][model]["runs"][2]["sigma_max"] = float("inf")
    for results in (r, _on_disk(r, tmp_path)):
        v = _status(results, "5")
        assert any(f"R4 {model}: sigma_max is missing or not finite for seed 2 of 4" in n for n in v.notes)
        c = _check(results, "5", "R4 IR-kl sigma_max")
        assert c.n == 4 and c.outcome == "undecided" and "seed 2, left out, has no finite sigma_max" in c.detail
        assert "paired t, n = 3" in c.detail  # the interval rests on the other three
    assert _check(fake_results(), "5", "R4 IR-kl sigma_max").outcome == "holds"


def test_figure5s_ratio_cell_leaves_out_a_seed_whose_sigma_max_is_0_and_names_it():
    r = fake_results()
    r["spectral"]["groups"]["r4"]["models"]["IR-kl"]["runs"][2]["sigma_max"] = 0.0
    row = next(line for line in render_report(r).splitlines() if line.startswith("| R4 | IR-kl |"))
    assert "paired t, n = 3" in row and "seed 2 left out (a value <= 0)" in row


def test_a_sigma_max_of_0_in_both_models_keeps_claim_5_from_holding():
    r = fake_results()
    for m in ("IR-kl", "DA"):
        r["spectral"]["groups"]["r4"]["models"][m]["runs"][1]["sigma_max"] = 0.0  # 0 / 0: no side
    c = _check(r, "5", "R4 IR-kl sigma_max")
    assert c.outcome == "undecided" and "seed 1, left out, has sigma_max 0 in both" in c.detail


@pytest.mark.parametrize("model", ["WT", "DA"])
def test_an_accuracy_that_is_not_finite_keeps_the_paired_accuracy_checks_from_holding(model):
    r = fake_results()
    r["table1"]["groups"]["t3"]["methods"][model]["runs"][1]["accuracy"] = float("nan")
    lead = _check(r, "1b", "T3 WT accuracy over DA's")
    assert lead.n == 4 and lead.outcome == "undecided" and "seed 1, left out, has no finite accuracy" in lead.detail
    gap = _check(r, "2", "T3 DA accuracy (%)")
    assert gap.outcome == "undecided" and "seed 1, left out" in gap.detail
    assert _check(r, "1b", "R4 WT accuracy over DA's").outcome == "holds"  # the other group reads none of it


def test_a_seed_one_model_never_ran_is_not_a_seed_the_comparison_left_out():
    r = fake_results()
    r["table1"]["groups"]["r4"]["methods"]["DA"]["runs"].pop(3)  # WT has seed 3, DA does not: not compared
    assert _check(r, "1b", "R4 WT accuracy over DA's").outcome == "holds"


@pytest.mark.parametrize("beta_index", [0, -1])
def test_a_di_at_the_growths_betas_that_is_not_finite_keeps_the_growth_from_holding(beta_index, tmp_path):
    r = fake_results()
    r["drift"]["groups"]["r4"]["DA"]["runs"][1]["DI"][beta_index] = float("inf")  # growth 0 or infinite
    growth = next(c for c in _status(_on_disk(r, tmp_path), "4").checks if c.what.startswith("R4 DA DI("))
    assert growth.outcome == "undecided" and "seed 1, left out, has no finite DI" in growth.detail


def test_a_di_of_0_at_both_betas_keeps_the_growth_from_holding():
    r = fake_results()
    r["drift"]["groups"]["r4"]["DA"]["runs"][0]["DI"][0] = r["drift"]["groups"]["r4"]["DA"]["runs"][0]["DI"][-1] = 0.0
    growth = next(c for c in _status(r, "4").checks if c.what.startswith("R4 DA DI("))
    assert growth.outcome == "undecided" and "seed 0, left out, has DI 0 at both betas" in growth.detail


def test_an_unread_seed_turns_a_check_the_others_fail_undecided_saying_so():
    # its value is unknown, so it may lie on the holding side: the others' "fails" cannot stand for all seeds
    r = fake_results()
    r["table1"]["groups"]["r4"]["methods"]["WT"]["runs"][0]["LI"] = math.nan
    for run in r["table1"]["groups"]["r4"]["methods"]["WT"]["runs"][1:]:
        run["LI"] = 0.5  # far above WT's bound
    li = _check(r, "1", "R4 WT LI")
    assert li.outcome == "undecided" and "? undecided (on the other seeds ✗ fails)" in li.detail
    assert "seed 0, left out, has no finite LI" in li.detail


def test_a_seed_left_out_on_the_holding_side_turns_a_failing_check_undecided():
    # claim 5: IR's sigma_max 0 on one seed (a ratio of 0, the best there is) beside three seeds at DA's level
    test, bad = ev.paired_log({0: 10.1, 1: 10.3, 2: 9.9, 3: 0.0}, {s: 10.0 for s in range(4)})
    c = sigma_ratio_check("R4 IR-x sigma_max", "R4 IR-x / DA sigma_max", test, bad, [], 0.9)
    assert c.outcome == "undecided" and "(on the other seeds ✗ fails)" in c.detail
    assert "seed 3, left out, has sigma_max 0 where DA's is not" in c.detail
    mirror_test, mirror_bad = ev.paired_log({s: 5.0 for s in range(4)}, {0: 10.0, 1: 10.1, 2: 9.9, 3: 0.0})
    assert sigma_ratio_check("m", "m", mirror_test, mirror_bad, [], 0.9).outcome == "undecided"  # as before


def test_a_seed_left_out_on_the_failing_side_leaves_a_failing_check_failing_and_names_it():
    test, bad = ev.paired_log({s: 10.0 for s in range(4)}, {0: 10.0, 1: 10.1, 2: 9.9, 3: 0.0})  # DA 0: fails more
    c = sigma_ratio_check("m", "m", test, bad, [], 0.9)
    assert c.outcome == "fails" and c.n == 4 and "seed 3, left out, has DA's sigma_max 0" in c.detail


def test_a_seed_left_out_on_the_holding_side_of_a_holding_check_is_named_and_counted():
    test, bad = ev.paired_log({0: 5.0, 1: 5.1, 2: 4.9, 3: 0.0}, {s: 10.0 for s in range(4)})  # IR 0: holds more
    c = sigma_ratio_check("m", "m", test, bad, [], 0.9)
    assert c.outcome == "holds" and c.n == 4 and "seed 3, left out, has sigma_max 0 where DA's is not" in c.detail


def test_left_out_names_each_reason_with_its_seeds_and_skips_a_reason_without_any():
    iv = Interval(1.0, 0.9, 1.1, 2, "t")
    held = check("x", iv, "<=", 2.0)
    assert held.outcome == "holds"
    c = check("x", iv, "<=", 2.0, left_out=[([3], "has DA's sigma_max 0"), ([], "unused"),
                                            not_finite([1, 2], "sigma_max")])
    assert c.outcome == "undecided" and c.n == 5  # two seeds in the interval, three left out
    assert c.detail == held.detail.replace("✓ holds", "? undecided (on the other seeds ✓ holds)") + (
        "; undecided: seed 3, left out, has DA's sigma_max 0; seeds 1, 2, left out, has no finite sigma_max "
        "(missing, NaN or infinite: a results file writes NaN and infinities as null)")
    assert check("x", iv, "<=", 2.0, left_out=[([], "unused")]) == held


def test_unread_is_the_common_seeds_left_out_of_either_model_in_seed_order():
    a = [{"seed": 4, "v": math.inf}, {"seed": 1, "v": 1.0}, {"seed": 2, "v": None}, {"seed": 7, "v": math.nan}]
    b = [{"seed": 1, "v": math.nan}, {"seed": 2, "v": 1.0}, {"seed": 4, "v": 3.0}]  # no seed 7: not common
    assert unread([a, b], measure("v")) == [1, 2, 4]
    assert unread([a], measure("v")) == sorted(left_out(a, measure("v"))) == [2, 4, 7]


def _centered(model_sigma, da_sigma):
    runs = lambda values: [{"seed": s, "sigma_max": v} for s, v in enumerate(values)]  # noqa: E731
    return {"groups": {"r4": {"model": {"runs": runs(model_sigma)}, "comparison": {"DA": {"runs": runs(da_sigma)}},
                              "nu_selection": {"reached_target": True}}}}


def test_the_centered_forms_check_is_capped_as_claim_5s_is():
    da = [10.0, 10.2, 9.9, 10.1]
    (ok,) = centered_checks(_centered([5.0, 5.1, 4.9, 5.05], da), 0.9)
    assert ok.outcome == "holds"
    (c,) = centered_checks(_centered([5.0, math.nan, 4.9, 5.05], da), 0.9)
    assert c.unread == [1] and c.test.n == 3
    assert c.outcome == "undecided" and "seed 1, left out, has no finite σ_max" in c.sigma_check.detail


@pytest.mark.parametrize("where, claim, what", [
    (("spectral", "r4", "IR-kl", "sigma_max"), "5", "R4 IR-kl sigma_max"),
    (("table1", "r4", "WT", "LI"), "1", "R4 WT LI"),
    (("table1", "t3", "DA", "accuracy"), "1b", "T3 WT accuracy over DA's"),
])
def test_every_seed_unread_leaves_the_check_undecided_not_unmeasured(where, claim, what, tmp_path):
    # "not measured" would let the claim read "holds where measured" on its worst case: a measure that
    # overflowed on every seed
    r = fake_results()
    exp, g, m, key = where
    entry = r[exp]["groups"][g]["models" if exp == "spectral" else "methods"][m]
    for run in entry["runs"]:
        run[key] = math.inf
    results = _on_disk(r, tmp_path)
    c = _check(results, claim, what)
    assert c.outcome == "undecided" and c.n == 4
    assert "every seed left out: seeds 0, 1, 2, 3, left out, has no finite" in c.detail
    assert _status(results, claim).status == "undecided at n = 4 seeds"


def test_no_growth_on_every_seed_leaves_the_growth_undecided_not_unmeasured():
    r = fake_results()
    for run in r["drift"]["groups"]["r4"]["DA"]["runs"]:
        run["DI"][-1] = 0.0
    growth = next(c for c in _status(r, "4").checks if c.what.startswith("R4 DA DI("))
    assert growth.outcome == "undecided" and "every seed left out: seeds 0, 1, 2, 3, left out, has no growth" \
        in growth.detail


def test_an_undecided_check_names_its_unread_seed_and_drops_a_plan_towards_holds():
    # the other seeds point towards "holds", which a later run could not reach while seed 3 stays unread
    r = fake_results()
    for run, si in zip(r["table1"]["groups"]["t3"]["methods"]["IR"]["runs"], (0.955, 0.949, 0.96, math.nan)):
        run["SI"] = si
    c = _check(r, "3", "T3 IR SI")
    assert c.outcome == "undecided" and c.seeds_to_decide is None and c.towards is None
    assert "seeds would decide it" not in c.detail and c.detail.endswith("; seed 3, left out, has no finite SI "
                                                                         "(missing, NaN or infinite: a results file "
                                                                         "writes NaN and infinities as null)")


def test_an_undecided_check_with_an_unread_seed_plans_towards_neither_outcome():
    # the seed may lie on either side: neither outcome could come true while it stays unread
    r = fake_results()
    for run, si in zip(r["table1"]["groups"]["t3"]["methods"]["IR"]["runs"], (0.945, 0.93, 0.95, math.nan)):
        run["SI"] = si
    c = _check(r, "3", "T3 IR SI")
    assert c.outcome == "undecided" and c.towards is None and "would decide it" not in c.detail
    assert "seed 3, left out" in c.detail


def test_an_undecided_check_towards_fails_keeps_its_plan_with_a_seed_left_out_on_the_failing_side():
    iv = Interval(0.95, 0.9, 1.0, 3, "t")
    c = check("x", iv, ">=", 0.96, left_out=[([3], "has it 0")])
    assert c.outcome == "undecided" and c.towards == "fails" and "towards fails" in c.detail


def test_a_drift_run_without_its_di_or_accuracy_curve_is_left_out_not_a_crash():
    r = fake_results()
    del r["drift"]["groups"]["r4"]["DA"]["runs"][1]["DI"]
    del r["drift"]["groups"]["r4"]["WT"]["runs"][2]["accuracy_ratio"]
    v = _status(r, "4")
    growth = next(c for c in v.checks if c.what.startswith("R4 DA DI("))
    share = next(c for c in v.checks if c.what == "R4 WT mean Acc ratio over beta>0")
    assert "seed 1, left out, has no finite DI" in growth.detail
    assert "seed 2, left out, has no finite mean Acc ratio" in share.detail


def test_figure5s_ratio_cell_names_a_seed_whose_sigma_max_is_not_finite():
    r = fake_results()
    r["spectral"]["groups"]["r4"]["models"]["IR-kl"]["runs"][2]["sigma_max"] = math.nan
    row = next(line for line in render_report(r).splitlines() if line.startswith("| R4 | IR-kl |"))
    assert "paired t, n = 3" in row and "seed 2 left out (not finite)" in row


def test_the_centered_line_says_why_a_seed_with_sigma_max_0_in_both_is_undecided():
    (c,) = centered_checks(_centered([5.0, 0.0, 4.9, 5.05], [10.0, 0.0, 9.9, 10.1]), 0.9)
    assert c.outcome == "undecided" and "seed 1, left out, has σ_max 0 in both" in c.sigma_check.detail


@pytest.mark.parametrize("where", ["chosen", "other"])
def test_a_null_validation_si_makes_a_fallback_nu_not_told_apart_from_the_other(where):
    # the tie note went quiet: paired_t refused the NaN and the grid value was skipped
    chosen, other = [0.90, 0.91, 0.92, 0.905], [0.80, 0.81, 0.79, 0.80]  # clearly apart on every seed
    (chosen if where == "chosen" else other)[2] = None
    sel = {"grid": [3.0, 30.0], "si_per_seed": [other, chosen], "chosen": 30.0, "target": 0.95,
           "reached_target": False}
    assert selection_ties(sel) == [3.0]


def test_a_tsne_ratio_list_shorter_than_its_seeds_is_read_as_no_seed_not_as_the_first_ones():
    # the seeds were taken as positions 0, 1, ...: the missing seed dropped unnamed, and the check held
    r = fake_results()
    r["tsne"]["groups"]["r4"]["methods"]["DA"]["ratio_per_seed"].pop(1)
    v = _status(r, "Fig. 2")
    c = next(c for c in v.checks if c.what == "R4 DA orbit/class distance")
    assert c.outcome == "undecided" and "every seed left out: seeds 0, 1, 2, 3" in c.detail


def test_an_edge_that_prints_as_the_bound_gets_the_digits_that_tell_them_apart():
    """0.9996 printed "1" and the bound 1.0 "1.00": compared as strings they differed, so no digit was added
    and the interval that misses the bound seemed to reach it."""
    assert check("SI", Interval(0.9999, 0.9996, 0.99999, 4, "t"), ">=", 1.0).detail.startswith(
        "SI = 0.9999 [0.9996, 0.99999] ✗ fails")


def test_a_paired_test_pairs_by_seed_when_a_seed_is_missing_on_one_side():
    """Seeds 0, 1, 3 in common (seed 2 only in b): differences 1, 2, 3, so n = 3 and the mean 2.0; pairing
    by position would set a's seed 3 against b's seed 2."""
    t = ev.paired({0: 1.0, 1: 2.0, 3: 4.0}, {0: 0.0, 1: 0.0, 2: 100.0, 3: 1.0})
    assert t.n == 3 and t.interval.estimate == pytest.approx(2.0)


def test_an_undecided_claim_names_the_most_seeds_its_undecided_checks_rest_on():
    """Checks undecided at 4 and at 12 seeds, one that holds at 36: 'undecided at n = 12 seeds' (the seeds
    that did not decide it), neither the 4 nor the deciding check's 36."""
    v = Verdict("3", "IR reaches SI >= 0.95.", checks=[Check("a", "undecided", "", n=4), Check("b", "holds", "", n=36),
                                                        Check("c", "undecided", "", n=12)])
    assert v.status == "undecided at n = 12 seeds"
