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
# # Claims 1-5 on a CNN (beyond the paper)
#
# The paper studies one 5-layer MLP. This notebook shows the same experiments on a small CNN
# (`nets.cnn.SmallCNN`: four 3x3 convolutions, global average pooling, a linear head; 232,825
# parameters against the MLP's 233,225), trained as the MLP is (Adam 8e-4, batch 512, the epoch
# of best validation orbit accuracy kept), with the CNN's own number of epochs (`cnn_sizes` in
# the results; docs/cnn.md says why).
#
# - **WT** pools the CNN's first layer over the orbit, $h = \max_g \mathrm{relu}(\mathrm{conv}_1(gx))$,
#   the paper's weight tying at the first layer, so it is exactly invariant.
# - **DA** trains on randomly transformed inputs; **IR** adds the logit regularizer (Eq. 4) with
#   $\nu$ tuned to validation $SI_f \geq 0.95$ (ascending search).
#
# The results come from `python -m nets cnn --profile PROFILE` (`cnn.json`); the verdicts are those
# of REPORT.md, decided with the same thresholds as the MLP's.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # smoke | quick | paper
RESULTS = os.environ.get("GI_RESULTS", "results")  # results root of `python -m nets`
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go

# %%
from nets.cnn_report import cnn_verdicts
from nets.notebook_helpers import load_results, markdown_table, resolve, show_figures, show_markdown
from nets.figures import figures_for

results = load_results("cnn", PROFILE, resolve(RESULTS))
print("model:", results["model"])
print("CNN sizes:", results["cnn_sizes"])

# %% [markdown]
# ## Table 1 for the CNN (mean ± std over seeds)

# %%
rows = []
for g, entry in results["table1"]["groups"].items():
    for m, e in entry["methods"].items():
        rows.append([g, m, "" if e["nu"] is None else f"{e['nu']:g}",
                     f"{100 * e['accuracy']['mean']:.1f} ± {100 * (e['accuracy']['std'] or 0):.1f}",
                     *(f"{e[k]['mean']:.3g} ± {e[k]['std'] or 0:.2g}" for k in ("LI", "DI", "SI"))])
show_markdown(markdown_table(["group", "method", "ν", "Acc. (%)", "LI", "DI", "SI"], rows))

# %% [markdown]
# ## Figure 5 for the CNN: $\sigma_{\max}(J)$, DA vs IR

# %%
rows = []
for g, entry in results["spectral"]["groups"].items():
    da = entry["models"]["DA"]["sigma_max"]["mean"]
    for key, m in entry["models"].items():
        rows.append([g, key, f"{m['sigma_max']['mean']:.3g}", f"{m['sigma_max']['mean'] / da:.2f}",
                     f"{100 * m['accuracy']['mean']:.1f}"])
show_markdown(markdown_table(["group", "model", "σ_max(J)", "σ_max / DA's", "Acc. (%)"], rows))

# %% [markdown]
# ## Verdicts of claims 1-5 for the CNN
#
# Each claim's checks, with the thresholds of the MLP's report (`nets.verdicts.Thresholds`).

# %%
lines = []
for v in cnn_verdicts(results):
    lines.append(f"**Claim {v.claim}: {v.statement}** Verdict: **{v.status}**\n")
    lines += [f"- {c.detail}" for c in v.checks] + [f"- *note:* {n}" for n in v.notes] + [""]
show_markdown("\n".join(lines))

# %% [markdown]
# ## Figures: Table 1 (the paper's MLP values as diamonds), the $\nu$ selection, Figure 4 (drift),
# Figure 5 (DA vs IR) and the validation curves behind the choice of epochs

# %%
paths = show_figures(figures_for("cnn", results), resolve(FIGURES))

# %% [markdown]
# ## Beyond the paper: the CNN's $\sigma_{\max}$ as logit scale × sensitivity per unit of scale
#
# Ours (`python -m nets scale --model cnn`, docs/findings.md): each model's $\sigma_{\max}$ of the
# centered logits split into their scale $\|f - \bar f\,\mathbf{1}\|$ and the ratio of the two
# (unchanged by $f \to a f$), IR against DA seed by seed, from the CNN's checkpoints (measured
# here first when the results folder has no `cnn_scale.json`; nothing is trained).

# %%
from nets.notebook_helpers import load_scale
from nets.scale_report import scale_section
from nets.verdicts import fmt

scale = load_scale(PROFILE, resolve(RESULTS), model="cnn")
if scale is not None:  # None: the checkpoints it measures are not here (it says what to run)
    show_markdown("\n".join(scale_section(scale, fmt=fmt, with_figure=False)[1:]))
    paths += show_figures(figures_for("cnn_scale", scale), resolve(FIGURES))
