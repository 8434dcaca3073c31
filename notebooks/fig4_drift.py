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
# # Figure 4: invariance and accuracy under distribution drift (Section 4.3)
#
# The paper simulates changing operating conditions by drifting the test data from
# Transforming-MNIST to Transforming-FMNIST, $\mathcal{D}_{1\to2}(\beta) = (1-\beta)\,
# \mathcal{D}_1 + \beta\,\mathcal{D}_2$, and plots for WT, DA and IR, against the drift
# degree $\beta$: the distribution invariance error $DI_f$ and the accuracy ratio
# $\mathrm{Acc}(\mathcal{D}_{1\to2}(\beta)) / \mathrm{Acc}(\mathcal{D}_1)$.
#
# Claims (Section 4.3): DA's invariance deteriorates rapidly even under slight drift, while
# WT and IR keep a low $DI_f$ even under substantial drift; WT sustains more accuracy
# under the shift (IR too for $\mathbb{T}^2_3$, but not for $\mathbb{R}^2_4$).
#
# The paper draws both quantities in one panel with two y-axes; we draw $DI_f$ (top) and
# the accuracy ratio (bottom) in separate rows, one column per group, mean ± std over seeds
# as a band. Models are Table 1's; $\mathcal{D}_{1\to2}(\beta)$ is the pixel interpolation
# of paired test images, with the MNIST label.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # smoke | quick | paper
RESULTS = os.environ.get("GI_RESULTS", "results")  # results root of `python -m nets`
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go

# %%
from nets.notebook_helpers import load_results, markdown_table, resolve, show_figures, show_markdown, show_verdicts
from nets.figures import figures_for

results = load_results("drift", PROFILE, resolve(RESULTS))

# %% [markdown]
# ## $DI_f$ and accuracy ratio at no, half and full drift (means over seeds)

# %%
betas = list(results["betas"])
picks = [betas.index(b) for b in (min(betas), betas[len(betas) // 2], max(betas))]
rows = []
for g, methods in results["groups"].items():
    for m, r in methods.items():
        di = [r["DI"]["mean"][i] for i in picks]
        ratio = [r["accuracy_ratio"]["mean"][i] for i in picks]
        rows.append([g, m, *(f"{v:.3g}" if v is not None else "n/a" for v in di + ratio)])
header = ["group", "method", *(f"DI, β = {betas[i]:g}" for i in picks),
          *(f"Acc ratio, β = {betas[i]:g}" for i in picks)]
show_markdown(markdown_table(header, rows))
verdicts = show_verdicts({"drift": results}, ["4"])

# %%
paths = show_figures(figures_for("drift", results), resolve(FIGURES))
