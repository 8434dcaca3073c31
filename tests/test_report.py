"""REPORT.md: the verdict logic on hand-made numbers, the rendering, the paper's table.

The hand-made results dicts here follow the JSON schema the experiments write;
``tests/test_experiments.py`` draws every figure from them too.
"""

from __future__ import annotations

import json

import numpy as np

from nets.report import PAPER_TABLE1, PAPER_TABLE1_STD, completeness, render_report, write_report
from nets.stats import seeds_to_decide, t_interval
from nets.nu_selection_notes import form_missed_target, missed_target, missed_target_note, selection_ties
from nets.verdicts import Thresholds, verdicts

GROUPS = ("r4", "t3")
ORDER = {"r4": 4, "t3": 3}
BETAS = [round(0.1 * i, 1) for i in range(11)]
SEEDS = [0, 1, 2, 3]
#: per-seed factors around each hand-made mean: 4 seeds with a 0.2% spread, so every
#: interval is narrow and every check that is not borderline is decided
JITTER = (0.997, 0.999, 1.001, 1.003)


def _ms(mean, std=0.0):
    return {"mean": mean, "std": std}


def _seeds(value):
    """The hand-made per-seed values around ``value``."""
    return [value * f for f in JITTER]


def _meta(name):
    return {"experiment": name, "profile": {"name": "smoke", "seeds": [0], "epochs": 2, "n_train": 512,
                                            "n_val": 256, "n_test": 512},
            "seeds": SEEDS, "epochs": 2, "device": "cpu", "versions": {"python": "3", "torch": "2"},
            "git_commit": "abc", "command": f"python -m nets {name} --profile smoke", "started_at": "now",
            "wall_time_s": 1.5}


def _selection(reg="logit", reached=True):
    si = [0.5, 0.8, 0.96, 0.97, 0.99] if reached else [0.5, 0.6, 0.7, 0.8, 0.9]
    grid = [0.1, 0.3, 1.0, 3.0, 10.0]
    return {"grid": grid, "si": si, "accuracy": [0.95, 0.94, 0.92, 0.9, 0.85],
            "chosen": 1.0 if reached else 10.0, "target": 0.95, "regularizer": reg, "reached_target": reached}


def fake_table1(wt=(0.946, 1e-10, 1e-12, 1.0), da=(0.94, 98.6, 0.3, 0.17), ir=(0.879, 0.02, 0.001, 0.96),
                reached=True):
    groups = {}
    for g in GROUPS:
        methods = {}
        for m, (acc, li, di, si) in (("WT", wt), ("DA", da), ("IR", ir)):
            methods[m] = {"config": {"method": m, "group": g}, "key": f"{m}-{g}", "nu": 1.0 if m == "IR" else None,
                          "runs": [{"seed": s, "accuracy": a, "LI": li_s, "DI": di_s, "SI": si_s}
                                   for s, a, li_s, di_s, si_s in zip(SEEDS, _seeds(acc), _seeds(li), _seeds(di),
                                                                     _seeds(si))],
                          "accuracy": _ms(acc, 0.001), "LI": _ms(li), "DI": _ms(di), "SI": _ms(si)}
        groups[g] = {"methods": methods, "nu_selection": _selection(reached=reached)}
    return {"meta": _meta("table1"), "protocol": {"accuracy": "full test orbit"}, "groups": groups}


def fake_drift(da_growth=10.0, low=0.01, wt_keeps=True):
    groups = {}
    b = np.asarray(BETAS)
    for g in GROUPS:
        curves = {
            "WT": (low * b, 1 - 0.5 * b if wt_keeps else 1 - 0.9 * b),
            "DA": (0.1 * (1 + (da_growth - 1) * b), 1 - 0.7 * b),
            "IR": (low * b, 1 - 0.6 * b),
        }
        groups[g] = {m: {"nu": None, "DI": {"mean": di.tolist(), "std": [0.0] * len(b)},
                         "accuracy": {"mean": (0.9 * r).tolist(), "std": [0.0] * len(b)},
                         "accuracy_ratio": {"mean": r.tolist(), "std": [0.01] * len(b)},
                         "runs": [{"seed": s, "DI": (f * di).tolist(), "accuracy": (0.9 * f * r).tolist(),
                                   "accuracy_ratio": (f * r).tolist()} for s, f in zip(SEEDS, JITTER)]}
                     for m, (di, r) in curves.items()}
    return {"meta": _meta("drift"), "protocol": {"data": "interpolate"}, "betas": BETAS, "groups": groups}


def _spectral_runs(sigma, acc, centered=None, share=0.3):
    centered = 0.95 * sigma if centered is None else centered
    return [{"seed": s, "sigma_max": a, "sigma_max_centered": c, "common_logit_share": sh, "accuracy": ac}
            for s, a, c, sh, ac in zip(SEEDS, _seeds(sigma), _seeds(centered), _seeds(share), _seeds(acc))]


def fake_spectral(ir_sigma=(0.5, 0.6, 0.4), da_sigma=2.0, reached=True):
    groups = {}
    for g in GROUPS:
        models = {"DA": {"method": "DA", "regularizer": None, "nu": None, "sigma_max": _ms(da_sigma, 0.1),
                         "accuracy": _ms(0.94, 0.01), "runs": _spectral_runs(da_sigma, 0.94)}}
        for reg, s in zip(("logit", "kl", "normalized_logit"), ir_sigma):
            models[f"IR-{reg}"] = {"method": "IR", "regularizer": reg, "nu": 1.0, "sigma_max": _ms(s, 0.05),
                                   "accuracy": _ms(0.88, 0.01), "runs": _spectral_runs(s, 0.88)}
        groups[g] = {"models": models,
                     "nu_selections": {r: _selection(r, reached) for r in ("logit", "kl", "normalized_logit")}}
    return {"meta": _meta("spectral"), "protocol": {}, "groups": groups}


def fake_tsne(n=6, wt_ratio=0.0, da_ratio=0.9):
    rng = np.random.default_rng(0)
    groups = {}
    for g in GROUPS:
        G = ORDER[g]
        methods = {m: {"seed": 0, "nu": None, "coords": rng.normal(size=(G * n, 2)).round(3).tolist(),
                       "ratio": _ms(r), "ratio_per_seed": _seeds(r)}
                   for m, r in (("WT", wt_ratio), ("DA", da_ratio), ("IR", 0.1))}
        groups[g] = {"labels": [i % 9 for i in range(n)],
                     "element_labels": [f"{k * 360 // G}°" if g == "r4" else f"+{k * 12} px" for k in range(G)],
                     "methods": methods}
    return {"meta": _meta("tsne"), "protocol": {}, "groups": groups}


def fake_saliency(n=2, size=8):
    rng = np.random.default_rng(1)
    groups = {}
    for g in GROUPS:
        G = ORDER[g]
        methods = {m: {"seed": 0, "nu": None, "maps": rng.random((G, n, size, size)).round(3).tolist(),
                       "similarity": rng.random((G, n)).round(3).tolist(), "predicted": [0] * n}
                   for m in ("DA", "IR", "WT")}
        groups[g] = {"sample_index": list(range(n)), "labels": list(range(n)),
                     "images": rng.normal(size=(n, size, size)).round(3).tolist(),
                     "element_labels": [str(k) for k in range(G)], "methods": methods}
    return {"meta": _meta("saliency"), "protocol": {}, "groups": groups}


def fake_results(**kw):
    """All five experiments; every claim holds with the defaults."""
    return {"table1": fake_table1(), "drift": fake_drift(), "spectral": fake_spectral(), "tsne": fake_tsne(),
            "saliency": fake_saliency()}


def _status(results, claim):
    return {v.claim: v for v in verdicts(results)}[claim]


# ---- the paper's numbers -----------------------------------------------------------
def test_paper_table1_holds_the_published_values():
    assert PAPER_TABLE1["r4"]["WT"] == (94.6, 0.00, 0.0, 1.00)
    assert PAPER_TABLE1["r4"]["DA"] == (94.0, 98.6, 0.3, 0.17)
    assert PAPER_TABLE1["r4"]["IR"] == (87.9, 0.02, 0.0, 0.95)
    assert PAPER_TABLE1["t3"]["WT"] == (96.6, 0.0, 0.0, 1.00)
    assert PAPER_TABLE1["t3"]["DA"] == (96.2, 50.8, 0.1, 0.57)
    assert PAPER_TABLE1["t3"]["IR"] == (93.1, 0.01, 0.0, 0.95)
    assert PAPER_TABLE1_STD["r4"]["DA"] == (0.5, 5.4, 0.1, 0.04)


# ---- verdicts ----------------------------------------------------------------------
def test_every_claim_holds_on_numbers_that_satisfy_it():
    vs = verdicts(fake_results())
    assert {v.claim: v.status for v in vs} == {c: "holds" for c in ("1", "1b", "2", "3", "4", "5", "Fig. 2")}


def test_missing_experiments_leave_claims_not_evaluated():
    assert {v.status for v in verdicts({})} == {"not evaluated"}


def test_claim1_fails_when_weight_tied_model_is_not_invariant():
    r = fake_results()
    r["table1"] = fake_table1(wt=(0.946, 0.5, 0.01, 0.9))
    assert _status(r, "1").status == "not supported"


def test_claim2_fails_when_augmented_model_has_low_logit_error_and_high_saliency_similarity():
    r = fake_results()
    r["table1"] = fake_table1(da=(0.94, 0.05, 0.001, 0.97))
    v = _status(r, "2")
    assert v.status == "partly holds"  # accuracy and DI still fine
    failed = {c.what for c in v.checks if c.passed is False}
    assert failed == {"R4 DA LI", "R4 DA SI", "T3 DA LI", "T3 DA SI"}


def test_claim2_fails_when_augmented_model_loses_accuracy():
    r = fake_results()
    r["table1"] = fake_table1(da=(0.80, 98.6, 0.3, 0.17))
    assert any(c.what == "R4 DA accuracy (%)" and c.passed is False for c in _status(r, "2").checks)


def test_claim3_fails_when_regularized_model_misses_the_saliency_target():
    r = fake_results()
    r["table1"] = fake_table1(ir=(0.879, 0.02, 0.001, 0.80), reached=False)
    v = _status(r, "3")
    assert v.status == "partly holds"
    assert any("no nu" in n for n in v.notes)


def test_claim3_fails_without_an_accuracy_cost():
    r = fake_results()
    r["table1"] = fake_table1(ir=(0.95, 0.02, 0.001, 0.96))
    assert any("IR accuracy" in c.what and c.passed is False for c in _status(r, "3").checks)


def test_claim4_fails_when_augmented_invariance_does_not_degrade():
    r = fake_results()
    r["drift"] = fake_drift(da_growth=1.2)
    v = _status(r, "4")
    assert v.status == "partly holds"
    assert [c.what for c in v.checks if c.passed is False] == ["R4 DA DI(beta=1)", "T3 DA DI(beta=1)"]


def test_claim4_fails_when_weight_tied_model_keeps_less_accuracy():
    r = fake_results()
    r["drift"] = fake_drift(wt_keeps=False)
    assert any("WT mean Acc ratio" in c.what and c.passed is False for c in _status(r, "4").checks)


def test_claim4_fails_when_regularized_invariance_degrades():
    r = fake_results()
    r["drift"] = fake_drift(low=0.5)
    assert any("IR max DI" in c.what and c.passed is False for c in _status(r, "4").checks)


def test_claim5_fails_when_one_form_does_not_lower_sigma_max():
    r = fake_results()
    r["spectral"] = fake_spectral(ir_sigma=(0.5, 2.5, 0.4))
    v = _status(r, "5")
    assert v.status == "partly holds"
    assert {c.what for c in v.checks if c.passed is False} == {"R4 IR-kl sigma_max", "T3 IR-kl sigma_max"}


def test_claim5_does_not_hold_when_no_form_lowers_sigma_max():
    r = fake_results()
    r["spectral"] = fake_spectral(ir_sigma=(3.0, 3.0, 3.0))
    assert _status(r, "5").status == "not supported"


def _with_class_common_shift(spectral: dict, form: str, share: float, centered: float) -> dict:
    for entry in spectral["groups"].values():
        for m in entry["models"].values():
            m["common_logit_share"] = _ms(0.3, 0.01)
            m["sigma_max_centered"] = _ms(0.95 * m["sigma_max"]["mean"], 0.01)
        m = entry["models"][f"IR-{form}"]
        m["common_logit_share"] = _ms(share, 0.001)
        m["sigma_max_centered"] = _ms(centered, 0.01)
        m["runs"] = _spectral_runs(m["sigma_max"]["mean"], 0.88, centered=centered, share=share)
    return spectral


def test_claim5_notes_sigma_max_on_centered_logits_for_a_failing_shifted_form():
    r = fake_results()
    r["spectral"] = _with_class_common_shift(fake_spectral(ir_sigma=(0.5, 0.6, 9.0)), "normalized_logit",
                                             share=0.99, centered=1.0)
    v = _status(r, "5")
    assert v.status == "partly holds"  # the note never changes the verdict
    notes = [n for n in v.notes if "centered logits" in n]
    assert len(notes) == 2 and all("IR-normalized_logit" in n and "0.99" in n for n in notes)


def test_claim5_adds_no_centered_note_when_the_form_passes_or_its_logits_are_not_shifted():
    r = fake_results()
    r["spectral"] = _with_class_common_shift(fake_spectral(ir_sigma=(0.5, 0.6, 9.0)), "normalized_logit",
                                             share=0.2, centered=1.0)
    assert not any("centered logits" in n for n in _status(r, "5").notes)
    r["spectral"] = _with_class_common_shift(fake_spectral(), "normalized_logit", share=0.99, centered=0.3)
    assert not any("centered logits" in n for n in _status(r, "5").notes)


def test_thresholds_decide_borderline_values():
    r = fake_results()
    r["spectral"] = fake_spectral(ir_sigma=(1.9, 1.9, 1.9), da_sigma=2.0)  # lower, but not by 10%
    assert _status(r, "5").status == "not supported"
    assert verdicts(r, Thresholds(spectral_ratio_max=1.0))[4].status == "holds"


def test_an_undecided_check_says_how_many_seeds_would_decide_it_and_which_way():
    r = fake_results()
    r["table1"] = fake_table1(ir=(0.879, 0.02, 0.001, 0.946))  # SI 0.946 with a 0.2% spread: straddles 0.945
    checks = {c.what: c for c in _status(r, "3").checks}
    si = checks["R4 IR SI"]
    assert si.outcome == "undecided" and si.towards == "holds"
    values = [0.946 * j for j in JITTER]
    assert si.seeds_to_decide == seeds_to_decide(t_interval(values), ">=", 0.945) > len(SEEDS)
    assert f"about {si.seeds_to_decide} seeds would decide it, towards holds" in si.detail
    decided = checks["R4 IR LI"]
    assert decided.outcome == "holds" and decided.seeds_to_decide is None and "would decide" not in decided.detail


def test_figure2_check_fails_when_orbits_do_not_spread():
    r = fake_results()
    r["tsne"] = fake_tsne(da_ratio=0.1)
    assert _status(r, "Fig. 2").status == "partly holds"


def test_figure2_is_judged_on_the_papers_group_only_and_notes_the_others():
    r = fake_results()
    r["tsne"] = fake_tsne(da_ratio=0.1)
    del r["tsne"]["groups"]["r4"]  # T3 alone: beyond the paper's figure, so noted, not counted
    v = _status(r, "Fig. 2")
    assert v.status == "not evaluated" and not v.checks
    assert any(n.startswith("beyond the paper's figure") and "T3 DA orbit/class distance" in n and "fails" in n
               for n in v.notes)


def test_wt_with_less_accuracy_than_da_fails_the_highest_accuracy_claim():
    r = fake_results()
    r["table1"] = fake_table1(wt=(0.93, 1e-10, 1e-12, 1.0))  # DA 0.94 beats WT by a point on every seed
    v = _status(r, "1b")
    assert [c.outcome for c in v.checks] == ["fails", "holds"] * 2  # over DA fails, over IR (0.879) holds
    assert v.status == "partly holds" and _status(r, "1").status == "holds"


# ---- rendering ---------------------------------------------------------------------
def test_report_shows_paper_values_beside_ours_and_the_verdicts():
    text = render_report(fake_results(), command="python -m nets reproduce --profile smoke",
                         total_wall_time_s=12.0)
    assert "94.6 ± 0.1" in text and "98.6 ± 5.4" in text  # paper's Table 1
    assert "94.6 ± 0.1" in text
    assert "**holds**" in text
    assert "python -m nets reproduce --profile smoke" in text
    assert "Not the paper's protocol" in text
    for stem in ("table1", "drift", "spectral", "tsne", "saliency_r4", "saliency_t3"):
        assert f"(figures/{stem}.png)" in text


def test_a_resumed_sweeps_wall_time_is_named_its_last_sittings_with_what_it_kept():
    """reproduce.json's wall time counts its last sitting only: the groups it kept from earlier ones are named."""
    text = render_report(fake_results(), total_wall_time_s=600.0, kept_groups={"spectral": ["r4", "t3"], "drift": []})
    assert ("| wall time of the sweep's last sitting | 10.0 min (600 s), not counting what it kept from earlier "
            "sittings: spectral (r4, t3) (their times") in text
    assert "| wall time of the sweep |" in render_report(fake_results(), total_wall_time_s=600.0, kept_groups={})


def test_report_states_a_failed_claim_and_an_unreached_target():
    r = fake_results()
    r["table1"] = fake_table1(ir=(0.879, 0.02, 0.001, 0.80), reached=False)
    r["spectral"] = fake_spectral(ir_sigma=(3.0, 3.0, 3.0))
    text = render_report(r)
    assert "**not supported**" in text
    assert "no ν reached SI ≥ 0.95" in text
    assert "σ_max" in text


def test_missed_target_is_only_an_explicit_false():
    assert missed_target(_selection(reached=False))
    assert not missed_target(_selection(reached=True))
    assert not missed_target(None) and not missed_target({})
    assert not missed_target({"grid": [1.0], "chosen": 1.0})  # records older than the field


def _fallback(chosen_si, other_si):
    return {"grid": [3.0, 30.0], "si_per_seed": [other_si, chosen_si], "chosen": 30.0, "target": 0.95,
            "reached_target": False}


def test_a_fallback_nu_within_the_seeds_noise_of_another_is_named_as_a_tie():
    sel = _fallback([0.880, 0.870, 0.890, 0.885], [0.878, 0.881, 0.879, 0.880])
    assert selection_ties(sel) == [3.0]
    assert "not told apart from nu = 3: the choice rests on seed noise" in missed_target_note("T3", sel)


def test_a_fallback_nu_clearly_ahead_over_seeds_has_no_tie_and_the_old_note():
    sel = _fallback([0.90, 0.91, 0.92, 0.905], [0.80, 0.81, 0.79, 0.80])
    assert selection_ties(sel) == []
    old = {k: v for k, v in sel.items() if k != "si_per_seed"}  # a record written before the field
    assert selection_ties(old) == [] and missed_target_note("T3", sel) == missed_target_note("T3", old)
    assert missed_target_note("T3", old).endswith("the largest-SI nu = 30.0 was used.")


def test_form_missed_target_reads_the_models_own_form_and_never_flags_da():
    entry = fake_spectral()["groups"]["r4"]
    entry["nu_selections"]["kl"] = _selection("kl", reached=False)
    models = entry["models"]
    assert form_missed_target(entry, models["IR-kl"])
    assert not form_missed_target(entry, models["IR-logit"])
    assert not form_missed_target(entry, models["DA"])


def test_every_unreached_spectral_form_gets_a_note_and_a_banner():
    r = fake_results()
    r["spectral"] = fake_spectral(reached=False)
    v = {x.claim: x for x in verdicts(r)}
    notes = [n for n in v["5"].notes if "no nu in the grid" in n]
    assert len(notes) == 2 * 3  # both groups, every form
    assert all("the largest-SI nu = 10.0 was used" in n for n in notes)
    text = render_report(r)
    for g in ("R4", "T3"):
        for reg in ("logit", "kl", "normalized_logit"):
            assert f"> **{g} IR-{reg}: no ν reached SI ≥ 0.95 on validation**" in text


def test_claim_5_on_some_of_the_paper_forms_counts_the_others_as_not_measured():
    """`spectral --regularizers logit kl`: the forms that hold cannot make "every IR form" hold."""
    r = fake_results()
    r["spectral"] = fake_spectral()
    r["spectral"]["meta"]["profile"]["regularizers"] = ["logit", "kl"]
    for entry in r["spectral"]["groups"].values():
        del entry["models"]["IR-normalized_logit"], entry["nu_selections"]["normalized_logit"]
    v = {x.claim: x for x in verdicts(r)}
    assert v["5"].status == "holds where measured (2 of 6 checks not measured)"
    assert sum("IR-normalized_logit / DA sigma_max: not measured (spectral ran without this form" in c.detail
               for c in v["5"].checks) == 2
    da_only = fake_spectral()
    da_only["meta"]["profile"]["regularizers"] = []
    for entry in da_only["groups"].values():
        entry["models"] = {"DA": entry["models"]["DA"]}
        entry["nu_selections"] = {}
    assert {x.claim: x for x in verdicts({**r, "spectral": da_only})}["5"].status == "not evaluated"


def test_a_model_with_one_form_of_its_own_and_the_full_profile_adds_no_not_measured_forms():
    """The CNN's Figure 5 trains the logit form only, under a profile that names all three."""
    r = fake_results()
    r["spectral"] = fake_spectral()
    r["spectral"]["meta"]["profile"]["regularizers"] = ["logit", "kl", "normalized_logit"]
    for entry in r["spectral"]["groups"].values():
        entry["models"] = {k: m for k, m in entry["models"].items() if k in ("DA", "IR-logit")}
    assert not [c for c in {x.claim: x for x in verdicts(r)}["5"].checks if c.outcome == "not measured"]


def test_a_complete_sweep_has_no_partial_banner():
    assert completeness(fake_results()) == []
    assert "Partial results" not in render_report(fake_results())


def test_a_partial_sweep_says_what_is_pending_and_leaves_the_rest_not_evaluated():
    t1 = fake_table1()
    del t1["groups"]["t3"]
    t1.update(complete=False, pending_groups=["t3"])
    text = render_report({"table1": t1})
    assert "**Partial results**" in text
    assert "`table1` covers R4 only (T3 pending)" in text
    for name in ("drift", "spectral", "tsne", "saliency"):
        assert f"`{name}` has not run" in text
    assert _status({"table1": t1}, "4").status == "not evaluated"
    assert _status({"table1": t1}, "1").status == "holds"  # what ran is still judged



def test_a_claim_decided_on_some_groups_names_them_and_the_pending_ones():
    t1 = fake_table1()
    del t1["groups"]["t3"]
    t1.update(complete=False, pending_groups=["t3"])
    sp = fake_spectral()
    sp.update(complete=True, pending_groups=[])
    by_claim = {v.claim: v for v in verdicts({"table1": t1, "spectral": sp})}
    for claim in ("1", "1b", "2", "3"):
        assert "decided on R4 only: `table1` has not run on T3." in by_claim[claim].notes
    assert not any("decided on" in n for n in by_claim["5"].notes)  # spectral covers every group
    assert by_claim["4"].notes == []  # not evaluated: nothing to qualify
    assert by_claim["1b"].status == "holds"  # the note qualifies the verdict, it does not change it

def test_a_selection_with_untrained_grid_values_renders(tmp_path):
    t1 = fake_table1()
    sel = t1["groups"]["r4"]["nu_selection"]
    sel.update(si=[0.5, 0.96, None, None, None], accuracy=[0.95, 0.94, None, None, None], chosen=0.3,
               search="ascending")
    text = render_report({"table1": t1})
    assert "| R4 | logit | 0.3 | 0.96 |" in text
    assert "| R4 | logit | 3 | not trained | not trained | a smaller ν reached the target |" in text


def test_write_report_reads_the_json_files(tmp_path):
    for name, r in fake_results().items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    path = write_report(tmp_path, command="cmd")
    text = path.read_text()
    assert path.name == "REPORT.md"
    assert "## Verdicts" in text
    assert "*(figure `drift` not drawn)*" in text  # no figures folder: said, not linked


# ---- intervals and paired decisions --------------------------------------------------
def test_a_mean_past_the_threshold_with_an_interval_across_it_is_undecided():
    r = fake_results()
    t1 = fake_table1(ir=(0.879, 0.02, 0.001, 0.96))
    for g in GROUPS:  # mean SI 0.95 >= 0.945, but seeds spread 0.93 .. 0.97
        for run, si in zip(t1["groups"][g]["methods"]["IR"]["runs"], (0.93, 0.94, 0.96, 0.97)):
            run["SI"] = si
    r["table1"] = t1
    v = _status(r, "3")
    assert v.status == "undecided at n = 4 seeds"
    assert {c.what for c in v.checks if c.outcome == "undecided"} == {"R4 IR SI", "T3 IR SI"}


def test_accuracies_that_agree_exactly_over_the_seeds_leave_a_check_undecided_not_exact():
    r = fake_results()
    t1 = fake_table1()
    for g in GROUPS:  # WT 0.5 points above DA on every seed: a step of one image on a small test set
        for wt, da in zip(t1["groups"][g]["methods"]["WT"]["runs"], t1["groups"][g]["methods"]["DA"]["runs"]):
            wt["accuracy"] = da["accuracy"] + 0.005
    r["table1"] = t1
    v = _status(r, "1b")
    tied = [c for c in v.checks if "WT - DA accuracy" in c.detail]
    assert tied and all(c.outcome == "undecided" and "seeds agree exactly" in c.detail for c in tied)
    assert _status(r, "1").status == "holds"  # WT's LI, DI, SI: continuous measures, decided as before


def test_one_seed_gives_no_interval_so_every_claim_is_undecided():
    t1 = fake_table1()
    for entry in t1["groups"].values():
        for m in entry["methods"].values():
            m["runs"] = m["runs"][:1]
    v = _status({"table1": t1}, "1")
    assert v.status == "undecided at n = 1 seed"
    assert all("no interval" in c.detail and "the point value meets it" in c.detail for c in v.checks)


def test_comparisons_of_two_models_name_the_paired_test_and_its_p_value():
    v = _status(fake_results(), "3")
    detail = next(c.detail for c in v.checks if c.what == "R4 IR accuracy (%)")
    assert "IR - WT accuracy (points)" in detail and "paired t, n = 4: p = " in detail


def test_checks_without_per_seed_values_are_not_measured():
    t1 = fake_table1()
    for entry in t1["groups"].values():
        for m in entry["methods"].values():
            m["runs"] = []
    assert _status({"table1": t1}, "1").status == "not evaluated"


def test_report_sets_our_interval_beside_the_papers_range_and_says_if_it_lies_within():
    text = render_report(fake_results())
    # fake R4 WT accuracy 94.6 %: inside the paper's 94.6 ± 0.1; fake DA LI 98.6 inside 98.6 ± 5.4
    assert "| R²₄ (4 rotations) | WT | accuracy | 94.6 [" in text
    assert "| 94.6 ± 0.1 | [94.4, 94.8] | yes |" in text
    r = fake_results()
    r["table1"] = fake_table1(da=(0.94, 40.0, 0.3, 0.17))  # LI far below the paper's 98.6 ± 5.4
    assert "| 98.6 ± 5.4 | [93.1, 104.0] | **no** |" in render_report(r)
    assert "### Paired comparisons of the Table 1 models" in text


def test_accuracies_that_tie_on_every_seed_are_not_read_within_or_outside_the_papers_range():
    """A 4-seed interval of no width read "**no**" beside the paper's 87.9 ± 0.8: the tie rule says nothing."""
    r = fake_results()
    for runs in (e["methods"]["IR"]["runs"] for e in r["table1"]["groups"].values()):
        for run in runs:
            run["accuracy"] = 0.846
    text = render_report(r)
    assert "| IR | accuracy | 84.6 [84.6, 84.6] |" in text and "| n/a (the seeds tie) |" in text


def _boot(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "n_samples": 100}


def test_report_shows_the_bootstrap_over_test_samples_when_intervals_json_is_present():
    r = fake_results()
    r["intervals"] = {"meta": _meta("intervals"), "protocol": {"interval": "bootstrap.", "ratio": "paired."},
                      "groups": {"r4": {"table1": {"WT": {"accuracy": _boot(0.9461, 0.9452, 0.9473)}},
                                        "spectral": {"IR-kl": {"sigma_max": _boot(0.6, 0.55, 0.65),
                                                               "sigma_max_ratio_to_DA": {"ratio": 0.3, "low": 0.28,
                                                                                         "high": 0.32}}}}}}
    text = render_report(r)
    assert "ours (bootstrap over test samples)" in text
    assert "| R²₄ (4 rotations) | WT | accuracy | 94.6 [" in text and "| 94.6 [94.5, 94.7] |" in text
    assert "| R4 | IR-kl | 0.6 [0.55, 0.65] | n/a | 0.3 [0.28, 0.32] | n/a |" in text
    assert "python -m nets intervals --profile smoke" in text  # its provenance row


def test_report_without_intervals_json_has_no_bootstrap_column():
    assert "bootstrap over test samples)" not in render_report(fake_results())


def test_results_files_of_other_settings_in_one_folder_are_named_above_the_report():
    results = fake_results()
    results["drift"]["meta"]["profile"] = {**results["drift"]["meta"]["profile"], "seeds": [1]}
    text = render_report(results)
    assert ("> **Results of other settings in one folder**: drift.json (seeds [1], not [0]), against table1.json's. "
            "Each section shows its own file's numbers, not one sweep's") in text
    assert "other settings in one folder" not in render_report(fake_results())


def test_the_profile_fields_name_every_group_the_first_file_holds_not_only_its_last_sittings():
    results = fake_results()  # table1 holds r4 and t3; a resumed sweep's last sitting ran t3 alone
    results["table1"]["meta"]["profile"] = {**results["table1"]["meta"]["profile"], "groups": ["t3"]}
    assert '| groups | `["r4", "t3"]` |' in render_report(results)


def test_a_printed_interval_never_seems_to_touch_a_bound_it_misses_or_meets():
    import math

    from nets.claim_checks import check, log_check
    from nets.stats import Interval, PairedTest

    straddles = check("SI", Interval(0.952, 0.94496, 0.959, 4, "t"), ">=", 0.945)
    holds = check("SI", Interval(0.952, 0.94504, 0.959, 4, "t"), ">=", 0.945)
    assert straddles.outcome == "undecided" and "[0.94496, 0.959]" in straddles.detail  # read [0.945, 0.959]
    assert holds.outcome == "holds" and "[0.94504, 0.959]" in holds.detail
    ratio = log_check("s", PairedTest(Interval(-0.2, -0.3, math.log(0.90004), 4, "paired t"), 0.1, True), "<=", 0.9,
                      "0.9", "s")
    assert ratio.outcome == "undecided" and "0.90004]" in ratio.detail  # read [..., 0.9] beside "needs <= 0.9"
    assert "0.952 [0.94, 0.959]" in check("SI", Interval(0.952, 0.94, 0.959, 4, "t"), ">=", 0.945).detail  # 3 digits


def test_a_paired_ratio_row_with_a_seed_of_value_zero_names_it_instead_of_vanishing():
    from nets.interval_tables import table1_paired_rows
    from nets.report import fmt

    t1 = fake_table1()
    t1["groups"]["r4"]["methods"]["WT"]["runs"][1]["LI"] = 0.0  # exactly invariant on that seed: no log-ratio
    rows = [r for r in table1_paired_rows(t1, fmt) if r[0] == "R4" and r[1] == "LI"]
    assert [r[2] for r in rows] == ["DA / WT (ratio)", "IR / WT (ratio)", "IR / DA (ratio)"]  # two had vanished
    assert "seed 1 left out (a value <= 0)" in rows[0][3] and "seed 1" not in rows[2][3]


def test_the_paired_rows_are_a_minus_b_as_labelled_with_scipys_paired_interval():
    """DA - WT (points) and DA - WT for SI: the mean per-seed difference in that order and
    scipy.stats.ttest_rel's 95% interval, so a row can never show WT - DA under a DA - WT label."""
    from nets.interval_tables import table1_paired_rows
    from nets.report import fmt
    from scipy import stats

    t1 = fake_table1()
    da, wt = [0.90, 0.91, 0.93, 0.92], [0.95, 0.97, 0.96, 0.955]
    methods = t1["groups"]["r4"]["methods"]
    for k, run in enumerate(methods["DA"]["runs"]):
        run["accuracy"], run["SI"] = da[k], da[k] - 0.6
    for k, run in enumerate(methods["WT"]["runs"]):
        run["accuracy"], run["SI"] = wt[k], wt[k]
    rows = {(r[1], r[2]): r[3] for r in table1_paired_rows(t1, fmt) if r[0] == "R4"}
    for (measure, label), scale, shift in ((("accuracy", "DA - WT (points)"), 100.0, 0.0),
                                           (("SI", "DA - WT"), 1.0, 0.6)):
        a, b = scale * (np.array(da) - shift), scale * np.array(wt)
        ci = stats.ttest_rel(a, b).confidence_interval(0.95)
        assert rows[(measure, label)] == f"{fmt((a - b).mean())} [{fmt(ci.low)}, {fmt(ci.high)}]"
        assert ci.high < 0
