"""The figure of the logit-scale experiment (``scale.json``; ours, beyond the paper): per group,
sigma_max(J) of the centered logits against their scale, one point per model and seed, on log
axes. A line through the origin is a constant sensitivity per unit of scale: a model below DA's
line is smoother for its scale, one left of DA's points has a smaller scale."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from nets.plot_style import METHOD_MARKERS, PAGE_WIDTH, REGULARIZER_SHORT, group_tex, print_sized, style_axes
from nets.plots import model_color

__all__ = ["plot_scale"]


def _label(m: Mapping) -> str:
    if m["method"] != "IR":
        return m["method"]
    return f"IR {REGULARIZER_SHORT.get(m['regularizer'], m['regularizer'])}, $\\nu$ = {m['nu']:g}"


@print_sized
def plot_scale(results: Mapping, model: str = "") -> Figure:
    """One panel per group: x the logit scale ||c(f(x))||, y sigma_max(J) of c(f), both means over
    the test samples; small markers per seed, a large one at the seeds' geometric mean; the dashed
    line is DA's mean sensitivity per unit of scale (sigma = r_DA x scale). ``model``: the
    network's name in the title (``"CNN"``; empty for the paper's MLP)."""
    groups = list(results["groups"])
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.5 * len(groups) + 0.3), 3.9), layout="constrained")
    axes = np.asarray(fig.subplots(1, len(groups), squeeze=False))[0]
    for ax, g in zip(axes, groups):
        models = results["groups"][g]["models"]
        lo, hi = np.inf, 0.0
        for m in models.values():
            xs = np.array([r["logit_scale"] for r in m["runs"]], dtype=float)
            ys = np.array([r["sigma_max_centered"] for r in m["runs"]], dtype=float)
            ok = (xs > 0) & (ys > 0)
            if not ok.any():
                continue
            xs, ys = xs[ok], ys[ok]
            color, marker = model_color(m), METHOD_MARKERS.get(m["method"], "o")
            ax.scatter(xs, ys, s=14, color=color, marker=marker, alpha=0.55, linewidths=0)
            ax.scatter([np.exp(np.log(xs).mean())], [np.exp(np.log(ys).mean())], s=70, color=color, marker=marker,
                       edgecolors="black", linewidths=0.7, alpha=0.85, label=_label(m), zorder=3)
            lo, hi = min(lo, xs.min()), max(hi, xs.max())
        da = models.get("DA")
        if da is not None and hi > 0:
            r = da["relative_sensitivity"]["mean"]
            grid = np.geomspace(lo / 1.5, hi * 1.5, 50)
            ax.plot(grid, r * grid, linestyle="--", color="black", linewidth=0.8,
                    label=f"DA's $\\sigma_{{\\max}}$ / scale = {r:.3g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_title(group_tex(g))
        ax.set_xlabel(r"logit scale $\|f - \bar f\,\mathbf{1}\|$ (mean over test inputs)")
        ax.set_ylabel(r"$\sigma_{\max}(J)$ of the centered logits")
        style_axes(ax)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(f"{model + ': ' if model else ''}Figure 5 split into logit scale and sensitivity per unit of scale (ours, not the paper's)",
                 fontsize=9)
    return fig
