"""The figure of ``train_size.json`` (:mod:`nets.experiments.train_size`, beyond the paper): per
group, against the training set size (log scale), the orbit accuracy of WT, DA and IR (top; mean
+- std over seeds), WT - DA accuracy with its 95% paired t interval over seeds (middle) and SI
(bottom). The last point of each curve is Table 1's own runs."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

import nets.evidence as ev
from nets.plot_style import METHOD_COLORS, METHOD_MARKERS, PAGE_WIDTH, group_tex, methods_in_order, print_sized, style_axes

__all__ = ["plot_train_size", "seed_values", "wt_minus_da", "wt_da_unread"]


def seed_values(point: Mapping, method: str, measure: str) -> np.ndarray:
    """One size's per-seed values of ``measure`` for ``method``, in seed order."""
    runs = sorted(point["methods"][method]["runs"], key=lambda r: r["seed"])
    return np.array([np.nan if r.get(measure) is None else r[measure] for r in runs], dtype=float)


def wt_minus_da(point: Mapping):
    """WT - DA orbit accuracy (points) at one size: the paired t interval over the seeds both ran, paired by
    seed, a seed whose accuracy is not finite left out (:class:`nets.stats.Interval`; ``None`` without both
    methods or a seed in common)."""
    test = ev.paired_methods(point["methods"], "WT", "DA", ev.measure("accuracy", 100.0))
    return None if test is None else test.interval


def wt_da_unread(point: Mapping) -> list[int]:
    """The seeds both methods ran at one size that :func:`wt_minus_da` leaves out (:func:`nets.evidence.unread`)."""
    if "WT" not in point["methods"] or "DA" not in point["methods"]:
        return []
    return ev.unread([point["methods"][m]["runs"] for m in ("WT", "DA")], ev.measure("accuracy"))


@print_sized
def plot_train_size(results: Mapping) -> Figure:
    """One column per group: accuracy (%), WT - DA (points) and SI against the training set size."""
    groups = list(results["groups"])
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.4 * len(groups) + 0.4), 6.6), layout="constrained")
    axes = np.asarray(fig.subplots(3, len(groups), squeeze=False))
    methods: list[str] = []
    for col, g in enumerate(groups):
        entry = results["groups"][g]
        points = entry["points"]
        n = np.array([p["n_train"] for p in points], dtype=float)
        methods = methods_in_order(points[0]["methods"])
        for method in methods:
            color, marker = METHOD_COLORS.get(method), METHOD_MARKERS.get(method, "o")
            for row, key, scale in ((0, "accuracy", 100.0), (2, "SI", 1.0)):
                v = np.array([scale * seed_values(p, method, key) for p in points])
                mean, std = np.nanmean(v, axis=1), np.nanstd(v, axis=1)
                axes[row, col].plot(n, mean, marker=marker, markersize=3.5, color=color, label=method, zorder=3)
                axes[row, col].fill_between(n, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        if "WT" in methods and "DA" in methods:
            ivs = [wt_minus_da(p) for p in points]
            est = np.array([np.nan if iv is None else iv.estimate for iv in ivs])
            low = np.array([np.nan if iv is None else iv.low if iv.defined else iv.estimate for iv in ivs])
            high = np.array([np.nan if iv is None else iv.high if iv.defined else iv.estimate for iv in ivs])
            axes[1, col].errorbar(n, est, yerr=[est - low, high - est], color="black", marker="o", markersize=3.5,
                                  capsize=2.5, linewidth=1.0)
            axes[1, col].axhline(0.0, color="0.5", linewidth=0.8, linestyle=":")
        axes[0, col].set_title(f"{group_tex(g)} (IR: $\\nu$ = {entry['nu_IR']:g})")
        axes[0, col].set_ylabel("orbit accuracy (%)")
        axes[1, col].set_ylabel("WT $-$ DA accuracy (points)")
        axes[2, col].set_ylabel("$SI$")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_xticks(n, [f"{v:g}" for v in n])  # the sizes themselves, not log decades
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("training images")
            style_axes(ax)
    handles = [Line2D([], [], color=METHOD_COLORS.get(m), marker=METHOD_MARKERS.get(m, "o"), label=m) for m in methods]
    handles.append(Line2D([], [], color="black", marker="o", label="WT $-$ DA, 95% paired t"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig
