"""REPORT.md's subsection for the centered normalized-logit form (ours, beyond the paper), under
claim 5: its Figure 5 numbers beside DA's and the paper's three forms (all from ``centered.json``),
the choice of nu, and a verdict: does closing the class-common loophole restore claim 5 for the
normalized family, i.e. does the centered form reach validation SI >= the target with sigma_max(J)
at most ``ratio_max`` x DA's (claim 5's test, ``nets.report.Thresholds.spectral_ratio_max``)?

Pure: a results dict in, Markdown lines out; nothing when ``centered.json`` is absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping

__all__ = ["GroupCheck", "centered_checks", "centered_verdict", "centered_section"]

Outcome = Literal["yes", "partly", "no", "not evaluated"]
LABELS = {"logit": "IR, logit", "kl": "IR, KL", "normalized_logit": "IR, normalized logit",
          "centered_normalized_logit": "**IR, centered normalized logit (ours)**"}


@dataclass(frozen=True)
class GroupCheck:
    """Claim 5's test for the centered form on one group."""

    group: str
    sigma: float | None  # mean sigma_max(J) of the centered form
    da_sigma: float | None  # DA's, from spectral.json
    reached_target: bool  # validation SI >= target at the chosen nu
    ratio_max: float

    @property
    def ratio(self) -> float | None:
        return None if self.sigma is None or not self.da_sigma else self.sigma / self.da_sigma

    @property
    def passed(self) -> bool | None:
        return None if self.ratio is None else bool(self.reached_target and self.ratio <= self.ratio_max)


def _mean(entry: Mapping | None) -> float | None:
    return None if not entry or entry.get("mean") is None else float(entry["mean"])


def centered_checks(centered: Mapping, ratio_max: float) -> list[GroupCheck]:
    """One :class:`GroupCheck` per group of a ``centered.json`` dict."""
    out = []
    for g, entry in centered.get("groups", {}).items():
        da = entry.get("comparison", {}).get("DA", {})
        out.append(GroupCheck(g, _mean(entry["model"].get("sigma_max")), _mean(da.get("sigma_max")),
                              bool(entry.get("nu_selection", {}).get("reached_target", False)), ratio_max))
    return out


def centered_verdict(checks: list[GroupCheck]) -> Outcome:
    """``yes`` when every group passes, ``no`` when none does, ``partly`` otherwise."""
    decided = [c.passed for c in checks if c.passed is not None]
    if not decided:
        return "not evaluated"
    if all(decided) and len(decided) == len(checks):
        return "yes"
    return "no" if not any(decided) else "partly"


def _pm(entry: Mapping | None, scale: float = 1.0) -> str:
    from nets.report import fmt

    if not entry or entry.get("mean") is None:
        return "n/a"
    return f"{fmt(scale * entry['mean'])} ± {fmt(scale * (entry.get('std') or 0.0), 2)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _check_line(c: GroupCheck, target: float) -> str:
    from nets.report import fmt

    if c.passed is None:
        return f"{c.group.upper()}: not measured"
    si = f"validation SI {'≥' if c.reached_target else 'below'} {target:g}"
    sign = "≤" if c.ratio <= c.ratio_max else ">"
    return (f"{c.group.upper()}: σ_max {fmt(c.sigma)} = {fmt(c.ratio)} x DA's {fmt(c.da_sigma)} ({sign} "
            f"{c.ratio_max:g}), {si} {'✓' if c.passed else '✗'}")


def centered_section(centered: Mapping | None, *, ratio_max: float, fig_dir: str = "figures",
                     available_figures: set[str] | None = None) -> list[str]:
    """The Markdown lines of the subsection (``[]`` when ``centered`` is ``None``)."""
    from nets.report import fmt

    if not centered:
        return []
    form = centered.get("form", {})
    target = next((e["nu_selection"].get("target") for e in centered["groups"].values()), 0.95)
    lines = ["### Beyond the paper: the centered normalized-logit form\n",
             f"`{form.get('name')}`: {form.get('equation')} ({form.get('origin')}). "
             + " ".join(v for v in centered.get("protocol", {}).values() if isinstance(v, str))
             + f" (`spectral.json` started {centered.get('spectral_source', {}).get('started_at')}.) "
               "† marks a form whose grid never reached the SI target (largest-SI ν used).\n"]
    rows, sel_rows = [], []
    for g, entry in centered["groups"].items():
        models = [*entry["comparison"].values(),
                  {**entry["model"], "reached_target": entry["nu_selection"].get("reached_target", True)}]
        for m in models:
            label = LABELS.get(m.get("regularizer"), m.get("regularizer")) if m["method"] == "IR" else m["method"]
            nu = "" if m.get("nu") is None else f"{m['nu']:g}" + (" †" if m.get("reached_target") is False else "")
            rows.append([g.upper(), label, nu, _pm(m.get("sigma_max")), _pm(m.get("sigma_max_centered")),
                         _pm(m.get("common_logit_share")), _pm(m.get("accuracy"), 100.0)])
        sel = entry["nu_selection"]
        for nu, si, acc in zip(sel.get("grid", []), sel.get("si", []), sel.get("accuracy", [])):
            chosen = sel.get("chosen") is not None and math.isclose(nu, sel["chosen"])
            sel_rows.append([g.upper(), f"{nu:g}", "not trained" if si is None else fmt(si),
                             "not trained" if acc is None else fmt(100 * acc), "**chosen**" if chosen else ""])
    lines += _table(["group", "model", "ν", "σ_max(J)", "σ_max(J), centered logits",
                     "class-common share of the logits", "Acc % (test orbit)"], rows)
    checks = centered_checks(centered, ratio_max)
    answer = centered_verdict(checks)
    lines.append(f"**Does closing the loophole restore claim 5 for the normalized family? {answer}** "
                 f"(needs, per group, validation SI ≥ {target:g} and σ_max(J) ≤ {ratio_max:g} x DA's): "
                 + "; ".join(_check_line(c, target) for c in checks) + ".\n")
    lines.append("Choice of ν for the centered form (ascending search, smallest ν first):\n")
    lines += _table(["group", "ν", "SI (validation)", "Acc % (validation)", ""], sel_rows)
    if available_figures is not None and "centered.png" not in available_figures:
        lines.append("*(figure `centered` not drawn)*\n")
    else:
        cap = "Figure 5 with the centered normalized form: σ_max(J) (top; diamonds: centered logits), accuracy (bottom)."
        lines += [f"![{cap}]({fig_dir}/centered.png)\n", f"*{cap}* ([PDF]({fig_dir}/centered.pdf))\n"]
    return lines
