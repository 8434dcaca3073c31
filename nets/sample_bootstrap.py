"""Bootstrap intervals over samples: the intervals of :mod:`nets.auditing` and :mod:`nets.audit_compare`.

Interval method: the percentile bootstrap of :func:`scipy.stats.bootstrap`
(``method="percentile"``, ``n_resamples`` resamples of the samples with replacement, a seeded
``numpy.random.Generator``). For LI, DI, SI, ``sigma_max`` and accuracy the statistic is the mean
of the per-sample values; for ``r_l`` (a ratio of sums) it is the ratio of the means of the
per-sample numerators and denominators, resampled together (``paired=True``). The percentile
method (rather than scipy's default BCa) is used because an exactly invariant model gives
constant per-sample values (SI = 1, LI = 0), for which BCa is undefined; its interval is then
the point itself. The intervals are over samples only: the model (its training seed) is fixed.

An accuracy whose samples all have the same share (every sample right, every one wrong, or a
model right on one element of every orbit) gets an exact bound instead of the bootstrap's interval
of no width (:func:`share_mean`), and so does the difference of two models'
accuracies where they agree on every sample (:func:`share_difference`). With fewer than 2 samples there is nothing to
resample: the interval's ends are NaN (``None`` in JSON, ``nan`` in text). Each function returns an
:class:`Estimate` (the point and its interval) and raises a one-line
``ValueError`` for a confidence outside (0, 1) or fewer than :data:`MIN_RESAMPLES` resamples.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ["Estimate", "MIN_RESAMPLES", "check_bootstrap", "bootstrap_mean", "share_mean", "constant_share_bound",
           "share_difference", "mean_difference", "paired_bootstrap", "ratio_of_means", "bootstrap_ratio", "fmt_value"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its bootstrap interval ``[low, high]``."""

    value: float
    low: float
    high: float

    def text(self) -> str:
        """``value [low, high]``, each to 4 significant digits (``nan`` where undefined)."""
        return f"{fmt_value(self.value)} [{fmt_value(self.low)}, {fmt_value(self.high)}]"

    def to_dict(self) -> dict[str, Optional[float]]:
        """NaN and infinity (a ratio over an exact 0) become ``None``: JSON has neither."""
        return {k: (None if not math.isfinite(v) else v) for k, v in
                (("value", self.value), ("low", self.low), ("high", self.high))}


def _interval(res: Any) -> tuple[float, float]:
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


#: Fewest resamples :func:`bootstrap_mean` and :func:`paired_bootstrap` accept: a percentile
#: interval's ends are order statistics of the resamples, so a handful gives no interval at all.
MIN_RESAMPLES = 100


def check_bootstrap(confidence: float, n_resamples: int, seed: int = 0) -> None:
    """``confidence`` in (0, 1), ``n_resamples`` an int >= :data:`MIN_RESAMPLES` and ``seed`` an int >= 0
    (numpy's generators take no negative seed), or a one-line ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"the bootstrap seed must be an int >= 0, got {seed!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < MIN_RESAMPLES:
        raise ValueError(f"n_resamples must be an int >= {MIN_RESAMPLES} (the interval's ends are percentiles of "
                         f"the resamples), got {n_resamples!r}")


def bootstrap_mean(values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                   seed: int = 0) -> Estimate:
    """Mean of ``values (N,)`` with its percentile-bootstrap interval (scipy.stats.bootstrap); for
    fewer than 2 values the interval is undefined: ``[nan, nan]``."""
    check_bootstrap(confidence, n_resamples, seed)
    v = np.asarray(values, dtype=np.float64)
    point = float(v.mean())
    if v.size < 2:
        return Estimate(point, float("nan"), float("nan"))
    res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return Estimate(point, *_interval(res))


def share_mean(shares: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Estimate:
    """The mean of ``shares (N,)``, each sample's share of its orbit predicted right (in [0, 1]: an
    accuracy), with its interval: :func:`bootstrap_mean`'s, except where every share is the same value
    ``c`` over two or more samples (every sample right, every one wrong, or a model right only on the
    untransformed image of every sample, ``c = 1 / |G|``). There the bootstrap has nothing to resample
    and would give ``[c, c]``, as if no sample could ever have another share; the interval is then the
    exact bound that ``N`` samples all at ``c`` allow. The chance ``q`` that a sample's share is not ``c``
    is at most Clopper-Pearson's bound with none seen in ``N``, ``u = 1 - (alpha / 2) ** (1 / N)``
    (``alpha = 1 - confidence``), and a share lies in [0, 1], so the mean lies in
    ``[c - u c, c + u (1 - c)]``. For ``c = 1`` that is ``[(alpha / 2) ** (1 / N), 1]`` (0.478 for 5
    samples, 0.970 for 121), Clopper-Pearson's interval for an accuracy of N out of N; for ``c = 0`` its
    mirror image. The two methods meet unevenly at that edge: one sample short of all right the
    bootstrap's interval is the narrower (121 samples: all right [0.970, 1], one orbit wrong [0.975, 1]),
    since near 0 and 1 it covers less than its level; the exact bound is the one to trust there."""
    v = np.asarray(shares, dtype=np.float64)
    if v.size >= 2 and np.all(v == v[0]):
        check_bootstrap(confidence, n_resamples, seed)  # bootstrap_mean checks them on the other path
        return constant_share_bound(float(v[0]), v.size, confidence)
    return bootstrap_mean(v, confidence=confidence, n_resamples=n_resamples, seed=seed)


def _constant_bound(c: float, n: int, low: float, high: float, confidence: float) -> Estimate:
    """The exact interval of the mean of values that lie in ``[low, high]`` and were ``c`` on all ``n``
    samples seen: the chance of another value is at most Clopper-Pearson's bound with none seen,
    ``u = 1 - (alpha / 2) ** (1 / n)``, so the mean lies in ``[c - u (c - low), c + u (high - c)]``; at
    ``c = high = 1`` the low end is ``(alpha / 2) ** (1 / n)`` as written (not ``1 - u`` rounded)."""
    edge = ((1 - confidence) / 2) ** (1 / n)
    u = 1 - edge
    return Estimate(c, edge if c == high == 1 else c - u * (c - low), c + u * (high - c))


def constant_share_bound(c: float, n: int, confidence: float = 0.95) -> Estimate:
    """:func:`share_mean`'s exact interval for ``n`` samples whose shares (in [0, 1]) are all ``c``:
    ``[c - u c, c + u (1 - c)]``, ``u = 1 - (alpha / 2) ** (1 / n)`` (:func:`_constant_bound`)."""
    return _constant_bound(c, n, 0.0, 1.0, confidence)


def mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """``mean(b) - mean(a)`` along ``axis`` (the statistic of :func:`share_difference`: B - A)."""
    return b.mean(axis) - a.mean(axis)


def share_difference(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                     seed: int = 0) -> Estimate:
    """``mean(b) - mean(a)`` of two models' shares ``(N,)`` on the same samples (each in [0, 1], as
    :func:`share_mean`'s), with :func:`paired_bootstrap`'s interval, except where the two differ by the
    same ``d`` on every one of two or more samples (up to the rounding of shares ``k / |G|``), above all
    where they agree on every one (``d = 0``). There every resample differs by exactly ``d``, and the
    bootstrap's ``[d, d]`` would say so beyond these samples: ``[0, 0]`` for two models right on every
    image of a class, which they are by chance. The interval is then the exact bound that ``N`` samples
    at ``d`` allow: a sample's difference lies in [-1, 1], and the chance that it is not ``d`` is at most
    Clopper-Pearson's bound with none seen in ``N``, ``u = 1 - (alpha / 2) ** (1 / N)`` (0.030 for 121
    samples), so the mean difference lies in ``[d - u (1 + d), d + u (1 - d)]``: ``[-u, u]`` where the
    two agree."""
    u, v = (np.asarray(x, dtype=np.float64) for x in (a, b))
    diff = v - u if u.shape == v.shape and u.size >= 2 else None
    if diff is not None and np.ptp(diff) <= 1e-12:
        check_bootstrap(confidence, n_resamples, seed)  # paired_bootstrap checks them on the other path
        d = 0.0 if not diff.any() else float(diff.mean())  # a difference lies in [-1, 1]
        return _constant_bound(d, u.size, -1.0, 1.0, confidence)
    return paired_bootstrap((u, v), mean_difference, confidence=confidence, n_resamples=n_resamples, seed=seed)


def paired_bootstrap(samples: Sequence[np.ndarray], statistic: Callable[..., Any], *, confidence: float = 0.95,
                     n_resamples: int = 2000, seed: int = 0) -> Estimate:
    """``statistic(*samples)`` with its percentile-bootstrap interval, resampling the samples' common
    axis jointly (``scipy.stats.bootstrap(paired=True)``). ``samples``: arrays ``(N,)`` of the same
    samples (per-sample numerators and denominators, two models' values); ``statistic(*arrays,
    axis=-1)`` must be vectorized. NaN interval for fewer than 2 samples, a non-finite point, or a
    resample whose statistic is undefined (a ratio of means 0 / 0: most samples 0 in both), where
    scipy's own warning (which speaks of BCa, a method not used here) is not passed on."""
    check_bootstrap(confidence, n_resamples, seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in samples]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        point = float(statistic(*arrays, axis=-1))
        if arrays[0].size < 2 or not math.isfinite(point):
            return Estimate(point, float("nan"), float("nan"))
        res = stats.bootstrap(tuple(arrays), statistic, paired=True, confidence_level=confidence,
                              n_resamples=n_resamples, method="percentile", vectorized=True,
                              rng=np.random.default_rng(seed))
    return Estimate(point, *_interval(res))


def ratio_of_means(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    """``mean(num) / mean(den)`` along ``axis`` (the statistic of :func:`bootstrap_ratio`)."""
    return num.mean(axis) / den.mean(axis)


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                    seed: int = 0) -> Estimate:
    """``mean(num) / mean(den)`` with its paired percentile-bootstrap interval (scipy.stats.bootstrap)."""
    return paired_bootstrap((num, den), ratio_of_means, confidence=confidence, n_resamples=n_resamples, seed=seed)


def fmt_value(v: float) -> str:
    """``v`` to 4 significant digits, ``nan`` where undefined."""
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
