"""REPORT.md: our numbers beside the paper's, and a verdict per claim computed
from the measured numbers with explicit thresholds.

:func:`verdicts` and :func:`render_report` are pure (results dicts in, verdicts /
Markdown out); :func:`write_report` reads the JSON files of one results folder
and writes ``REPORT.md`` next to them. A claim that does not reproduce is
reported as such, with the numbers that decide it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import nets.evidence as ev
import nets.interval_tables as it
from nets.stats import Interval, Outcome, PairedTest, claim_status, decide

from nets.centered_report import centered_section
from nets.results_io import (  # the paper's numbers are re-exported here
    EXPERIMENTS,
    PAPER_CITATION,
    PAPER_TABLE1,
    PAPER_TABLE1_STD,
    read_json,
    result_sittings,
    write_text,
)

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE1_STD",
    "PAPER_CITATION",
    "Thresholds",
    "completeness",
    "Check",
    "Verdict",
    "verdicts",
    "render_report",
    "write_report",
    "load_results",
]

MEASURES = ("accuracy", "LI", "DI", "SI")
GROUP_NAMES = {"r4": "R²₄ (4 rotations)", "t3": "T²₃ (3 x-translations)"}

@dataclass(frozen=True)
class Thresholds:
    """Every bound a verdict is decided by (accuracy in %). A check holds when the
    95% interval of its quantity over seeds lies wholly on the bound's side, fails
    when it lies wholly on the other side, and is undecided otherwise."""

    # (1) WT is exactly invariant
    wt_li_max: float = 1e-3
    wt_di_max: float = 1e-4
    wt_si_min: float = 0.99
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
             f"WT <= {t.tsne_wt_ratio_max:g}, DA >= {t.tsne_da_ratio_min:g}"),
        ]


@dataclass
class Check:
    """One comparison of a measured number (with its 95% interval) with a threshold.

    ``outcome`` follows :func:`nets.stats.decide`; ``n`` is the number of seeds
    (pairs, for a paired comparison) the interval rests on."""

    what: str
    outcome: Outcome
    detail: str
    n: int = 0

    @property
    def passed(self) -> bool | None:
        """True when it holds, False when it fails, None when undecided or not measured."""
        return {"holds": True, "fails": False}.get(self.outcome)


@dataclass
class Verdict:
    claim: str  # "1" .. "5", "Fig. 2"
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
    "2": "DA classifies orbits well and has low DI, yet high LI and low SI.",
    "3": "IR reaches SI >= 0.95 and LI near WT's, at a cost in accuracy.",
    "4": "Under drift, DA's DI grows fast while WT's and IR's stay low; WT keeps more accuracy.",
    "5": "Every IR form lowers sigma_max(J) below DA's.",
    "Fig. 2": "Orbit members lie far apart in DA's feature space (within the class), together in WT's.",
}


# ---- formatting -----------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
    """Compact number: fixed for ordinary magnitudes, scientific for tiny ones."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) < 10 ** -(digits - 1) or abs(v) >= 1e5:
        return f"{v:.1e}"
    return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(digits - len(str(int(abs(v)))), 1)}f}"


def _pm(entry: Mapping | None, scale: float = 1.0, digits: int = 3) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    return f"{fmt(scale * entry['mean'], digits)} ± {fmt(scale * (entry.get('std') or 0.0), 2)}"


def _mean(entry: Mapping | None, scale: float = 1.0) -> float | None:
    if not entry or entry.get("mean") is None:
        return None
    return scale * float(entry["mean"])


_MARK = {"holds": "✓ holds", "fails": "✗ fails", "undecided": "? undecided"}


def _check(what: str, iv: Interval | None, op: str, bound: float | None, bound_text: str | None = None, *,
           label: str | None = None, shown: str | None = None, test: PairedTest | None = None) -> Check:
    """Decide ``iv <op> bound`` by :func:`nets.stats.decide` and say how."""
    outcome = decide(iv, op, bound)
    if outcome == "not measured":
        return Check(what, outcome, f"{what}: not measured (no per-seed values)")
    value = shown if shown is not None else ev.iv_text(iv, fmt)
    how = "" if test is None or not iv.defined else f" ({ev.p_text(test)})"
    mark = _MARK[outcome]
    if not iv.defined:  # one seed: no interval, so no decision; say which side the point lies on
        point = iv.estimate <= bound if op == "<=" else iv.estimate >= bound
        mark += f" (the point value {'meets' if point else 'misses'} it)"
    return Check(what, outcome, f"{label or what} = {value}{how} {mark} "
                                f"(needs {op} {bound_text if bound_text is not None else fmt(bound)})", iv.n)


def _log_check(what: str, test: PairedTest | None, op: str, ratio_bound: float, bound_text: str,
               label: str) -> Check:
    """Decide a paired log-ratio against ``log(ratio_bound)``, shown as a ratio."""
    if test is None:
        return _check(what, None, op, None)
    return _check(what, test.interval, op, math.log(ratio_bound), bound_text, label=label,
                  shown=ev.ratio_text(test, fmt), test=test)


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
            G = g.upper()

            def one(m: str, key: str) -> Interval | None:
                return ev.interval(_table1_seeds(t1, g, m, key))

            # (1)
            v["1"].checks += [
                _check(f"{G} WT LI", one("WT", "LI"), "<=", t.wt_li_max),
                _check(f"{G} WT DI", one("WT", "DI"), "<=", t.wt_di_max),
                _check(f"{G} WT SI", one("WT", "SI"), ">=", t.wt_si_min),
            ]
            # (2)
            gap = ev.paired(_table1_seeds(t1, g, "DA", "accuracy"), _table1_seeds(t1, g, "WT", "accuracy"))
            v["2"].checks += [
                _check(f"{G} DA accuracy (%)", gap and gap.interval, ">=", -t.da_acc_gap_max,
                       f"-{t.da_acc_gap_max:g} points", label=f"{G} DA - WT accuracy (points)", test=gap),
                _check(f"{G} DA DI", one("DA", "DI"), "<=", t.da_di_max),
                _check(f"{G} DA LI", one("DA", "LI"), ">=", t.da_li_min),
                _check(f"{G} DA SI", one("DA", "SI"), "<=", t.da_si_max),
            ]
            # (3)
            cost = ev.paired(_table1_seeds(t1, g, "IR", "accuracy"), _table1_seeds(t1, g, "WT", "accuracy"))
            v["3"].checks += [
                _check(f"{G} IR SI", one("IR", "SI"), ">=", t.ir_si_min),
                _check(f"{G} IR LI", one("IR", "LI"), "<=", t.ir_li_max),
                _check(f"{G} IR accuracy (%)", cost and cost.interval, "<=", -t.ir_acc_cost_min,
                       f"-{t.ir_acc_cost_min:g} points", label=f"{G} IR - WT accuracy (points)", test=cost),
            ]
            sel = t1["groups"][g].get("nu_selection")
            if missed_target(sel):
                v["3"].notes.append(_missed_target_note(G, sel))

    dr = results.get("drift")
    if dr:
        betas = list(dr["betas"])
        i0, i1 = betas.index(min(betas)), betas.index(max(betas))
        later = [i for i, b in enumerate(betas) if b > min(betas)]
        for g, methods in dr["groups"].items():
            G = g.upper()
            if "DA" in methods:
                runs = methods["DA"].get("runs")
                growth = ev.paired(ev.per_seed(runs, lambda r: r["DI"][i1]),
                                   ev.per_seed(runs, lambda r: r["DI"][i0]), log=True)
                v["4"].checks.append(_log_check(
                    f"{G} DA DI(beta={betas[i1]:g})", growth, ">=", t.drift_da_growth_min,
                    f"{t.drift_da_growth_min:g}", f"{G} DA DI(beta={betas[i1]:g}) / DI(beta={betas[i0]:g})"))
            for m in ("WT", "IR"):
                if m in methods:
                    worst = ev.per_seed(methods[m].get("runs"), lambda r: max(r["DI"]))
                    v["4"].checks.append(_check(f"{G} {m} max DI over beta", ev.interval(worst), "<=",
                                                t.drift_low_di_max))
            if "WT" in methods and "DA" in methods and later:
                def kept(m: str) -> ev.SeedValues:
                    return ev.per_seed(methods[m].get("runs"),
                                       lambda r: sum(r["accuracy_ratio"][i] for i in later) / len(later))
                diff = ev.paired(kept("WT"), kept("DA"))
                v["4"].checks.append(_check(f"{G} WT mean Acc ratio over beta>0", diff and diff.interval, ">=",
                                            0.0, "0 (WT keeps at least DA's share)",
                                            label=f"{G} WT - DA mean Acc ratio over beta>0", test=diff))

    sp = results.get("spectral")
    if sp:
        for g, entry in sp["groups"].items():
            G = g.upper()
            models = entry["models"]
            da_runs = models.get("DA", {}).get("runs")
            for key, m in models.items():
                if m["method"] != "IR":
                    continue
                test = ev.paired(ev.per_seed(m.get("runs"), ev.measure("sigma_max")),
                                 ev.per_seed(da_runs, ev.measure("sigma_max")), log=True)
                check = _log_check(f"{G} IR-{m['regularizer']} sigma_max", test, "<=", t.spectral_ratio_max,
                                   f"{t.spectral_ratio_max:g}", f"{G} IR-{m['regularizer']} / DA sigma_max")
                v["5"].checks.append(check)
                # where a failing form's logits grew along the class-common direction the softmax
                # ignores, say what sigma_max is on the rest (informative; the verdict stays on f)
                share = _mean(m.get("common_logit_share"))
                centered = ev.paired(ev.per_seed(m.get("runs"), ev.measure("sigma_max_centered")),
                                     ev.per_seed(da_runs, ev.measure("sigma_max_centered")), log=True)
                if (check.outcome != "holds" and share is not None and share >= t.common_share_note
                        and centered is not None):
                    v["5"].notes.append(
                        f"{G} IR-{m['regularizer']}: {fmt(share)} of its logits' norm is a shift common to all "
                        f"classes, which the softmax ignores; on the centered logits sigma_max = "
                        f"{fmt(_mean(m.get('sigma_max_centered')))}, IR / DA = {ev.ratio_text(centered, fmt)} "
                        f"({ev.p_text(centered)}).")
            for reg, sel in (entry.get("nu_selections") or {}).items():
                if missed_target(sel):
                    v["5"].notes.append(_missed_target_note(f"{G} IR-{reg}", sel))

    ts = results.get("tsne")
    if ts:
        seeds = ts.get("meta", {}).get("seeds")
        for g, entry in ts["groups"].items():
            G = g.upper()
            ms = entry["methods"]
            for m, op, bound in (("WT", "<=", t.tsne_wt_ratio_max), ("DA", ">=", t.tsne_da_ratio_min)):
                if m in ms:
                    iv = ev.interval(ev.per_seed(ev.tsne_runs(ms[m], seeds), ev.measure("ratio")))
                    v["Fig. 2"].checks.append(_check(f"{G} {m} orbit/class distance", iv, op, bound))
    return out


# ---- rendering ------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _paper_cell(group: str, method: str, k: int) -> str:
    row = PAPER_TABLE1.get(group, {}).get(method)
    if row is None:
        return "n/a"
    return f"{row[k]:g} ± {PAPER_TABLE1_STD[group][method][k]:g}"


def _figure(lines: list[str], fig_dir: str, stem: str, caption: str, available: set[str] | None) -> None:
    if available is not None and f"{stem}.png" not in available:
        lines.append(f"*(figure `{stem}` not drawn)*\n")
        return
    lines.append(f"![{caption}]({fig_dir}/{stem}.png)\n")
    lines.append(f"*{caption}* ([PDF]({fig_dir}/{stem}.pdf))\n")


def _selection_rows(g: str, reg: str, sel: Mapping) -> list[list[str]]:
    rows = []
    for nu, si, acc in zip(sel.get("grid", []), sel.get("si", []), sel.get("accuracy", [])):
        chosen = "**chosen**" if sel.get("chosen") is not None and math.isclose(nu, sel["chosen"]) else ""
        if si is None:  # the ascending search stopped before this nu
            rows.append([g.upper(), reg, f"{nu:g}", "not trained", "not trained",
                         "a smaller ν reached the target"])
            continue
        rows.append([g.upper(), reg, f"{nu:g}", fmt(si), fmt(None if acc is None else 100 * acc), chosen])
    return rows


def missed_target(sel: Mapping | None) -> bool:
    """Whether a nu selection record (``nets.experiments.table1.tune``) says no nu of
    its grid reached the SI target, so the largest-SI nu was used instead."""
    return bool(sel) and sel.get("reached_target", True) is False


def form_missed_target(entry: Mapping, model: Mapping) -> bool:
    """Whether ``model``, one of a Figure 5 group ``entry``'s models, is IR with a
    regularizer form whose nu selection missed the target (:func:`missed_target`)."""
    sel = (entry.get("nu_selections") or {}).get(model.get("regularizer") or "")
    return model["method"] == "IR" and missed_target(sel)


def _missed_target_note(label: str, sel: Mapping) -> str:
    """A verdict note for a selection where :func:`missed_target` holds."""
    return (f"{label}: no nu in the grid {sel.get('grid')} reached SI >= {sel.get('target')} on validation; "
            f"the largest-SI nu = {sel.get('chosen')} was used.")


def _missed_target_banner(label: str, sel: Mapping) -> str:
    """The report's highlighted line for a selection where :func:`missed_target` holds."""
    return (f"> **{label}: no ν reached SI ≥ {sel.get('target')} on validation**; "
            f"the largest-SI ν = {sel.get('chosen'):g} was used.\n")


def completeness(results: Mapping[str, Mapping]) -> list[str]:
    """What is missing from a sweep, one phrase per gap (empty when every
    experiment ran on every group): experiments not run, groups still pending."""
    gaps = []
    for name in EXPERIMENTS:
        r = results.get(name)
        if not r:
            gaps.append(f"`{name}` has not run")
        elif r.get("pending_groups"):
            done = ", ".join(g.upper() for g in r.get("groups", {})) or "none"
            gaps.append(f"`{name}` covers {done} only ({', '.join(g.upper() for g in r['pending_groups'])} pending)")
    return gaps


def render_report(results: Mapping[str, Mapping], *, thresholds: Thresholds = Thresholds(),
                  fig_dir: str = "figures", available_figures: set[str] | None = None,
                  command: str | None = None, total_wall_time_s: float | None = None) -> str:
    """The Markdown of REPORT.md from results dicts keyed by experiment name."""
    lines: list[str] = []
    any_meta = next((r["meta"] for r in results.values() if r and "meta" in r), {})
    prof = any_meta.get("profile", {})
    lines.append(f"# Reproduction report: profile `{prof.get('name', '?')}`\n")
    lines.append(
        "Checks the experimental claims of Section 4 of the paper (Moskalev et al., 2023, "
        "\"On genuine invariance learning without weight-tying\") on Transforming-MNIST. "
        "Every verdict below is computed by `nets/report.py` from the measured numbers with the thresholds "
        "listed; nothing is tuned toward the paper's values.\n")
    if prof.get("name") != "paper":
        lines.append(
            f"> **Not the paper's protocol**: profile `{prof.get('name')}` uses {len(prof.get('seeds', []))} seed(s) "
            f"and {prof.get('epochs')} epochs (paper: 4 seeds, 300 epochs), and fewer samples for some measures "
            "(see Provenance). Its verdicts describe these runs, not the paper's.\n")
    partial = completeness(results)
    if partial:
        lines.append("> **Partial results**: " + "; ".join(partial) + ". Verdicts use only what ran; a claim "
                     "whose experiments did not run is *not evaluated*. Running the same command again resumes "
                     "from the checkpoints.\n")
    run = [
        ("profile", f"`{prof.get('name', '?')}`"),
        ("seeds", ", ".join(str(s) for s in prof.get("seeds", []))),
        ("epochs", str(prof.get("epochs", "?"))),
        ("train / val / test", f"{prof.get('n_train')} / {prof.get('n_val')} / {prof.get('n_test')}"),
        ("device", f"{any_meta.get('device', '?')} (torch threads: "
                   f"{any_meta.get('versions', {}).get('torch_threads', '?')})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in any_meta.get("versions", {}).items()
                               if k in ("python", "torch", "numpy", "scikit-learn", "matplotlib"))),
        ("git commit", f"`{any_meta.get('git_commit')}`"
                       + (" (nets/ had uncommitted changes)" if any_meta.get("git_dirty") else "")),
    ]
    if command:
        run.append(("command", f"`{command}`"))
    if total_wall_time_s is not None:
        run.append(("wall time of the sweep",
                    f"{total_wall_time_s / 60:.1f} min ({total_wall_time_s:.0f} s); runs already in the "
                    "checkpoints are loaded, not retrained"))
    lines.append(_table(["", ""], run) + "\n")

    # verdicts
    lines.append("## Verdicts\n")
    vs = verdicts(results, thresholds)
    rows = []
    for x in vs:
        evidence = "<br>".join(c.detail for c in x.checks) or "—"
        if x.notes:
            evidence += "<br>" + "<br>".join(f"**note:** {n}" for n in x.notes)
        rows.append([x.claim, x.statement, f"**{x.status}**", evidence])
    lines.append(_table(["claim", "statement", "verdict", "evidence: mean [95% interval] over seeds"], rows) + "\n")
    lines.append(
        "How the verdicts are decided (details in `docs/statistics.md`): a single model's number is given with "
        "Student's t 95% interval on its mean over the seeds (n - 1 degrees of freedom: with 4 seeds the interval "
        "is mean ± 3.18 s / 2); a claim comparing two models is a paired t-test over their common seeds (the same "
        "seed gives both models the same initial weights and batches), on per-seed differences for accuracy and "
        "on per-seed log-ratios for DI growth and sigma_max (shown as geometric-mean ratios). A check *holds* when "
        "the whole interval lies on the threshold's side, *fails* when the whole interval lies on the other side, "
        "and is *undecided* when the interval straddles the threshold (or there is one seed, hence no interval). "
        "A claim: **holds** (every check holds), **partly holds** (some hold, some fail), **not supported** (checks "
        "fail, none holds), **undecided at n = k seeds** (none fails, some undecided). p-values are two-sided. "
        "Where `intervals.json` is present (`python -m nets intervals`), Table 1's and Figure 5's numbers also get "
        "a bootstrap interval over test samples (trained models fixed); verdicts use the interval over seeds.\n")
    lines.append("Thresholds (in `nets.report.Thresholds`; accuracy in %, DI in nats):\n")
    lines.append(_table(["claim", "quantity", "threshold"], thresholds.describe()) + "\n")

    # Table 1
    t1 = results.get("table1")
    lines.append("## Table 1: accuracy and invariance\n")
    if t1:
        proto = t1.get("protocol", {})
        lines.append(
            f"Ours (mean ± std over seeds {t1['meta'].get('seeds')}) beside the paper's ({PAPER_CITATION}). "
            + " ".join(v for v in proto.values() if isinstance(v, str)) + "\n")
        header = ["group", "model", "Acc % (ours)", "Acc % (paper)", "LI (ours)", "LI (paper)",
                  "DI (ours)", "DI (paper)", "SI (ours)", "SI (paper)"]
        rows = []
        for g, entry in t1["groups"].items():
            for m, e in entry["methods"].items():
                nu = f" (ν = {e['nu']:g})" if e.get("nu") is not None else ""
                rows.append([GROUP_NAMES.get(g, g), m + nu,
                             _pm(e.get("accuracy"), 100.0), _paper_cell(g, m, 0),
                             _pm(e.get("LI")), _paper_cell(g, m, 1),
                             _pm(e.get("DI")), _paper_cell(g, m, 2),
                             _pm(e.get("SI")), _paper_cell(g, m, 3)])
        lines.append(_table(header, rows) + "\n")
        _figure(lines, fig_dir, "table1", "Table 1 as bars; diamonds: the paper's values.", available_figures)
        lines.append("### Table 1 with 95% intervals beside the paper's spread\n")
        boot = results.get("intervals")
        lines.append("Ours: mean [Student's t 95% interval over seeds]"
                     + ("" if boot is None else "; beside it, the 95% bootstrap interval over test samples with the "
                        "trained models held fixed (`intervals.json`: " + boot.get("protocol", {}).get("interval", "").rstrip(".")
                        + ")") + ". " + it.WITHIN_RULE + " The \"within\" column uses the interval over seeds, "
                     "the spread the paper reports.\n")
        lines.append(_table(["group", "model", "measure", "ours (t over seeds)"]
                            + ([] if boot is None else ["ours (bootstrap over test samples)"])
                            + ["paper", "paper's range", "within"],
                            it.table1_interval_rows(t1, PAPER_TABLE1, PAPER_TABLE1_STD, GROUP_NAMES, fmt, boot))
                     + "\n")
        lines.append("### Paired comparisons of the Table 1 models\n")
        lines.append("Over the common seeds (same initial weights and batches per seed): accuracy (points) and SI as "
                     "the mean per-seed difference, LI and DI as the geometric-mean ratio (paired t-test on the "
                     "per-seed log-ratios); [95% interval]; two-sided p-value of the paired t-test "
                     "(`scipy.stats.ttest_rel`).\n")
        lines.append(_table(["group", "measure", "comparison", "estimate [95% interval]", "test"],
                            it.table1_paired_rows(t1, fmt)) + "\n")
        lines.append("### Choice of ν for IR (logit regularizer)\n")
        rows = []
        for g, entry in t1["groups"].items():
            sel = entry.get("nu_selection")
            if sel:
                rows += _selection_rows(g, sel.get("regularizer", "logit"), sel)
                if missed_target(sel):
                    lines.append(_missed_target_banner(g.upper(), sel))
        lines.append(_table(["group", "regularizer", "ν", "SI (validation)", "Acc % (validation)", ""], rows)
                     + "\n")
        _figure(lines, fig_dir, "nu_selection_table1", "SI and validation accuracy against ν.",
                available_figures)
    else:
        lines.append("*(table1 not run)*\n")

    # Figure 2
    ts = results.get("tsne")
    lines.append("## Figure 2: penultimate features (t-SNE)\n")
    if ts:
        proto = ts.get("protocol", {})
        lines.append(" ".join(str(v) for v in proto.values() if isinstance(v, str)) + "\n")
        seeds = ts.get("meta", {}).get("seeds")
        rows = [[g.upper(), m, _pm(e.get("ratio")), it.seed_cell(ev.tsne_runs(e, seeds), "ratio", fmt)]
                for g, entry in ts["groups"].items() for m, e in entry["methods"].items()]
        lines.append(_table(["group", "model", "orbit / class distance (features), mean ± std",
                             "mean [95% t interval over seeds]"], rows) + "\n")
        _figure(lines, fig_dir, "tsne", "t-SNE of penultimate features; lines join one orbit.", available_figures)
    else:
        lines.append("*(tsne not run)*\n")

    # Figures 1 and 3
    sa = results.get("saliency")
    lines.append("## Figures 1 and 3: saliency maps realigned to a common orientation\n")
    if sa:
        lines.append(" ".join(str(v) for v in sa.get("protocol", {}).values() if isinstance(v, str)) + "\n")
        for g in sa["groups"]:
            _figure(lines, fig_dir, f"saliency_{g}", f"{g.upper()}: g⁻¹ m(g x) for DA, IR and WT.",
                    available_figures)
    else:
        lines.append("*(saliency not run)*\n")

    # Figure 4
    dr = results.get("drift")
    lines.append("## Figure 4: invariance and accuracy under distribution drift\n")
    if dr:
        lines.append(" ".join(str(v) for v in dr.get("protocol", {}).values() if isinstance(v, str)) + "\n")
        betas = dr["betas"]
        show = sorted({0, len(betas) // 2, len(betas) - 1})
        header = ["group", "model"] + [f"DI β={betas[i]:g}" for i in show] + \
                 [f"Acc ratio β={betas[i]:g}" for i in show if i > 0]
        rows = []
        for g, methods in dr["groups"].items():
            for m, e in methods.items():
                rows.append([g.upper(), m] + [it.run_list_cell(e.get("runs"), "DI", i, fmt) for i in show] +
                            [it.run_list_cell(e.get("runs"), "accuracy_ratio", i, fmt) for i in show if i > 0])
        lines.append("Mean [Student's t 95% interval over seeds]; the paper gives Figure 4 as a plot, without "
                     "numbers to set beside these.\n")
        lines.append(_table(header, rows) + "\n")
        _figure(lines, fig_dir, "drift", "DI (top) and accuracy ratio (bottom) against the drift degree β.",
                available_figures)
    else:
        lines.append("*(drift not run)*\n")

    # Figure 5
    sp = results.get("spectral")
    lines.append("## Figure 5: invariance-induced spectral decay\n")
    if sp:
        lines.append(" ".join(str(v) for v in sp.get("protocol", {}).values() if isinstance(v, str)) + "\n")
        rows = []
        sel_rows = []
        for g, entry in sp["groups"].items():
            for key, m in entry["models"].items():
                runs = m.get("runs")
                da_runs = entry["models"].get("DA", {}).get("runs")
                rows.append([g.upper(), key, "—" if m.get("nu") is None else f"{m['nu']:g}",
                             it.seed_cell(runs, "sigma_max", fmt), it.seed_cell(runs, "sigma_max_centered", fmt),
                             "—" if key == "DA" else it.paired_ratio_cell(runs, da_runs, "sigma_max", fmt),
                             it.seed_cell(runs, "common_logit_share", fmt),
                             it.seed_cell(runs, "accuracy", fmt, 100.0)])
            for reg, sel in (entry.get("nu_selections") or {}).items():
                sel_rows += _selection_rows(g, reg, sel)
                if missed_target(sel):
                    lines.append(_missed_target_banner(f"{g.upper()} IR-{reg}", sel))
        lines.append("Mean [Student's t 95% interval over seeds]; IR / DA: the geometric-mean ratio of σ_max(J) "
                     "over common seeds, its 95% interval and the paired t-test on the log-ratios. The paper gives "
                     "Figure 5 as a plot, without numbers to set beside these.\n")
        lines.append(_table(["group", "model", "ν", "σ_max(J)", "σ_max(J), centered logits", "σ_max(J): IR / DA",
                             "class-common share of the logits", "Acc % (test orbit)"], rows) + "\n")
        boot = results.get("intervals")
        if boot:
            lines.append("The same numbers with the 95% bootstrap interval over test samples, trained models held "
                         "fixed (`intervals.json`; " + boot.get("protocol", {}).get("ratio", "").rstrip(".") + "):\n")
            lines.append(_table(["group", "model", "σ_max(J)", "σ_max(J), centered logits",
                                 "mean σ_max: IR / DA", "class-common share"],
                                it.spectral_bootstrap_rows(boot, fmt)) + "\n")
        _figure(lines, fig_dir, "spectral", "σ_max of the input Jacobian (top) and accuracy (bottom).",
                available_figures)
        lines.append("### Choice of ν per regularizer form\n")
        lines.append(_table(["group", "regularizer", "ν", "SI (validation)", "Acc % (validation)", ""], sel_rows)
                     + "\n")
        _figure(lines, fig_dir, "nu_selection_spectral", "SI and validation accuracy against ν per form.",
                available_figures)
    else:
        lines.append("*(spectral not run)*\n")

    lines += centered_section(results.get("centered"), ratio_max=thresholds.spectral_ratio_max, fmt=fmt,
                              fig_dir=fig_dir, available_figures=available_figures)  # ours: only with centered.json

    # provenance
    lines.append("## Provenance\n")
    rows = []
    for name, r in results.items():
        if not r or "meta" not in r:
            continue
        m = r["meta"]
        sittings = result_sittings(r)
        if len(sittings) <= 1:
            rows.append([name, f"`{m.get('command')}`", f"{m.get('wall_time_s', 0):.0f}", m.get("device", "?"),
                         m.get("started_at", "?")])
            continue
        for groups, p in sittings:  # computed in several sittings (`--groups`): one row each
            rows.append([f"{name} ({', '.join(groups)})", f"`{p.get('command')}`",
                         f"{p.get('wall_time_s') or 0:.0f}", p.get("device", "?"), p.get("started_at", "?")])
    lines.append(_table(["experiment", "command", "wall time (s)", "device", "started"], rows) + "\n")
    if prof:
        lines.append("Profile fields:\n")
        lines.append(_table(["field", "value"], [[k, f"`{json.dumps(v)}`"] for k, v in prof.items()]) + "\n")
    return "\n".join(lines)


# ---- IO -------------------------------------------------------------------------
def load_results(results_dir: str | os.PathLike,
                 experiments: Sequence[str] = ("table1", "drift", "spectral", "tsne", "saliency", "intervals",
                                               "centered"),
                 ) -> dict[str, dict]:
    """The JSON of every experiment present in ``results_dir``."""
    out = {}
    for name in experiments:
        p = Path(results_dir) / f"{name}.json"
        if p.exists():
            out[name] = read_json(p)  # a damaged file: ResultsFileError naming it
    return out


def write_report(results_dir: str | os.PathLike, *, command: str | None = None,
                 total_wall_time_s: float | None = None, thresholds: Thresholds = Thresholds()) -> Path:
    """Write ``<results_dir>/REPORT.md`` (atomically) from the JSON files there.

    ``command`` and ``total_wall_time_s`` default to those of ``reproduce.json``
    (the last ``reproduce`` sweep), when present."""
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    sweep = results_dir / "reproduce.json"  # written by `reproduce`: the sweep's command and wall time
    if sweep.exists():
        meta = read_json(sweep).get("meta", {})
        command = command if command is not None else meta.get("command")
        total_wall_time_s = total_wall_time_s if total_wall_time_s is not None else meta.get("wall_time_s")
    fig_dir = results_dir / "figures"
    available = {p.name for p in fig_dir.glob("*.png")} if fig_dir.exists() else set()
    text = render_report(results, thresholds=thresholds, fig_dir="figures", available_figures=available,
                         command=command, total_wall_time_s=total_wall_time_s)
    path = results_dir / "REPORT.md"
    return write_text(path, text)
