"""Figures 1-3, what a model makes of an orbit: the t-SNE of its penultimate features (Figure 2)
and its saliency maps realigned by the group (Figures 1 and 3), drawn from ``tsne.json`` and
``saliency.json`` alone, like every figure of :mod:`nets.plots` (which re-exports these)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nets.plot_style import CLASS_COLORS, ELEMENT_MARKERS, PAGE_WIDTH, group_tex, methods_in_order, print_sized

__all__ = ["plot_tsne", "plot_saliency"]


# ---- Figure 2: t-SNE -----------------------------------------------------------
def _highlighted_samples(labels: np.ndarray, k: int = 5) -> list[int]:
    """``k`` samples to draw boldly: the first sample of each of the first ``k`` classes
    present (deterministic, and of distinct classes so their colours differ)."""
    out: list[int] = []
    for c in sorted(set(int(v) for v in labels)):
        out.append(int(np.flatnonzero(labels == c)[0]))
        if len(out) == k:
            break
    return out


@print_sized
def plot_tsne(results: Mapping, highlight: int = 5) -> Figure:
    """Figure 2: t-SNE of penultimate features of test samples under every group
    element; colour = class, marker = group element, lines join one orbit. The orbits
    of ``highlight`` samples (one per class) are drawn bold with black lines, the rest
    faint; their markers shrink with the element index, so an orbit that t-SNE collapses
    onto one point shows as nested markers. Rows are groups, columns methods; titles
    give the orbit / class distance ratio (feature space, not t-SNE space)."""
    groups = list(results["groups"])
    methods = methods_in_order(results["groups"][groups[0]]["methods"])
    fig = Figure(figsize=(PAGE_WIDTH, 2.35 * len(groups) + 1.1), layout="constrained")
    axes = np.asarray(fig.subplots(len(groups), len(methods), squeeze=False))
    for row, g in enumerate(groups):
        entry = results["groups"][g]
        labels = np.asarray(entry["labels"])
        n, order = len(labels), len(entry["element_labels"])
        bold = _highlighted_samples(labels, highlight)
        colors = [CLASS_COLORS[c % len(CLASS_COLORS)] for c in labels]
        for col, method in enumerate(methods):
            ax = axes[row, col]
            m = entry["methods"][method]
            xy = np.asarray(m["coords"], dtype=float).reshape(order, n, 2)  # element-major
            for i in range(n):  # closed loop through the orbit of sample i
                loop = np.concatenate([xy[:, i], xy[:1, i]])
                if i in bold:
                    ax.plot(loop[:, 0], loop[:, 1], color="black", linewidth=1.3, zorder=3)
                else:
                    ax.plot(loop[:, 0], loop[:, 1], color=colors[i], linewidth=0.5, alpha=0.3, zorder=1)
            for k in range(order):
                marker = ELEMENT_MARKERS[k % len(ELEMENT_MARKERS)]
                ax.scatter(xy[k, :, 0], xy[k, :, 1], c=colors, marker=marker, s=14, alpha=0.6,
                           linewidths=0, zorder=2)
                # shrinking sizes, smallest on top: an orbit collapsed onto one point shows as nested markers
                ax.scatter(xy[k, bold, 0], xy[k, bold, 1], c=[colors[i] for i in bold], marker=marker,
                           s=80 * (1 - 0.75 * k / max(order - 1, 1)), edgecolors="black", linewidths=0.8,
                           zorder=4 + k)
            ratio = m.get("ratio", {}).get("mean")
            ax.set_title(f"{group_tex(g)}, {method}\norbit / class distance = "
                         + ("n/a" if ratio is None else f"{ratio:.2f}"))
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
            ax.set_xticks([])
            ax.set_yticks([])
    classes = sorted(set(int(c) for g in groups for c in results["groups"][g]["labels"]))
    class_names = results.get("class_names") or [str(c) for c in range(max(classes) + 1)]
    handles = [Line2D([], [], linestyle="none", marker="o", color=CLASS_COLORS[c % len(CLASS_COLORS)],
                      label=f"class {class_names[c]}") for c in classes]
    orders = [results["groups"][g]["element_labels"] for g in groups]
    for k in range(max(len(o) for o in orders)):  # one marker per element index, named in every group
        names = " | ".join(f"{o[k]}" for o in orders if k < len(o))
        handles.append(Line2D([], [], linestyle="none", marker=ELEMENT_MARKERS[k % len(ELEMENT_MARKERS)], color="k",
                              markerfacecolor="none", label=f"$g$ = {names}"))
    handles.append(Line2D([], [], color="black", linewidth=1.3, marker="o", markerfacecolor="white",
                          markeredgecolor="black", label=f"one orbit ({highlight} in bold)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=5, frameon=False, columnspacing=1.0,
               handletextpad=0.3)
    return fig


# ---- Figures 1 and 3: saliency --------------------------------------------------
@print_sized
def plot_saliency(results: Mapping, group: str | None = None) -> Figure:
    """Figures 1 and 3: saliency grids for one group (default: the first).

    Rows are test samples; for each method, one column per group element g with the
    realigned map g^{-1} m_f(g x) (red) over the untransformed image x (grey), each map
    scaled to its own maximum; the number under it is its cosine similarity with m_f(x)
    (one term of SI_f, Eq. 3)."""
    group = group or next(iter(results["groups"]))
    entry = results["groups"][group]
    images = np.asarray(entry["images"], dtype=float)  # (N, H, W)
    elements = entry["element_labels"]
    methods = methods_in_order(entry["methods"])
    n, order = images.shape[0], len(elements)
    cell = min(0.85, (PAGE_WIDTH - 0.3 * len(methods)) / (order * len(methods)))
    fig = Figure(figsize=(cell * order * len(methods) + 0.3 * len(methods), (cell + 0.2) * n + 1.0),
                 layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(1, len(methods), wspace=0.02))
    for sub, method in zip(subfigs, methods):
        m = entry["methods"][method]
        maps = np.asarray(m["maps"], dtype=float)  # (|G|, N, H, W)
        sims = np.asarray(m["similarity"], dtype=float)  # (|G|, N)
        axes = np.asarray(sub.subplots(n, order, squeeze=False))
        for i in range(n):
            for k in range(order):
                ax = axes[i, k]
                # the digit faint, the saliency strong: the figure is about where the maps sit
                ax.imshow(images[i], cmap="Greys", alpha=0.35, interpolation="nearest")
                sal = maps[k, i]
                peak = sal.max()
                if peak > 0:
                    ax.imshow(np.ma.masked_less_equal(sal / peak, 0.05), cmap="Reds", vmin=0, vmax=1,
                              interpolation="nearest")
                ax.set_xlabel(f"{sims[k, i]:.2f}", fontsize=8, labelpad=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"{elements[k]}", fontsize=8)
                if k == 0:
                    ax.set_ylabel(f"class {entry['labels'][i]}", fontsize=8)
        sub.suptitle(f"{method}: $g^{{-1}} m_f(g x)$", fontsize=9)
    fig.suptitle(f"{group_tex(group)}: saliency maps realigned to a common orientation; columns: "
                 "group element $g$;\neach map scaled to its own maximum; "
                 r"number below: cosine similarity with $m_f(x)$", fontsize=9)
    return fig
