"""REPORT.md's section for ``per_class.json`` (:mod:`nets.experiments.per_class`, beyond the paper):
Table 1's accuracy over the orbit per class, each method's mean over seeds, WT - DA per class with its
paired t interval over seeds, and the class WT takes each one for."""

from __future__ import annotations

from typing import Any, Mapping

from nets.class_accuracy import per_class_rows
from nets.dataset_files import CLASS_NAMES
from nets.groups import group_label
from nets.markdown import markdown_table
from nets.results_io import recorded_dataset

__all__ = ["per_class_section"]


def per_class_section(results: Mapping[str, Any] | None) -> list[str]:
    """REPORT.md's lines for ``per_class.json`` (none without it): per group, each method's orbit
    accuracy per class (mean over seeds), WT - DA with its paired t interval, the class WT takes each for."""
    if not results:
        return []
    lines = ["### Beyond the paper: Table 1's accuracy over the orbit per class\n",
             "Table 1's models (every seed; IR at Table 1's nu) on the whole test split, each class's share of "
             "its orbit classified correctly (`per_class.json`, `python -m nets per-class`, trains nothing; "
             "`nets.class_accuracy`):\n"]
    # a file from before "class_names" was recorded: its dataset's names
    names = results.get("class_names", CLASS_NAMES.get(recorded_dataset(results.get("meta", {}))))
    for g, entry in results["groups"].items():
        header, rows, note = per_class_rows(entry, class_names=names)
        lines += [f"{group_label(g)} (IR at nu = {entry['nu_IR']:g}):\n", markdown_table(header, rows) + "\n"]
        lines += [note + "\n"] if note else []
    return lines
