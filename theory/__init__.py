"""Proposition 3.1 (invariance-induced spectral decay), checked symbolically and numerically.

Modules: :mod:`theory.checks` (the :class:`CheckResult` every check returns),
:mod:`theory.symbolic` (sympy checks of the proof's steps: exact identities for n = 2, 3, and
the closed form and its norm for every n), :mod:`theory.linear_flow` (the
linear model, its residuals and flows in numpy/scipy), :mod:`theory.numeric` (numpy/scipy checks
and extensions (a)-(b)), :mod:`theory.descent` (extension (c), gradient descent's step bound),
:mod:`theory.task_flow` (extension (d), a task loss added),
:mod:`theory.images` (extension (e), the paper's groups on images; imports torch),
:mod:`theory.tightness` (extension (f), how much decay), :mod:`theory.adam` (extension (g), Adam;
imports torch), :mod:`theory.momentum` (extension (h), SGD with momentum; imports torch),
:mod:`theory.two_layer` (extension (i), two linear layers), :mod:`theory.kl_flow` (extension (j),
the KL invariance error and the centered logits' error), :mod:`theory.report_checks` (which
checks the report runs), :mod:`theory.spectral_flow` (the report, ``python -m theory.spectral_flow``).
``images``, ``adam``, ``momentum`` and ``spectral_flow`` are not imported here: the first three need
torch, the last is the ``-m`` entry point.
"""

from .checks import EPS64, CheckResult
from .linear_flow import (
    cyclic_group_matrices,
    flow_expm,
    flow_ode,
    gradient_descent,
    invariance_covariance,
    invariance_residuals,
    logit_invariance_error,
    logit_invariance_grad,
    rank_one_exp,
    sigma_max,
    singular_values,
    span_projector,
    task_loss,
    task_loss_flow,
    task_loss_velocity,
)
from .symbolic import ALL_SYMBOLIC_CHECKS, rank_one_exp_closed_form

__all__ = [
    "EPS64",
    "CheckResult",
    "cyclic_group_matrices",
    "flow_expm",
    "flow_ode",
    "gradient_descent",
    "invariance_covariance",
    "invariance_residuals",
    "logit_invariance_error",
    "logit_invariance_grad",
    "rank_one_exp",
    "sigma_max",
    "singular_values",
    "span_projector",
    "task_loss",
    "task_loss_flow",
    "task_loss_velocity",
    "ALL_SYMBOLIC_CHECKS",
    "rank_one_exp_closed_form",
]
