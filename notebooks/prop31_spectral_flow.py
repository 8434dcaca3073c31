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
# # Proposition 3.1: invariance-induced spectral decay (Section 3.3)
#
# For a linear network $h(x) = Wx$ and one group element with representation $G$, the
# logit invariance error of one sample, $\frac12\|Wx - WGx\|_2^2$, has gradient $W\Sigma$ with
# $\epsilon = x - Gx$ and $\Sigma = \epsilon\epsilon^T$. Its gradient flow
# $\frac{d}{dt}W = -W\Sigma$ (Eq. 5) has the closed form $W(t) = W(0)\exp(-\Sigma t)$ (Eq. 6),
# and since $\Sigma$ is rank one with eigenvalue $\lambda_{\max} = \epsilon^T\epsilon$,
# $\|\exp(-\Sigma t)\|_2 = 1$, so $\sigma_{\max}(W(t)) \leq \sigma_{\max}(W(0))$ (Eq. 7). The
# proof writes the flow as the limit of gradient descent $W_{k+1} = W_k(I - \alpha\Sigma)$.
#
# Everything here is computed live from the `theory` library (numpy/scipy, a second or
# two) on the random instance `python -m theory.spectral_flow` uses (seed 0):
#
# 1. the closed form (Eq. 6) against the flow integrated numerically (Eq. 5, `solve_ivp`);
# 2. $\sigma_{\max}$ over time for the flow and for gradient descent below
#    ($\alpha\lambda_{\max} \leq 2$) and above ($\alpha\lambda_{\max} = 3$) the step-size bound:
#    below it every eigenvalue $1 - \alpha\lambda$ of $I - \alpha\Sigma$ lies in $[-1, 1]$ and the
#    bound holds at every step; above it $\sigma_{\max}$ can grow geometrically, so the
#    proposition is a statement about the flow (small steps), not about any step size;
# 3. the named checks of the report for these claims, with residuals and tolerances.
#
# The figure is the one `python -m theory.spectral_flow --plot` draws (same function):
# panel (a) also shows every singular value under a dataset-plus-orbit $\Sigma$ (extension
# (a)) and panel (d) how a task loss can make $\sigma_{\max}$ grow (extension (d)).
# The paper has no figure for Proposition 3.1; Figure 5 is its empirical counterpart.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("GI_PROFILE", "quick")  # unused here: nothing is read from results
RESULTS = os.environ.get("GI_RESULTS", "results")  # unused here
FIGURES = os.environ.get("GI_FIGURES", "build/notebooks/figures")  # where the PNG and PDF go
SEED = 0  # seed of the random instances (as `python -m theory.spectral_flow --seed`)

# %%
import numpy as np

from nets.notebook_helpers import markdown_table, resolve, show_files, show_markdown
from theory import flow_ode, gradient_descent, rank_one_exp, sigma_max
from theory.spectral_flow import (Config, default_checks, format_report, make_instances, plot_flow, run_checks,
                                  select_checks)

cfg = Config(seed=SEED)
inst = make_instances(cfg)
W0, eps = inst.W0, inst.eps
Sigma = np.outer(eps, eps)
lam = float(eps @ eps)  # lambda_max(Sigma), the only nonzero eigenvalue
s0 = float(sigma_max(W0))
print(f"W(0): {W0.shape[0]} x {W0.shape[1]}, sigma_max(W(0)) = {s0:.6f}; lambda_max(Sigma) = eps^T eps = {lam:.6f}")

# %% [markdown]
# ## 1. Closed form (Eq. 6) versus the integrated flow (Eq. 5)
#
# Times in units of $1/\lambda_{\max}$; the relative difference is
# $\|W_{\text{closed}}(t) - W_{\text{ODE}}(t)\|_F / \|W(0)\|_F$.

# %%
t = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]) / lam
closed = W0[None] @ rank_one_exp(eps, t)
ode = flow_ode(W0, Sigma, t)
rel = np.linalg.norm(closed - ode, axis=(1, 2)) / np.linalg.norm(W0)
rows = [[f"{tk * lam:g}", f"{sc:.6f}", f"{so:.6f}", f"{r:.1e}"]
        for tk, sc, so, r in zip(t, sigma_max(closed), sigma_max(ode), rel)]
show_markdown(markdown_table(["t·λ_max", "σ_max(W(t)), closed form", "σ_max(W(t)), ODE", "relative difference"],
                             rows))
assert rel.max() < 1e-8, "the closed form and the integrated flow disagree"
assert np.all(sigma_max(closed) <= s0 * (1 + 1e-12)), "sigma_max(W(t)) exceeded sigma_max(W(0))"

# %% [markdown]
# ## 2. $\sigma_{\max}$ under gradient descent, below and above the step-size bound
#
# $k$ steps of $W \leftarrow W(I - \alpha\Sigma)$ from the same $W(0)$, and from a $W(0)$ whose
# rows lie along the top eigenvector of $\Sigma$ (the direction the step acts on most: there
# $\sigma_{\max}(W_k) = |1 - \alpha\lambda_{\max}|^k\,\sigma_{\max}(W_0)$, which decays fastest below
# the bound and grows above it, the worst case only when $\alpha\lambda_{\max} > 2$).

# %%
steps = 8
v = eps / np.sqrt(lam)
W_top = np.outer(np.ones(W0.shape[0]), v)
rows = []
for a in (0.5, 1.0, 1.9, 2.0, 3.0):
    gd = sigma_max(gradient_descent(W0, Sigma, a / lam, steps))
    top = sigma_max(gradient_descent(W_top, Sigma, a / lam, steps))
    rows.append([f"{a:g}", "yes" if a <= 2 else "no", f"{gd.max() / gd[0]:.4f}", f"{gd[-1] / gd[0]:.4f}",
                 f"{top[-1] / top[0]:.4g}"])
show_markdown(markdown_table(["α·λ_max", "≤ 2 (bound)", "max_k σ_max(W_k)/σ_max(W_0)",
                              f"σ_max(W_{steps})/σ_max(W_0)", f"rows along the top eigenvector: σ_max(W_{steps})/σ_max(W_0)"], rows))

# %% [markdown]
# ## 3. The report's named checks for these claims

# %%
names = ("closed_form_vs_expm", "ode_vs_closed_form", "rank_one_exp_spectral_norm_is_one", "sigma_max_bound",
         "gd_below_step_bound", "gd_above_step_bound")
results, seconds = run_checks(select_checks(default_checks(cfg, inst), names))
print(format_report(results, sum(seconds.values())))
assert all(r.passed for r in results)

# %% [markdown]
# ## The figure
#
# (top left) Proposition 3.1 on one sample: the closed form (line), the integrated ODE
# (circles) and gradient descent with $\alpha = 1.9/\lambda_{\max}$ (squares) never exceed
# $\sigma_{\max}(W(0))$ (dashed); (top right) gradient descent at $\alpha\lambda_{\max}$ = 1.9,
# 2 and 3: above 2 $\sigma_{\max}$ grows; (bottom left) every singular value under a dataset
# and orbit $\Sigma$ is non-increasing; (bottom right) with a task loss added, $\sigma_{\max}$
# can grow.

# %%
out = resolve(FIGURES)
out.mkdir(parents=True, exist_ok=True)
paths = [out / "spectral_flow.png", out / "spectral_flow.pdf"]
for p in paths:
    plot_flow(cfg, inst, p)
paths = show_files(paths)
