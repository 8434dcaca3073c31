"""The figure of ``between.json`` (:mod:`nets.experiments.between`, beyond the paper): per group,
the orbit accuracy (top) and DI against the untransformed image (bottom, symlog) of WT, DA and IR
on the transformations between the group's identity and its first step; mean +- std over seeds.
For rotations a dashed line gives the accuracy after rotating by the angle and back (the
resampling's blur alone)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nets.plot_style import (METHOD_COLORS, METHOD_MARKERS, PAGE_WIDTH, group_tex, methods_in_order, print_sized,
                             style_axes)

__all__ = ["plot_between"]


def _xlabel(entry: Mapping) -> str:
    if entry["kind"] == "rotation":
        return "rotation (degrees)"
    return f"cyclic shift along {entry.get('axis') or 'x'} (pixels)"


@print_sized
def plot_between(results: Mapping) -> Figure:
    """One column per group: orbit accuracy (%) and DI (nats, symlog below 1e-4) against the step."""
    groups = list(results["groups"])
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.4 * len(groups) + 0.4), 5.2), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(groups), squeeze=False))
    any_round_trip = False
    for col, g in enumerate(groups):
        entry = results["groups"][g]
        steps = np.asarray(entry["steps"], dtype=float)
        top = 0.0
        for method in methods_in_order(entry["methods"]):
            m, color = entry["methods"][method], METHOD_COLORS.get(method)
            for row, key, scale in ((0, "accuracy", 100.0), (1, "DI", 1.0)):
                mean = scale * np.asarray(m[key]["mean"], dtype=float)
                std = scale * np.asarray(m[key]["std"], dtype=float)
                ax = axes[row, col]
                ax.plot(steps, mean, marker=METHOD_MARKERS.get(method, "o"), markersize=3.5, color=color,
                        label=method, zorder=3)
                ax.fill_between(steps, np.maximum(mean - std, 0.0), mean + std, color=color, alpha=0.2, linewidth=0)
                if key == "DI":
                    top = max(top, float(np.nanmax(mean + std)))
            if "round_trip" in m:
                any_round_trip = True
                axes[0, col].plot(steps, 100.0 * np.asarray(m["round_trip"]["accuracy"]["mean"], dtype=float),
                                  linestyle="--", linewidth=0.9, color=color)
        axes[0, col].set_title(f"{group_tex(g)} (IR: $\\nu$ = {entry['nu_IR']:g})")
        axes[0, col].set_ylabel("orbit accuracy (%)")
        axes[1, col].set_ylabel(r"$DI$ against $f(x)$ (nats)")
        axes[1, col].set_yscale("symlog", linthresh=1e-4)
        axes[1, col].set_ylim(0, 2.5 * top if top > 0 else 1.0)
        for ax in axes[:, col]:
            ax.set_xlabel(_xlabel(entry))
            ax.set_xlim(steps[0], steps[-1])
            style_axes(ax)
    handles = [Line2D([], [], color=METHOD_COLORS.get(m), marker=METHOD_MARKERS.get(m, "o"), label=m)
               for m in methods_in_order(results["groups"][groups[0]]["methods"])]
    if any_round_trip:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=0.9, label="rotated and back"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig
