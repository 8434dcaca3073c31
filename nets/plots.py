"""Figures drawn from the experiments' results dicts (the JSON contents) alone.

Every ``plot_*`` takes one results dict, as written by ``nets.experiments`` and
read back with ``json.load``, and returns a :class:`matplotlib.figure.Figure`.
Figures are built without ``pyplot`` (no global state, no backend choice), so
the CLI, tests and notebooks share them; :func:`save_figure` writes PNG and PDF.
Palette, notation, print sizes and saving: :mod:`nets.plot_style` (re-exported here); Figures 1-3
(t-SNE of features, saliency maps): :mod:`nets.plots_representation` (re-exported here).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nets.nu_selection_notes import form_missed_target
from nets.plot_style import (
    GROUP_TEX,
    MEASURE_TEX,
    METHOD_COLORS,
    METHOD_MARKERS,
    OKABE_ITO,
    PAGE_WIDTH,
    REGULARIZER_COLORS,
    REGULARIZER_HATCHES,
    REGULARIZER_SHORT,
    group_tex,
    methods_in_order,
    print_sized,
    save_figure,
    style_axes,
)
from nets.plots_representation import plot_saliency, plot_tsne  # noqa: F401  (re-exported)
from nets.results_io import paper_table1_for

__all__ = [
    "OKABE_ITO",
    "METHOD_COLORS",
    "GROUP_TEX",
    "MEASURE_TEX",
    "group_tex",
    "print_sized",
    "style_axes",
    "model_color",
    "plot_table1",
    "nu_selections",
    "plot_nu_selection",
    "plot_drift",
    "plot_spectral",
    "plot_tsne",
    "plot_saliency",
    "save_figure",
]


# ---- Table 1 ------------------------------------------------------------------
def _log_headroom(top: float) -> float:
    """An upper limit for a (sym)log axis that leaves room above ``top`` (~0.4 decade)."""
    return 2.5 * top if top > 0 else 1.0


@print_sized
def plot_table1(results: Mapping, paper: Mapping | None = None) -> Figure:
    """Table 1 as bars: accuracy, LI, DI and SI per group and method (mean +- std
    over seeds); the paper's values (``paper[group][method] = (acc %, LI, DI, SI)``,
    default: ``nets.results_io.paper_table1_for`` the results' dataset, none on a dataset the paper
    has no Table 1 for) as black diamonds. Accuracy bars start at 0 and carry their value; LI and DI
    are on symlog axes (linear near 0)."""
    if paper is None:
        paper = paper_table1_for(results.get("meta", {}))[0]
    groups = list(results["groups"])
    measures = ("accuracy", "LI", "DI", "SI")
    fig = Figure(figsize=(PAGE_WIDTH, 5.4), layout="constrained")
    axes = np.asarray(fig.subplots(2, 2)).ravel()
    methods = methods_in_order(results["groups"][groups[0]]["methods"])
    width = 0.8 / len(methods)
    for ax, measure in zip(axes, measures):
        top = 0.0
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
            bars = ax.bar(xs, means, width=width * 0.9, yerr=stds, capsize=2.5, color=METHOD_COLORS.get(method),
                          label=method, edgecolor="white", linewidth=0.5, error_kw=dict(linewidth=0.8))
            if measure == "accuracy":  # the differences are small next to the 0-100 axis: print them
                ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.1f}" for v in means], label_type="center",
                             rotation=90, color="white", fontsize=8, fontweight="bold")
            ax.plot(xs, paper_vals, linestyle="none", marker="D", markersize=5,
                    markerfacecolor="white", markeredgecolor="black", label="_paper", zorder=3, clip_on=False)
            top = np.nanmax([top, *(np.asarray(means) + np.asarray(stds)), *paper_vals])
        ax.set_xticks(np.arange(len(groups)), [group_tex(g) for g in groups])
        ax.set_xlabel("group")
        ax.set_ylabel(MEASURE_TEX[measure])
        if measure in ("LI", "DI"):
            ax.set_yscale("symlog", linthresh=1e-4 if measure == "DI" else 1e-2)
            ax.set_ylim(0, _log_headroom(top))
        if measure == "SI":
            ax.set_ylim(0, 1.1)
            ax.set_yticks(np.linspace(0, 1, 6))
        if measure == "accuracy":
            ax.set_ylim(0, 105)
            ax.set_yticks(np.arange(0, 101, 20))
        style_axes(ax)
    handles = [Line2D([], [], color=METHOD_COLORS.get(m), linewidth=8, label=m) for m in methods]
    if paper:  # no diamonds (a dataset the paper has no Table 1 for): no legend entry for them
        handles.append(Line2D([], [], linestyle="none", marker="D", markerfacecolor="white",
                              markeredgecolor="black", label="paper (Table 1)"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def _num(v) -> float:
    return np.nan if v is None else float(v)


# ---- nu selection ---------------------------------------------------------------
def nu_selections(results: Mapping) -> list[dict]:
    """Every nu selection in a table1 or spectral results dict, with its group."""
    out = []
    for g, entry in results["groups"].items():
        sels = entry.get("nu_selections") or {}
        if "nu_selection" in entry:
            sels = {entry["nu_selection"].get("regularizer", "logit"): entry["nu_selection"], **sels}
        for reg, sel in sels.items():
            out.append({"group": g, "regularizer": reg, **sel})
    return out


@print_sized
def plot_nu_selection(results: Mapping) -> Figure:
    """SI and validation accuracy against nu, one column per group, one line per
    regularizer form; the SI target dashed, the chosen nu circled."""
    sels = nu_selections(results)
    groups = list(dict.fromkeys(s["group"] for s in sels))
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.4 * len(groups) + 0.4), 5.0), layout="constrained")
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
            style_axes(ax)
        ax_si.set_ylim(min(0.0, np.nanmin(ax_si.get_ylim())), 1.02)
    handles = [Line2D([], [], color=REGULARIZER_COLORS.get(r, "k"), marker="o", label=REGULARIZER_SHORT.get(r, r))
               for r in dict.fromkeys(s["regularizer"] for s in sels)]
    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=11, markerfacecolor="none",
                          markeredgecolor="k", label=r"chosen $\nu$"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


# ---- Figure 4: drift ------------------------------------------------------------
@print_sized
def plot_drift(results: Mapping) -> Figure:
    """Figure 4: DI (top, symlog: linear below 1e-4 nats) and the accuracy ratio
    Acc(D(beta)) / Acc(D(0)) (bottom) against the drift degree beta; one column per
    group, mean +- std over seeds; the x label names the drift's datasets (``results["datasets"]``,
    the paper's MNIST -> FMNIST where a file predates that key)."""
    betas = np.asarray(results["betas"], dtype=float)
    groups = list(results["groups"])
    source, target = (d.upper() for d in results.get("datasets", ("mnist", "fmnist")))
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.4 * len(groups) + 0.4), 5.2), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(groups), squeeze=False, sharex=True))
    for col, g in enumerate(groups):
        methods = results["groups"][g]
        top = 0.0
        for method in methods_in_order(methods):
            m = methods[method]
            for row, key in ((0, "DI"), (1, "accuracy_ratio")):
                mean = np.asarray([_num(v) for v in m[key]["mean"]])
                std = np.asarray([_num(v) for v in m[key]["std"]])
                ax = axes[row, col]
                ax.plot(betas, mean, marker=METHOD_MARKERS.get(method, "o"), markersize=4,
                        color=METHOD_COLORS.get(method), label=method, clip_on=False, zorder=3)
                ax.fill_between(betas, np.maximum(mean - std, 0.0), mean + std, color=METHOD_COLORS.get(method),
                                alpha=0.2, linewidth=0)
                if key == "DI":
                    top = np.nanmax([top, *(mean + std)])
        axes[0, col].set_title(group_tex(g))
        axes[0, col].set_ylabel(r"$DI_f$ on $\mathcal{D}_{1\to 2}(\beta)$ (nats)")
        axes[1, col].set_ylabel(r"$\mathrm{Acc}(\mathcal{D}_{1\to 2}(\beta))\,/\,\mathrm{Acc}(\mathcal{D}_1)$")
        axes[1, col].set_xlabel(rf"drift degree $\beta$ ({source} $\to$ {target})")
        axes[0, col].set_yscale("symlog", linthresh=1e-4)
        axes[0, col].set_ylim(0, _log_headroom(top))
        axes[1, col].set_ylim(0, 1.05)
        for ax in axes[:, col]:
            style_axes(ax)
    handles = [Line2D([], [], color=METHOD_COLORS.get(m), marker=METHOD_MARKERS.get(m, "o"), label=m)
               for m in methods_in_order(results["groups"][groups[0]])]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


# ---- Figure 5: spectral ---------------------------------------------------------
def _model_label(model: Mapping, missed_target: bool = False, compact: bool = False) -> str:
    """Tick label of one Figure 5 bar; IR bars carry their nu, marked with a dagger
    when no nu of the grid reached the SI target (the largest-SI nu was used). ``compact``
    (a panel of more than four bars): "normalized" shortened to "norm.", so neighbours do not touch."""
    if model["method"] == "IR":
        form = REGULARIZER_SHORT.get(model["regularizer"], model["regularizer"])
        form = (form.replace("normalized", "norm.") if compact else form).replace(" ", "\n")
        nu = "" if model.get("nu") is None else f"\n$\\nu$ = {model['nu']:g}" + ("$^\\dagger$" if missed_target else "")
        return "IR\n" + form + nu
    return model["method"]


def model_color(model: Mapping) -> str:
    """The colour of a Figure 5 model: IR's by regularizer form, else by method."""
    if model["method"] == "IR":
        return REGULARIZER_COLORS.get(model["regularizer"], METHOD_COLORS["IR"])
    return METHOD_COLORS.get(model["method"], OKABE_ITO["grey"])


def _model_hatch(model: Mapping) -> str:
    return REGULARIZER_HATCHES.get(model.get("regularizer"), "") if model["method"] == "IR" else ""


@print_sized
def plot_spectral(results: Mapping) -> Figure:
    """Figure 5: sigma_max of the input Jacobian (top) and test-orbit accuracy
    (bottom, from 0) for DA and IR with each regularizer form; one column per group.
    Each IR form has its own hatch as well as its colour. Where the results have it,
    a white diamond marks sigma_max of the centered logits (what the softmax sees)."""
    groups = list(results["groups"])
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.4 * len(groups) + 0.4), 5.8), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(groups), squeeze=False))
    any_missed = any_centered = False
    for col, g in enumerate(groups):
        entry = results["groups"][g]
        models = list(entry["models"].values())
        missed = [form_missed_target(entry, m) for m in models]
        any_missed |= any(missed)
        xs = np.arange(len(models))
        crowded = len(models) > 4  # five bars: shorter labels, and room for the legend above them
        colors = [model_color(m) for m in models]
        for row, key, scale, fmt in ((0, "sigma_max", 1.0, ".2f"), (1, "accuracy", 100.0, ".1f")):
            ax = axes[row, col]
            mean = [scale * _num(m[key]["mean"]) for m in models]
            std = [scale * _num(m[key]["std"]) for m in models]
            bars = ax.bar(xs, mean, yerr=std, capsize=3, color=colors, edgecolor="black", linewidth=0.6,
                          error_kw=dict(linewidth=0.8))
            for bar, model in zip(bars, models):
                bar.set_hatch(_model_hatch(model))
            ax.bar_label(bars, labels=[format(v, fmt) for v in mean], padding=2, fontsize=8)
            ax.set_xticks(xs, [_model_label(m, x, compact=crowded) for m, x in zip(models, missed)], fontsize=8)
            style_axes(ax)
        centered = [m.get("sigma_max_centered") for m in models]
        if all(c is not None for c in centered):  # results from before this measure lack it
            axes[0, col].plot(xs, [_num(c["mean"]) for c in centered], linestyle="none", marker="D",
                              markersize=5, markerfacecolor="white", markeredgecolor="black",
                              label=r"$\sigma_{\max}$ of the centered logits $f - \bar f\,\mathbf{1}$")
            any_centered = True
        axes[0, col].set_title(group_tex(g))
        axes[0, col].set_ylabel(r"$\sigma_{\max}(J)$ (mean over test inputs)")
        axes[1, col].set_ylabel("accuracy on the test orbit (%)")
        axes[1, col].set_ylim(0, 112)
        axes[1, col].set_yticks(np.arange(0, 101, 20))
        axes[0, col].margins(y=0.3 if crowded else 0.15)
    if any_centered:
        axes[0, 0].legend(loc="upper left", fontsize=7, frameon=False)
    target = results.get("meta", {}).get("profile", {}).get("si_target", 0.95)
    xlabel = f"model (IR: regularizer form, $\\nu$ tuned to $SI_f \\geq {target:g}$ on validation)"
    if any_missed:
        xlabel += f"\n$^\\dagger$ no $\\nu$ of the grid reached $SI_f \\geq {target:g}$: the largest-$SI_f$ $\\nu$"
    fig.supxlabel(xlabel, fontsize=8)
    return fig
