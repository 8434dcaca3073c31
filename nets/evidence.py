"""Per-seed values out of the results JSON, as intervals and paired tests.

The experiments store one record per seed (``runs``: ``{"seed": s, <measure>: v, ...}``;
the t-SNE record stores ``ratio_per_seed`` in the order of its ``meta.seeds``). This
module turns those into :class:`nets.stats.Interval` (over seeds) and
:class:`nets.stats.PairedTest` (two models over their common seeds: the same seed means
the same seed for initial weights and batches), for ``nets.report`` to decide and render.
Functions return None when a record holds no per-seed values (older JSON).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from nets.stats import Interval, PairedTest, paired_t, t_interval

__all__ = [
    "PAPER_ROUNDING",
    "SeedValues",
    "per_seed",
    "left_out",
    "unread",
    "seeds_text",
    "left_out_notes",
    "measure",
    "largest",
    "later_accuracy_ratio",
    "tsne_runs",
    "interval",
    "paired",
    "paired_methods",
    "paired_log",
    "log_left_out_notes",
    "paper_range",
    "ratio_text",
    "iv_text",
    "p_text",
]

SeedValues = dict[int, float]

#: Half a unit of the last digit the paper prints for Table 1's spread, per measure
#: (accuracy, LI, DI as ``± 0.1``-style one decimal; SI as ``± 0.04``-style two): the
#: paper's printed values stand for anything within that rounding.
PAPER_ROUNDING = {"accuracy": 0.05, "LI": 0.05, "DI": 0.05, "SI": 0.005}


def per_seed(runs: Sequence[Mapping] | None, value: Callable[[Mapping], float | None]) -> SeedValues:
    """``{seed: value(run)}`` over ``runs``, leaving out runs whose value is missing
    or not finite."""
    out: SeedValues = {}
    for r in runs or ():
        v = value(r)
        if v is not None and math.isfinite(float(v)):
            out[int(r["seed"])] = float(v)
    return out


def left_out(runs: Sequence[Mapping] | None, value: Callable[[Mapping], float | None]) -> list[int]:
    """The seeds of ``runs`` that :func:`per_seed` leaves out (value missing or not finite), so that
    a verdict can say its interval rests on fewer seeds than were run."""
    kept = per_seed(runs, value)
    return [int(r["seed"]) for r in runs or () if int(r["seed"]) not in kept]


def unread(runs: Sequence[Sequence[Mapping] | None], value: Callable[[Mapping], float | None]) -> list[int]:
    """The seeds with a run in every one of ``runs`` (one list per model a check compares) that
    :func:`per_seed` leaves out of any of them (value missing or not finite), in seed order: the seeds
    such a check could not read. A results file writes NaN and both infinities as ``null``, so where
    such a seed lies against the check's bound is unknown. One list: :func:`left_out`'s seeds."""
    common = set.intersection(*({int(r["seed"]) for r in rs or ()} for rs in runs))
    return sorted({s for rs in runs for s in left_out(rs, value) if s in common})


def seeds_text(seeds: Sequence[int]) -> str:
    """``seed 3`` / ``seeds 1, 2``: seeds named in a note, in the order given."""
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def left_out_notes(label: str, runs: Sequence[Mapping] | None,
                   value: Callable[[Mapping], float | None]) -> list[str]:
    """The note a claim gives when :func:`per_seed` leaves seeds of ``runs`` out of ``label``'s
    interval (their value missing or not finite), in a list: empty when it leaves none out."""
    gone = left_out(runs, value)
    if not gone or not runs:
        return []
    return [f"{label} is missing or not finite for {seeds_text(gone)} of {len(runs)}; its interval rests on the "
            "others"]


def largest(key: str) -> Callable[[Mapping], float | None]:
    """The getter of the largest of a run record's list ``key`` (claim 4's max DI over beta): NaN
    when any entry is NaN (Python's ``max`` skips a NaN that is not first), so that the seed is
    left out and said to be, not read at the others' maximum."""
    def get(run: Mapping) -> float | None:
        v = run.get(key)
        if not v:
            return None
        values = [math.nan if x is None else float(x) for x in v]  # a results file writes NaN and inf as null
        return math.nan if any(math.isnan(x) for x in values) else max(values)
    return get


def measure(key: str, scale: float = 1.0) -> Callable[[Mapping], float | None]:
    """The value getter for one scalar ``key`` of a run record, times ``scale``."""
    def get(run: Mapping) -> float | None:
        v = run.get(key)
        return None if v is None else scale * float(v)
    return get


def later_accuracy_ratio(betas: Sequence[float]) -> Callable[[Mapping], float] | None:
    """Claim 4's value of a drift run (a ``drift.json`` run record): its mean accuracy ratio over
    the betas above the smallest (NaN where one is ``null``, not finite when written, or missing);
    ``None`` where there is no such beta."""
    later = [i for i, b in enumerate(betas) if b > min(betas)]
    if not later:
        return None

    def get(r: Mapping) -> float:
        curve = r.get("accuracy_ratio") or ()  # a run without one (or a shorter one) is not read: NaN
        values = [curve[i] if i < len(curve) else None for i in later]  # a results file writes NaN and inf as null
        return math.nan if any(v is None for v in values) else sum(values) / len(values)
    return get


def tsne_runs(entry: Mapping, seeds: Sequence[int] | None) -> list[dict]:
    """A t-SNE method record's ``ratio_per_seed`` as run records ``{"seed", "ratio"}``
    (the list is in the order of the experiment's ``meta.seeds``; without those seeds
    the positions 0, 1, ... stand in). A list of another length than ``seeds`` cannot say which
    value is whose: every seed's ratio is then ``None`` (not read), rather than values given to
    the wrong seeds or a seed dropped unnamed."""
    vals = entry.get("ratio_per_seed") or []
    if seeds is not None and len(seeds) != len(vals):
        return [{"seed": s, "ratio": None} for s in seeds]
    seeds = list(seeds) if seeds is not None else list(range(len(vals)))
    return [{"seed": s, "ratio": v} for s, v in zip(seeds, vals)]


def interval(values: SeedValues) -> Interval | None:
    """Student's t interval over the seeds (None when there are none)."""
    return t_interval([values[s] for s in sorted(values)]) if values else None


def paired(a: SeedValues, b: SeedValues, *, log: bool = False) -> PairedTest | None:
    """Paired t-test of ``a`` against ``b`` over their common seeds (None when they
    share none; with ``log`` also when a value is not positive)."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    x, y = [a[s] for s in common], [b[s] for s in common]
    if log and (min(x) <= 0 or min(y) <= 0):
        return None
    return paired_t(x, y, log=log)


def paired_methods(methods: Mapping, a: str, b: str, value: Callable[[Mapping], float | None]) -> PairedTest | None:
    """:func:`paired` of method ``a``'s runs against method ``b``'s in one record's ``methods``
    (``{name: {"runs": [...]}}``), each seed's ``value`` read with :func:`per_seed` (None without both
    methods or a seed in common)."""
    if a not in methods or b not in methods:
        return None
    return paired(per_seed(methods[a].get("runs"), value), per_seed(methods[b].get("runs"), value))


def paired_log(a: SeedValues, b: SeedValues) -> tuple[PairedTest | None, dict[int, float]]:
    """:func:`paired` on the log-ratios ``log(a / b)`` over the common seeds where both values are
    positive, and the common seeds left out for a value <= 0 (no log-ratio), each with the limit its
    log-ratio stands for (``-inf``: ``a`` is 0, ``inf``: ``b`` is, NaN: both), so that a check can
    say so, and tell a seed on its failing side, rather than lose every seed to one."""
    common = sorted(set(a) & set(b))
    bad = {s: (math.nan if a[s] <= 0 and b[s] <= 0 else -math.inf if a[s] <= 0 else math.inf)
           for s in common if a[s] <= 0 or b[s] <= 0}
    keep = [s for s in common if s not in bad]
    return paired({s: a[s] for s in keep}, {s: b[s] for s in keep}, log=True), bad


def log_left_out_notes(label: str, seeds: Sequence[int]) -> list[str]:
    """The note a claim gives for the ``seeds`` :func:`paired_log` left out of ``label``'s ratio, in a
    list: empty when there are none."""
    if not seeds:
        return []
    return [f"{label}: {seeds_text(seeds)} left out of the ratio "
            f"(a value <= 0 has no log-ratio); its interval rests on the others"]


def paper_range(mean: float, std: float, measure_name: str) -> tuple[float, float]:
    """The paper's reported spread as a closed range: mean +- (std + the rounding of
    :data:`PAPER_ROUNDING`)."""
    h = std + PAPER_ROUNDING[measure_name]
    return mean - h, mean + h


def ratio_text(test: PairedTest, fmt: Callable[[float], str]) -> str:
    """A log-ratio paired test as the geometric-mean ratio with its interval."""
    iv = test.interval
    if not iv.defined:
        return f"{fmt(math.exp(iv.estimate))} (n = {iv.n}, no interval)"
    return f"{fmt(math.exp(iv.estimate))} [{fmt(math.exp(iv.low))}, {fmt(math.exp(iv.high))}]"


def iv_text(iv: Interval | None, fmt: Callable[..., str]) -> str:
    """``mean [low, high]``, or the mean with "(n = 1, no interval)" when none exists."""
    if iv is None:
        return "n/a"
    if not iv.defined:
        return f"{fmt(iv.estimate)} (n = {iv.n}, no interval)"
    return f"{fmt(iv.estimate)} [{fmt(iv.low)}, {fmt(iv.high)}]"


def p_text(test: PairedTest) -> str:
    """The named test with its two-sided p-value and the number of pairs."""
    if math.isnan(test.p_value):
        why = "no spread in the differences" if test.interval.defined else "one pair"
        return f"paired t, n = {test.n}: p n/a ({why})"
    return f"paired t, n = {test.n}: p = {test.p_value:.2g}"
