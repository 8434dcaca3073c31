"""The verdict per claim: each of the paper's claims 1-5 (with 1b and Figure 2's) decided from the measured
numbers by explicit thresholds (:class:`Thresholds`), every check on a 95% interval over seeds or
a paired comparison (:mod:`nets.stats`, :mod:`nets.evidence`), each a :class:`nets.claim_checks.Check`.

:func:`verdicts` is pure: results dicts (experiment name -> the JSON's dict) in, :class:`Verdict`
objects out. :mod:`nets.report` renders them into REPORT.md; :mod:`nets.cnn_report` applies them
to the CNN's results. A claim that does not reproduce is reported as such, with the numbers that
decide it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import nets.evidence as ev
from nets.claim_checks import Check, check, fmt, not_finite, pm_text, sigma_ratio_check
from nets.drift_checks import drift_checks
from nets.groups import group_label
from nets.nu_selection_notes import form_missed_target, missed_target, missed_target_note, selection_ties
from nets.results_io.paper import PAPER_FORMS
from nets.stats import claim_status

__all__ = [
    "MEASURES",
    "GROUP_NAMES",
    "FIGURE2_GROUPS",
    "CLAIMS",
    "PARTIAL_CLAIMS",
    "Thresholds",
    "Check",
    "Verdict",
    "verdicts",
    "fmt",
    "pm_text",
    # also importable from here, where they were defined before nets.nu_selection_notes
    "missed_target",
    "form_missed_target",
    "missed_target_note",
    "selection_ties",
]

MEASURES = ("accuracy", "LI", "DI", "SI")
GROUP_NAMES = {"r4": "R²₄ (4 rotations)", "t3": "T²₃ (3 x-translations)",
               "d4": "D²₄ (4 rotations, 4 reflections)"}
#: The groups the paper's Figure 2 shows (R²₄ only); the others' t-SNE checks are notes, beyond the paper.
FIGURE2_GROUPS = ("r4",)


@dataclass(frozen=True)
class Thresholds:
    """Every bound a verdict is decided by (accuracy in %). A check holds when the
    95% interval of its quantity over seeds lies wholly on the bound's side, fails
    when it lies wholly on the other side, and is undecided otherwise."""

    # (1) WT is exactly invariant
    wt_li_max: float = 1e-3
    wt_di_max: float = 1e-4
    wt_si_min: float = 0.99
    # (1b) WT has the highest accuracy in every group (Section 4.2: "the highest classification accuracy in both groups")
    wt_acc_margin_min: float = 0.0  # WT accuracy - DA's, and - IR's, >= this (points)
    # (2) DA classifies orbits well, low DI, yet high LI and low SI
    da_acc_gap_max: float = 3.0  # DA accuracy >= WT accuracy - this (points)
    da_di_max: float = 0.5  # nats
    da_li_min: float = 1.0
    da_si_max: float = 0.8
    # (3) IR reaches SI >= 0.95, LI near WT's, at a cost in accuracy
    ir_si_min: float = 0.945  # the paper's 0.95 at its two-decimal rounding
    ir_li_max: float = 0.1
    ir_acc_cost_min: float = 0.5  # IR accuracy <= WT accuracy - this (points)
    # (4) drift: DA's DI grows, WT's and IR's stay low, WT keeps more accuracy
    drift_da_growth_min: float = 2.0  # DI_DA(beta=1) >= this * DI_DA(beta=0)
    drift_low_di_max: float = 0.1  # max over beta of DI for WT and IR
    # (5) every IR form lowers sigma_max(J) below DA's
    spectral_ratio_max: float = 0.9  # sigma_IR <= this * sigma_DA
    common_share_note: float = 0.5  # a failing IR form whose class-common logit share is at least
    # this gets a note with sigma_max on the centered logits (no effect on the verdict)
    # Figure 2 (supplementary): orbit / class distance ratio in feature space
    tsne_wt_ratio_max: float = 0.05
    tsne_da_ratio_min: float = 0.5

    def describe(self) -> list[tuple[str, str, str]]:
        """(claim, quantity, threshold) rows for the report; each is decided on the
        95% interval of the quantity (:func:`nets.stats.decide`)."""
        t = self
        return [
            ("1", "WT: LI, DI, SI", f"LI <= {t.wt_li_max:g}, DI <= {t.wt_di_max:g}, SI >= {t.wt_si_min:g}"),
            ("1b", "WT: accuracy", f"paired WT - DA and WT - IR accuracy >= {t.wt_acc_margin_min:g} points"),
            ("2", "DA: accuracy", f"paired DA - WT accuracy >= -{t.da_acc_gap_max:g} points"),
            ("2", "DA: DI / LI / SI", f"DI <= {t.da_di_max:g}, LI >= {t.da_li_min:g}, SI <= {t.da_si_max:g}"),
            ("3", "IR: SI, LI", f"SI >= {t.ir_si_min:g} (0.95 at two decimals), LI <= {t.ir_li_max:g}"),
            ("3", "IR: accuracy cost", f"paired IR - WT accuracy <= -{t.ir_acc_cost_min:g} points"),
            ("4", "drift: DA's DI grows", f"DI_DA(beta=1) / DI_DA(beta=0) >= {t.drift_da_growth_min:g} (paired over seeds, log-ratio)"),
            ("4", "drift: WT's, IR's DI stay low", f"per-seed max over beta of DI <= {t.drift_low_di_max:g}"),
            ("4", "drift: WT keeps more accuracy",
             "paired WT - DA of the per-seed mean over beta > 0 of Acc ratio >= 0"),
            ("5", "sigma_max(J)", f"every IR form: sigma_IR / sigma_DA <= {t.spectral_ratio_max:g} (paired over seeds, log-ratio)"),
            ("5", "note only", f"a failing IR form whose logits are >= {t.common_share_note:g} class-common shift: "
                               "sigma_max of the centered logits is noted (verdict unchanged)"),
            ("Fig. 2", "orbit / class distance",
             f"WT <= {t.tsne_wt_ratio_max:g}, DA >= {t.tsne_da_ratio_min:g}, on R4 (the paper's figure); "
             "other groups are noted, not counted"),
        ]


@dataclass
class Verdict:
    claim: str  # "1", "1b", "2" .. "5", "Fig. 2"
    statement: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """:func:`nets.stats.claim_status` of the checks' outcomes."""
        n = max((c.n for c in self.checks if c.outcome == "undecided"), default=0)
        return claim_status([c.outcome for c in self.checks], n)


CLAIMS = {
    "1": "WT is exactly invariant (LI, DI about 0, SI = 1).",
    "1b": "WT has the highest accuracy in every group (Section 4.2: the performance upper bound).",
    "2": "DA classifies orbits well and has low DI, yet high LI and low SI.",
    "3": "IR reaches SI >= 0.95 and LI near WT's, at a cost in accuracy.",
    "4": "Under drift, DA's DI grows fast while WT's and IR's stay low; WT keeps more accuracy.",
    "5": "Every IR form lowers sigma_max(J) below DA's.",
    "Fig. 2": "On R²₄ (the paper's figure), orbit members lie far apart in DA's feature space (within the class), "
              "together in WT's.",
}


#: The claims each experiment's results decide (Figure 2's is R4's alone, so it is not listed): a claim
#: decided while its experiment's ``pending_groups`` is not empty gets a note naming the groups it rests on.
PARTIAL_CLAIMS = {"table1": ("1", "1b", "2", "3"), "drift": ("4",), "spectral": ("5",)}


def _mean(entry: Mapping | None, scale: float = 1.0) -> float | None:
    if not entry or entry.get("mean") is None:
        return None
    return scale * float(entry["mean"])


# ---- verdicts -------------------------------------------------------------------
def _table1_seeds(t1: Mapping, group: str, method: str, measure: str) -> ev.SeedValues:
    m = t1.get("groups", {}).get(group, {}).get("methods", {}).get(method) or {}
    return ev.per_seed(m.get("runs"), ev.measure(measure, 100.0 if measure == "accuracy" else 1.0))


def verdicts(results: Mapping[str, Mapping], thresholds: Thresholds = Thresholds()) -> list[Verdict]:
    """One :class:`Verdict` per claim from results dicts keyed by experiment name
    (``table1``, ``drift``, ``spectral``, ``tsne``); a missing experiment leaves its
    claim "not evaluated".

    Each check is decided on a 95% interval over seeds (:mod:`nets.stats`): a
    single model's number by Student's t interval on its per-seed values, a
    comparison of two models by a paired t-test over their common seeds (on
    differences for accuracy, on log-ratios for DI growth and sigma_max)."""
    t = thresholds
    out = [Verdict(k, s) for k, s in CLAIMS.items()]
    v = {x.claim: x for x in out}

    t1 = results.get("table1")
    if t1:
        for g in t1["groups"]:
            G = group_label(g)
            reads: dict[tuple[str, str], list[str]] = {}  # (method, measure) -> the claims whose checks read it

            def seeds(claim: str, m: str, key: str) -> ev.SeedValues:
                reads.setdefault((m, key), []).append(claim)
                return _table1_seeds(t1, g, m, key)

            def runs(m: str) -> list | None:
                return (t1["groups"][g].get("methods", {}).get(m) or {}).get("runs")

            def one(claim: str, m: str, key: str, op: str, bound: float) -> Check:
                return check(f"{G} {m} {key}", ev.interval(seeds(claim, m, key)), op, bound,
                             left_out=[not_finite(ev.left_out(runs(m), ev.measure(key)), key)])

            def lead(claim: str, m: str, other: str, op: str, bound: float, bound_text: str, what: str) -> Check:
                test = ev.paired(seeds(claim, m, "accuracy"), seeds(claim, other, "accuracy"))
                unread = ev.unread([runs(m), runs(other)], ev.measure("accuracy"))
                return check(what, test and test.interval, op, bound, bound_text,
                             label=f"{G} {m} - {other} accuracy (points)", test=test, counts=True,
                             left_out=[not_finite(unread, "accuracy")])

            # (1)
            v["1"].checks += [one("1", "WT", "LI", "<=", t.wt_li_max), one("1", "WT", "DI", "<=", t.wt_di_max),
                              one("1", "WT", "SI", ">=", t.wt_si_min)]
            # (1b)
            for other in ("DA", "IR"):
                v["1b"].checks.append(lead("1b", "WT", other, ">=", t.wt_acc_margin_min,
                                           f"{t.wt_acc_margin_min:g} points", f"{G} WT accuracy over {other}'s"))
            # (2)
            v["2"].checks += [
                lead("2", "DA", "WT", ">=", -t.da_acc_gap_max, f"-{t.da_acc_gap_max:g} points",
                     f"{G} DA accuracy (%)"),
                one("2", "DA", "DI", "<=", t.da_di_max), one("2", "DA", "LI", ">=", t.da_li_min),
                one("2", "DA", "SI", "<=", t.da_si_max),
            ]
            # (3)
            v["3"].checks += [
                one("3", "IR", "SI", ">=", t.ir_si_min), one("3", "IR", "LI", "<=", t.ir_li_max),
                lead("3", "IR", "WT", "<=", -t.ir_acc_cost_min, f"-{t.ir_acc_cost_min:g} points",
                     f"{G} IR accuracy (%)"),
            ]
            sel = t1["groups"][g].get("nu_selection")
            if missed_target(sel):
                v["3"].notes.append(missed_target_note(G, sel))
            for (m, key), claims in reads.items():  # a seed left out of a check: its claim says so
                for c in dict.fromkeys(claims):
                    v[c].notes += ev.left_out_notes(f"{G} {m}: {key}", runs(m), ev.measure(key))

    dr = results.get("drift")
    if dr:
        checks, notes = drift_checks(dr, t)
        v["4"].checks += checks
        v["4"].notes += notes

    sp = results.get("spectral")
    if sp:
        forms = (sp.get("meta", {}).get("profile") or {}).get("regularizers")  # None: recorded before the field
        left_out = [r for r in PAPER_FORMS if forms and r not in forms]  # none left out: DA alone, not evaluated
        for g, entry in sp["groups"].items():
            G = group_label(g)
            models = entry["models"]
            da_runs = models.get("DA", {}).get("runs")
            for key, m in models.items():
                v["5"].notes += ev.left_out_notes(f"{G} {key}: sigma_max", m.get("runs"), ev.measure("sigma_max"))
                if m["method"] != "IR":
                    continue
                pair, label = [m.get("runs"), da_runs], f"{G} IR-{m['regularizer']} / DA sigma_max"
                test, bad = ev.paired_log(*(ev.per_seed(r, ev.measure("sigma_max")) for r in pair))
                v["5"].notes += ev.log_left_out_notes(label, list(bad))
                c = sigma_ratio_check(f"{G} IR-{m['regularizer']} sigma_max", label, test, bad,
                                      ev.unread(pair, ev.measure("sigma_max")), t.spectral_ratio_max)
                v["5"].checks.append(c)
                # where a failing form's logits grew along the class-common direction the softmax
                # ignores, say what sigma_max is on the rest (informative; the verdict stays on f)
                share = _mean(m.get("common_logit_share"))
                centered = ev.paired(ev.per_seed(m.get("runs"), ev.measure("sigma_max_centered")),
                                     ev.per_seed(da_runs, ev.measure("sigma_max_centered")), log=True)
                if (c.outcome != "holds" and share is not None and share >= t.common_share_note
                        and centered is not None):
                    v["5"].notes.append(
                        f"{G} IR-{m['regularizer']}: {fmt(share)} of its logits' norm is a shift common to all "
                        f"classes, which the softmax ignores; on the centered logits sigma_max = "
                        f"{fmt(_mean(m.get('sigma_max_centered')))}, IR / DA = {ev.ratio_text(centered, fmt)} "
                        f"({ev.p_text(centered)}).")
            for reg, sel in (entry.get("nu_selections") or {}).items():
                if missed_target(sel):
                    v["5"].notes.append(missed_target_note(f"{G} IR-{reg}", sel))
            for reg in left_out:  # `spectral --regularizers` ran some of the paper's forms
                v["5"].checks.append(Check(f"{G} IR-{reg} sigma_max", "not measured",
                                           f"{G} IR-{reg} / DA sigma_max: not measured (spectral ran without "
                                           f"this form: --regularizers)"))

    ts = results.get("tsne")
    if ts:
        seeds = ts.get("meta", {}).get("seeds")
        for g, entry in ts["groups"].items():
            G = group_label(g)
            ms = entry["methods"]
            for m, op, bound in (("WT", "<=", t.tsne_wt_ratio_max), ("DA", ">=", t.tsne_da_ratio_min)):
                if m in ms:
                    runs = ev.tsne_runs(ms[m], seeds)
                    iv = ev.interval(ev.per_seed(runs, ev.measure("ratio")))
                    c = check(f"{G} {m} orbit/class distance", iv, op, bound,
                              left_out=[not_finite(ev.left_out(runs, ev.measure("ratio")), "orbit/class distance")])
                    if g in FIGURE2_GROUPS:
                        v["Fig. 2"].checks.append(c)
                        v["Fig. 2"].notes += ev.left_out_notes(f"{G} {m}: orbit/class distance", runs,
                                                               ev.measure("ratio"))
                    else:  # the paper's figure is R4's; other groups are evidence beyond it, not its verdict
                        v["Fig. 2"].notes.append(f"beyond the paper's figure (R4 only), not counted: {c.detail}")
    for name, claims in PARTIAL_CLAIMS.items():  # a claim decided on some of the profile's groups says which
        r = results.get(name) or {}
        pending, ran = r.get("pending_groups") or [], [group_label(g) for g in r.get("groups", {})]
        for claim in claims if pending and ran else ():
            if v[claim].checks:
                v[claim].notes.append(f"decided on {', '.join(ran)} only: `{name}` has not run on "
                                      f"{', '.join(group_label(g) for g in pending)}.")
    return out
