"""The linear model of Section 3.3 in numpy/scipy (float64): residuals, the invariance covariance,
the logit invariance error and its gradient, and the flows that :mod:`theory.numeric` checks.

Notation: ``W: (m, n)`` weights of ``h(x) = W x``; samples ``X: (N, n)``; a group given by its
representation matrices ``Gs: (k, n, n)``; residuals ``eps = x - G x`` stacked as ``E: (N*k, n)``;
``Sigma = E^T E = sum eps eps^T: (n, n)``. The gradient flow of the logit invariance error Eq. (2)
is Eq. (5), ``dW/dt = -W Sigma``, with solution Eq. (6), ``W(t) = W(0) exp(-Sigma t)``; with a
squared task loss (Eq. 4) the flow is :func:`task_loss_flow`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg as sla
from scipy.integrate import solve_ivp

__all__ = [
    "invariance_residuals",
    "invariance_covariance",
    "logit_invariance_error",
    "logit_invariance_grad",
    "rank_one_exp",
    "flow_expm",
    "integrate",
    "flow_ode",
    "gradient_descent",
    "task_loss",
    "task_loss_velocity",
    "task_loss_flow",
    "singular_values",
    "sigma_max",
    "span_projector",
    "cyclic_group_matrices",
]

Array = np.ndarray


def invariance_residuals(X: Array, Gs: Array) -> Array:
    """All residuals ``eps = x - G x`` over samples and group elements.

    X: (N, n), Gs: (k, n, n); returns (N*k, n), row ``i*k + j`` is ``X[i] - Gs[j] @ X[i]``.
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    Gs = np.asarray(Gs, dtype=np.float64).reshape(-1, X.shape[1], X.shape[1])
    GX = np.einsum("kab,nb->nka", Gs, X)  # (N, k, n)
    return (X[:, None, :] - GX).reshape(-1, X.shape[1])


def invariance_covariance(eps: Array) -> Array:
    """``Sigma = sum_i eps_i eps_i^T`` for residuals eps: (M, n); returns (n, n), symmetric PSD."""
    eps = np.atleast_2d(np.asarray(eps, dtype=np.float64))
    S = eps.T @ eps
    return 0.5 * (S + S.T)


def logit_invariance_error(W: Array, X: Array, Gs: Array) -> float:
    """Eq. (2) for ``h(x) = W x``: ``sum_x sum_g 1/2 ||W x - W g x||^2``. W: (m, n)."""
    R = invariance_residuals(X, Gs) @ np.asarray(W, dtype=np.float64).T  # (M, m)
    return 0.5 * float(np.sum(R * R))


def logit_invariance_grad(W: Array, X: Array, Gs: Array) -> Array:
    """Gradient of Eq. (2) in W: ``W Sigma`` (proof of Prop. 3.1). Returns (m, n)."""
    return np.asarray(W, dtype=np.float64) @ invariance_covariance(invariance_residuals(X, Gs))


def rank_one_exp(eps: Array, t: float | Array) -> Array:
    """Closed form ``exp(-eps eps^T t) = I - (1 - e^{-t s}) eps eps^T / s``, ``s = eps^T eps``.

    eps: (n,); t: scalar or (T,); returns (n, n) or (T, n, n). ``1 - e^{-ts}`` is
    computed as ``-expm1(-ts)`` so that small ``ts`` keeps full relative accuracy. For
    ``eps = 0`` (a sample the group element fixes) Sigma is 0 and the flow stands still: the identity.
    """
    eps = np.asarray(eps, dtype=np.float64)
    s = float(eps @ eps)
    t_arr = np.asarray(t, dtype=np.float64)
    coef = -np.expm1(-t_arr * s) / s if s > 0 else np.zeros_like(t_arr)  # (T,) or ()
    out = np.eye(eps.size) - coef[..., None, None] * np.outer(eps, eps)
    return out


def flow_expm(W0: Array, Sigma: Array, ts: Array) -> Array:
    """Eq. (6) with ``scipy.linalg.expm``: ``W(t) = W0 expm(-Sigma t)``.

    W0: (m, n), Sigma: (n, n), ts: (T,); returns (T, m, n).
    """
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    E = sla.expm(-ts[:, None, None] * np.asarray(Sigma, dtype=np.float64)[None])
    return np.asarray(W0, dtype=np.float64)[None] @ E


def integrate(velocity, z0: Array, ts: Array, rtol: float, atol: float) -> Array:
    """``dz/dt = velocity(z)`` from ``z(0) = z0 (d,)``, by ``scipy.integrate.solve_ivp`` (DOP853) at ``rtol``
    and ``atol``: ``z(t) (T, d)`` at the increasing times ``ts >= 0``. Every flow of the checks is integrated
    here; ``RuntimeError`` where the solver fails."""
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    sol = solve_ivp(lambda _t, z: velocity(z), (0.0, float(ts.max())), np.asarray(z0, dtype=np.float64),
                    method="DOP853", t_eval=ts, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y.T


def flow_ode(W0: Array, Sigma: Array, ts: Array, rtol: float = 1e-12,
             atol: float = 1e-14) -> Array:
    """Eq. (5) integrated by ``scipy.integrate.solve_ivp`` (DOP853): ``dW/dt = -W Sigma``.

    W0: (m, n), Sigma: (n, n), ts: (T,) non-negative and increasing (the integration starts at
    t = 0); returns (T, m, n). ``atol`` is scaled by ``max |W0|``.
    """
    W0 = np.asarray(W0, dtype=np.float64)
    Sigma = np.asarray(Sigma, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    m, n = W0.shape
    scale = max(float(np.abs(W0).max()), 1e-300)
    z = integrate(lambda w: -(w.reshape(m, n) @ Sigma).ravel(), W0.ravel(), ts, rtol, atol * scale)
    return z.reshape(len(ts), m, n)


def gradient_descent(W0: Array, Sigma: Array, alpha: float, steps: int) -> Array:
    """Discrete version of Eq. (5) as in the proof: ``W_{k+1} = W_k (I - alpha Sigma)``.

    W0: (m, n); returns the iterates (steps + 1, m, n), iterate 0 being W0.
    """
    W = np.asarray(W0, dtype=np.float64)
    A = np.eye(W.shape[1]) - alpha * np.asarray(Sigma, dtype=np.float64)
    out = [W]
    for _ in range(steps):
        W = W @ A
        out.append(W)
    return np.stack(out)


def singular_values(W: Array) -> Array:
    """Singular values, descending: (..., m, n) -> (..., min(m, n))."""
    return np.linalg.svd(np.asarray(W, dtype=np.float64), compute_uv=False)


def sigma_max(W: Array) -> Array:
    """Largest singular value ``||W||_2``: (..., m, n) -> (...)."""
    return singular_values(W)[..., 0]


def span_projector(eps: Array) -> tuple[Array, int]:
    """Orthogonal projector P onto ``span{eps_i}`` from an orthonormal basis (``scipy.linalg.orth``).

    eps: (M, n); returns ``(P, r)`` with P: (n, n) and r the numerical rank.
    """
    Q = sla.orth(np.atleast_2d(np.asarray(eps, dtype=np.float64)).T)  # (n, r)
    return Q @ Q.T, Q.shape[1]


def cyclic_group_matrices(perm: Sequence[int]) -> Array:
    """Permutation representation of the cyclic group generated by ``perm``.

    ``(G x)[p] = x[perm[p]]``; returns all powers ``G^0 = I, G, G^2, ...`` up to the order of
    perm, shape (order, n, n).
    """
    perm = np.asarray(perm, dtype=np.int64)
    n = perm.size
    ident = np.arange(n)
    mats, cur = [], ident.copy()
    while True:
        M = np.zeros((n, n))
        M[ident, cur] = 1.0
        mats.append(M)
        cur = cur[perm]
        if np.array_equal(cur, ident):
            break
    return np.stack(mats)


def task_loss(W: Array, x: Array, G: Array, y: Array, nu: float) -> float:
    """Eq. (4) with a squared task loss, for one sample:
    ``L = 1/2 ||W x - y||^2 + nu/2 ||W x - W G x||^2``. W: (m, n), x: (n,), G: (n, n), y: (m,)."""
    W, x, y = (np.asarray(a, dtype=np.float64) for a in (W, x, y))
    return 0.5 * float(np.sum((W @ x - y) ** 2)) + nu * logit_invariance_error(W, x[None], np.asarray(G)[None])


def task_loss_velocity(W: Array, x: Array, G: Array, y: Array, nu: float) -> Array:
    """``-grad L`` of :func:`task_loss` in W, the right-hand side of its gradient flow:
    ``-(W x - y) x^T - nu W Sigma`` with ``Sigma = eps eps^T``, ``eps = x - G x``. Returns (m, n)."""
    W, x, y = (np.asarray(a, dtype=np.float64) for a in (W, x, y))
    return -np.outer(W @ x - y, x) - nu * logit_invariance_grad(W, x[None], np.asarray(G)[None])


def task_loss_flow(W0: Array, x: Array, G: Array, y: Array, nu: float, ts: Array) -> Array:
    """Gradient flow of :func:`task_loss`: ``dW/dt =`` :func:`task_loss_velocity`.

    W0: (m, n), x: (n,), G: (n, n), y: (m,), ts: (T,) >= 0; integrated by ``solve_ivp``
    (DOP853, rtol=1e-12, atol 1e-14 times the larger of max |W0| and max |y|); returns (T, m, n).
    """
    W0 = np.asarray(W0, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    m, n = W0.shape
    scale = max(float(np.abs(W0).max()), float(np.abs(y).max()), 1e-300)
    z = integrate(lambda w: task_loss_velocity(w.reshape(m, n), x, G, y, nu).ravel(), W0.ravel(), ts, 1e-12,
                  1e-14 * scale)
    return z.reshape(len(ts), m, n)
