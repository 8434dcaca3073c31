"""One check of a measured number against a claim's bound, and how it reads in REPORT.md.

:func:`check` decides a 95% interval against a bound (:func:`nets.stats.decide`): it holds when
the interval lies wholly on the bound's side, fails when it lies wholly on the other, and is
undecided otherwise, with a planning figure of the seeds that would decide it; :func:`log_check`
does so for a paired log-ratio, shown as a ratio. :func:`fmt` and :func:`pm_text` are the
report's number formatters. :mod:`nets.verdicts` builds the claims' verdicts from these checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import nets.evidence as ev
from nets.stats import MAX_PLANNED_SEEDS, Interval, Outcome, PairedTest, decide, seeds_to_decide, tied_counts

__all__ = ["Check", "LeftOut", "blocked_outcomes", "check", "tied_counts", "outcome_left_out", "log_check",
           "not_finite", "sigma_ratio_check", "planning_text", "fmt", "digits_apart", "pm_text"]


@dataclass
class Check:
    """One comparison of a measured number (with its 95% interval) with a threshold.

    ``outcome`` follows :func:`nets.stats.decide`; ``n`` is the number of seeds
    (pairs, for a paired comparison) the interval rests on; for an undecided check on a t interval,
    ``seeds_to_decide`` is :func:`nets.stats.seeds_to_decide` (a planning figure) and ``towards``
    the outcome its estimate's side of the bound points to ("holds" or "fails")."""

    what: str
    outcome: Outcome
    detail: str
    n: int = 0
    seeds_to_decide: int | None = None
    towards: Outcome | None = None

    @property
    def passed(self) -> bool | None:
        """True when it holds, False when it fails, None when undecided or not measured."""
        return {"holds": True, "fails": False}.get(self.outcome)


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


def digits_apart(edges: Sequence[float], bound: float | None, shown=lambda v: v, digits: int = 3) -> int:
    """The significant digits (from ``digits``, at most 6) at which every interval edge of ``edges`` that is
    not the bound reads apart from it (``shown``: how both are printed, ``math.exp`` for a log-ratio), so a
    printed interval never seems to touch the bound that it misses, or cross one it meets."""
    def reads_as_bound(e: float) -> bool:  # as numbers: 0.9996 prints "1" and 1.0 "1.00", the same value
        a, b = fmt(shown(e), digits), fmt(shown(bound), digits)
        return a == b or ("n/a" not in (a, b) and float(a) == float(b))

    while digits < 6 and bound is not None and any(e != bound and math.isfinite(e) and reads_as_bound(e)
                                                   for e in edges):
        digits += 1
    return digits


def pm_text(entry: Mapping | None, scale: float = 1.0, digits: int = 3) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    return f"{fmt(scale * entry['mean'], digits)} ± {fmt(scale * (entry.get('std') or 0.0), 2)}"


_MARK = {"holds": "✓ holds", "fails": "✗ fails", "undecided": "? undecided"}


LeftOut = tuple[Sequence[int], str] | tuple[Sequence[int], str, str]
"""Seeds left out of a check's interval and why: ``(seeds, why)`` for seeds that lie on its failing side,
or ``(seeds, why, side)`` with ``side`` ``"failing"``, ``"holding"`` or ``"either"`` (their values
unknown: :func:`not_finite`)."""

_BLOCKS = {"failing": {"holds"}, "holding": {"fails"}, "either": {"holds", "fails"}}


def blocked_outcomes(left_out: Sequence[LeftOut]) -> set[str]:
    """The outcomes that seeds left out of a check forbid: one that lies, or may lie, on the failing side
    forbids "holds" (the check must not hold because its worst seeds were dropped), one on the holding
    side forbids "fails"; "not measured" too, where any seed was left out (its seeds were run)."""
    given = [lo for lo in left_out if lo[0]]
    out = {o for lo in given for o in _BLOCKS[lo[2] if len(lo) > 2 else "failing"]}
    return out | ({"not measured"} if given else set())


def outcome_left_out(outcome: Outcome, blocked: set[str]) -> Outcome:
    """The rule of :func:`check`'s ``left_out`` for a decision alone: an outcome the seeds left out forbid
    (:func:`blocked_outcomes`) becomes "undecided"; the others stand."""
    return "undecided" if outcome in blocked else outcome


def check(what: str, iv: Interval | None, op: str, bound: float | None, bound_text: str | None = None, *,
          label: str | None = None, shown: str | None = None, test: PairedTest | None = None,
          counts: bool = False, left_out: Sequence[LeftOut] = ()) -> Check:
    """Decide ``iv <op> bound`` (``op`` is ``"<="`` or ``">="``) by :func:`nets.stats.decide` and say how:
    the :class:`Check`'s ``detail`` reads ``LABEL = VALUE [LOW, HIGH] MARK (needs OP BOUND)``, with the
    seeds that would decide an undecided check. ``iv`` None (nothing measured) gives "not measured".
    ``counts``: the values are shares of a finite test set (accuracies), which move in steps of one
    image, so seeds that agree exactly may do so by chance: an interval of no width over several
    seeds is then undecided, not exact (a continuous measure that agrees exactly, WT's LI of 0, is).

    ``left_out``: seeds missing from ``iv``, each reason with the side they lie, or may lie, on (a reason
    with no seeds is skipped; :data:`LeftOut`). A check must not hold because its worst seeds were
    dropped, nor fail because its best were: one that would hold (fail) on the others, with a seed left
    out that may lie on the failing (holding) side, is undecided (its mark says how it read there); one
    with every seed left out is undecided rather than "not measured"; an undecided one names them and
    has no planning figure towards an outcome they forbid, which could not come true while they stay
    out. ``n`` then counts the seeds run: the interval's and those left out."""
    given = [(list(lo[0]), lo[1]) for lo in left_out if lo[0]]
    blocked = blocked_outcomes(left_out)
    unread_text = "; ".join(f"{ev.seeds_text(seeds)}, left out, {why}" for seeds, why in given)
    n_left_out = len({s for seeds, _ in given for s in seeds})
    outcome = decide(iv, op, bound)
    if outcome == "not measured":
        if given:
            return Check(what, "undecided", f"{what}: {_MARK['undecided']}, every seed left out: {unread_text}",
                         n_left_out)
        return Check(what, outcome, f"{what}: not measured (no per-seed values)")
    tied = counts and tied_counts(iv)
    if tied:
        outcome = "undecided"
    final = outcome_left_out(outcome, blocked)
    capped = bool(given) and final == "undecided"
    digits = digits_apart((iv.low, iv.high), bound)
    value = shown if shown is not None else ev.iv_text(iv, lambda v: fmt(v, digits))
    how = "" if test is None or not iv.defined else f" ({ev.p_text(test)})"
    mark = _MARK[outcome]
    meets = iv.estimate <= bound if op == "<=" else iv.estimate >= bound  # the estimate's side of the bound
    if not iv.defined:  # one seed: no interval, so no decision; say which side the point lies on
        mark += f" (the point value {'meets' if meets else 'misses'} it)"
    if tied:
        mark += (f" (the {iv.n} seeds agree exactly: accuracies move in steps of one test image, so this can be "
                 f"chance; more seeds or test images decide it; the point value {'meets' if meets else 'misses'} it)")
    needs = f"needs {op} {bound_text if bound_text is not None else fmt(bound, digits)}"
    plan = seeds_to_decide(iv, op, bound) if outcome == "undecided" and not tied else None
    towards = None
    if plan is not None:
        towards = "holds" if meets else "fails"
        if capped and towards in blocked:
            plan = towards = None
        else:
            needs += f"; {planning_text(plan, towards)}"
    if not capped:  # seeds left out on the outcome's own side: named, and counted among the seeds run
        left = f"; {unread_text}" if given else ""
        return Check(what, outcome, f"{label or what} = {value}{how} {mark} ({needs}){left}", iv.n + n_left_out,
                     plan, towards)
    if outcome in ("holds", "fails"):
        mark, unread_text = f"{_MARK['undecided']} (on the other seeds {mark})", f"undecided: {unread_text}"
    return Check(what, final, f"{label or what} = {value}{how} {mark} ({needs}); {unread_text}",
                 iv.n + n_left_out, plan, towards)


def planning_text(plan: int, towards: str) -> str:
    """``about N seeds would decide it, towards holds`` for an undecided check's planning figure
    (:func:`nets.stats.seeds_to_decide`; beyond :data:`~nets.stats.MAX_PLANNED_SEEDS`, "more than")."""
    many = f"more than {MAX_PLANNED_SEEDS}" if plan > MAX_PLANNED_SEEDS else f"about {plan}"
    return f"{many} seeds would decide it, towards {towards}"


def log_check(what: str, test: PairedTest | None, op: str, ratio_bound: float, bound_text: str,
              label: str, left_out: Sequence[LeftOut] = ()) -> Check:
    """Decide a paired log-ratio against ``log(ratio_bound)``, shown as a ratio (``left_out`` as in :func:`check`)."""
    if test is None:
        return check(what, None, op, None, left_out=left_out)
    digits = digits_apart((test.interval.low, test.interval.high), math.log(ratio_bound), math.exp)
    return check(what, test.interval, op, math.log(ratio_bound), bound_text, label=label,
                 shown=ev.ratio_text(test, lambda v: fmt(v, digits)), test=test, left_out=left_out)


def not_finite(seeds: Sequence[int], name: str) -> LeftOut:
    """:func:`check`'s ``left_out`` reason for ``seeds`` whose ``name`` is missing or not finite
    (:func:`nets.evidence.unread`): their side of the bound is unknown, so it may be either."""
    return (seeds, f"has no finite {name} (missing, NaN or infinite: a results file writes NaN and infinities as "
                   f"null)", "either")


def sigma_ratio_check(what: str, label: str, test: PairedTest | None, left_out: Mapping[int, float],
                      unread: Sequence[int], ratio_max: float, name: str = "sigma_max") -> Check:
    """Claim 5's check: the paired log-ratio IR / DA of ``name`` (``test``, :func:`nets.evidence.paired_log`)
    decided against ``ratio_max`` (:func:`log_check`), and undecided, not holding, where a seed left out
    lies or may lie on its failing side (:func:`check`'s ``left_out``): ``left_out`` (paired_log's seed -> limit) at
    ``inf`` (DA's value 0) or NaN (both 0), or ``unread`` (:func:`nets.evidence.unread`: not finite); and
    undecided, not failing, where a seed left out lies on its holding side (``-inf``: its own value 0)."""
    return log_check(what, test, "<=", ratio_max, f"{ratio_max:g}", label,
                     [([s for s, r in left_out.items() if r == math.inf], f"has DA's {name} 0"),
                      ([s for s, r in left_out.items() if math.isnan(r)], f"has {name} 0 in both"),
                      ([s for s, r in left_out.items() if r == -math.inf], f"has {name} 0 where DA's is not",
                       "holding"),
                      not_finite(unread, name)])
