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

__all__ = ["FIGURE_EXPERIMENTS", "figures_for"]


#: Each experiment that draws figures: its results dict -> {file stem: figure}.
_MAKERS: dict[str, Callable[[Mapping], dict[str, Figure]]] = {
    "table1": lambda r: {"table1": plot_table1(r), "nu_selection_table1": plot_nu_selection(r)},
    "drift": lambda r: {"drift": plot_drift(r)},
    # no nu search to draw for DA alone (``--regularizers`` with no form)
    "spectral": lambda r: {"spectral": plot_spectral(r),
                           **({"nu_selection_spectral": plot_nu_selection(r)} if nu_selections(r) else {})},
    "centered": lambda r: {"centered": plot_centered(r)},
    "detached": lambda r: {"detached": plot_centered(r)},
    "scale": lambda r: {"scale": plot_scale(r)},
    "cnn_scale": lambda r: {"cnn_scale": plot_scale(r, "CNN")},
    "tsne": lambda r: {"tsne": plot_tsne(r)},
    "saliency": lambda r: {f"saliency_{g}": plot_saliency(r, g) for g in r["groups"]},
    "cnn": cnn_figures,
    "between": lambda r: {"between": plot_between(r)},
    # none until a group is complete (its sizes so far are under in_progress)
    "train_size": lambda r: {"train_size": plot_train_size(r)} if r["groups"] else {},
}
#: The results files (``<name>.json``) that have figures; the others (``intervals``, ``si_settings``, ...) have none.
FIGURE_EXPERIMENTS: tuple[str, ...] = tuple(_MAKERS)


def figures_for(experiment: str, results: Mapping) -> dict[str, Figure]:
    """Every figure of one experiment, keyed by file stem."""
    if experiment not in _MAKERS:
        raise ValueError(f"no figures for experiment {experiment!r}; known: {', '.join(_MAKERS)}")
    return _MAKERS[experiment](results)
