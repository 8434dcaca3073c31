"""Extension (d): with a task loss added to the invariance error (Eq. (4), a squared task loss for one
sample, :func:`theory.linear_flow.task_loss`), the bound of Proposition 3.1 no longer holds:
sigma_max can grow. The proposition is about the invariance term alone.

The counterexample is only as good as the flow it integrates, so two checks tie
:func:`~theory.linear_flow.task_loss_flow` to its loss first: its velocity is minus the loss's
gradient (central differences), and the integrated path is the exact gradient flow of the loss,
built from the loss alone (its Hessian and gradient by central differences, exact for a quadratic,
then ``expm``). Each check returns a :class:`~theory.checks.CheckResult`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .checks import CheckResult, at_most, exceeds, finite_difference_tolerance
from .linear_flow import rank_one_exp, sigma_max, task_loss, task_loss_flow, task_loss_velocity
from .numeric import finite_difference_gradient

__all__ = ["exact_gradient_flow", "check_task_flow_is_gradient_flow", "check_task_flow_vs_exact",
           "check_task_loss_can_grow_sigma_max"]

Array = np.ndarray


def check_task_flow_is_gradient_flow(W0: Array, x: Array, G: Array, y: Array, nu: float = 1.0,
                                     name: str = "task_loss_flow_is_gradient_flow") -> CheckResult:
    """The flow's velocity :func:`~theory.linear_flow.task_loss_velocity` at W0 is ``-grad L``,
    L = :func:`~theory.linear_flow.task_loss`, by central differences (L is quadratic in W, so only
    cancellation is left). Residual ``max |velocity + FD| / max |FD|``; tolerance
    :func:`~theory.checks.finite_difference_tolerance`, as for the invariance error's gradient check.
    """
    W0 = np.asarray(W0, dtype=np.float64)
    L0 = task_loss(W0, x, G, y, nu)
    fd, h, seen = finite_difference_gradient(lambda V: task_loss(V, x, G, y, nu), W0)
    scale = max(float(np.abs(fd).max()), 1e-300)
    err = float(np.abs(task_loss_velocity(W0, x, G, y, nu) + fd).max() / scale)
    return at_most(name, err, finite_difference_tolerance(seen, h, scale),
                   f"relative max |dW/dt + FD grad L| at W0, nu={nu:g}, L(W0)={L0:.4g}")


def exact_gradient_flow(loss, W0: Array, ts: Array) -> Array:
    """The gradient flow ``dW/dt = -grad loss(W)`` of a quadratic ``loss`` of ``W0 (m, n)``, from the
    loss alone: its Hessian ``K`` and gradient at 0 in ``vec(W)`` by central differences with step 1
    (exact for a quadratic, up to rounding), then ``[vec W; 1](t) = expm(t [[-K, -g0], [0, 0]]) [vec W0; 1]``.
    Returns (T, m, n)."""
    W0 = np.asarray(W0, dtype=np.float64)
    d = W0.size

    def L(v: Array) -> float:
        return loss(v.reshape(W0.shape))

    e = np.eye(d)
    g0 = np.array([(L(e[i]) - L(-e[i])) / 2 for i in range(d)])
    K = np.array([[(L(e[i] + e[j]) - L(e[i] - e[j]) - L(e[j] - e[i]) + L(-e[i] - e[j])) / 4 for j in range(d)]
                  for i in range(d)])
    B = np.zeros((d + 1, d + 1))
    B[:d, :d], B[:d, d] = -K, -g0
    z0 = np.append(W0.ravel(), 1.0)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    return (sla.expm(ts[:, None, None] * B[None]) @ z0)[:, :d].reshape(len(ts), *W0.shape)


def check_task_flow_vs_exact(W0: Array, x: Array, G: Array, y: Array, nu: float = 1.0, t_max: float = 10.0,
                             n_times: int = 11, name: str = "task_loss_flow_vs_exact") -> CheckResult:
    """:func:`~theory.linear_flow.task_loss_flow` (``solve_ivp``, rtol 1e-12) against
    :func:`exact_gradient_flow` of :func:`~theory.linear_flow.task_loss` on ``n_times`` times in
    ``[0, t_max / ||x||^2]``: the integration, its speed and its loss, not only the velocity at W0.
    Residual ``max |W_flow - W_exact| / max |W_exact|`` (0 where both stand still at 0); tolerance
    ``1e-6``, a heuristic allowance for the integrator, whose error here can exceed its rtol (up to
    about 2e-7 seen over Hypothesis's draws), far below a wrong flow's 1e-3 or more.
    """
    x = np.asarray(x, dtype=np.float64)
    ts = np.linspace(0.0, t_max / float(x @ x), n_times)
    exact = exact_gradient_flow(lambda W: task_loss(W, x, G, y, nu), W0, ts)
    err = float(np.abs(task_loss_flow(W0, x, G, y, nu, ts) - exact).max() / max(float(np.abs(exact).max()), 1e-300))
    return at_most(name, err, 1e-6, f"relative max abs error over {n_times} times up to t*||x||^2={t_max:g}")


def check_task_loss_can_grow_sigma_max(W0: Array, x: Array, G: Array, y: Array, nu: float = 1.0,
                                       t_max: float = 10.0,
                                       name: str = "task_loss_counterexample") -> CheckResult:
    """Counterexample: with the task loss added (:func:`~theory.linear_flow.task_loss_flow`),
    sigma_max can increase. Integrated over ``t in [0, t_max / ||x||^2]``.

    Measured: ``sigma_max(W(T)) - sigma_max(W0)`` with a target y much larger than ``W0 x``;
    it must exceed ``1`` (absolute; W0 of order one). The detail also gives the change under the
    invariance term alone from the same W0, which is <= 0 by the proposition.
    """
    W0 = np.asarray(W0, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    T = t_max / float(x @ x)
    W_T = task_loss_flow(W0, x, G, y, nu, np.array([T]))[-1]
    eps = x - np.asarray(G, dtype=np.float64) @ x
    s0 = float(sigma_max(W0))
    growth = float(sigma_max(W_T)) - s0
    inv_only = float(sigma_max(W0 @ rank_one_exp(eps, nu * T))) - s0
    return exceeds(name, growth, 1.0, f"task+invariance: sigma_max {s0:.4g} -> {s0 + growth:.4g}; "
                   f"invariance alone: change {inv_only:.3g}; ||y||={np.linalg.norm(y):.3g}")
