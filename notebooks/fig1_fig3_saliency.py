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
# # Figures 1 and 3: saliency maps realigned over the group orbit (Sections 1, 4.2)
#
# **Figure 1** of the paper contrasts a network that learned invariance from data with a
# weight-tied (WT) one: both predict the same class distribution for every orientation of
# the input, yet the learned network's saliency maps, once rotated back to a common
# orientation, disagree, while WT's coincide. **Figure 3** shows the same realigned maps
# for $\mathbb{R}^2_4$ models trained with data augmentation (DA) and with invariance
# regularization (IR): IR's maps are well aligned over the orbit, DA's are not.
#
# Here, for each group, every method (WT, DA, IR; Table 1's models, first seed) and a few
# test samples (rows), each panel shows the realigned map $g^{-1} m_f(g x)$ (red) for one
# group element $g$ (column) over the faint untransformed digit $x$. The saliency function
# $m_f$ is the paper's (Section 4.1): |integrated gradients| of the true class, values below
# 0.9 of the maximum dropped, a 3×3 Gaussian with σ = 1. The number in each corner is the
# cosine similarity with $m_f(x)$, one term of $SI_f$ (Eq. 3); the $g = $ identity column is 1
# by definition. A genuinely invariant model shows the same map in every column of a row.
#
# Our figure puts all three methods side by side (the paper splits them over Figures 1 and
# 3); $\mathbb{R}^2_4$ is the paper's case, $\mathbb{T}^2_3$ is our addition.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # smoke | quick | paper
RESULTS = os.environ.get("GI_RESULTS", "results")  # results root of `python -m nets`
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go

# %%
import numpy as np

from nets.notebook_helpers import load_results, markdown_table, resolve, show_figures, show_markdown
from nets.figures import figures_for

results = load_results("saliency", PROFILE, resolve(RESULTS))

# %% [markdown]
# ## Mean similarity of the realigned maps with $m_f(x)$
#
# Over the samples shown and the non-identity elements (a small-sample estimate of $SI_f$;
# Table 1 has the estimate on `n_si_samples` test samples).

# %%
rows = []
for g, entry in results["groups"].items():
    for m in sorted(entry["methods"], key=lambda m: ("WT", "DA", "IR").index(m) if m in ("WT", "DA", "IR") else 3):
        r = entry["methods"][m]
        sims = np.asarray(r["similarity"], dtype=float)[1:]  # drop the identity element
        agree = np.mean(np.asarray(r["predicted"]) == np.asarray(entry["labels"]))
        rows.append([g, m, f"{sims.mean():.2f}", f"{sims.min():.2f}", f"{100 * agree:.0f}"])
show_markdown(markdown_table(["group", "method", "mean similarity", "min similarity",
                              "correct on x (%)"], rows))

# %% [markdown]
# ## The figures
#
# `saliency_r4` corresponds to the paper's Figures 1 (WT vs a learned-invariance model) and
# 3 (DA vs IR); `saliency_t3` is the same for $\mathbb{T}^2_3$.

# %%
paths = show_figures(figures_for("saliency", results), resolve(FIGURES))
