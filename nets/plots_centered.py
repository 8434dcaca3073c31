"""The figure of the centered and detached normalized-logit experiments (``centered.json``,
``detached.json``; ours, beyond the paper): Figure 5's panels with our form's bar beside DA's and
the three paper forms', drawn by :func:`nets.plots.plot_spectral` from the JSON alone (the
comparison numbers are copied there)."""

from __future__ import annotations

from typing import Mapping

from matplotlib.figure import Figure

from nets.centered_report import WORDING
from nets.plots import plot_spectral
from nets.train.config import CENTERED_FORM

__all__ = ["as_spectral_results", "plot_centered"]


def as_spectral_results(centered: Mapping) -> dict:
    """``centered.json`` in the layout of ``spectral.json``: per group the comparison models
    (DA, the paper's forms) then ours, and ``nu_selections`` carrying each form's
    ``reached_target`` (ours: its full selection record)."""
    groups = {}
    for g, entry in centered["groups"].items():
        models = {**entry["comparison"], f"IR-{entry['model']['regularizer']}": entry["model"]}
        sels = {m["regularizer"]: {"reached_target": m.get("reached_target", True)}
                for m in entry["comparison"].values() if m.get("method") == "IR"}
        sels[entry["model"]["regularizer"]] = entry["nu_selection"]
        groups[g] = {"models": models, "nu_selections": sels}
    return {"meta": centered.get("meta", {}), "groups": groups}


def plot_centered(centered: Mapping) -> Figure:
    """sigma_max(J) (top, white diamonds: centered logits) and test-orbit accuracy (bottom) of DA,
    the paper's three forms and our form (centered or detached); one column per group."""
    fig = plot_spectral(as_spectral_results(centered))
    sep = " " if len(centered["groups"]) > 1 else "\n"  # one column: too narrow for one line
    title = WORDING[centered.get("form", {}).get("name", CENTERED_FORM)].title  # as its REPORT.md subsection
    fig.suptitle(f"Figure 5 with {title}{sep}(ours, not the paper's)", fontsize=9)
    return fig
