"""Extension (h): SGD with momentum, the other optimizer researchers reach for
(``torch.optim.SGD(momentum=beta)``), can raise sigma_max on the invariance error alone at a step
where gradient descent keeps the bound (extension (c): ``alpha lambda_max <= 2``).

Why. On ``1/2 tr(W Sigma W^T)`` (Eq. (2) for any samples and group elements) the gradient is
``W Sigma``, and torch's SGD with learning rate alpha and momentum beta, starting with no velocity,
gives ``W_k = W0 p_k(alpha Sigma)`` for the heavy-ball polynomials

    p_0(a) = 1,  p_1(a) = 1 - a,  p_{k+1}(a) = (1 + beta - a) p_k(a) - beta p_{k-1}(a).

So ``sigma_max(W_k) <= sigma_max(W0)`` for every W0 exactly when ``|p_k(a)| <= 1`` at every
eigenvalue ``a`` of ``alpha Sigma`` and every k (W0's rows along one eigenvector attain it). Gradient
descent (beta = 0) has ``p_k = (1 - a)^k``: the bound for ``a <= 2``. With momentum the second step
already overshoots: ``p_2(a) = (1 - a)(1 + beta - a) - beta < -1`` exactly between the roots of
``a^2 - (2 + beta) a + 2 = 0``, which are real for ``beta > 2 sqrt(2) - 2 = 0.828``; at beta = 0.9
(a common choice) for ``a`` in (1.130, 1.770): sigma_max can grow (it does for a W0 along an eigenvector
whose ``alpha lambda`` lies there) whenever some eigenvalue of ``alpha Sigma`` does, not only the largest.
Over a grid of ``a`` in (0, 2] and 500 steps, nothing else breaks the bound at beta = 0.9, and nothing
at all up to beta = 0.8284, just below 2 sqrt(2) - 2 (:func:`breaks_bound`); at beta = 0.95 the third
step breaks it for ``a`` in (0.691, 0.865) too. The proposition's decay is the flow's; a step that
keeps it for gradient descent need not keep it with momentum.

Imports torch (its SGD, not a copy of it).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .checks import CheckResult, at_most, exceeds
from .linear_flow import sigma_max

__all__ = ["heavy_ball_polynomials", "second_step_roots", "breaks_bound", "sgd_momentum_path",
           "check_momentum_can_grow_sigma_max", "check_momentum_unsafe_steps"]

Array = np.ndarray

#: The momentum of the counterexample and of the scan: a common choice (torch's examples, ResNet training).
BETA = 0.9


def heavy_ball_polynomials(a: Array, beta: float, steps: int) -> Array:
    """``p_k(a)``, k = 0..steps, of the module's recurrence at each ``a`` (any shape);
    returns ``(steps + 1, *a.shape)``."""
    a = np.asarray(a, dtype=np.float64)
    out = [np.ones_like(a), 1.0 - a]
    for _ in range(steps - 1):
        out.append((1.0 + beta - a) * out[-1] - beta * out[-2])
    return np.stack(out[: steps + 1])


def second_step_roots(beta: float) -> tuple[float, float] | None:
    """The ``a`` between which ``p_2(a) < -1``: the roots of ``a^2 - (2 + beta) a + 2``; None
    where they are not real (``beta <= 2 sqrt(2) - 2``)."""
    disc = (2.0 + beta) ** 2 - 8.0
    if disc <= 0:
        return None
    return ((2.0 + beta) - math.sqrt(disc)) / 2.0, ((2.0 + beta) + math.sqrt(disc)) / 2.0


def breaks_bound(beta: float, a: Array, steps: int = 500) -> Array:
    """Where (a boolean mask over ``a``, values of ``alpha lambda``) some ``|p_k(a)|``, k <= steps,
    exceeds 1 by more than rounding (1e-12): the steps at which momentum ``beta`` breaks the bound."""
    return np.abs(heavy_ball_polynomials(a, beta, steps)).max(axis=0) > 1.0 + 1e-12


def _runs(grid: Array, mask: Array) -> list[tuple[float, float]]:
    """The first and last grid point of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(int)))
    return [(float(grid[i]), float(grid[j - 1])) for i, j in zip(edges[::2], edges[1::2])]


def sgd_momentum_path(W0: Array, Sigma: Array, lr: float, beta: float, steps: int) -> Array:
    """The iterates ``W_k``, k = 0..steps, of ``torch.optim.SGD(lr=lr, momentum=beta)`` on
    ``1/2 tr(W Sigma W^T)`` alone, in float64 on the CPU. W0: (m, n), Sigma: (n, n) symmetric;
    returns ``(steps + 1, m, n)``."""
    W = torch.tensor(np.asarray(W0, dtype=np.float64), requires_grad=True)
    S = torch.tensor(np.asarray(Sigma, dtype=np.float64))
    opt = torch.optim.SGD([W], lr=lr, momentum=beta)
    out = [W.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((W @ S) * W).sum()).backward()
        opt.step()
        out.append(W.detach().numpy().copy())
    return np.stack(out)


def check_momentum_can_grow_sigma_max(Sigma: Array, m: int = 1, alpha_factor: float = 1.5, beta: float = BETA,
                                      steps: int = 60, name: str = "momentum_can_grow_sigma_max") -> CheckResult:
    """Extension (h), counterexample: torch's SGD with momentum ``beta`` at ``alpha = alpha_factor /
    lambda_max(Sigma)`` (1.5 lies below gradient descent's 2, where extension (c) keeps the bound) and
    W0's ``m`` rows along Sigma's top eigenvector: ``sigma_max(W_k) = |p_k(alpha_factor)| sigma_max(W0)``.

    Measured: ``max_k sigma_max(W_k) / sigma_max(W0) - 1``; it must exceed 0.05 and equal the
    recurrence's ``max_k |p_k(alpha_factor)| - 1`` (``|p_2(1.5)| - 1 = 0.1`` at beta = 0.9) to 1e-9 (else
    NaN, which fails: torch's path is not the recurrence the scan reads)."""
    lam, U = np.linalg.eigh(np.asarray(Sigma, dtype=np.float64))
    W0 = np.outer(np.arange(1, m + 1, dtype=np.float64), U[:, -1])
    path = sigma_max(sgd_momentum_path(W0, Sigma, alpha_factor / lam[-1], beta, steps))
    growth = float(path.max() / path[0] - 1)
    predicted = float(np.abs(heavy_ball_polynomials(alpha_factor, beta, steps)).max() - 1)
    agrees = abs(growth - predicted) <= 1e-9 * (1 + abs(predicted))
    return exceeds(name, growth if agrees else math.nan, 0.05,
                   f"SGD lr={alpha_factor:g}/lambda_max, momentum {beta:g}, W0 along the top eigenvector, {steps} "
                   f"steps: growth {growth:.4g} (the recurrence's {predicted:.4g}{'' if agrees else ': they differ'}); "
                   f"gradient descent at this step keeps the bound")


def check_momentum_unsafe_steps(beta: float = BETA, safe_betas: tuple[float, ...] = (0.0, 0.5, 0.8, 0.8284),
                                points: int = 4001, steps: int = 500,
                                name: str = "momentum_unsafe_steps") -> CheckResult:
    """Extension (h): over ``points`` values of ``a = alpha lambda`` in (0, 2] and ``steps`` steps, the
    steps where momentum ``beta`` breaks the bound are exactly those strictly between
    :func:`second_step_roots`, and for each of ``safe_betas`` there are none.

    Measured: the number of grid points where the scan (:func:`breaks_bound`) and that interval
    disagree, plus the number of breaking points for ``safe_betas``; it must be 0."""
    grid = np.linspace(2.0 / points, 2.0, points)
    roots = second_step_roots(beta)
    lo, hi = roots if roots is not None else (math.inf, -math.inf)
    bad = breaks_bound(beta, grid, steps)
    disagree = int(np.sum(bad != ((grid > lo) & (grid < hi))))
    safe_bad = {b: int(breaks_bound(b, grid, steps).sum()) for b in safe_betas}
    where = ", ".join(f"[{lo_:.4f}, {hi_:.4f}]" for lo_, hi_ in _runs(grid, bad)) or "none"
    between = f"{lo:.4f}, {hi:.4f}" if roots is not None else "not real"
    return at_most(name, disagree + sum(safe_bad.values()), 0.0,
                   f"momentum {beta:g}: {int(bad.sum())} of {points} steps in (0, 2] break the bound ({where}); "
                   f"p_2's roots {between}; {disagree} disagree; breaking steps at momentum "
                   f"{', '.join(f'{b:g}: {n}' for b, n in safe_bad.items())}")
