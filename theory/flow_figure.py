"""The figure of Proposition 3.1's report (``python -m theory.spectral_flow --plot PATH``):
``sigma_max(W(t))`` under the flow, its discrete and dataset extensions, and with a task loss."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import linear_flow as lf
from ._blas import single_threaded_blas
from .instances import Config, Instances

__all__ = ["plot_flow"]


def plot_flow(cfg: Config, inst: Instances, path: str | os.PathLike[str]) -> None:
    """Figure of ``sigma_max(W(t))`` (see :func:`_plot_flow`), with single-threaded BLAS."""
    with single_threaded_blas():
        _plot_flow(cfg, inst, path)


#: Okabe & Ito (2008) colour-blind-safe palette (as in ``nets.plots``; not imported, to keep torch out).
_OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#999999")
_OI = dict(zip(("black", "orange", "sky_blue", "bluish_green", "blue", "vermillion", "reddish_purple", "grey"),
               _OKABE_ITO))


def _plot_flow(cfg: Config, inst: Instances, path: str | os.PathLike[str]) -> None:
    """Figure of ``sigma_max(W(t))``: PDF if ``path`` ends in ``.pdf``, PNG (200 dpi) otherwise.

    (1) the rank-one instance: closed form Eq. (6), the ODE Eq. (5) integrated by solve_ivp,
    and discrete GD below the step-size bound (alpha = 1.9/lambda_max);
    (2) GD below versus above (alpha = 3/lambda_max) the bound, extension (c), as the ratio
    sigma_max(W_k) / sigma_max(W_0) on a log axis, with a linear inset for alpha <= 2;
    (3) every singular value under the dataset/orbit flow, extension (a);
    (4) invariance term alone versus task loss plus invariance, extension (d).
    Okabe-Ito colours, TrueType fonts in the PDF; written to a temporary file and moved into place.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rc = {"font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8.5, "legend.fontsize": 8,
          "xtick.labelsize": 8, "ytick.labelsize": 8, "pdf.fonttype": 42, "ps.fonttype": 42,
          "axes.prop_cycle": matplotlib.cycler(color=list(_OKABE_ITO[1:]))}
    path = Path(path)
    fmt = "pdf" if path.suffix.lower() == ".pdf" else "png"
    W0, eps = inst.W0, inst.eps
    s = float(eps @ eps)
    Sigma = np.outer(eps, eps)
    s0 = float(lf.sigma_max(W0))
    smax_w0 = r"$\sigma_{\max}(W(0))$"
    lmax = r"\lambda_{\max}"
    with matplotlib.rc_context(rc):
        # Fixed margins: constrained layout costs seconds of text measuring.
        fig, axes = plt.subplots(2, 2, figsize=(7.5, 6.4))
        fig.subplots_adjust(left=0.085, right=0.985, bottom=0.075, top=0.93, wspace=0.28, hspace=0.45)
        axes = axes.ravel()

        ax = axes[0]
        t = np.linspace(0, 6 / s, 200)
        ax.plot(t * s, lf.sigma_max(W0[None] @ lf.rank_one_exp(eps, t)), "-", color=_OI["black"], lw=2,
                label="closed form $W_0 e^{-\\Sigma t}$ (Eq. 6)")
        t_ode = t[::10]
        ax.plot(t_ode * s, lf.sigma_max(lf.flow_ode(W0, Sigma, t_ode)), "o", mfc="none", color=_OI["blue"],
                label="ODE (Eq. 5), solve_ivp")
        k = int(6 / 1.9) + 1
        ax.plot(np.arange(k + 1) * 1.9, lf.sigma_max(lf.gradient_descent(W0, Sigma, 1.9 / s, k)),
                "s--", color=_OI["bluish_green"], label=f"GD, $\\alpha = 1.9/{lmax}$")
        ax.axhline(s0, color=_OI["grey"], lw=0.8, ls="--", label=smax_w0)
        ax.set_xlabel(f"$t \\cdot {lmax}(\\Sigma)$  (GD: $k \\alpha {lmax}$)")
        ax.set_ylabel(r"$\sigma_{\max}(W(t))$")
        ax.set_title("Prop. 3.1: one sample, $\\Sigma = \\epsilon\\epsilon^T$")
        ax.legend()

        ax = axes[1]
        steps = 8
        styles = {1.9: ("s--", _OI["bluish_green"]), 2.0: ("d-.", _OI["blue"])}
        below = {}
        for a in (1.9, 2.0, cfg.alpha_above):
            style, color = styles.get(a, ("^:", _OI["vermillion"]))
            ratio = lf.sigma_max(lf.gradient_descent(W0, Sigma, a / s, steps)) / s0
            if a <= 2:
                below[a] = (style, color, ratio)
            ax.plot(np.arange(steps + 1), ratio, style, color=color, label=f"$\\alpha = {a:g}/{lmax}$"
                    + (" (> 2)" if a > 2 else ""))
        ax.axhline(1.0, color=_OI["grey"], lw=0.8, ls="--", label="1 (the bound)")
        ax.set_yscale("log")
        ax.set_xlabel("GD step $k$,  $W \\leftarrow W(I - \\alpha\\Sigma)$")
        ax.set_ylabel(r"$\sigma_{\max}(W_k)\,/\,\sigma_{\max}(W_0)$")
        ax.set_title(f"(c) discrete GD: a step above $2/{lmax}$\nbreaks the bound")
        # room below 1 for the inset, above the largest ratio for the legend
        ax.set_ylim(1e-2, 3 * max(1.0, max(float(np.max(line.get_ydata())) for line in ax.get_lines())))
        ax.legend(loc="upper left")
        # alpha <= 2 stays at or below 1, merged into the line at the log scale: a linear inset shows it
        ins = ax.inset_axes([0.56, 0.07, 0.41, 0.27])
        for a, (style, color, ratio) in below.items():
            ins.plot(np.arange(steps + 1), ratio, style, color=color, markersize=3, lw=1)
        ins.axhline(1.0, color=_OI["grey"], lw=0.8, ls="--")
        lo = min(float(np.min(r)) for *_, r in below.values()) if below else 0.9
        ins.set_ylim(lo - 0.1 * (1.02 - lo) - 1e-3, 1.02 + 0.05 * (1.02 - lo))
        ins.set_xticks(range(0, steps + 1, 2))
        ins.set_title(r"$\alpha \leq 2$, linear scale", fontsize=8, pad=2)
        ins.tick_params(labelsize=8)
        ins.set_facecolor("white")

        ax = axes[2]
        lam = np.linalg.eigvalsh(inst.Sigma_data)[::-1]
        _, r = lf.span_projector(inst.eps_data)
        t = np.geomspace(0.01 / lam[0], 20 / lam[r - 1], 150)
        sv = lf.singular_values(lf.flow_expm(W0, inst.Sigma_data, t))
        for i in range(sv.shape[1]):
            ax.plot(t * lam[0], sv[:, i], label=f"$\\sigma_{i + 1}(W(t))$")
        ax.set_xscale("log")
        ax.set_xlabel(f"$t \\cdot {lmax}(\\Sigma)$")
        ax.set_ylabel("singular values of $W(t)$")
        ax.set_title(f"(a) dataset + orbit, rank $\\Sigma$ = {r}:\nall non-increasing")
        ax.legend()

        ax = axes[3]
        xx = float(inst.x @ inst.x)
        t = np.linspace(0, 10 / xx, 100)
        task = lf.sigma_max(lf.task_loss_flow(W0, inst.x, inst.G, inst.y, cfg.task_nu, t))
        inv = lf.sigma_max(W0[None] @ lf.rank_one_exp(eps, cfg.task_nu * t))
        ax.plot(t * xx, inv, "-", color=_OI["black"], label="invariance term only")
        ax.plot(t * xx, task, "-", color=_OI["vermillion"],
                label=f"task loss + invariance, $||y|| = {cfg.task_target_scale:g}$")
        ax.set_yscale("log")
        ax.set_xlabel("$t \\cdot ||x||^2$")
        ax.set_ylabel(r"$\sigma_{\max}(W(t))$")
        ax.set_title("(d) with a task loss,\n" r"$\sigma_{\max}$ can grow")
        ax.legend()

        from nets.results_io import save_figure_file

        try:
            save_figure_file(fig, path, format=fmt, dpi=200)
        finally:
            plt.close(fig)
