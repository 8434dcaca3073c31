"""REPORT.md's section for ``train_size.json`` (:mod:`nets.experiments.train_size`, beyond the
paper): per group and training set size, each method's orbit accuracy (mean over seeds), WT - DA
accuracy with its 95% paired t interval over seeds and the decision of claim 1b's WT - DA check
there (WT ahead: the interval above 0), DA's DI and SI and IR's SI; then one sentence comparing the
smallest size with the full one (Table 1's runs)."""

from __future__ import annotations

from typing import Any, Mapping

from nets.claim_checks import blocked_outcomes, fmt, not_finite, outcome_left_out, tied_counts
from nets.groups import group_label
from nets.markdown import figure_lines, markdown_table
from nets.evidence import seeds_text
from nets.plots_train_size import seed_values, wt_da_unread, wt_minus_da
from nets.stats import Interval, decide

__all__ = ["train_size_section", "train_size_rows"]

METHODS = ("WT", "DA", "IR")


def _interval_text(iv: Interval | None, unread: list[int]) -> str:
    """The WT - DA cell: the interval and claim 1b's decision there, undecided rather than holding where a
    seed's accuracy could not be read (named), or where the seeds agree exactly (:func:`tied_counts`)."""
    if iv is None:
        return f"— ({seeds_text(unread)} not finite)" if unread else ""
    text = f"{iv.estimate:.3g}" + (f" [{iv.low:.3g}, {iv.high:.3g}]" if iv.defined else "")
    outcome = "undecided" if tied_counts(iv) else decide(iv, '>=', 0.0)
    outcome = outcome_left_out(outcome, blocked_outcomes([not_finite(unread, "accuracy")]))
    return f"{text} ({outcome}{f'; {seeds_text(unread)} not finite' if unread else ''})"


def _mean(point: Mapping, method: str, measure: str, scale: float = 1.0) -> float:
    return float(scale * seed_values(point, method, measure).mean())


def train_size_rows(entry: Mapping) -> tuple[list[str], list[list[str]]]:
    """One group's table: per size, the batch size, each method's orbit accuracy (%), WT - DA
    (points, 95% paired t, with claim 1b's decision), DA's DI and SI, IR's SI (means over seeds)."""
    ms = [m for m in METHODS if m in entry["points"][0]["methods"]]
    header = ["training images", "batch", *(f"{m} Acc. (%)" for m in ms), "WT - DA (points) [95%]"]
    header += [h for m, h in (("DA", "DA DI"), ("DA", "DA SI"), ("IR", "IR SI")) if m in ms]
    rows = []
    for p in entry["points"]:
        n = f"{p['n_train']:,}" + (" (Table 1)" if p.get("source") == "table1.json" else "")
        row = [n, str(p.get("batch_size")), *(f"{_mean(p, m, 'accuracy', 100):.2f}" for m in ms),
               _interval_text(wt_minus_da(p), wt_da_unread(p))]
        row += [fmt(_mean(p, m, k)) for m, k in (("DA", "DI"), ("DA", "SI"), ("IR", "SI")) if m in ms]
        rows.append(row)
    return header, rows


def _ends(g: str, entry: Mapping) -> str:
    first, last = entry["points"][0], entry["points"][-1]
    a, b = wt_minus_da(first), wt_minus_da(last)
    if a is None or b is None:
        return ""
    span = lambda iv: f"{iv.estimate:.3g}" + (f" [{iv.low:.3g}, {iv.high:.3g}]" if iv.defined else "")  # noqa: E731
    return (f"{group_label(g)}: WT - DA is {span(a)} points on {first['n_train']:,} training images and {span(b)} on "
            f"{last['n_train']:,} (paired t, n = {a.n} seed{'s' if a.n != 1 else ''}); DA's SI {_mean(first, 'DA', 'SI'):.3g} and "
            f"{_mean(last, 'DA', 'SI'):.3g}.\n")


def train_size_section(results: Mapping[str, Any] | None, *, fig_dir: str = "figures",
                       available_figures: set[str] | None = None) -> list[str]:
    """REPORT.md's lines for ``train_size.json`` (none without it): the protocol, the figure when it
    was drawn, and per group a table over the sizes and a sentence on the ends."""
    if not results:
        return []
    protocol = results.get("protocol") or {}
    lines = ["### Beyond the paper: smaller training sets\n",
             "Table 1's models trained on fewer images (`train_size.json`, `python -m nets train-size`): "
             f"{protocol.get('data', '')}. {protocol.get('training', '')}. Measures: {protocol.get('measures', '')}; "
             f"{protocol.get('full_size', '')}. The WT - DA column decides claim 1b's WT - DA check at each size "
             "(holds: WT ahead, the interval above 0).\n"]
    lines += figure_lines(fig_dir, "train_size", "Orbit accuracy, WT - DA accuracy (95% paired t interval) and SI "
                          "against the number of training images; mean ± std over seeds.", available_figures)
    for g, entry in results["groups"].items():
        if not entry.get("points"):
            continue
        header, rows = train_size_rows(entry)
        lines += [f"{group_label(g)} (IR at nu = {entry['nu_IR']:g}):\n", markdown_table(header, rows) + "\n",
                  _ends(g, entry)]
    return lines
