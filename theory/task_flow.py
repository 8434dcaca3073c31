"""Extension (d): with a task loss added to the invariance error (Eq. (4), a squared task loss for one
sample, :func:`theory.linear_flow.task_loss`), the bound of Proposition 3.1 no longer holds:
sigma_max can grow. The proposition is about the invariance term alone.

The counterexample is only as good as the flow it integrates, so two checks tie
:func:`~theory.linear_flow.task_loss_flow` to its loss first: its velocity is minus the loss's
gradient (central differences), and the loss does not increase along the integrated path. Each
check returns a :class:`~theory.checks.CheckResult`.
"""

from __future__ import annotations

import numpy as np

from .checks import EPS64, CheckResult, at_most, exceeds
from .linear_flow import rank_one_exp, sigma_max, task_loss, task_loss_flow, task_loss_velocity
from .numeric import finite_difference_gradient

__all__ = ["check_task_flow_is_gradient_flow", "check_task_loss_decreases", "check_task_loss_can_grow_sigma_max"]

Array = np.ndarray


def check_task_flow_is_gradient_flow(W0: Array, x: Array, G: Array, y: Array, nu: float = 1.0,
                                     name: str = "task_loss_flow_is_gradient_flow") -> CheckResult:
    """The flow's velocity :func:`~theory.linear_flow.task_loss_velocity` at W0 is ``-grad L``,
    L = :func:`~theory.linear_flow.task_loss`, by central differences (L is quadratic in W, so only
    cancellation is left). Residual ``max |velocity + FD| / max |FD|``; tolerance
    ``100 u (1 + |L|) / (h max |FD|)``, as for the invariance error's gradient check.
    """
    W0 = np.asarray(W0, dtype=np.float64)
    L0 = task_loss(W0, x, G, y, nu)
    fd, h = finite_difference_gradient(lambda V: task_loss(V, x, G, y, nu), W0)
    scale = max(float(np.abs(fd).max()), 1e-300)
    err = float(np.abs(task_loss_velocity(W0, x, G, y, nu) + fd).max() / scale)
    return at_most(name, err, 100 * EPS64 * (1 + abs(L0)) / (h * scale),
                   f"relative max |dW/dt + FD grad L| at W0, nu={nu:g}, L(W0)={L0:.4g}")


def check_task_loss_decreases(W0: Array, x: Array, G: Array, y: Array, nu: float = 1.0,
                              t_max: float = 10.0, n_times: int = 41,
                              name: str = "task_loss_decreases_along_flow") -> CheckResult:
    """L does not increase along the integrated :func:`~theory.linear_flow.task_loss_flow`, on a
    linear grid of ``n_times`` times in ``[0, t_max / ||x||^2]`` (a gradient flow's defining
    property; the integration itself, not only its right-hand side). Measured: the largest increase
    of L between consecutive times, relative to ``L(W0)``; tolerance ``1e-8`` (the integrator's rtol
    is 1e-10).
    """
    x = np.asarray(x, dtype=np.float64)
    ts = np.linspace(0.0, t_max / float(x @ x), n_times)
    L = np.array([task_loss(W, x, G, y, nu) for W in task_loss_flow(W0, x, G, y, nu, ts)])
    return at_most(name, float(np.diff(L).max()) / max(L[0], 1e-300), 1e-8,
                   f"max increase of L over {n_times} times: L {L[0]:.4g} -> {L[-1]:.4g}", kind="bound")


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
