"""Numerical (numpy/scipy, float64) checks of Proposition 3.1 and of its extensions.

The notation and the building blocks (residuals, Sigma, the flows) are :mod:`theory.linear_flow`'s:
``W(t) = W(0) exp(-Sigma t)`` (Eq. 6) solves the flow Eq. (5) of the logit invariance error Eq. (2).

Extension (c), gradient descent's step bound, is :mod:`theory.descent`'s (re-exported here).

Each ``check_*`` function returns a :class:`theory.checks.CheckResult`; its tolerance is
stated in the docstring, as a function of float64 roundoff ``u`` and the instance where rounding
is the only error, so that it does not hide a real discrepancy and does not fail on rounding. The
checks against an ODE integrator (:func:`check_ode_vs_closed_form`, :func:`check_flow_expm_vs_ode`)
allow a multiple of the integrator's own tolerance instead, a heuristic bound on its global error.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg as sla

from .checks import (
    EPS64, MAX_ODE_RATE_TIME, MAX_RATE_TIME, CheckResult, at_most, expm_rounding, finite_difference_tolerance,
    ode_allowance,
)
from .descent import check_gd_above_step_bound_grows, check_gd_below_step_bound
from .linear_flow import (
    flow_expm,
    flow_ode,
    invariance_covariance,
    invariance_residuals,
    logit_invariance_error,
    logit_invariance_grad,
    rank_one_exp,
    sigma_max,
    singular_values,
    span_projector,
)

__all__ = [
    "finite_difference_gradient",
    "refuse_long_horizon",
    "check_gradient_finite_differences",
    "check_closed_form_vs_expm",
    "check_exp_spectral_norm_is_one",
    "check_ode_vs_closed_form",
    "check_flow_expm_vs_ode",
    "check_sigma_max_bound",
    "check_orbit_covariance",
    "check_singular_values_nonincreasing",
    "check_limit_is_projection",
    "check_limit_is_invariant",
    "check_gd_below_step_bound",  # theory.descent's, extension (c)
    "check_gd_above_step_bound_grows",
]

Array = np.ndarray


def _positive_spectrum(Sigma: Array, rank: int) -> tuple[float, float]:
    """``(lambda_max, smallest nonzero eigenvalue)`` of a PSD Sigma of known rank; ``(0, 0)`` for rank 0."""
    if rank == 0:
        return 0.0, 0.0
    lam = np.linalg.eigvalsh(Sigma)[::-1]
    return float(lam[0]), float(lam[rank - 1])


def refuse_long_horizon(rate_time: float, name: str, cap: float = MAX_RATE_TIME) -> CheckResult | None:
    """A FAIL naming the horizon ``lambda_max t_max`` where it exceeds ``cap`` (the allowances of the flow
    checks grow with it: :data:`~theory.checks.MAX_RATE_TIME`, :data:`~theory.checks.MAX_ODE_RATE_TIME`),
    else None. A grid out to ``50 / lambda_min+`` reaches it at a condition number of ``cap / 50``."""
    if rate_time <= cap:
        return None
    return at_most(name, rate_time, cap, f"lambda_max t_max = {rate_time:.3g} is past {cap:.0e} (an ill-conditioned "
                   f"Sigma's grid out to 50 / lambda_min+?): the check's allowances would grow with it; not measured")


def finite_difference_gradient(loss: Callable[[Array], float], W: Array) -> tuple[Array, float, float]:
    """Central differences of a scalar ``loss(W)`` in every entry of ``W (m, n)``, with step
    ``h = u^(1/3) max|W|`` (``u^(1/3)`` for W = 0): ``(gradient (m, n), h, the largest |loss| evaluated)``.
    For a quadratic loss they have no truncation error, only cancellation, about ``u max|loss| / h`` per
    entry (:func:`~theory.checks.finite_difference_tolerance`)."""
    W = np.asarray(W, dtype=np.float64)
    h = EPS64 ** (1 / 3) * (float(np.abs(W).max()) or 1.0)
    fd = np.zeros_like(W)
    seen = 0.0
    for idx in np.ndindex(*W.shape):
        D = np.zeros_like(W)
        D[idx] = h
        plus, minus = loss(W + D), loss(W - D)
        seen = max(seen, abs(plus), abs(minus))
        fd[idx] = (plus - minus) / (2 * h)
    return fd, h, seen


# ---------------------------------------------------------------------------------------
# Checks of Proposition 3.1 (rank one, one sample, one group element)
# ---------------------------------------------------------------------------------------
def check_gradient_finite_differences(W: Array, X: Array, Gs: Array,
                                      name: str = "gradient_vs_finite_differences") -> CheckResult:
    """``W Sigma`` is the gradient of Eq. (2) summed over samples and group elements.

    Oracle: central differences with step ``h = u^(1/3) max|W|`` (:func:`finite_difference_gradient`).
    Eq. (2) is quadratic in W, so central differences have no truncation error and only cancellation
    is left, at most about ``u max|LI| / h`` per entry; residual ``max |FD - W Sigma| / max |W Sigma|``,
    tolerance :func:`~theory.checks.finite_difference_tolerance`, the same at every scale of W and x.
    """
    W = np.asarray(W, dtype=np.float64)
    fd, h, seen = finite_difference_gradient(lambda V: logit_invariance_error(V, X, Gs), W)
    g = logit_invariance_grad(W, X, Gs)
    gscale = max(float(np.abs(g).max()), 1e-300)
    err = float(np.abs(fd - g).max() / gscale)
    tol = finite_difference_tolerance(seen, h, gscale)
    return at_most(name, err, tol, f"relative max |FD - W Sigma|, W {W.shape}, "
                   f"{len(invariance_residuals(X, Gs))} residuals")


def check_closed_form_vs_expm(eps: Array, ts: Array,
                              name: str = "closed_form_vs_expm") -> CheckResult:
    """Rank-one closed form of ``exp(-Sigma t)`` against ``scipy.linalg.expm``.

    Residual: ``max_t max_ij |closed - expm|``; both matrices have norm <= 1, and expm's
    scaling-and-squaring error grows with ``||Sigma t|| = s t``, so the tolerance is
    ``c n u (1 + s t_max)`` (:func:`~theory.checks.expm_rounding`).
    """
    eps = np.asarray(eps, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    s = float(eps @ eps)
    Sigma = np.outer(eps, eps)
    ex = sla.expm(-ts[:, None, None] * Sigma[None])
    err = float(np.abs(rank_one_exp(eps, ts) - ex).max())
    tol = expm_rounding(eps.size, s * float(ts.max()))
    return at_most(name, err, tol, f"max abs error over {len(ts)} times up to t*s={s * ts.max():.3g}, n={eps.size}")


def check_exp_spectral_norm_is_one(eps: Array, ts: Array,
                                   name: str = "rank_one_exp_spectral_norm_is_one") -> CheckResult:
    """Proof step after Eq. (7): ``||exp(-Sigma t)||_2 = 1`` for rank-one Sigma, n >= 2, t >= 0.

    Measured on ``scipy.linalg.expm``; residual ``max_t | ||expm(-Sigma t)||_2 - 1 |`` with
    tolerance ``c n u (1 + s t_max)`` (the expm error bound of :func:`check_closed_form_vs_expm`).
    """
    eps = np.asarray(eps, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    s = float(eps @ eps)
    ex = sla.expm(-ts[:, None, None] * np.outer(eps, eps)[None])
    err = float(np.abs(sigma_max(ex) - 1.0).max())
    tol = expm_rounding(eps.size, s * float(ts.max()))
    return at_most(name, err, tol, f"max_t | ||expm(-Sigma t)||_2 - 1 |, n={eps.size}")


def check_ode_vs_closed_form(W0: Array, eps: Array, ts: Array, rtol: float = 1e-12,
                             name: str = "ode_vs_closed_form") -> CheckResult:
    """Eq. (5) integrated by ``solve_ivp`` (DOP853, rtol=1e-12) against the closed form Eq. (6).

    Residual: ``max_t max |W_ode(t) - W0 E(t)| / max |W0|``; tolerance the integrator's allowance
    :func:`~theory.checks.ode_allowance` over ``s t_max``, a heuristic, not a derived bound (the report
    prints the measured error beside it).
    """
    W0 = np.asarray(W0, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    Wode = flow_ode(W0, np.outer(eps, eps), ts, rtol=rtol)
    Wcf = W0[None] @ rank_one_exp(eps, ts)
    err = float(np.abs(Wode - Wcf).max() / max(float(np.abs(W0).max()), 1e-300))
    horizon = float(np.dot(eps, eps)) * float(ts.max())
    return at_most(name, err, ode_allowance(rtol, horizon),
                   f"relative max abs error over {len(ts)} times up to t*s={horizon:.3g}, W0 {W0.shape}")


def check_flow_expm_vs_ode(W0: Array, Sigma: Array, ts: Array, rtol: float = 1e-12,
                           name: str = "dataset_flow_expm_vs_ode") -> CheckResult:
    """:func:`~theory.linear_flow.flow_expm`, the W(t) every bound check measures, is the flow of
    Eq. (5) for this Sigma (of any rank): against ``solve_ivp`` (DOP853, rtol=1e-12) integrating
    ``dW/dt = -W Sigma``, so that a bound check cannot pass on some other contraction.

    Residual ``max_t max |W_expm(t) - W_ode(t)| / max |W0|``; tolerance the integrator's allowance
    :func:`~theory.checks.ode_allowance` over ``lambda_max t_max`` (expm's own rounding is far below it).
    A horizon past :data:`~theory.checks.MAX_ODE_RATE_TIME` is refused (:func:`refuse_long_horizon`).
    """
    W0 = np.asarray(W0, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    lmax = float(np.linalg.eigvalsh(Sigma)[-1])
    refused = refuse_long_horizon(lmax * float(ts.max()), name, MAX_ODE_RATE_TIME)
    if refused is not None:
        return refused
    err = float(np.abs(flow_expm(W0, Sigma, ts) - flow_ode(W0, Sigma, ts, rtol=rtol)).max()
                / max(float(np.abs(W0).max()), 1e-300))
    return at_most(name, err, ode_allowance(rtol, lmax * float(ts.max())), f"relative max abs error over {len(ts)} times up to "
                   f"t*lambda_max={lmax * ts.max():.3g}, W0 {W0.shape}, Sigma rank "
                   f"{np.linalg.matrix_rank(Sigma)}")


def check_sigma_max_bound(W0: Array, Sigma: Array, ts: Array,
                          name: str = "sigma_max_bound") -> CheckResult:
    """Proposition 3.1: ``sigma_max(W(t)) <= sigma_max(W(0))`` along Eq. (6) for every t in ts.

    W(t) from ``scipy.linalg.expm`` (not from a formula that has the bound built in), at the
    times ``t > 0`` of ts (t = 0 would make the excess trivially >= 0; it is used only when ts
    has no other time, and then the excess is 0).
    Measured: ``max_{t > 0} sigma_max(W(t)) - sigma_max(W0)``; tolerance
    ``c n u (1 + lambda_max t_max) sigma_max(W0)`` (expm's rounding, relative to the scale). A horizon past
    :data:`~theory.checks.MAX_RATE_TIME` is refused (:func:`refuse_long_horizon`).
    """
    W0 = np.asarray(W0, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    if np.any(ts > 0):
        ts = ts[ts > 0]
    lmax = float(np.linalg.eigvalsh(Sigma)[-1])
    refused = refuse_long_horizon(lmax * float(ts.max()), name)
    if refused is not None:
        return refused
    s0 = float(sigma_max(W0))
    excess = float(sigma_max(flow_expm(W0, Sigma, ts)).max() - s0)
    tol = expm_rounding(W0.shape[1], lmax * float(ts.max())) * s0
    return at_most(name, excess, tol, f"max_(t>0) sigma_max(W(t)) - sigma_max(W0), sigma_max(W0)="
                   f"{s0:.4g}, {len(ts)} times up to t*lambda_max={lmax * ts.max():.3g}", kind="bound")


# ---------------------------------------------------------------------------------------
# Extension (a): dataset and orbit, Sigma = sum eps eps^T of any rank
# ---------------------------------------------------------------------------------------
def check_orbit_covariance(X: Array, Gs: Array, name: str = "dataset_sigma_is_orbit_sum") -> CheckResult:
    """Extension (a): the Sigma the flow uses, built from the residual matrix
    (:func:`invariance_covariance` of :func:`invariance_residuals`), is
    ``sum_x sum_g (x - g x)(x - g x)^T`` (a Gram matrix, hence PSD), against a loop over the
    samples ``X: (N, n)`` and group elements ``Gs: (k, n, n)``.

    Measured: ``max |Sigma - loop| / max |loop|``; tolerance ``N k n u`` (summation rounding).
    """
    X, Gs = np.atleast_2d(np.asarray(X, dtype=np.float64)), np.asarray(Gs, dtype=np.float64)
    Sigma = invariance_covariance(invariance_residuals(X, Gs))
    loop = sum(np.outer(x - g @ x, x - g @ x) for x in X for g in Gs)
    scale = max(float(np.abs(loop).max()), 1e-300)
    err = float(np.abs(Sigma - loop).max()) / scale
    return at_most(name, err, X.shape[0] * Gs.shape[0] * X.shape[1] * EPS64,
                   f"max |Sigma - sum_x sum_g eps eps^T| / max |.|, N={X.shape[0]}, |G|={Gs.shape[0]}",
                   kind="bound")


def check_singular_values_nonincreasing(W0: Array, Sigma: Array, ts: Array,
                                        name: str = "dataset_all_singular_values_nonincreasing"
                                        ) -> CheckResult:
    """Extension (a): every singular value of ``W(t) = W0 expm(-Sigma t)`` is non-increasing in t.

    (Reason: ``W(t') = W(t) exp(-Sigma (t'-t))`` and ``sigma_i(AB) <= sigma_i(A) ||B||_2`` with
    ``||exp(-Sigma dt)||_2 <= 1`` for PSD Sigma.) Measured:
    ``max_k max_i sigma_i(W(t_{k+1})) - sigma_i(W(t_k))`` over an increasing grid ts;
    tolerance as in :func:`check_sigma_max_bound`.
    """
    W0 = np.asarray(W0, dtype=np.float64)
    ts = np.sort(np.atleast_1d(np.asarray(ts, dtype=np.float64)))
    lmax = float(np.linalg.eigvalsh(Sigma)[-1])
    refused = refuse_long_horizon(lmax * float(ts.max()), name)
    if refused is not None:
        return refused
    sv = singular_values(flow_expm(W0, Sigma, ts))  # (T, min(m, n))
    excess = float(np.diff(sv, axis=0).max()) if len(ts) > 1 else 0.0
    tol = expm_rounding(W0.shape[1], lmax * float(ts.max())) * float(sv[0, 0])
    return at_most(name, excess, tol, f"max increase of any sigma_i between consecutive times, "
                   f"{sv.shape[1]} singular values, {len(ts)} times", kind="bound")


# ---------------------------------------------------------------------------------------
# Extension (b): the limit t -> infinity
# ---------------------------------------------------------------------------------------
def check_limit_is_projection(W0: Array, eps: Array, decay: float = 40.0,
                              name: str = "limit_is_projection") -> CheckResult:
    """Extension (b): ``W(oo) = W0 (I - P)``, P the orthogonal projector onto ``span{eps_i}``.

    P from an orthonormal basis (``scipy.linalg.orth``); compared with ``W0 expm(-Sigma T)`` at
    ``T = decay / lambda_min+`` (lambda_min+ the smallest nonzero eigenvalue of Sigma). Residual
    ``max |W0 expm(-Sigma T) - W0 (I - P)| / sigma_max(W0)``. Tolerance: the distance left to the
    limit, ``exp(-lambda_min+ T) = e^-decay``, plus expm's rounding ``c n u (1 + lambda_max T)``; a horizon
    ``lambda_max T`` (decay times the condition number at this rank) past :data:`~theory.checks.MAX_RATE_TIME`
    is refused (:func:`refuse_long_horizon`).
    """
    W0 = np.asarray(W0, dtype=np.float64)
    eps = np.atleast_2d(np.asarray(eps, dtype=np.float64))
    Sigma = invariance_covariance(eps)
    P, r = span_projector(eps)
    lmax, lmin = _positive_spectrum(Sigma, r)
    T = decay / lmin if r else 0.0  # rank 0 (every x fixed by its g): W(t) = W0 = W(oo) for every t
    refused = refuse_long_horizon(lmax * T, name)  # decay times the condition number, at the check's own rank
    if refused is not None:
        return refused
    n = Sigma.shape[0]
    W_T = W0 @ sla.expm(-Sigma * T)
    W_inf = W0 @ (np.eye(n) - P)
    s0 = max(float(sigma_max(W0)), 1e-300)
    err = float(np.abs(W_T - W_inf).max() / s0)
    tol = float(np.exp(-decay)) + expm_rounding(n, lmax * T)
    return at_most(name, err, tol, f"rank {r}, lambda_max/lambda_min+={lmax / lmin if r else 0:.3g}, "
                   f"T={decay:g}/lambda_min+")


def check_limit_is_invariant(W0: Array, X: Array, Gs: Array,
                             name: str = "limit_is_invariant") -> CheckResult:
    """Extension (b): the limit ``W(oo) = W0 (I - P)`` has zero logit invariance error Eq. (2)
    on the data: ``W(oo) (x - g x) = 0`` for every sample and group element. This checks P (true of
    any orthogonal projector onto the residuals' span); that the flow tends to ``W0 (I - P)`` is
    :func:`check_limit_is_projection`'s.

    Residual ``max |W(oo) eps| / (sigma_max(W0) max ||eps||)``; tolerance ``n u`` times 10.
    """
    eps = invariance_residuals(X, Gs)
    P, r = span_projector(eps)
    W_inf = np.asarray(W0, dtype=np.float64) @ (np.eye(P.shape[0]) - P)
    scale = max(float(sigma_max(W0)) * float(np.linalg.norm(eps, axis=1).max()), 1e-300)
    err = float(np.abs(eps @ W_inf.T).max() / scale)
    return at_most(name, err, 10 * P.shape[0] * EPS64, f"relative max |W(oo)(x - gx)|, rank {r}")
