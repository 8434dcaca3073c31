"""Extension (j): Proposition 3.1 is about the logit invariance error, Eq. (2). The paper's other
invariance error, DI's KL divergence (Eq. 1), which ``nets.train`` also trains with (its ``kl`` form,
both distributions differentiated), does not keep the bound: for one linear layer ``h(x) = W x`` the
gradient flow of ``KL(softmax(W x) || softmax(W g x))`` alone can raise sigma_max(W), even sigma_max of the
centered map ``C W`` (``C = I - 1 1^T / m``), the part of W the softmax sees. One constructed
counterexample, and one for the centered logits' error.

Why. With ``p = softmax(W x)``, ``q = softmax(W g x)`` and ``d = log p - log q`` the gradient is
``a x^T + b (g x)^T`` with ``a = p * d - p (p . d)`` and ``b = q - p`` (:func:`kl_gradient`), that is
``(a + b)/2 (x + g x)^T + (a - b)/2 (x - g x)^T``. Two things part it from Eq. (2)'s flow ``dW/dt = -W
Sigma``, on which the bound rests. The softmax ignores a shift common to all logits, so the flow never
moves the rows' mean (``1^T a = 1^T b = 0``) and stops where the logits of x and g x differ by such a
shift, not where they agree; the flow of the centered logits' error ``1/2 ||C W eps||^2``, ``dW/dt = -C W
Sigma``, shares that (it ends at ``W(0) - C W(0) e e^T`` for one residual, :func:`centered_limit`, as does
the KL flow without its part along ``x + g x``). On ``C W`` that flow is Eq. (2)'s, so sigma_max(C W) never
rises, but sigma_max(W) can, through the rows' mean it leaves in place
(:func:`check_centered_can_grow_sigma_max`, from ``W = [[2, 2], [-2, 2]]``). And the KL moves W along
``x + g x`` as well as along the residual ``x - g x``, which can raise sigma_max(C W) itself (in general it
can also lower it).

The KL instance (:func:`kl_instance`): two classes, ``x = (1, 0)``, G the swap, ``W = [[3, 0], [-3, 0]]``
(rows' mean 0, so ``W = C W``; sigma_max ``3 sqrt 2``). Since ``1^T a = 1^T b = 0`` only the gap
``u = w_1 - w_2`` moves, and with ``s = u . x``, ``r = u . g x`` (the logit gaps of x and g x: 6 and 0) the
flow is (:func:`gap_velocity`)

    ds/dt = -2 sigma'(s) (s - r),        dr/dt = 2 (sigma(s) - sigma(r))

(the derivatives of KL between two Bernoullis, sigma the logistic function). Where x's prediction is
confident, sigma'(s) is small, and r, the unconfident gap, rises to meet s above their midpoint 3; the flow
ends at ``s = r = m*`` with ``W = [[m*/2, m*/2], [-m*/2, -m*/2]]``, sigma_max ``m* / sqrt 2``
(:func:`check_kl_can_grow_sigma_max` gives m*). The flow of Eq. (2), or of the centered error, from the
same W ends at the midpoint, ``W = [[1.5, 1.5], [-1.5, -1.5]]``, sigma_max ``3 / sqrt 2``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax

from .checks import CheckResult, at_most, exceeds, ode_allowance
from .linear_flow import integrate, sigma_max
from .numeric import finite_difference_gradient

__all__ = ["kl_instance", "centered_instance", "kl_invariance_error", "kl_gradient", "kl_flow", "gap_velocity",
           "gap_flow", "centered_limit", "centered_sigma_max", "check_kl_gradient_vs_finite_differences",
           "check_kl_flow_vs_gap_flow",
           "check_kl_can_grow_sigma_max", "check_centered_can_grow_sigma_max"]

Array = np.ndarray

#: How long the counterexample's flows run: the gaps meet to about 1e-12 by then (they close at a rate
#: of about ``4 sigma'(m*)``, 0.03).
KL_HORIZON = 1000.0
#: The times at which :func:`check_kl_flow_vs_gap_flow` compares the two flows (a flow run at another
#: speed would meet at the same end).
GAP_TIMES = (0.5, 2.0, 10.0, 50.0, KL_HORIZON)


def _swap_instance(W: list[list[float]]) -> tuple[Array, Array, Array]:
    """``(W (2, 2), x = (1, 0), G the swap)``: both counterexamples' sample and group."""
    return np.array(W), np.array([1.0, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]])


def kl_instance() -> tuple[Array, Array, Array]:
    """``(W (2, 2), x (2,), G (2, 2))`` of the KL counterexample: rows' mean 0, logit gaps 6 and 0."""
    return _swap_instance([[3.0, 0.0], [-3.0, 0.0]])


def centered_instance() -> tuple[Array, Array, Array]:
    """``(W (2, 2), x (2,), G (2, 2))`` of the centered error's counterexample: rows' mean ``(0, 2)``."""
    return _swap_instance([[2.0, 2.0], [-2.0, 2.0]])


def _centered(W: Array) -> Array:
    """``C W``: W with its rows' mean taken out, the part of W a softmax sees."""
    W = np.asarray(W, dtype=np.float64)
    return W - W.mean(axis=0, keepdims=True)


def centered_sigma_max(W: Array) -> float:
    """sigma_max of ``C W`` (W with its rows' mean taken out: the part of W a softmax sees)."""
    return float(sigma_max(_centered(W)))


def kl_invariance_error(W: Array, x: Array, G: Array) -> float:
    """``KL(softmax(W x) || softmax(W G x))`` (Eq. 1 for one sample and one group element), in float64."""
    lp, lq = log_softmax(W @ x), log_softmax(W @ (G @ x))
    return float(np.exp(lp) @ (lp - lq))


def kl_gradient(W: Array, x: Array, G: Array) -> Array:
    """The gradient of :func:`kl_invariance_error` in ``W (m, n)``: ``a x^T + b (G x)^T`` with ``p``, ``q``
    the two softmaxes, ``d = log p - log q``, ``a = p * d - p (p . d)`` and ``b = q - p``."""
    gx = G @ x
    lp, lq = log_softmax(W @ x), log_softmax(W @ gx)
    p, q, d = np.exp(lp), np.exp(lq), lp - lq
    return np.outer(p * d - p * (p @ d), x) + np.outer(q - p, gx)


def kl_flow(W0: Array, x: Array, G: Array, ts: Array, rtol: float = 1e-12) -> Array:
    """The gradient flow ``dW/dt = -kl_gradient(W)`` integrated by ``solve_ivp`` (DOP853) from t = 0:
    ``W(t) (T, m, n)`` at the increasing times ``ts``."""
    W0 = np.asarray(W0, dtype=np.float64)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    z = integrate(lambda w: -kl_gradient(w.reshape(W0.shape), x, G).ravel(), W0.ravel(), ts, rtol,
                  1e-14 * float(np.abs(W0).max()))
    return z.reshape(len(ts), *W0.shape)


def gap_velocity(s: float, r: float) -> tuple[float, float]:
    """``(ds/dt, dr/dt)`` of two classes' logit gaps ``s`` (of x) and ``r`` (of g x) under the KL flow, for
    orthonormal x and g x: ``(-2 sigma'(s) (s - r), 2 (sigma(s) - sigma(r)))``."""
    return -2 * expit(s) * (1 - expit(s)) * (s - r), 2 * (expit(s) - expit(r))


def gap_flow(s0: float, r0: float, ts: Array, rtol: float = 1e-12) -> Array:
    """``(s(t), r(t))`` of :func:`gap_velocity` from ``(s0, r0)`` at the increasing times ``ts``, by
    ``solve_ivp`` (DOP853): ``(T, 2)``."""
    return integrate(lambda z: np.array(gap_velocity(*z)), np.array([s0, r0]), ts, rtol, 1e-14)


def centered_limit(W0: Array, eps: Array) -> Array:
    """Where the flow ``dW/dt = -C W eps eps^T`` of the centered logits' error ``1/2 ||C W eps||^2`` ends,
    ``C = I - 1 1^T / m``: ``W(0) - C W(0) e e^T``, ``e = eps / ||eps||`` (``C`` is a projector, so ``W(t) =
    W(0) - C W(0) (I - exp(-eps eps^T t))``; the rows' mean never moves)."""
    W0, eps = np.asarray(W0, dtype=np.float64), np.asarray(eps, dtype=np.float64)
    e = eps / np.linalg.norm(eps)
    return W0 - np.outer(_centered(W0) @ e, e)


def check_kl_gradient_vs_finite_differences(name: str = "kl_gradient_vs_finite_differences") -> CheckResult:
    """:func:`kl_gradient` at the instance against central differences of the KL itself. Not quadratic, so
    the differences carry truncation error ``O(h^2)`` (``h = u^(1/3) max|W|``, about 1e-10 relative here)
    besides cancellation: residual ``max |grad - FD| / max |FD|``, tolerance 1e-7 (a wrong gradient is off
    by O(1))."""
    W, x, G = kl_instance()
    fd, _h, _seen = finite_difference_gradient(lambda V: kl_invariance_error(V, x, G), W)
    err = float(np.abs(kl_gradient(W, x, G) - fd).max()) / float(np.abs(fd).max())
    return at_most(name, err, 1e-7, f"relative max |grad - FD| at W {W.shape}")


def check_kl_flow_vs_gap_flow(rtol: float = 1e-12, name: str = "kl_flow_vs_gap_flow") -> CheckResult:
    """The full flow of W (:func:`kl_flow`) is the gap flow of the module docstring: at each of
    :data:`GAP_TIMES` its rows' mean is still W(0)'s and its gaps ``u . x``, ``u . g x`` are the gap flow's
    (:func:`gap_flow`). Residual: the largest difference, relative to max|W(0)|;
    tolerance :func:`~theory.checks.ode_allowance` over the horizon times 2, a bound on the gap flow's
    rates here (its Jacobian's entries are at most ``2 (|sigma''| |s - r| + sigma')``, with ``|s - r| <=
    6``)."""
    W0, x, G = kl_instance()
    Ws = kl_flow(W0, x, G, np.array([0.0, *GAP_TIMES]), rtol)[1:]
    u0 = W0[0] - W0[1]
    gaps = gap_flow(float(u0 @ x), float(u0 @ (G @ x)), np.array(GAP_TIMES), rtol)
    err = 0.0
    for W, (s, r) in zip(Ws, gaps):
        u = W[0] - W[1]
        err = max(err, float(np.abs((W[0] + W[1]) / 2 - (W0[0] + W0[1]) / 2).max()), abs(float(u @ x) - s),
                  abs(float(u @ (G @ x)) - r))
    err /= float(np.abs(W0).max())
    return at_most(name, err, ode_allowance(rtol, 2 * KL_HORIZON),
                   f"rows' mean and logit gaps at t = {', '.join(f'{t:g}' for t in GAP_TIMES)} against the gap "
                   f"flow's (ending at {s:.6g}, {r:.6g})")


def check_kl_can_grow_sigma_max(threshold: float = 0.05, name: str = "kl_can_grow_sigma_max") -> CheckResult:
    """Counterexample: the flow of the KL invariance error alone raises sigma_max(W) of :func:`kl_instance`
    (whose rows' mean is 0, so sigma_max(C W) too) by more than ``threshold`` (relative), while the KL never
    rises and falls to (near) 0. Value: the relative growth at ``T =`` :data:`KL_HORIZON`, NaN (a fail)
    where the KL rose or did not fall below 1e-9 of its start; the detail gives the gaps' meeting point."""
    W0, x, G = kl_instance()
    ts = np.linspace(0.0, KL_HORIZON, 2001)
    Ws = kl_flow(W0, x, G, ts)
    sig = np.array([float(sigma_max(W)) for W in Ws])
    kl = np.array([kl_invariance_error(W, x, G) for W in Ws])
    settled = bool(np.all(np.diff(kl) <= 1e-12 * kl[0]) and kl[-1] <= 1e-9 * kl[0])
    growth = float(sig[-1]) / float(sig[0]) - 1 if settled else float("nan")
    u = Ws[-1][0] - Ws[-1][1]
    return exceeds(name, growth, threshold,
                   f"W = [[3, 0], [-3, 0]], x = (1, 0), G the swap: sigma_max(W) = sigma_max(C W) {sig[0]:.4g} -> "
                   f"{sig[-1]:.4g} ({centered_sigma_max(Ws[-1]):.4g} centered); KL {kl[0]:.3g} -> {kl[-1]:.1g}, "
                   f"never rising: {settled}; the logit gaps (6, 0) meet at {float(u @ x):.4g}, not at 3")


def check_centered_can_grow_sigma_max(threshold: float = 0.05,
                                      name: str = "centered_can_grow_sigma_max") -> CheckResult:
    """Counterexample: the flow of the centered logits' error (:func:`centered_limit`; the KL flow without its
    part along ``x + g x`` ends there too) raises sigma_max(W) of :func:`centered_instance`, ``2 sqrt 2`` to
    ``sqrt(6 + 2 sqrt 5)``, by more than ``threshold``, through the rows' mean it leaves in place alone:
    sigma_max(C W) falls, as Proposition 3.1 says of Eq. (2)'s flow, which it is on ``C W``. Value: the
    relative growth of sigma_max(W)."""
    W0, x, G = centered_instance()
    end = centered_limit(W0, x - G @ x)
    s0, s1 = float(sigma_max(W0)), float(sigma_max(end))
    return exceeds(name, s1 / s0 - 1, threshold,
                   f"W = [[2, 2], [-2, 2]]: sigma_max(W) {s0:.4g} -> {s1:.4g} (closed form sqrt(6 + 2 sqrt 5) = "
                   f"{np.sqrt(6 + 2 * np.sqrt(5)):.4g}); sigma_max(C W) {centered_sigma_max(W0):.4g} -> "
                   f"{centered_sigma_max(end):.4g}")
