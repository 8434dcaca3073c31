"""Models that learned nothing: the groups of a Table 1 where no model's mean orbit accuracy passes
chance by more than :data:`NEAR_CHANCE` of the way to 100%, and the warning a report gives for them.
Its verdicts there describe untrained models (a smoke profile, too few steps), not what training does
to invariance. One rule for every report that shows verdicts: the MLP's (:mod:`nets.report`), the
CNN's or your model's (:mod:`nets.cnn_report`), your data's (:mod:`nets.own_data_report`)."""

from __future__ import annotations

import math
from typing import Mapping

from nets.groups import group_label

__all__ = ["NEAR_CHANCE", "untrained_groups", "untrained_warning"]

#: A group whose best mean orbit accuracy lies within this share of the way from chance to 100% counts
#: as not trained (9 classes: 20%; 10: 19%; 4: 32.5%; 2: 55%).
NEAR_CHANCE = 0.1


def untrained_groups(groups: Mapping[str, Mapping], n_labels: int) -> dict[str, float]:
    """``{group: best mean orbit accuracy}`` (a share; ``-inf`` where none is finite: a mean a results
    file wrote as null is no model that learned) for the groups of a Table 1's ``groups`` (each with
    ``methods -> {method: {"accuracy": {"mean": ...}}}``) where it is at most chance (``1 / n_labels``)
    plus :data:`NEAR_CHANCE` of the way to 100%; empty where every group learned."""
    chance = 1 / n_labels
    out = {}
    for g, entry in groups.items():
        means = [(m.get("accuracy") or {}).get("mean") for m in entry.get("methods", {}).values()]
        best = max((a for a in means if a is not None and math.isfinite(a)), default=-math.inf)
        if best <= chance + NEAR_CHANCE * (1 - chance):
            out[g] = best
    return out


def untrained_warning(low: Mapping[str, float], n_labels: int, advice: str) -> str:
    """The report's warning line for :func:`untrained_groups`' ``low`` (``""`` where it is empty), ending
    with ``advice`` (how to train more)."""
    if not low:
        return ""
    best = max(low.values())
    best_text = f"best mean orbit accuracy {100 * best:.1f}%" if best > -math.inf else "no finite mean orbit accuracy"
    return (f"> **Warning**: no model learned beyond chance in {', '.join(group_label(g) for g in low)} ({best_text}; "
            f"chance {100 / n_labels:.1f}% with {n_labels} classes): the verdicts there describe untrained models, "
            f"not what training does to invariance. {advice}\n")
