"""What a nu selection record says beyond its chosen nu (``nu_selections`` in the results files,
written by :func:`nets.train.tune_nu` through ``nets.experiments.table1.tune``): whether no nu of
its grid reached the SI target (:func:`missed_target`), which grid values its seeds cannot tell from
the chosen one (:func:`selection_ties`), and the verdict note that says both
(:func:`missed_target_note`). Read by :mod:`nets.verdicts`, the report sections and the figures."""

from __future__ import annotations

import math
from typing import Mapping

from nets.stats import paired_t

__all__ = ["missed_target", "form_missed_target", "selection_ties", "missed_target_note"]


def missed_target(sel: Mapping | None) -> bool:
    """Whether a nu selection record (``nets.experiments.table1.tune``) says no nu of
    its grid reached the SI target, so the largest-SI nu was used instead."""
    return bool(sel) and sel.get("reached_target", True) is False


def form_missed_target(entry: Mapping, model: Mapping) -> bool:
    """Whether ``model``, one of a Figure 5 group ``entry``'s models, is IR with a
    regularizer form whose nu selection missed the target (:func:`missed_target`)."""
    sel = (entry.get("nu_selections") or {}).get(model.get("regularizer") or "")
    return model["method"] == "IR" and missed_target(sel)


def selection_ties(sel: Mapping) -> list[float]:
    """The trained grid values that a largest-SI choice (:func:`missed_target`) cannot tell
    from the chosen nu: those whose seeds' validation SI, paired by seed with the chosen
    nu's, gives a 95% paired t interval of (chosen - other) that reaches 0
    (:func:`nets.stats.paired_t`), or where a seed's SI of either is not finite (``null`` on disk: the
    choice cannot be told from it). ``[]`` when the record has no per-seed SI (files written before
    ``si_per_seed``), fewer than two seeds, or the chosen nu beats every other."""
    per_seed = dict(zip(sel.get("grid") or [], sel.get("si_per_seed") or []))
    best = per_seed.get(sel.get("chosen"))
    if not best or len(best) < 2:
        return []
    ties = []
    for nu, values in per_seed.items():
        if nu == sel.get("chosen") or not values or len(values) != len(best):
            continue
        pairs = [(a, b) for a, b in zip(best, values) if a is not None and b is not None]
        if len(pairs) < len(best) or not all(math.isfinite(a) and math.isfinite(b) for a, b in pairs):
            ties.append(float(nu))  # a seed's SI not finite (null on disk): the choice cannot be told from it
            continue
        iv = paired_t([a for a, _ in pairs], [b for _, b in pairs]).interval
        if not iv.defined or iv.low <= 0:
            ties.append(float(nu))
    return ties


def missed_target_note(label: str, sel: Mapping) -> str:
    """A verdict note for a selection where :func:`missed_target` holds; it adds the grid
    values the choice cannot be told from over seeds (:func:`selection_ties`), if any."""
    ties = selection_ties(sel)
    tied = (f" By the seeds' validation SI (95% paired t) it is not told apart from nu = "
            f"{', '.join(f'{v:g}' for v in ties)}: the choice rests on seed noise." if ties else "")
    return (f"{label}: no nu in the grid {sel.get('grid')} reached SI >= {sel.get('target')} on validation; "
            f"the largest-SI nu = {sel.get('chosen')} was used.{tied}")
