"""Extension (c) of Proposition 3.1: discrete gradient descent on the logit invariance error,
``W <- W (I - alpha Sigma)`` (the proof's discrete step), keeps sigma_max non-increasing for
``alpha <= 2 / lambda_max(Sigma)``, and a counterexample above that step. Checks return a
:class:`theory.checks.CheckResult`; :mod:`theory.numeric` re-exports them."""

from __future__ import annotations

import numpy as np

from .checks import EPS64, CheckResult, at_most, exceeds
from .linear_flow import gradient_descent, sigma_max

__all__ = ["check_gd_below_step_bound", "check_gd_above_step_bound_grows"]

Array = np.ndarray


def check_gd_below_step_bound(W0: Array, Sigma: Array, alpha_factor: float, steps: int,
                              name: str = "gd_below_step_bound") -> CheckResult:
    """Extension (c): ``W <- W (I - alpha Sigma)`` keeps sigma_max non-increasing when
    ``alpha = alpha_factor / lambda_max(Sigma)`` with ``alpha_factor <= 2`` (then every
    eigenvalue ``1 - alpha lambda`` of ``I - alpha Sigma`` lies in [-1, 1]).

    Measured: ``max_k sigma_max(W_{k+1}) - sigma_max(W_k)``; tolerance
    ``4 n u sigma_max(W0)`` (one matrix product and one SVD per step).
    """
    W0 = np.asarray(W0, dtype=np.float64)
    lmax = float(np.linalg.eigvalsh(Sigma)[-1])
    smax = sigma_max(gradient_descent(W0, Sigma, alpha_factor / lmax, steps))
    excess = float(np.diff(smax).max())
    tol = 4 * W0.shape[1] * EPS64 * float(smax[0])
    return at_most(name, excess, tol, f"alpha={alpha_factor:g}/lambda_max, {steps} steps, "
                   f"sigma_max {smax[0]:.4g} -> {smax[-1]:.4g}", kind="bound")


def check_gd_above_step_bound_grows(Sigma: Array, m: int = 1, alpha_factor: float = 3.0,
                                    steps: int = 5,
                                    name: str = "gd_above_step_bound_counterexample") -> CheckResult:
    """Extension (c), counterexample: with ``alpha = alpha_factor / lambda_max > 2 / lambda_max``
    and every row of W0 along the top eigenvector v of Sigma, ``W_k = (1 - alpha lambda_max)^k W0``,
    so sigma_max grows by ``|1 - alpha_factor|`` per step.

    Measured: ``sigma_max(W_steps) / sigma_max(W0) - 1``; it must exceed ``1/2`` (the predicted
    value, ``(alpha_factor - 1)^steps - 1``, is in the detail).
    """
    lam, U = np.linalg.eigh(Sigma)
    v = U[:, -1]
    W0 = np.outer(np.arange(1, m + 1, dtype=np.float64), v)  # rank one, rows along v
    smax = sigma_max(gradient_descent(W0, Sigma, alpha_factor / lam[-1], steps))
    growth = float(smax[-1] / smax[0] - 1)
    predicted = abs(1 - alpha_factor) ** steps - 1
    return exceeds(name, growth, 0.5, f"alpha={alpha_factor:g}/lambda_max, W0 along top eigenvector, "
                   f"{steps} steps: growth {growth:.4g} (predicted {predicted:.4g})")
