"""The CNN's figures (``cnn.json``, :mod:`nets.experiments.cnn`): the MLP's plotting functions
applied to the CNN's Table 1, drift and spectral results, and the validation curves."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from nets.plot_style import METHOD_COLORS, PAGE_WIDTH, group_tex
from nets.plots import plot_drift, plot_nu_selection, plot_spectral, plot_table1

__all__ = ["CNN_FIGURES", "cnn_figures", "plot_validation_curves"]

#: File stems (under ``figures/``) of the CNN's figures.
CNN_FIGURES = ("cnn_table1", "cnn_nu_selection", "cnn_drift", "cnn_spectral", "cnn_val_curves")


def plot_validation_curves(results: Mapping) -> Figure:
    """Validation orbit accuracy against the epoch for every CNN run (one column per group, one
    colour per method, one line per seed), the selected epoch marked: what justifies the CNN's
    number of epochs (docs/cnn.md)."""
    groups = list(results["table1"]["groups"])
    fig = Figure(figsize=(min(PAGE_WIDTH, 3.4 * len(groups) + 0.4), 3.0), layout="constrained")
    axes = np.asarray(fig.subplots(1, len(groups), squeeze=False)).ravel()
    for ax, g in zip(axes, groups):
        for m, entry in results["table1"]["groups"][g]["methods"].items():
            for i, run in enumerate(entry["runs"]):
                val = [100.0 * v for v in run["history"]["val_accuracy"]]
                epochs = np.arange(1, len(val) + 1)
                label = (f"{m}" + (f" (nu = {entry['nu']:g})" if entry.get("nu") is not None else "")) if i == 0 \
                    else "_"
                ax.plot(epochs, val, color=METHOD_COLORS.get(m), label=label, linewidth=1)
                ax.plot(run["best_epoch"] + 1, val[run["best_epoch"]], marker="o", color=METHOD_COLORS.get(m),
                        markersize=4)
        ax.set_title(group_tex(g))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation orbit accuracy (%)")
        ax.legend(fontsize=7, frameon=False)
    return fig


def cnn_figures(results: Mapping) -> dict[str, Figure]:
    """Every figure of ``cnn.json``, keyed by file stem (:data:`CNN_FIGURES`): Table 1 (the
    paper's MLP values as diamonds), the nu selection, Figure 4, Figure 5 (DA vs IR) and the
    validation curves; drawn by the MLP's plotting functions."""
    meta = {"meta": results.get("meta", {})}
    return {"cnn_table1": plot_table1(results["table1"]), "cnn_nu_selection": plot_nu_selection(results["table1"]),
            "cnn_drift": plot_drift(results["drift"]), "cnn_spectral": plot_spectral({**meta, **results["spectral"]}),
            "cnn_val_curves": plot_validation_curves(results)}
