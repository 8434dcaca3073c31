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
# # Table 1: accuracy and invariance of WT, DA and IR (Section 4.2)
#
# The paper's Table 1 compares, on Transforming-MNIST, three ways of obtaining invariance to
# the group $\mathbb{R}^2_4$ (4-fold rotations) and $\mathbb{T}^2_3$ (3-fold cyclic
# x-translations):
#
# - **WT**, group-invariant weight tying in the first layer (invariant by construction),
# - **DA**, data augmentation only,
# - **IR**, data augmentation plus the logit invariance error as a regularizer (Eq. 4), with
#   its weight $\nu$ tuned on validation until $SI_f \geq 0.95$.
#
# Measures (Section 3.2): accuracy over the whole test orbit; $DI_f$, the predictive-distribution
# invariance error (Eq. 1, KL); $LI_f$, the logit invariance error (Eq. 2, lower is more
# invariant); $SI_f$, the saliency invariance similarity (Eq. 3, 1 = the saliency map moves
# exactly with the input).
#
# The paper's claims checked here: (1) WT is exactly invariant; (2) DA classifies orbits
# well and has a low $DI_f$ but a high $LI_f$ and a low $SI_f$: it solves the invariant task
# without a genuinely invariant decision process; (3) IR reaches $SI_f \geq 0.95$ and an
# $LI_f$ near WT's, at a cost in accuracy.
#
# The numbers come from `python -m nets table1 --profile PROFILE`, run here if its results
# file is missing. Smaller profiles than `paper` (300 epochs, 4 seeds) are not expected to
# match the paper's numbers, only its ordering.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # smoke | quick | paper
RESULTS = os.environ.get("GI_RESULTS", "results")  # results root of `python -m nets`
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go

# %%
from nets.notebook_helpers import load_results, markdown_table, resolve, show_figures, show_markdown, show_verdicts
from nets.figures import figures_for
from nets.report import PAPER_TABLE1, PAPER_TABLE1_STD

results = load_results("table1", PROFILE, resolve(RESULTS))


# %% [markdown]
# ## Our numbers beside the paper's
#
# Mean ± standard deviation over the profile's seeds; accuracy in %. The paper averages
# over 4 seeds.

# %%
def pm(entry, scale=1.0):
    mean, std = entry["mean"], entry.get("std") or 0.0
    return "n/a" if mean is None else f"{scale * mean:.3g} ± {scale * std:.2g}"


rows = []
for g, entry in results["groups"].items():
    for m, r in entry["methods"].items():
        paper = PAPER_TABLE1.get(g, {}).get(m)
        paper_std = PAPER_TABLE1_STD.get(g, {}).get(m)
        ours = [pm(r["accuracy"], 100.0), pm(r["LI"]), pm(r["DI"]), pm(r["SI"])]
        theirs = ["" if paper is None else f"{v:g} ± {s:g}" for v, s in zip(paper or (), paper_std or ())]
        rows.append([g, m, "" if r.get("nu") is None else f"{r['nu']:g}", *ours])
        rows.append(["", "paper", "", *theirs])
show_markdown(markdown_table(["group", "method", "ν", "Acc. (%)", "LI ⇓", "DI ⇓", "SI ⇑"], rows))

# %% [markdown]
# ## Verdicts
#
# Decided from the numbers above with the thresholds of `nets.verdicts.Thresholds` (the same
# verdicts as `REPORT.md`).

# %%
verdicts = show_verdicts({"table1": results}, ["1", "2", "3"])

# %% [markdown]
# ## Figure: Table 1 as bars
#
# One panel per measure (accuracy, $LI_f$, $DI_f$, $SI_f$), groups on the x-axis, one bar per
# method (mean ± std over seeds); the paper's values are the white diamonds. $LI_f$ and
# $DI_f$ are on a symmetric-log axis, so WT's exact zeros and DA's large $LI_f$ are both
# visible.
#
# The second figure shows how IR's $\nu$ was chosen: validation $SI_f$ (top) and accuracy
# (bottom) against $\nu$, the target $SI_f \geq 0.95$ dashed and the chosen $\nu$ circled.

# %%
paths = show_figures(figures_for("table1", results), resolve(FIGURES))
