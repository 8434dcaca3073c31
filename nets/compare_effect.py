"""One effect of model B relative to model A on one measure, and the direction its interval reads
(:mod:`nets.audit_compare` builds them: a difference ``B - A`` or a ratio ``B / A`` with a paired
bootstrap interval over the samples); and the samples on which two models' accuracies differ, with
the exact sign test over them (:class:`Disagreement`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional

import numpy as np

from nets.sample_bootstrap import Estimate
from nets.stats import sign_test

__all__ = ["EffectKind", "MIN_DIRECTION_SAMPLES", "direction", "Effect", "Disagreement"]

EffectKind = Literal["difference", "ratio"]


#: The fewest samples a direction is read from: below, the percentile bootstrap's "95%" interval
#: covers far less (at 2 samples it is their range, which holds the mean about half the time), so
#: ``B < A`` or ``B > A`` would be declared for models that do not differ (a class of a few images).
MIN_DIRECTION_SAMPLES = 20


def direction(kind: EffectKind, effect: Estimate, n: int | None = None) -> str:
    """``"B < A"``, ``"B > A"`` (the interval excludes no effect, an infinite end included),
    ``"B = A"`` (the estimate and both ends are exactly no effect), ``"undecided"``, ``"undefined"``
    (no finite estimate, or no interval over enough samples), or ``"too few samples"`` (``n`` below
    :data:`MIN_DIRECTION_SAMPLES`: the interval is given, where there is one, and no direction is read)."""
    none = 0.0 if kind == "difference" else 1.0
    if not math.isfinite(effect.value):
        return "undefined"
    if effect.value == effect.low == effect.high == none:
        return "B = A"  # every sample agrees: exact at any n
    if n is not None and n < MIN_DIRECTION_SAMPLES:
        return "too few samples"  # one sample has no interval at all: too few, as the docs say
    if math.isnan(effect.low) or math.isnan(effect.high):
        return "undefined"
    if effect.high < none:
        return "B < A"
    if effect.low > none:
        return "B > A"
    return "undecided"


@dataclass(frozen=True)
class Effect:
    """One measure of both models and the effect of B relative to A."""

    measure: str
    kind: EffectKind
    a: Estimate
    b: Estimate
    effect: Estimate
    n: Optional[int] = None  # the paired samples behind it

    @property
    def direction(self) -> str:
        return direction(self.kind, self.effect, self.n)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a.to_dict(), "b": self.b.to_dict(), "effect": self.effect.to_dict(),
                "direction": self.direction, **({} if self.n is None else {"n": self.n})}


@dataclass(frozen=True)
class Disagreement:
    """The samples on which B's accuracy share differs from A's (``samples``: B higher on ``b_ahead``, A on
    ``a_ahead``) and the exact two-sided sign test over them (:func:`nets.stats.sign_test`, p = 1 where they
    agree everywhere). Beside the paired bootstrap's interval: where the two disagree on a handful of samples,
    all one way, the percentile bootstrap can read a direction that this test does not (4 samples, all for
    B: p = 0.125), since its interval covers less than its level there."""

    samples: int
    b_ahead: int
    a_ahead: int
    sign_test_p: float

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> "Disagreement":
        """From A's and B's per-sample shares ``(N,)`` (each in [0, 1], the same samples)."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        b_ahead, a_ahead = int((b > a).sum()), int((a > b).sum())
        return cls(b_ahead + a_ahead, b_ahead, a_ahead, sign_test(b - a))

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "b_ahead": self.b_ahead, "a_ahead": self.a_ahead,
                "sign_test_p": self.sign_test_p}

    def text(self, effect: Effect, confidence: float) -> str:
        """A sentence for the comparison: the counts and p; where ``effect`` (the accuracy's) reads a
        direction that the sign test does not reach at ``confidence``, it says so."""
        out = (f"Accuracy: B and A differ on {self.samples} of {effect.n} samples (B ahead on {self.b_ahead}, A on "
               f"{self.a_ahead}); exact sign test over them p = {self.sign_test_p:.3g}.")
        if effect.direction in ("B < A", "B > A") and self.sign_test_p > 1 - confidence:
            out += (f" The bootstrap's direction rests on too few disagreements for that test at "
                    f"{100 * confidence:g}%: read it with care (docs/audit.md).")
        return out
