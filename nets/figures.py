"""Which figures each experiment draws: the one registry over :mod:`nets.plots` (the paper's
figures), :mod:`nets.plots_centered`, :mod:`nets.plots_scale`, :mod:`nets.plots_between`,
:mod:`nets.plots_train_size` and :mod:`nets.plots_cnn` (beyond the paper)."""

from __future__ import annotations

from typing import Callable, Mapping

from matplotlib.figure import Figure

from nets.plots import (nu_selections, plot_drift, plot_nu_selection, plot_saliency, plot_spectral, plot_table1,
                        plot_tsne)
from nets.plots_between import plot_between
from nets.plots_centered import plot_centered
from nets.plots_cnn import cnn_figures
from nets.plots_scale import plot_scale
from nets.plots_train_size import plot_train_size

__all__ = ["figures_for"]


def figures_for(experiment: str, results: Mapping) -> dict[str, Figure]:
    """Every figure of one experiment, keyed by file stem."""
    makers: dict[str, Callable[[], dict[str, Figure]]] = {
        "table1": lambda: {"table1": plot_table1(results), "nu_selection_table1": plot_nu_selection(results)},
        "drift": lambda: {"drift": plot_drift(results)},
        # no nu search to draw for DA alone (``--regularizers`` with no form)
        "spectral": lambda: {"spectral": plot_spectral(results),
                             **({"nu_selection_spectral": plot_nu_selection(results)} if nu_selections(results)
                                else {})},
        "centered": lambda: {"centered": plot_centered(results)},
        "detached": lambda: {"detached": plot_centered(results)},
        "scale": lambda: {"scale": plot_scale(results)},
        "cnn_scale": lambda: {"cnn_scale": plot_scale(results, "CNN")},
        "tsne": lambda: {"tsne": plot_tsne(results)},
        "saliency": lambda: {f"saliency_{g}": plot_saliency(results, g) for g in results["groups"]},
        "cnn": lambda: cnn_figures(results),
        "between": lambda: {"between": plot_between(results)},
        # none until a group is complete (its sizes so far are under in_progress)
        "train_size": lambda: {"train_size": plot_train_size(results)} if results["groups"] else {},
    }
    if experiment not in makers:
        raise ValueError(f"no figures for experiment {experiment!r}; known: {', '.join(makers)}")
    return makers[experiment]()
