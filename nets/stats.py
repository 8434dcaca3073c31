"""Intervals, paired tests and the decision rule behind every verdict in REPORT.md.

Everything here is generic (numbers in, intervals / decisions out) and delegates
the statistics to :mod:`scipy.stats`; ``nets.evidence`` reads the per-seed values
out of the results JSON and ``nets.report`` renders the outcome. The methods are
described in ``docs/statistics.md``.

- :func:`t_interval`: Student's t interval on a mean over seeds (``scipy.stats.t.interval``).
- :func:`bootstrap_interval`: a bootstrap interval over samples (``scipy.stats.bootstrap``).
- :func:`paired_t`: a paired t-test over common seeds on differences or log-ratios
  (``scipy.stats.ttest_rel`` and its confidence interval).
- :func:`decide` / :func:`claim_status`: a bound is *held* when the whole 95% interval
  lies on its side, *failed* when the whole interval lies on the other side, and
  *undecided* otherwise; a claim combines its checks' outcomes.
- :func:`seeds_to_decide`: for an undecided check, how many seeds a new experiment would
  need to decide it with 80% power if the measured mean and spread were the true ones
  (the noncentral t, ``scipy.stats.nct``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "CONFIDENCE",
    "Interval",
    "PairedTest",
    "Outcome",
    "t_interval",
    "bootstrap_interval",
    "paired_t",
    "sign_test",
    "decide",
    "tied_counts",
    "claim_status",
    "PLANNING_POWER",
    "MAX_PLANNED_SEEDS",
    "seeds_to_decide",
    "overlaps",
]

#: The confidence level of every interval in the reports.
CONFIDENCE = 0.95
#: The probability of a decision that :func:`seeds_to_decide` plans for.
PLANNING_POWER = 0.8
#: :func:`seeds_to_decide` searches no further (it returns this + 1 for "more").
MAX_PLANNED_SEEDS = 10_000

Outcome = Literal["holds", "fails", "undecided", "not measured"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval; ``low``/``high`` are NaN when
    no interval can be formed (fewer than two values)."""

    estimate: float
    low: float
    high: float
    n: int
    method: str

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of ``a`` against ``b`` over ``n`` common seeds.

    ``interval`` is the t interval of the mean per-seed difference ``a - b``
    (``log=False``) or of the mean per-seed log-ratio ``log(a / b)`` (``log=True``);
    ``p_value`` is two-sided, for a mean difference (log-ratio) of zero; NaN when the
    differences have no spread beyond rounding (1e-12 of the values differenced) or ``n < 2``."""

    interval: Interval
    p_value: float
    log: bool
    test: str = "paired t-test (scipy.stats.ttest_rel)"

    @property
    def n(self) -> int:
        return self.interval.n


def _values(values: Sequence[float], what: str = "values") -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{what}: no values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: non-finite value in {x.tolist()}")
    return x


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE, *,
               magnitude: float | None = None) -> Interval:
    """Student's t interval on the mean of ``values`` (n - 1 degrees of freedom,
    standard error s / sqrt(n)). With n = 1 the interval is undefined (NaN bounds);
    with no spread (up to rounding, as :func:`paired_t` has it) it is the mean itself, and where the
    values are all equal, that value (not a mean that rounds off it). ``magnitude``: for values that are
    differences (per-seed ``a - b``), the largest ``|a|`` or ``|b|``, whose rounding they carry (as
    :func:`paired_t` takes it; by default the values' own largest magnitude). Raises ValueError on empty
    or non-finite input."""
    x = _values(values)
    scale = float(np.max(np.abs(x)))
    if _extreme(scale):  # a sum overflows, or squares underflow: the interval of x / scale, scaled back
        iv = t_interval(x / scale, confidence, magnitude=None if magnitude is None else magnitude / scale)
        return Interval(iv.estimate * scale, iv.low * scale, iv.high * scale, iv.n, "t")
    n, mean = x.size, float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, "t")
    value = _without_spread(x, magnitude)
    if value is not None:
        return Interval(value, value, value, n, "t")
    sem = float(stats.sem(x))
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n, "t")


def _without_spread(x: np.ndarray, magnitude: float | None = None) -> float | None:
    """The value of ``x`` (finite, two or more) where it has no spread up to rounding (1e-12 of
    ``magnitude``, by default its largest magnitude; for differences, that of the values differenced, whose
    rounding they carry): the value itself where all are equal, else their mean; None where it has a spread."""
    spread = np.ptp(x)
    if spread > 1e-12 * (float(np.max(np.abs(x))) if magnitude is None else magnitude):
        return None
    return float(x[0]) if spread == 0 else float(x.mean())


#: Values beyond this magnitude are scaled down before :func:`t_interval` and :func:`paired_t` sum them (their
#: sum would overflow), and values all below its inverse scaled up (their squares would underflow to 0).
_HUGE = 1e150


def _extreme(scale: float) -> bool:
    """Whether values of largest magnitude ``scale`` are summed or squared only after rescaling (:data:`_HUGE`)."""
    return scale > _HUGE or 0 < scale < 1 / _HUGE


def t_half_width_factor(n: int, confidence: float = CONFIDENCE) -> float:
    """The factor ``t_{n-1} / sqrt(n)`` by which :func:`t_interval`'s half-width multiplies the sample
    standard deviation of ``n >= 2`` values (12.7 / sqrt(2) = 8.98 at n = 2, 1.59 at n = 4)."""
    if n < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {n}")
    return float(stats.t.ppf((1 + confidence) / 2, n - 1) / math.sqrt(n))


def bootstrap_interval(values: Sequence[float], statistic: Callable[..., float] = np.mean, *,
                       confidence: float = CONFIDENCE, n_resamples: int = 9999, seed: int = 0,
                       method: str = "BCa") -> Interval:
    """A bootstrap interval of ``statistic`` over ``values`` (one value per sample),
    by ``scipy.stats.bootstrap`` with a fixed ``seed`` (so the same input gives the
    same interval). Undefined (NaN bounds) for fewer than two values; the statistic
    itself when the values have no spread."""
    x = _values(values)
    est = float(statistic(x))
    if x.size < 2:
        return Interval(est, math.nan, math.nan, x.size, f"bootstrap-{method}")
    if np.all(x == x[0]):
        return Interval(est, est, est, x.size, f"bootstrap-{method}")
    res = stats.bootstrap((x,), statistic, confidence_level=confidence, n_resamples=n_resamples,
                          method=method, rng=np.random.default_rng(seed), vectorized=False)
    ci = res.confidence_interval
    return Interval(est, float(ci.low), float(ci.high), x.size, f"bootstrap-{method}")


def sign_test(differences: Sequence[float]) -> float:
    """The exact two-sided sign test's p-value (``scipy.stats.binomtest``) of paired differences: under
    no effect each non-zero difference is as likely positive as negative, so ``n`` that all go the same
    way give ``2 * 0.5 ** n`` (0.125 for 4), and no non-zero difference gives 1. The test for shares of a
    finite set (accuracies), which move in steps of one image and may agree, or differ alike, by chance."""
    d = np.asarray(differences, dtype=float)
    n = int(np.count_nonzero(d))
    return 1.0 if n == 0 else float(stats.binomtest(int(np.count_nonzero(d > 0)), n).pvalue)


def paired_t(a: Sequence[float], b: Sequence[float], *, log: bool = False,
             confidence: float = CONFIDENCE) -> PairedTest:
    """Paired t-test of ``a`` against ``b`` (``a[i]`` and ``b[i]`` from the same seed).

    With ``log=True`` the test is on the log-ratios log(a_i / b_i) (both must be
    positive): its interval bounds the geometric-mean ratio after ``exp``. Raises
    ValueError for unequal lengths, empty or non-finite input, or non-positive values
    under ``log``."""
    x, y = _values(a, "a"), _values(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired_t: {x.size} values against {y.size}; pairs need equal lengths")
    if log:
        if np.any(x <= 0) or np.any(y <= 0):
            raise ValueError("paired_t(log=True): every value must be positive")
        x, y = np.log(x), np.log(y)
    scale = float(max(np.max(np.abs(x)), np.max(np.abs(y))))
    if _extreme(scale):  # the test of x / scale against y / scale, its interval scaled back (p is the same)
        t = paired_t(x / scale, y / scale, confidence=confidence)
        iv = t.interval
        return PairedTest(Interval(iv.estimate * scale, iv.low * scale, iv.high * scale, iv.n, iv.method),
                          t.p_value, log)
    d = x - y
    n, mean = d.size, float(d.mean())
    if n < 2:
        return PairedTest(Interval(mean, math.nan, math.nan, n, "paired t"), math.nan, log)
    value = _without_spread(d, max(scale, 1.0) if log else scale)  # rounding of the values differenced
    if value is not None:  # exact, no test statistic
        return PairedTest(Interval(value, value, value, n, "paired t"), math.nan, log)
    res = stats.ttest_rel(x, y)
    ci = res.confidence_interval(confidence)
    return PairedTest(Interval(mean, float(ci.low), float(ci.high), n, "paired t"), float(res.pvalue), log)


def tied_counts(iv: Interval | None) -> bool:
    """Whether ``iv``, an interval over two or more seeds of shares of a finite test set (accuracies), has
    no width: the seeds agree exactly, which such values, moving in steps of one image, may do by chance,
    so a decision there is "undecided" (:func:`nets.claim_checks.check`'s ``counts``)."""
    return iv is not None and iv.defined and iv.n >= 2 and iv.low == iv.high


def decide(interval: Interval | None, op: str, bound: float | None) -> Outcome:
    """The decision rule: for a claim ``value <op> bound`` (``op`` is "<=" or ">="),
    "holds" when the whole interval satisfies it, "fails" when the whole interval
    violates it, "undecided" when the interval straddles the bound or is undefined
    (n < 2), "not measured" when the value or the bound is missing."""
    if op not in ("<=", ">="):
        raise ValueError(f"decide: op must be '<=' or '>=', got {op!r}")
    if interval is None or bound is None or math.isnan(interval.estimate):
        return "not measured"
    if not interval.defined:
        return "undecided"
    if op == "<=":
        return "holds" if interval.high <= bound else "fails" if interval.low > bound else "undecided"
    return "holds" if interval.low >= bound else "fails" if interval.high < bound else "undecided"


def claim_status(outcomes: Sequence[Outcome], n_seeds: int) -> str:
    """A claim's verdict from its checks' outcomes: "holds" (every check holds),
    "not supported" (a check fails and none holds), "partly holds" (some hold, some
    fail), "undecided at n = k seeds" (none fails but some cannot be decided),
    "holds where measured (k of m checks not measured)" (every measured check holds),
    "not evaluated" (nothing measured)."""
    measured = [o for o in outcomes if o != "not measured"]
    if not measured:
        return "not evaluated"
    if "fails" in measured:
        return "partly holds" if "holds" in measured else "not supported"
    if "undecided" in measured:
        return f"undecided at n = {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    missing = len(outcomes) - len(measured)
    return "holds" if not missing else f"holds where measured ({missing} of {len(outcomes)} checks not measured)"


def seeds_to_decide(interval: Interval | None, op: str, bound: float | None, *,
                    power: float = PLANNING_POWER, confidence: float = CONFIDENCE,
                    max_n: int = MAX_PLANNED_SEEDS) -> int | None:
    """The number of seeds n at which :func:`decide` would decide ``value <op> bound`` with
    probability ``power``, were the true mean and standard deviation the measured ones: the
    smallest n whose one-sided t-test at level (1 - ``confidence``) / 2, on the side of the bound
    where the estimate lies (towards "holds" or towards "fails"), has that power; the power of a
    one-sample (or paired) t-test is ``scipy.stats.nct.sf(t_crit, n - 1, d sqrt(n))``, with d the
    distance to the bound in standard deviations.

    A planning figure, not a result: the measured mean and spread are themselves uncertain (at
    n = 4 the true standard deviation may be 0.57 to 3.7 times the measured one, so n up to
    about 14 times larger), so read it as an order of magnitude. ``interval`` must be a Student's
    t interval (``"t"`` or ``"paired t"``), whose half-width gives the standard deviation back. Returns ``None`` when there is nothing to plan:
    no interval (n < 2), another kind of interval, no spread, or the estimate on the bound; and
    ``max_n + 1`` when even ``max_n`` seeds fall short."""
    if op not in ("<=", ">="):
        raise ValueError(f"seeds_to_decide: op must be '<=' or '>=', got {op!r}")
    if not 0 < power < 1:
        raise ValueError(f"seeds_to_decide: power must lie in (0, 1), got {power}")
    if interval is None or bound is None or not interval.defined or interval.method not in ("t", "paired t"):
        return None
    n = interval.n
    sd = (interval.high - interval.low) / 2 / stats.t.ppf((1 + confidence) / 2, n - 1) * math.sqrt(n)
    gap = abs(interval.estimate - bound)
    if not sd > 0 or gap == 0:
        return None
    ns = np.arange(2, max_n + 1)
    crit = stats.t.ppf((1 + confidence) / 2, ns - 1)
    reached = stats.nct.sf(crit, ns - 1, gap / sd * np.sqrt(ns)) >= power
    return int(ns[np.argmax(reached)]) if reached.any() else max_n + 1


def overlaps(interval: Interval, low: float, high: float) -> bool | None:
    """Whether ``interval`` meets the closed range [low, high] (None when the
    interval is undefined: then only the estimate is compared)."""
    if not interval.defined:
        return None
    return interval.low <= high and interval.high >= low
