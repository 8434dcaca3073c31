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
# # Figure 5: invariance-induced spectral decay in trained networks (Section 4.4)
#
# Proposition 3.1 shows that, for a linear network, minimizing the logit invariance error
# cannot increase $\sigma_{\max}(W)$ (see `prop31_spectral_flow`). The paper's Figure 5
# checks the consequence on the MLPs: networks trained with invariance regularization (IR)
# are less sensitive to input perturbations than networks trained with data augmentation
# only (DA), as measured by the largest singular value of the input Jacobian,
# $\sigma_{\max}(J)$, and this for three forms of the regularizer: the logit error
# $\frac12\|f(x)-f(gx)\|_2^2$, the KL divergence between predictive distributions, and the
# logit error normalized by $\|f(x)\|_2^2$. Each form's weight $\nu$ is tuned until the
# validation $SI_f \geq 0.95$. The paper also notes that every form costs accuracy.
#
# Top row: $\sigma_{\max}(J)$ (mean over test inputs, then mean ± std over seeds), one bar per
# model; bottom row: test-orbit accuracy; one column per group. White diamonds: $\sigma_{\max}$
# of the centered logits $f - \bar f\,\mathbf{1}$, the part the softmax sees; a shift common to
# every class changes neither the prediction nor the loss, but it lowers the normalized error
# without any gain in invariance, and the table gives its share of $\|f\|$. The second figure
# shows the $\nu$ selection of each regularizer form (validation $SI_f$ and accuracy against $\nu$).

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # smoke | quick | paper
RESULTS = os.environ.get("GI_RESULTS", "results")  # results root of `python -m nets`
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go

# %%
from nets.notebook_helpers import load_results, markdown_table, resolve, show_figures, show_markdown, show_verdicts
from nets.figures import figures_for
from nets.nu_selection_notes import form_missed_target

results = load_results("spectral", PROFILE, resolve(RESULTS))

# %% [markdown]
# ## $\sigma_{\max}(J)$ and accuracy per model, mean ± std over seeds

# %%
rows = []
for g, entry in results["groups"].items():
    da = entry["models"].get("DA", {}).get("sigma_max", {}).get("mean")
    for key, m in entry["models"].items():
        s, acc = m["sigma_max"], m["accuracy"]
        rel = "" if da in (None, 0) or s["mean"] is None else f"{s['mean'] / da:.2f}"
        reached = "" if m["method"] != "IR" else ("no" if form_missed_target(entry, m) else "yes")
        # absent from results written before these two measures existed
        sc, share = m.get("sigma_max_centered"), m.get("common_logit_share")
        rows.append([g, key, "" if m.get("nu") is None else f"{m['nu']:g}", reached,
                     f"{s['mean']:.3g} ± {s['std'] or 0:.2g}", rel,
                     "n/a" if sc is None else f"{sc['mean']:.3g} ± {sc['std'] or 0:.2g}",
                     "n/a" if share is None else f"{share['mean']:.3f}",
                     f"{100 * acc['mean']:.1f} ± {100 * (acc['std'] or 0):.1f}"])
show_markdown(markdown_table(["group", "model", "ν", "SI ≥ 0.95 reached", "σ_max(J)", "σ_max / DA's",
                              "σ_max, centered logits", "class-common share", "Acc. (%)"], rows))
verdicts = show_verdicts({"spectral": results}, ["5"])

# %%
paths = show_figures(figures_for("spectral", results), resolve(FIGURES))

# %% [markdown]
# ## Beyond the paper: $\sigma_{\max}$ as logit scale × sensitivity per unit of scale
#
# Ours, not the paper's (`python -m nets scale`, docs/findings.md). A network can lower
# $\sigma_{\max}(J)$ by shrinking its logits without becoming any smoother: multiplying $f$ by
# $a$ multiplies $\sigma_{\max}$ by $a$ too. So each model's $\sigma_{\max}$ of the centered
# logits is split into their scale $\|f - \bar f\,\mathbf{1}\|$ and the ratio of the two
# (unchanged by $f \to a f$), and each IR model is compared with DA, seed by seed. The models are
# read from the checkpoints above (measured here first when the results folder has no
# `scale.json`); nothing is trained.

# %%
from nets.notebook_helpers import load_scale
from nets.scale_report import scale_section
from nets.verdicts import fmt

scale = load_scale(PROFILE, resolve(RESULTS))
if scale is not None:  # None: the checkpoints it measures are not here (it says what to run)
    show_markdown("\n".join(scale_section(scale, fmt=fmt, with_figure=False)))
    paths += show_figures(figures_for("scale", scale), resolve(FIGURES))
