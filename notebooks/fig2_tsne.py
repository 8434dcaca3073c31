# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Figure 2: t-SNE of the penultimate features over group orbits (Section 4.2)
#
# The paper's Figure 2 embeds the penultimate-layer representations of an
# $\mathbb{R}^2_4$ model with *learned* invariance (data augmentation) with t-SNE and traces
# the orientations of one sample: they land far apart in representation space, though
# still within the region of their class. The network solves the invariant task without
# an invariant representation.
#
# Here each panel is one group (row) and method (column; Table 1's models, first seed):
# test samples under every group element, colour = class, marker = group element, thin
# lines join the members of one orbit. For WT an orbit collapses to a point; for DA the
# paper predicts orbits spread across the class's cluster. Since t-SNE distances are not
# metric, the title gives a number measured in feature space: the mean distance between
# members of one orbit divided by the mean distance between different samples of the same
# class (0: exactly invariant; about 1: rotating a sample moves it as far as replacing it
# by another sample of its class).

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # smoke | quick | paper
RESULTS = os.environ.get("GI_RESULTS", "results")  # results root of `python -m nets`
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go

# %%
from nets.notebook_helpers import load_results, markdown_table, resolve, show_figures, show_markdown, show_verdicts
from nets.figures import figures_for

results = load_results("tsne", PROFILE, resolve(RESULTS))

# %% [markdown]
# ## Orbit / class distance ratio (feature space), mean ± std over seeds

# %%
rows = []
for g, entry in results["groups"].items():
    for m, r in entry["methods"].items():
        ratio = r.get("ratio") or {}
        mean, std = ratio.get("mean"), ratio.get("std") or 0.0
        rows.append([g, m, "n/a" if mean is None else f"{mean:.3g} ± {std:.2g}"])
show_markdown(markdown_table(["group", "method", "orbit / class distance"], rows))
verdicts = show_verdicts({"tsne": results}, ["Fig. 2"])

# %%
paths = show_figures(figures_for("tsne", results), resolve(FIGURES))
