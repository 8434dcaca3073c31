"""REPORT.md's subsections for our two variants of the normalized-logit form (beyond the paper),
under Figure 5: the centered form (``centered.json``) and the detached form (``detached.json``).
Each gives the form's numbers beside DA's and the paper's three forms (all from its results file),
the choice of nu, and a verdict on the question :data:`WORDING` words per form: does taking away
the class-common loophole give the normalized family claim 5's lower sigma_max? Per group, as
claim 5 is decided for the other forms (``nets.report``): the paired t-test over common seeds of
log(sigma_IR / sigma_DA) against log(``ratio_max``), decided by :func:`nets.stats.decide` on its
95% interval (an undecided one with its planning figure of seeds); and the chosen nu must have
reached validation SI >= the target (else the group fails: the form was never tuned to the claim's
premise). The answer combines the groups with :func:`nets.stats.claim_status`.

Pure: a results dict in, Markdown lines out; nothing when its results file is absent. The number
format ``fmt`` is passed in by the report (this module imports only the statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple, Sequence

from nets.evidence import measure, paired_log, per_seed, ratio_text, seeds_text, unread
from nets.groups import group_label
from nets.markdown import figure_lines, markdown_table, model_label
from nets.claim_checks import Check, planning_text, sigma_ratio_check
from nets.stats import Outcome, PairedTest, claim_status
from nets.train import CENTERED_FORM, DETACHED_FORM
from nets.verdicts import pm_text

__all__ = ["GroupCheck", "Wording", "WORDING", "centered_checks", "centered_verdict", "centered_section"]

ANSWERS = {"holds": "yes", "not supported": "no", "partly holds": "partly"}


class Wording(NamedTuple):
    """How a form of ours is named in its subsection, and the question its verdict answers."""

    title: str  # "### Beyond the paper: <title>"
    short: str  # in "Choice of ν for <short>"
    caption: str  # in "Figure 5 with <caption>: ..."
    question: str
    stem: str  # its results file and figure: <stem>.json, figures/<stem>


#: Per form of ours (the ``form.name`` its results file records).
WORDING = {
    CENTERED_FORM: Wording("the centered normalized-logit form", "the centered form", "the centered normalized form",
                           "Does closing the loophole restore claim 5 for the normalized family?", "centered"),
    DETACHED_FORM: Wording("the normalized-logit form with its denominator detached", "the detached form",
                           "the detached normalized form",
                           "With no gradient through ||f(x)||², does the normalized form lower σ_max as claim 5 "
                           "says?",
                           "detached"),
}


@dataclass(frozen=True)
class GroupCheck:
    """Claim 5's test for the centered form on one group."""

    group: str
    test: PairedTest | None  # log(sigma_centered_form / sigma_DA) over the common seeds where both are > 0
    reached_target: bool  # validation SI >= target at the chosen nu
    ratio_max: float
    left_out: Mapping[int, float] = field(default_factory=dict)  # seed -> its log-ratio's limit (paired_log)
    unread: Sequence[int] = ()  # common seeds whose sigma_max is missing or not finite (nets.evidence.unread)

    @property
    def sigma_check(self) -> Check:
        """The paired log-ratio decided against ``ratio_max`` as the verdicts decide claim 5 for the paper's
        forms, undecided, not holds, where a seed left out lies or may lie on the failing side
        (:func:`~nets.claim_checks.sigma_ratio_check`)."""
        return sigma_ratio_check("σ_max / DA's", "σ_max / DA's", self.test, self.left_out, self.unread,
                                 self.ratio_max, "σ_max")

    @property
    def sigma_outcome(self) -> Outcome:
        """:attr:`sigma_check`'s outcome; undecided where every seed was left out (no log-ratio, or not
        finite), ``not measured`` only where the form has no seeds in common with DA."""
        if self.test is None:
            return "undecided" if self.left_out or self.unread else "not measured"
        return self.sigma_check.outcome

    @property
    def outcome(self) -> Outcome:
        """``fails`` when the SI target was missed (whatever sigma_max does), else the sigma decision."""
        if self.sigma_outcome == "not measured":
            return "not measured"
        return self.sigma_outcome if self.reached_target else "fails"


def centered_checks(centered: Mapping, ratio_max: float, groups: Sequence[str] = ()) -> list[GroupCheck]:
    """One :class:`GroupCheck` per group of a ``centered.json`` dict, then one ("not measured") per
    group of ``groups`` it lacks (the groups Figure 5 covers, when the form ran on fewer)."""
    out = []
    for g, entry in centered.get("groups", {}).items():
        da = entry.get("comparison", {}).get("DA", {})
        runs = [entry["model"].get("runs"), da.get("runs")]
        test, bad = paired_log(*(per_seed(r, measure("sigma_max")) for r in runs))
        out.append(GroupCheck(g, test, bool(entry.get("nu_selection", {}).get("reached_target", False)), ratio_max,
                              bad, unread(runs, measure("sigma_max"))))
    out += [GroupCheck(g, None, False, ratio_max) for g in groups if g not in centered.get("groups", {})]
    return out


def centered_verdict(checks: list[GroupCheck]) -> str:
    """``yes`` / ``no`` / ``partly`` / ``undecided at n = k seeds`` / ``not evaluated``
    (:func:`nets.stats.claim_status` over the groups' outcomes). A failing group answers ``no``
    whatever the others; otherwise groups not measured are named (``yes on R4 (T3 not measured)``)."""
    n = min((c.test.n for c in checks if c.test is not None), default=0)
    status = claim_status([c.outcome for c in checks], n)
    missing = [group_label(c.group) for c in checks if c.outcome == "not measured"]
    if not missing or status in ("not supported", "not evaluated"):
        return ANSWERS.get(status, status)
    measured = [c for c in checks if c.outcome != "not measured"]
    inner = claim_status([c.outcome for c in measured], n)
    return (f"{ANSWERS.get(inner, inner)} on {', '.join(group_label(c.group) for c in measured)} "
            f"({', '.join(missing)} not measured)")


def _check_line(c: GroupCheck, target: float, fmt: Callable[..., str]) -> str:
    if c.test is None and not c.left_out and not c.unread:
        return f"{group_label(c.group)}: not measured"
    si = f"validation SI {'≥' if c.reached_target else 'below'} {target:g}"
    sigma = c.sigma_outcome
    planned = c.sigma_check
    if planned.seeds_to_decide is not None:  # a planning figure, as every undecided check of the report gives
        sigma += f"; {planning_text(planned.seeds_to_decide, planned.towards)}"
    if c.left_out:
        where = [text for hit, text in ((math.inf in c.left_out.values(), "where DA's is 0, on the failing side"),
                                        (any(map(math.isnan, c.left_out.values())), "where both are 0, on an "
                                                                                     "unknown one")) if hit]
        sigma += (f"; {seeds_text(sorted(c.left_out))} left out, a σ_max <= 0 has no log-ratio"
                  + (f" ({'; '.join(where)})" if where else ""))
    if c.unread:
        sigma += f"; {seeds_text(list(c.unread))} left out, σ_max not finite (where it lies is unknown)"
    ratio = "no seed has one" if c.test is None else ratio_text(c.test, fmt)
    return (f"{group_label(c.group)}: σ_max / DA's = {ratio} vs {c.ratio_max:g} "
            f"({sigma}), {si}; so **{c.outcome}**")


def centered_section(centered: Mapping | None, *, ratio_max: float, fmt: Callable[..., str],
                     fig_dir: str = "figures", available_figures: set[str] | None = None,
                     groups: Sequence[str] = ()) -> list[str]:
    """The Markdown lines of the subsection (``[]`` when ``centered`` is ``None``); ``fmt``
    formats a number (``nets.verdicts.fmt``); ``groups``: those the verdict should cover (Figure 5's),
    a group the centered form has not run on being named "not measured"."""
    if not centered:
        return []
    form = centered.get("form", {})
    words = WORDING[form.get("name", CENTERED_FORM)]
    target = next((e["nu_selection"].get("target") for e in centered["groups"].values()), 0.95)
    lines = [f"### Beyond the paper: {words.title}\n",
             f"`{form.get('name')}`: {form.get('equation')} ({form.get('origin')}). "
             + " ".join(v for v in centered.get("protocol", {}).values() if isinstance(v, str))
             + f" (`spectral.json` started {centered.get('spectral_source', {}).get('started_at')}.) "
               "† marks a form whose grid never reached the SI target (largest-SI ν used).\n"]
    rows, sel_rows = [], []
    for g, entry in centered["groups"].items():
        models = [*entry["comparison"].values(),
                  {**entry["model"], "reached_target": entry["nu_selection"].get("reached_target", True)}]
        for m in models:
            label = model_label(m, bold=(CENTERED_FORM, DETACHED_FORM))
            nu = "" if m.get("nu") is None else f"{m['nu']:g}" + (" †" if m.get("reached_target") is False else "")
            rows.append([group_label(g), label, nu] + [pm_text(m.get(k)) for k in
                                                  ("sigma_max", "sigma_max_centered", "common_logit_share")]
                        + [pm_text(m.get("accuracy"), 100.0)])
        sel = entry["nu_selection"]
        for nu, si, acc in zip(sel.get("grid", []), sel.get("si", []), sel.get("accuracy", [])):
            chosen = sel.get("chosen") is not None and math.isclose(nu, sel["chosen"])
            sel_rows.append([group_label(g), f"{nu:g}", "not trained" if si is None else fmt(si),
                             "not trained" if acc is None else fmt(100 * acc), "**chosen**" if chosen else ""])
    lines += [markdown_table(["group", "model", "ν", "σ_max(J)", "σ_max(J), centered logits",
                              "class-common share of the logits", "Acc % (test orbit)"], rows), ""]
    checks = centered_checks(centered, ratio_max, groups)
    answer = centered_verdict(checks)
    lines.append(f"**{words.question} {answer}** "
                 f"(needs, per group, validation SI ≥ {target:g} at the chosen ν, and σ_max(J) ≤ {ratio_max:g} x "
                 "DA's, decided on the 95% interval of the paired log-ratio over common seeds): "
                 + "; ".join(_check_line(c, target, fmt) for c in checks) + ".\n")
    lines.append(f"Choice of ν for {words.short} (ascending search, smallest ν first):\n")
    lines += [markdown_table(["group", "ν", "SI (validation)", "Acc % (validation)", ""], sel_rows), ""]
    cap = f"Figure 5 with {words.caption}: σ_max(J) (top; diamonds: centered logits), accuracy (bottom)."
    return lines + figure_lines(fig_dir, words.stem, cap, available_figures)
