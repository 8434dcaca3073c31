"""Figures drawn from the experiments' results dicts (the JSON contents) alone.

Every ``plot_*`` takes one results dict, as written by ``nets.experiments`` and
read back with ``json.load``, and returns a :class:`matplotlib.figure.Figure`.
Figures are built without ``pyplot`` (no global state, no backend choice), so
the CLI, tests and notebooks share them; :func:`save_figure` writes PNG and PDF.

Conventions: the paper's notation in mathtext (:math:`\\mathbb{R}^2_4`,
:math:`\\mathbb{T}^2_3`, :math:`LI_f`, :math:`DI_f`, :math:`SI_f`,
:math:`\\sigma_{\\max}(J)`), the Okabe-Ito colour-blind-safe palette, one colour
per method throughout, and axis labels on every axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = [
    "OKABE_ITO",
    "METHOD_COLORS",
    "GROUP_TEX",
    "MEASURE_TEX",
    "group_tex",
    "plot_table1",
    "plot_nu_selection",
    "plot_drift",
    "plot_spectral",
    "plot_tsne",
    "plot_saliency",
    "figures_for",
    "save_figure",
]

#: Okabe & Ito (2008), "Color Universal Design": safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}
METHOD_COLORS = {
    "WT": OKABE_ITO["blue"],
    "DA": OKABE_ITO["vermillion"],
    "IR": OKABE_ITO["bluish_green"],
}
#: Regularizer forms of Section 4.4 (colours of the IR variants in Figure 5).
REGULARIZER_COLORS = {
    "logit": OKABE_ITO["bluish_green"],
    "kl": OKABE_ITO["orange"],
    "normalized_logit": OKABE_ITO["reddish_purple"],
}
REGULARIZER_TEX = {
    "logit": r"logit: $\frac{1}{2}\|f(x)-f(gx)\|_2^2$",
    "kl": r"KL: $D_{KL}(u_x\,\|\,q_{gx})$",
    "normalized_logit": r"normalized: $\frac{\|f(x)-f(gx)\|_2^2}{\|f(x)\|_2^2}$",
}
REGULARIZER_SHORT = {"logit": "logit", "kl": "KL", "normalized_logit": "normalized logit"}
METHOD_MARKERS = {"WT": "s", "DA": "o", "IR": "^"}
GROUP_TEX = {"r4": r"$\mathbb{R}^2_4$", "t3": r"$\mathbb{T}^2_3$"}
MEASURE_TEX = {
    "accuracy": "accuracy on the test orbit (%)",
    "LI": r"$LI_f$ (logit invariance error)",
    "DI": r"$DI_f$ (distribution invariance error)",
    "SI": r"$SI_f$ (saliency invariance similarity)",
    "sigma_max": r"$\sigma_{\max}(J)$",
}
#: Nine classes (MNIST without the digit 9): Okabe-Ito's eight colours and grey.
CLASS_COLORS = [
    OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion", "reddish_purple",
                           "sky_blue", "yellow", "black", "grey")
]
ELEMENT_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
METHOD_ORDER = ("WT", "DA", "IR")


def group_tex(name: str) -> str:
    """Mathtext name of a group (``r4`` -> R^2_4); unknown names pass through."""
    return GROUP_TEX.get(name, name)


def _style(ax) -> None:
    ax.grid(True, alpha=0.3, linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _methods(d: Mapping) -> list[str]:
    return [m for m in METHOD_ORDER if m in d] + [m for m in d if m not in METHOD_ORDER]


# ---- Table 1 ------------------------------------------------------------------
def plot_table1(results: Mapping, paper: Mapping | None = None) -> Figure:
    """Table 1 as bars: accuracy, LI, DI and SI per group and method (mean +- std
    over seeds); the paper's values (``paper[group][method] = (acc %, LI, DI, SI)``,
    default ``nets.report.PAPER_TABLE1``) as black diamonds."""
    if paper is None:
        from nets.report import PAPER_TABLE1 as paper
    groups = list(results["groups"])
    measures = ("accuracy", "LI", "DI", "SI")
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 4)
    methods = _methods(results["groups"][groups[0]]["methods"])
    width = 0.8 / len(methods)
    for ax, measure in zip(axes, measures):
        for j, method in enumerate(methods):
            xs = np.arange(len(groups)) + (j - (len(methods) - 1) / 2) * width
            means, stds, paper_vals = [], [], []
            for g in groups:
                entry = results["groups"][g]["methods"].get(method)
                scale = 100.0 if measure == "accuracy" else 1.0
                means.append(np.nan if entry is None else scale * _num(entry[measure]["mean"]))
                stds.append(0.0 if entry is None else scale * _num(entry[measure]["std"]))
                row = paper.get(g, {}).get(method)
                paper_vals.append(np.nan if row is None else row[measures.index(measure)])
            ax.bar(xs, means, width=width * 0.9, yerr=stds, capsize=3, color=METHOD_COLORS.get(method),
                   label=method, edgecolor="white", linewidth=0.5)
            ax.plot(xs, paper_vals, linestyle="none", marker="D", markersize=5,
                    markerfacecolor="white", markeredgecolor="black", label="_paper")
        ax.set_xticks(np.arange(len(groups)), [group_tex(g) for g in groups])
        ax.set_xlabel("group")
        ax.set_ylabel(MEASURE_TEX[measure])
        if measure in ("LI", "DI"):
            ax.set_yscale("symlog", linthresh=1e-3 if measure == "DI" else 1e-2)
            ax.set_ylim(bottom=0)
        if measure == "SI":
            ax.set_ylim(0, 1.05)
        if measure == "accuracy":
            lo = np.nanmin([_num(results["groups"][g]["methods"][m]["accuracy"]["mean"]) * 100
                            for g in groups for m in methods])
            ax.set_ylim(max(0.0, min(lo, 85.0) - 5), 100)
        _style(ax)
    handles = [Line2D([], [], color=METHOD_COLORS.get(m), linewidth=8, label=m) for m in methods]
    handles.append(Line2D([], [], linestyle="none", marker="D", markerfacecolor="white",
                          markeredgecolor="black", label="paper (Table 1)"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def _num(v) -> float:
    return np.nan if v is None else float(v)


# ---- nu selection ---------------------------------------------------------------
def _selections(results: Mapping) -> list[dict]:
    """Every nu selection in a table1 or spectral results dict, with its group."""
    out = []
    for g, entry in results["groups"].items():
        sels = entry.get("nu_selections") or {}
        if "nu_selection" in entry:
            sels = {entry["nu_selection"].get("regularizer", "logit"): entry["nu_selection"], **sels}
        for reg, sel in sels.items():
            out.append({"group": g, "regularizer": reg, **sel})
    return out


def plot_nu_selection(results: Mapping) -> Figure:
    """SI and validation accuracy against nu, one column per group, one line per
    regularizer form; the SI target dashed, the chosen nu circled."""
    sels = _selections(results)
    groups = list(dict.fromkeys(s["group"] for s in sels))
    fig = Figure(figsize=(4.2 * len(groups) + 1, 5.6), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(groups), squeeze=False))
    for col, g in enumerate(groups):
        ax_si, ax_acc = axes[0, col], axes[1, col]
        target = None
        for s in (s for s in sels if s["group"] == g):
            color = REGULARIZER_COLORS.get(s["regularizer"], OKABE_ITO["black"])
            grid = np.asarray(s["grid"], dtype=float)
            si = np.asarray([_num(v) for v in s["si"]])
            acc = 100 * np.asarray([_num(v) for v in s["accuracy"]])
            label = REGULARIZER_SHORT.get(s["regularizer"], s["regularizer"])
            ax_si.plot(grid, si, marker="o", color=color, label=label)
            ax_acc.plot(grid, acc, marker="o", color=color, label=label)
            if s.get("chosen") is not None:
                k = int(np.argmin(np.abs(grid - float(s["chosen"]))))
                for ax, ys in ((ax_si, si), (ax_acc, acc)):
                    ax.plot(grid[k], ys[k], marker="o", markersize=13, markerfacecolor="none",
                            markeredgecolor=color, markeredgewidth=1.5)
            target = s.get("target")
        if target is not None:
            ax_si.axhline(target, color=OKABE_ITO["black"], linestyle="--", linewidth=1)
            ax_si.annotate(f"target $SI_f \\geq {target:g}$", (0.02, target), xycoords=("axes fraction", "data"),
                           xytext=(0, 3), textcoords="offset points", fontsize=8, va="bottom")
        ax_si.set_title(group_tex(g))
        ax_si.set_ylabel(r"$SI_f$ on validation")
        ax_acc.set_ylabel("validation accuracy (%)")
        for ax in (ax_si, ax_acc):
            ax.set_xscale("log")
            ax.set_xlabel(r"regularizer weight $\nu$")
            _style(ax)
        ax_si.set_ylim(min(0.0, np.nanmin(ax_si.get_ylim())), 1.02)
    handles = [Line2D([], [], color=REGULARIZER_COLORS.get(r, "k"), marker="o", label=REGULARIZER_SHORT.get(r, r))
               for r in dict.fromkeys(s["regularizer"] for s in sels)]
    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=11, markerfacecolor="none",
                          markeredgecolor="k", label=r"chosen $\nu$"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


# ---- Figure 4: drift ------------------------------------------------------------
def plot_drift(results: Mapping) -> Figure:
    """Figure 4: DI (top) and the accuracy ratio Acc(D(beta)) / Acc(D(0)) (bottom)
    against the drift degree beta; one column per group, mean +- std over seeds."""
    betas = np.asarray(results["betas"], dtype=float)
    groups = list(results["groups"])
    fig = Figure(figsize=(4.4 * len(groups) + 0.6, 6.0), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(groups), squeeze=False, sharex=True))
    for col, g in enumerate(groups):
        methods = results["groups"][g]
        for method in _methods(methods):
            m = methods[method]
            for row, key in ((0, "DI"), (1, "accuracy_ratio")):
                mean = np.asarray([_num(v) for v in m[key]["mean"]])
                std = np.asarray([_num(v) for v in m[key]["std"]])
                ax = axes[row, col]
                ax.plot(betas, mean, marker=METHOD_MARKERS.get(method, "o"), markersize=4,
                        color=METHOD_COLORS.get(method), label=method)
                ax.fill_between(betas, mean - std, mean + std, color=METHOD_COLORS.get(method), alpha=0.2,
                                linewidth=0)
        axes[0, col].set_title(group_tex(g))
        axes[0, col].set_ylabel(r"$DI_f$ on $\mathcal{D}_{1\to 2}(\beta)$")
        axes[1, col].set_ylabel(r"$\mathrm{Acc}(\mathcal{D}_{1\to 2}(\beta))\,/\,\mathrm{Acc}(\mathcal{D}_1)$")
        axes[1, col].set_xlabel(r"drift degree $\beta$ (MNIST $\to$ FMNIST)")
        axes[0, col].set_ylim(bottom=0)
        axes[1, col].set_ylim(0, 1.05)
        for ax in axes[:, col]:
            _style(ax)
    handles = [Line2D([], [], color=METHOD_COLORS.get(m), marker=METHOD_MARKERS.get(m, "o"), label=m)
               for m in _methods(results["groups"][groups[0]])]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


# ---- Figure 5: spectral ---------------------------------------------------------
def _model_label(model: Mapping) -> str:
    if model["method"] == "IR":
        return "IR\n" + REGULARIZER_SHORT.get(model["regularizer"], model["regularizer"])
    return model["method"]


def _model_color(model: Mapping) -> str:
    if model["method"] == "IR":
        return REGULARIZER_COLORS.get(model["regularizer"], METHOD_COLORS["IR"])
    return METHOD_COLORS.get(model["method"], OKABE_ITO["grey"])


def plot_spectral(results: Mapping) -> Figure:
    """Figure 5: sigma_max of the input Jacobian (top) and test-orbit accuracy
    (bottom) for DA and IR with each regularizer form; one column per group."""
    groups = list(results["groups"])
    fig = Figure(figsize=(4.4 * len(groups) + 0.6, 6.0), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(groups), squeeze=False))
    for col, g in enumerate(groups):
        models = list(results["groups"][g]["models"].values())
        xs = np.arange(len(models))
        colors = [_model_color(m) for m in models]
        for row, key, scale in ((0, "sigma_max", 1.0), (1, "accuracy", 100.0)):
            ax = axes[row, col]
            mean = [scale * _num(m[key]["mean"]) for m in models]
            std = [scale * _num(m[key]["std"]) for m in models]
            bars = ax.bar(xs, mean, yerr=std, capsize=3, color=colors, edgecolor="white")
            ax.bar_label(bars, labels=[f"{v:.3g}" for v in mean], padding=2, fontsize=8)
            ax.set_xticks(xs, [_model_label(m) for m in models], fontsize=8)
            _style(ax)
        axes[0, col].set_title(group_tex(g))
        axes[0, col].set_ylabel(r"$\sigma_{\max}(J)$ (mean over test inputs)")
        axes[1, col].set_ylabel("accuracy on the test orbit (%)")
        axes[1, col].set_xlabel(r"model (IR: regularizer form, $\nu$ tuned to $SI_f \geq 0.95$)")
        lo = min(100 * _num(m["accuracy"]["mean"]) for m in models)
        axes[1, col].set_ylim(max(0.0, lo - 10), 100)
        axes[0, col].margins(y=0.15)
    return fig


# ---- Figure 2: t-SNE -----------------------------------------------------------
def plot_tsne(results: Mapping) -> Figure:
    """Figure 2: t-SNE of penultimate features of test samples under every group
    element; colour = class, marker = group element, thin lines join one orbit.
    Rows are groups, columns methods; titles give the orbit / class distance ratio
    (feature space, not t-SNE space)."""
    groups = list(results["groups"])
    methods = _methods(results["groups"][groups[0]]["methods"])
    fig = Figure(figsize=(4.3 * len(methods), 4.3 * len(groups) + 0.8), layout="constrained")
    axes = np.asarray(fig.subplots(len(groups), len(methods), squeeze=False))
    for row, g in enumerate(groups):
        entry = results["groups"][g]
        labels = np.asarray(entry["labels"])
        n, order = len(labels), len(entry["element_labels"])
        for col, method in enumerate(methods):
            ax = axes[row, col]
            m = entry["methods"][method]
            xy = np.asarray(m["coords"], dtype=float).reshape(order, n, 2)  # element-major
            for i in range(n):  # closed loop through the orbit of sample i
                loop = np.concatenate([xy[:, i], xy[:1, i]])
                ax.plot(loop[:, 0], loop[:, 1], color=CLASS_COLORS[labels[i] % len(CLASS_COLORS)],
                        linewidth=0.4, alpha=0.35, zorder=1)
            for k in range(order):
                ax.scatter(xy[k, :, 0], xy[k, :, 1], c=[CLASS_COLORS[c % len(CLASS_COLORS)] for c in labels],
                           marker=ELEMENT_MARKERS[k % len(ELEMENT_MARKERS)], s=18, alpha=0.85,
                           edgecolors="white", linewidths=0.3, zorder=2)
            ratio = m.get("ratio", {}).get("mean")
            ax.set_title(f"{group_tex(g)}  {method}: orbit / class distance = "
                         + ("n/a" if ratio is None else f"{ratio:.2f}"), fontsize=10)
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
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), frameon=False,
               fontsize=8)
    return fig


# ---- Figures 1 and 3: saliency --------------------------------------------------
def plot_saliency(results: Mapping, group: str | None = None) -> Figure:
    """Figures 1 and 3: saliency grids for one group (default: the first).

    Rows are test samples; for each method, one column per group element g with the
    realigned map g^{-1} m_f(g x) (red) over the untransformed image x (grey); the
    corner number is its cosine similarity with m_f(x) (one term of SI_f, Eq. 3)."""
    group = group or next(iter(results["groups"]))
    entry = results["groups"][group]
    images = np.asarray(entry["images"], dtype=float)  # (N, H, W)
    elements = entry["element_labels"]
    methods = _methods(entry["methods"])
    n, order = images.shape[0], len(elements)
    fig = Figure(figsize=(1.25 * order * len(methods) + 0.4, 1.35 * n + 1.0), layout="constrained")
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
                ax.text(0.03, 0.97, f"{sims[k, i]:.2f}", transform=ax.transAxes, ha="left", va="top",
                        fontsize=7, color="black", bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none",
                                                              alpha=0.8))
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"$g$ = {elements[k]}", fontsize=8)
                if k == 0:
                    ax.set_ylabel(f"class {entry['labels'][i]}", fontsize=8)
        sub.suptitle(f"{method}: $g^{{-1}} m_f(g x)$", fontsize=10)
    fig.suptitle(f"{group_tex(group)}: saliency maps realigned to a common orientation "
                 r"(number: cosine similarity with $m_f(x)$)", fontsize=10)
    return fig


# ---- registry and saving --------------------------------------------------------
def figures_for(experiment: str, results: Mapping) -> dict[str, Figure]:
    """Every figure of one experiment, keyed by file stem."""
    makers: dict[str, Callable[[], dict[str, Figure]]] = {
        "table1": lambda: {"table1": plot_table1(results), "nu_selection_table1": plot_nu_selection(results)},
        "drift": lambda: {"drift": plot_drift(results)},
        "spectral": lambda: {"spectral": plot_spectral(results),
                             "nu_selection_spectral": plot_nu_selection(results)},
        "tsne": lambda: {"tsne": plot_tsne(results)},
        "saliency": lambda: {f"saliency_{g}": plot_saliency(results, g) for g in results["groups"]},
    }
    if experiment not in makers:
        raise ValueError(f"no figures for experiment {experiment!r}; known: {', '.join(makers)}")
    return makers[experiment]()


def save_figure(fig: Figure, stem: str | Path, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=dpi, metadata=None if p.suffix == ".png" else {"CreationDate": None})
    return paths
