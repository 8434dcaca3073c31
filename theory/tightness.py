"""Extension (f): how much "spectral decay" Proposition 3.1 gives. The bound
``sigma_max(W(t)) <= sigma_max(W(0))`` is not strict, and the decay it allows is limited.

* It can be an equality at every t: where ``W0``'s top right singular vector is orthogonal to every
  residual ``eps``, the flow never moves that direction (:func:`check_sigma_max_can_stay`).
* It stops at a floor: the flow tends to ``W(oo) = W0 (I - P)``, P the projector onto the ``r``
  residual directions, and by Cauchy's interlacing for a rank-``r`` projection
  ``sigma_max(W(oo)) >= sigma_{r+1}(W0)`` (:func:`check_decay_floor`). For one sample and one group
  element (r = 1) the decay is at most from ``sigma_1(W0)`` to ``sigma_2(W0)``.

So the invariance error shrinks W only along the directions the data's residuals span; that is
all the proposition says, and the same non-increase holds for the gradient flow of any loss
``1/2 ||W A||^2``. Each check returns a :class:`~theory.checks.CheckResult`.
"""

from __future__ import annotations

import numpy as np

from .checks import EPS64, CheckResult, at_most, expm_rounding
from .linear_flow import flow_expm, invariance_covariance, sigma_max, singular_values, span_projector

Array = np.ndarray

__all__ = ["with_top_direction_orthogonal_to", "check_sigma_max_can_stay", "check_decay_floor"]


def with_top_direction_orthogonal_to(W0: Array, eps: Array) -> Array:
    """``W0`` with the right singular vectors rotated so that its top one is orthogonal to every
    row of ``eps (k, n)`` (its singular values kept); ``k < n`` needed."""
    W0 = np.asarray(W0, dtype=np.float64)
    eps = np.atleast_2d(np.asarray(eps, dtype=np.float64))
    U, s, Vt = np.linalg.svd(W0, full_matrices=True)
    P, _ = span_projector(eps)
    v = (np.eye(P.shape[0]) - P) @ Vt[0]  # the old top direction with its eps part removed
    if np.linalg.norm(v) < 1e-8:
        raise ValueError("W0's top right singular vector lies in the span of eps; rotate it first")
    rest = Vt[1:].T - np.outer(v, v @ Vt[1:].T) / (v @ v)
    Q, _ = np.linalg.qr(np.column_stack([v / np.linalg.norm(v), rest]))
    Q[:, 0] *= np.sign(Q[:, 0] @ v)
    k = len(s)
    return (U[:, :k] * s) @ Q[:, :k].T


def check_sigma_max_can_stay(W0: Array, eps: Array, ts: Array,
                             name: str = "sigma_max_can_stay_equal") -> CheckResult:
    """The bound is attained: for ``W1`` = :func:`with_top_direction_orthogonal_to` ``(W0, eps)``,
    ``sigma_max(W1 exp(-Sigma t)) = sigma_max(W1)`` at every t of ``ts``. Measured: the largest
    ``|sigma_max(W1(t)) - sigma_max(W1)|``; tolerance as the bound's, expm's rounding."""
    eps = np.atleast_2d(np.asarray(eps, dtype=np.float64))
    W1 = with_top_direction_orthogonal_to(W0, eps)
    Sigma = invariance_covariance(eps)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    s0 = float(sigma_max(W1))
    gap = float(np.abs(sigma_max(flow_expm(W1, Sigma, ts)) - s0).max())
    lmax = float(np.linalg.eigvalsh(Sigma)[-1])
    tol = expm_rounding(W1.shape[1], lmax * float(ts.max())) * s0
    return at_most(name, gap, tol, f"max_t |sigma_max(W(t)) - sigma_max(W0)| with W0's top direction orthogonal "
                   f"to eps: no decay at all, {len(ts)} times up to t*lambda_max={lmax * ts.max():.3g}",
                   kind="bound")


def check_decay_floor(W0: Array, eps: Array, name: str = "decay_floor") -> CheckResult:
    """The decay stops at a floor: ``sigma_max(W(oo)) >= sigma_{r+1}(W0)``, ``W(oo) = W0 (I - P)``
    with P the projector onto the ``r`` directions of ``eps (k, n)``. Measured: how far below the
    floor it ends, ``sigma_{r+1}(W0) - sigma_max(W(oo))`` (the floor is 0 where ``r >= min(m, n)``);
    tolerance the rounding of an SVD, ``n u sigma_max(W0)``. The detail gives the decay and its floor."""
    W0 = np.asarray(W0, dtype=np.float64)
    P, r = span_projector(np.atleast_2d(np.asarray(eps, dtype=np.float64)))
    sv0 = singular_values(W0)
    s_inf = float(sigma_max(W0 @ (np.eye(P.shape[0]) - P)))
    floor = float(sv0[r]) if r < len(sv0) else 0.0
    which = f"sigma_{r + 1}(W0) = {floor:.4g}" if r < len(sv0) else f"0 (rank {r} >= W0's {len(sv0)} singular values)"
    return at_most(name, floor - s_inf, W0.shape[1] * EPS64 * float(sv0[0]),
                   f"rank {r}: sigma_max from {sv0[0]:.4g} to {s_inf:.4g} at t = oo, floor {which}", kind="bound")
