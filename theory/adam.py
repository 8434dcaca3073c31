"""Extension (g): Proposition 3.1 is about the gradient flow (and, extension (c), gradient descent);
Adam, the optimizer the paper trains with (``torch.optim.Adam``, as :mod:`nets.train` uses), is not
covered, even on the invariance error alone. One constructed counterexample.

Why. For one sample and one group element the gradient of Eq. (2) is ``(W eps) eps^T``: the flow
moves each row of W along eps only and stops at ``W0 (I - P)``, no larger (extension (b)). Adam
divides each coordinate's step by a running scale of that coordinate's own gradients. With one
output, coordinate i's gradient is always ``eps_i`` times one common scalar ``W eps``, so that
scale is ``|eps_i|`` times a common one, and every step, not only the first, moves every coordinate
by the same amount: W moves along ``sign(eps)``, not along eps. On that line ``W eps`` falls to 0
at ``W0 - (W0 eps / ||eps||_1) sign(eps)``, where Adam stops, at any learning rate small enough to
settle (up to Adam's ``eps``); for an eps with unequal entries that move has a part orthogonal to
eps, and it can make W larger.

The instance: ``x = (4, 1, 0)``, G the cyclic shift ``(G x)[p] = x[p - 1]``, so
``eps = (4, -3, -1)``; one output, ``W0 = (1, 0, 1)``. Sign descent predicts
``||W|| = 1.556`` from ``sqrt(2) = 1.414`` (+10%), where the flow's limit is 1.286 (-9%).
Imports torch (its Adam, not a copy of it).
"""

from __future__ import annotations

import numpy as np
import torch

from nets.train import TrainConfig

from .checks import CheckResult, exceeds
from .linear_flow import cyclic_group_matrices, sigma_max, span_projector

__all__ = ["adam_instance", "adam_path", "check_adam_can_grow_sigma_max"]

Array = np.ndarray

#: The paper's learning rate (Section 4.1, "Training details"), as :mod:`nets.train` trains with it.
PAPER_LR = TrainConfig().lr


def adam_instance() -> tuple[Array, Array, Array]:
    """``(W0 (1, 3), x (3,), G (3, 3))`` of the module's counterexample."""
    G = cyclic_group_matrices([2, 0, 1])[1]  # (G x)[p] = x[p - 1]
    return np.array([[1.0, 0.0, 1.0]]), np.array([4.0, 1.0, 0.0]), G


def adam_path(W0: Array, eps: Array, lr: float, steps: int) -> Array:
    """sigma_max of ``W_k``, k = 0..steps, under ``torch.optim.Adam(lr=lr)`` (default betas and eps)
    on ``1/2 ||W eps||^2`` alone (Eq. (2) for one sample, one group element), in float64 on the CPU.
    W0: (m, n), eps: (n,); returns (steps + 1,)."""
    W = torch.tensor(np.asarray(W0, dtype=np.float64), requires_grad=True)
    e = torch.tensor(np.asarray(eps, dtype=np.float64))
    opt = torch.optim.Adam([W], lr=lr)
    out = [float(sigma_max(W0))]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (W @ e).square().sum()).backward()
        opt.step()
        out.append(float(torch.linalg.matrix_norm(W.detach(), ord=2)))
    return np.array(out)


def check_adam_can_grow_sigma_max(lr: float = PAPER_LR, steps: int = 5000,
                                  name: str = "adam_can_grow_sigma_max") -> CheckResult:
    """Extension (g), counterexample: Adam on the invariance error alone raises sigma_max on
    :func:`adam_instance`, at the paper's learning rate by default.

    Measured: ``max_k sigma_max(W_k) / sigma_max(W0) - 1`` over ``steps`` steps; it must exceed
    ``0.01``. The detail gives the last step's sigma_max, the stop on the ``sign(eps)`` line and the
    gradient flow's limit ``W0 (I - P)``, which is at most sigma_max(W0) by the proposition.
    """
    W0, x, G = adam_instance()
    eps = x - G @ x
    path = adam_path(W0, eps, lr, steps)
    s0 = path[0]
    growth = float(path.max() / s0 - 1)
    sign_stop = W0 - (W0 @ eps)[:, None] / np.abs(eps).sum() * np.sign(eps)[None]
    P, _ = span_projector(eps[None])
    flow_limit = float(sigma_max(W0 @ (np.eye(eps.size) - P)))
    return exceeds(name, growth, 0.01, f"Adam lr={lr:g}, {steps} steps: sigma_max {s0:.4g} -> "
                   f"{path[-1]:.4g} (the sign(eps) line's stop: {float(sigma_max(sign_stop)):.4g}); "
                   f"gradient flow's limit {flow_limit:.4g}")
