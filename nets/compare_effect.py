"""One effect of model B relative to model A on one measure, and the direction its interval reads
(:mod:`nets.audit_compare` builds them: a difference ``B - A`` or a ratio ``B / A`` with a paired
bootstrap interval over the samples)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional

from nets.sample_bootstrap import Estimate

__all__ = ["EffectKind", "MIN_DIRECTION_SAMPLES", "direction", "Effect"]

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
