"""REPORT.md's section for ``between.json`` (:mod:`nets.experiments.between`, beyond the paper):
per group and step between the identity and the group's first step, each method's orbit accuracy
and DI against the untransformed image (means over seeds), WT - DA accuracy with its paired t
interval over seeds, and for rotations the accuracy after rotating by the angle and back; then one
line on the step midway, where the models are farthest from anything they were trained on."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

import nets.evidence as ev
from nets.claim_checks import fmt
from nets.groups import group_label
from nets.markdown import figure_lines, markdown_table
from nets.stats import Interval

__all__ = ["between_section", "between_rows"]

METHODS = ("WT", "DA", "IR")


def _unit(entry: Mapping) -> str:
    return "°" if entry["kind"] == "rotation" else " px"


def _per_seed(entry: Mapping, method: str, key: str, j: int, round_trip: bool = False) -> np.ndarray:
    runs = entry["methods"][method]["runs"]
    return np.array([(r["round_trip"] if round_trip else r)[key][j] for r in runs], dtype=float)


def _wt_minus_da(entry: Mapping, j: int) -> Interval | None:
    """WT - DA orbit accuracy (points) at step ``j``: the paired t interval over the seeds both ran, paired by
    seed, a seed whose accuracy is not finite left out (None without a seed in common)."""
    def acc(run: Mapping) -> float | None:
        v = run["accuracy"][j]
        return None if v is None else 100 * float(v)
    test = ev.paired_methods(entry["methods"], "WT", "DA", acc)
    return None if test is None else test.interval


def _wt_da(entry: Mapping, j: int) -> str:
    if "WT" not in entry["methods"] or "DA" not in entry["methods"]:
        return ""
    iv = _wt_minus_da(entry, j)
    if iv is None:
        return "—"
    return f"{iv.estimate:.3g}" if not iv.defined else f"{iv.estimate:.3g} [{iv.low:.3g}, {iv.high:.3g}]"


def between_rows(entry: Mapping) -> tuple[list[str], list[list[str]]]:
    """One group's table: per step, each method's orbit accuracy (%) and DI (nats; means over seeds),
    WT - DA accuracy (points) with its 95% paired t interval, and for rotations each method's accuracy
    after rotating by the angle and back."""
    ms = [m for m in METHODS if m in entry["methods"]]
    rotation = entry["kind"] == "rotation"
    header = ["step", *(f"{m} Acc. (%)" for m in ms), "WT - DA (points) [95%]", *(f"{m} DI" for m in ms)]
    if rotation:
        header.append(f"rotated and back: {' / '.join(ms)} Acc. (%)")
    rows = []
    for j, step in enumerate(entry["steps"]):
        row = [f"{step:g}{_unit(entry)}", *(f"{100 * _per_seed(entry, m, 'accuracy', j).mean():.1f}" for m in ms),
               _wt_da(entry, j), *(fmt(float(_per_seed(entry, m, 'DI', j).mean())) for m in ms)]
        if rotation:
            row.append(" / ".join(f"{100 * _per_seed(entry, m, 'accuracy', j, True).mean():.1f}" for m in ms))
        rows.append(row)
    return header, rows


def _midway(g: str, entry: Mapping) -> str:
    """One sentence on the step midway between the identity and the group's step."""
    steps = entry["steps"]
    j = int(np.argmin([abs(s - entry["group_step"] / 2) for s in steps]))
    acc = {m: 100 * _per_seed(entry, m, "accuracy", j) for m in METHODS if m in entry["methods"]}
    at0 = {m: 100 * _per_seed(entry, m, "accuracy", 0) for m in acc}
    parts = [f"{m} {v.mean():.1f}% (at 0: {at0[m].mean():.1f}%)" for m, v in acc.items()]
    text = f"{group_label(g)} midway ({steps[j]:g}{_unit(entry)}): orbit accuracy " + ", ".join(parts)
    iv = _wt_minus_da(entry, j) if "WT" in acc and "DA" in acc else None
    if iv is not None:
        text += f"; WT - DA {iv.estimate:.3g}" + ("" if not iv.defined else f" [{iv.low:.3g}, {iv.high:.3g}]") + \
                f" points (paired t, n = {iv.n})"
    if "WT" in entry["methods"]:
        text += f"; WT's DI against f(x) {fmt(float(_per_seed(entry, 'WT', 'DI', j).mean()))} nats"
    if "DA" in entry["methods"]:
        text += f", DA's {fmt(float(_per_seed(entry, 'DA', 'DI', j).mean()))}"
    if entry["kind"] == "rotation" and acc:
        back = {m: 100 * _per_seed(entry, m, "accuracy", j, True).mean() for m in acc}
        text += "; rotated there and back: " + ", ".join(f"{m} {v:.1f}%" for m, v in back.items())
    return text + "."


def between_section(results: Mapping[str, Any] | None, *, fig_dir: str = "figures",
                    available_figures: set[str] | None = None) -> list[str]:
    """REPORT.md's lines for ``between.json`` (none without it): per group a table over the steps and
    a sentence on the step midway; the figure when it was drawn."""
    if not results:
        return []
    n = (results.get("protocol") or {}).get("n_samples")
    lines = ["### Beyond the paper: between the group's elements\n",
             f"Table 1's models (every seed; IR at Table 1's nu) on {n} test images transformed between the group's "
             "identity and its first step, which none of them was trained on (`between.json`, `python -m nets "
             "between`, trains nothing; `nets.between`): the orbit accuracy of the transformed images, and DI "
             "between f(x) and f(g t x) averaged over the whole group (nats). Rotations resample the image "
             "bilinearly; \"rotated and back\" is the accuracy after rotating by the angle and back, what the "
             "resampling alone costs. Both ends are exact: at 0 Table 1's orbit accuracy on these images, at the "
             "group's step the same orbit.\n"]
    lines += figure_lines(fig_dir, "between", "Orbit accuracy and DI against the untransformed image between the "
                          "group's elements, mean ± std over seeds (dashed: rotated and back).", available_figures)
    for g, entry in results["groups"].items():
        header, rows = between_rows(entry)
        lines += [f"{group_label(g)} (IR at nu = {entry['nu_IR']:g}):\n", markdown_table(header, rows) + "\n",
                  _midway(g, entry) + "\n"]
    return lines
