"""Extension (i): Proposition 3.1 is about one linear layer, ``h(x) = W x``. The paper introduces its
analysis "with a class of linear neural networks"; for two layers, ``h(x) = W2 W1 x`` with no weight
tying, the gradient flow of the invariance error alone can raise sigma_max of the network's map
``P = W2 W1``. One constructed counterexample.

Why. Take one sample and one group element, ``Sigma = s e e^T`` with ``e = eps / ||eps||``, ``f`` a unit
vector orthogonal to e, one output (``W2 = b``, a row) and write ``a_e = W1 e``, ``a_f = W1 f``,
``P_e = P e = b . a_e``, ``P_f = P f = b . a_f``. The gradient of Eq. (2),
``1/2 ||W2 W1 eps||^2``, is ``W2^T (P Sigma)`` in W1 and ``(P Sigma) W1^T`` in W2, so the flow is

    dW1/dt = -s P_e b^T e^T        (W1 moves along e only: a_f never changes)
    dW2/dt = -s P_e a_e^T

so the invariance error ``1/2 s P_e^2`` falls to 0 as it should, while ``dP_f/dt = b' . a_f`` need not be 0:
the part of P along f, which the invariance error does not see, moves too. One layer has no such coupling
(``dW/dt = -W Sigma`` never changes ``W f``).

How far. In the time ``tau`` with ``d tau = s P_e dt`` the flow is ``a_e' = -b``, ``b' = -a_e``, so
``a_e(tau) = cosh(tau) a_e(0) - sinh(tau) b(0)``, ``b(tau) = cosh(tau) b(0) - sinh(tau) a_e(0)``, and
``P_e = a_e . b`` reaches 0 at ``tanh(2 tau*) = 2 P_e(0) / (||a_e(0)||^2 + ||b(0)||^2)``, where the flow
stops with ``P(oo) = P_f(oo) f^T``, ``P_f(oo) = cosh(tau*) P_f(0) - sinh(tau*) (a_e(0) . a_f)``
(:func:`two_layer_limit`). Where ``a_e . a_f < 0`` it can exceed ``||P(0)||``.

The instance: ``x = (1, 0)``, G the swap, so ``eps = (1, -1)`` and ``s = 2``; ``W2 = (1, 0)``,
``a_e = (1, 1)``, ``a_f = (1, -3)`` (``a_e . a_f = -2``), so ``P = e^T + f^T``, ``sigma_max(P(0)) =
sqrt(2)``, ``tanh(2 tau*) = 2 / 3`` and ``sigma_max(P(oo)) = cosh(tau*) + 2 sinh(tau*)``, 35% more.
"""

from __future__ import annotations

import numpy as np

from .checks import CheckResult, at_most, exceeds, finite_difference_tolerance, ode_allowance
from .linear_flow import integrate, invariance_covariance, logit_invariance_error, sigma_max
from .numeric import finite_difference_gradient

__all__ = ["two_layer_instance", "two_layer_velocity", "two_layer_flow", "two_layer_limit", "slowest_rate",
           "check_two_layer_flow_is_gradient_flow", "check_two_layer_flow_vs_limit", "check_two_layer_can_grow_sigma_max"]

Array = np.ndarray


def two_layer_instance() -> tuple[Array, Array, Array, Array]:
    """``(W1 (2, 2), W2 (1, 2), x (2,), G (2, 2))`` of the module's counterexample."""
    e, f = np.array([1.0, -1.0]) / np.sqrt(2), np.array([1.0, 1.0]) / np.sqrt(2)
    W1 = np.outer([1.0, 1.0], e) + np.outer([1.0, -3.0], f)  # a_e = W1 e = (1, 1), a_f = W1 f = (1, -3)
    return W1, np.array([[1.0, 0.0]]), np.array([1.0, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]])


def two_layer_velocity(W1: Array, W2: Array, Sigma: Array) -> tuple[Array, Array]:
    """Minus the gradient of Eq. (2) for ``h(x) = W2 W1 x``, ``1/2 tr(P Sigma P^T)`` with ``P = W2 W1``:
    ``(-W2^T P Sigma, -P Sigma W1^T)``, shaped as W1 ``(k, n)`` and W2 ``(m, k)``."""
    PS = W2 @ W1 @ Sigma
    return -W2.T @ PS, -PS @ W1.T


def two_layer_flow(W1: Array, W2: Array, Sigma: Array, ts: Array, rtol: float = 1e-12) -> tuple[Array, Array]:
    """The gradient flow of Eq. (2) in both layers (:func:`two_layer_velocity`), integrated by
    ``solve_ivp`` (DOP853) from t = 0: ``(W1(t) (T, k, n), W2(t) (T, m, k))`` at the increasing times ts."""
    W1, W2 = np.asarray(W1, dtype=np.float64), np.asarray(W2, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    cut = W1.size

    def velocity(z: Array) -> Array:
        d1, d2 = two_layer_velocity(z[:cut].reshape(W1.shape), z[cut:].reshape(W2.shape), Sigma)
        return np.concatenate([d1.ravel(), d2.ravel()])

    scale = max(float(np.abs(W1).max()), float(np.abs(W2).max()), 1e-300)
    z = integrate(velocity, np.concatenate([W1.ravel(), W2.ravel()]), ts, rtol, 1e-14 * scale)
    return z[:, :cut].reshape(len(ts), *W1.shape), z[:, cut:].reshape(len(ts), *W2.shape)


def _oriented(W1: Array, W2: Array, eps: Array) -> tuple[Array, Array, Array, float]:
    """``(e, a_e, b, P_e(0))`` with e's sign chosen so that ``P_e(0) >= 0`` (the flow seen from ``-e`` is the
    same flow: a_e and P_e change sign, nothing else). W2 must be one output row, ``(1, k)``; eps ``(n,)``."""
    W1, W2, eps = (np.asarray(a, dtype=np.float64) for a in (W1, W2, eps))
    if W2.ndim != 2 or W2.shape[0] != 1 or W1.ndim != 2 or W1.shape != (W2.shape[1], eps.size) or eps.ndim != 1:
        raise ValueError(f"the two-layer closed form is for one output: W2 (1, k), W1 (k, n), eps (n,); got W2 "
                         f"{W2.shape}, W1 {W1.shape}, eps {eps.shape}")
    e = eps / np.linalg.norm(eps)
    b, a_e = W2[0], W1 @ e
    p_e = float(b @ a_e)
    return (-e, -a_e, b, -p_e) if p_e < 0 else (e, a_e, b, p_e)


def two_layer_limit(W1: Array, W2: Array, eps: Array) -> float:
    """``sigma_max(P(oo))`` of the flow of one output (``W2 (1, k)``, ``W1 (k, n)``) and one residual
    ``eps (n,)``, from the module docstring's closed form: the flow stops with ``P(oo) e = 0`` and
    ``P(oo) (I - e e^T) = b(tau*)^T W1 (I - e e^T)`` (W1 moves along e only), so its norm is
    ``||(I - e e^T) W1^T b(tau*)||`` with ``b(tau*) = cosh(tau*) b - sinh(tau*) a_e`` and ``tanh(2 tau*) =
    2 P_e(0) / (||a_e||^2 + ||b||^2)``; for n = 2, ``|cosh(tau*) P_f(0) - sinh(tau*) (a_e . a_f)|``. 0 where
    ``a_e = b``, whose flow decays for ever. ``ValueError`` for another shape (more than one output has no
    such closed form here)."""
    e, a_e, b, p_e = _oriented(W1, W2, eps)
    ratio = 2 * p_e / float(a_e @ a_e + b @ b)  # <= 1, with equality iff a_e = b
    if ratio >= 1.0:  # a_e = b: both decay as e^{-tau} for ever, and P with them
        return 0.0
    tau = 0.5 * np.arctanh(ratio)
    b_end = np.cosh(tau) * b - np.sinh(tau) * a_e
    row = np.asarray(W1, dtype=np.float64).T @ b_end
    return float(np.linalg.norm(row - (row @ e) * e))


def slowest_rate(W1: Array, W2: Array, eps: Array) -> float:
    """A lower bound on the rate at which P_e decays along the whole flow: ``s ||a_e(0) - b(0)||^2 / 2``
    (``||a_e||^2 + ||b||^2 >= ||a_e - b||^2 / 2``, and ``a_e - b`` grows as ``e^tau``)."""
    _, a_e, b, _ = _oriented(W1, W2, eps)
    return float(np.dot(eps, eps)) * float((a_e - b) @ (a_e - b)) / 2


def check_two_layer_flow_is_gradient_flow(name: str = "two_layer_flow_is_gradient_flow") -> CheckResult:
    """The counterexample is only as good as its flow: :func:`two_layer_velocity` at the instance is minus
    the gradient of Eq. (2) in each layer, by central differences of the loss itself (quadratic in each
    layer, so only cancellation is left). Residual ``max |velocity + FD| / max |FD|`` over both layers;
    tolerance the larger of the two layers' :func:`~theory.checks.finite_difference_tolerance`."""
    W1, W2, x, G = two_layer_instance()
    d1, d2 = two_layer_velocity(W1, W2, invariance_covariance((x - G @ x)[None]))
    fd1, h1, seen1 = finite_difference_gradient(lambda V: logit_invariance_error(W2 @ V, x[None], G[None]), W1)
    fd2, h2, seen2 = finite_difference_gradient(lambda V: logit_invariance_error(V @ W1, x[None], G[None]), W2)
    s1, s2 = float(np.abs(fd1).max()), float(np.abs(fd2).max())
    err = max(float(np.abs(d1 + fd1).max()) / s1, float(np.abs(d2 + fd2).max()) / s2)
    tol = max(finite_difference_tolerance(seen1, h1, s1), finite_difference_tolerance(seen2, h2, s2))
    return at_most(name, err, tol, f"relative max |dW/dt + FD grad| in W1 {W1.shape} and W2 {W2.shape}")


def check_two_layer_flow_vs_limit(horizon: float = 60.0, rtol: float = 1e-12,
                                  name: str = "two_layer_flow_vs_limit") -> CheckResult:
    """The integrated flow (:func:`two_layer_flow`) ends where the closed form says (:func:`two_layer_limit`)
    on :func:`two_layer_instance`: residual ``|sigma_max(P(T)) - sigma_max(P(oo))| / sigma_max(P(oo))`` at
    ``T = horizon / s``; tolerance the integrator's allowance :func:`~theory.checks.ode_allowance` over
    ``s (||a_e||^2 + ||b||^2) T``, the initial rate of P_e's decay times T, plus ``exp(-r T)``, r the
    slowest rate it decays at (:func:`slowest_rate`): the order of what is left of the flow at T."""
    W1, W2, x, G = two_layer_instance()
    eps = x - G @ x
    s = float(eps @ eps)
    T = horizon / s
    A, B = two_layer_flow(W1, W2, invariance_covariance(eps[None]), np.array([0.0, T]), rtol)
    limit = two_layer_limit(W1, W2, eps)
    err = abs(float(sigma_max(B[-1] @ A[-1])) - limit) / limit
    rate_time = float((W1 @ eps) @ (W1 @ eps) + s * W2[0] @ W2[0]) * T
    left = float(np.exp(-slowest_rate(W1, W2, eps) * T))
    return at_most(name, err, ode_allowance(rtol, rate_time) + left,
                   f"sigma_max(P(T)) against the closed form's {limit:.6g}, T = {horizon:g} / s")


def check_two_layer_can_grow_sigma_max(horizon: float = 20.0, points: int = 401,
                                       name: str = "two_layer_can_grow_sigma_max") -> CheckResult:
    """Extension (i), counterexample: the gradient flow of Eq. (2) alone, in both layers of
    ``h(x) = W2 W1 x``, raises ``sigma_max(W2 W1)`` on :func:`two_layer_instance`.

    Measured: ``max_t sigma_max(P(t)) / sigma_max(P(0)) - 1`` over ``points`` times up to ``horizon / s``
    (``s = ||eps||^2``); it must exceed ``0.05``. The detail gives the invariance error at the start and
    the end (it falls, as the flow of it must), ``P e`` and ``P f`` at the end, and the closed form's
    ``sigma_max(P(oo))`` (:func:`two_layer_limit`).
    """
    W1, W2, x, G = two_layer_instance()
    eps = x - G @ x
    s = float(eps @ eps)
    ts = np.linspace(0.0, horizon / s, points)
    A, B = two_layer_flow(W1, W2, invariance_covariance(eps[None]), ts)
    P = B @ A  # (T, 1, 2)
    smax = sigma_max(P)
    li = np.array([logit_invariance_error(p, x[None], G[None]) for p in P])
    e, f = eps / np.sqrt(s), np.array([1.0, 1.0]) / np.sqrt(2)
    growth = float(smax.max() / smax[0] - 1)
    return exceeds(name, growth, 0.05, f"sigma_max(W2 W1) {smax[0]:.4g} -> max {smax.max():.4g}, end {smax[-1]:.4g}; "
                   f"invariance error {li[0]:.4g} -> {li[-1]:.3g} (non-increasing: "
                   f"{bool(np.all(np.diff(li) <= 1e-12 * li[0]))}); at the end P e = {float(P[-1, 0] @ e):.3g}, "
                   f"P f = {float(P[-1, 0] @ f):.4g} (closed form's limit {two_layer_limit(W1, W2, eps):.4g})")
