"""The training losses: the task loss (cross-entropy) and the invariance regularizer ``I_f`` of
Eq. 4 in its five forms, per stacked member. The pairwise formulas themselves live in
:mod:`nets.pairwise` (shared with the measures LI and DI) and are re-exported here.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from nets.pairwise import (  # noqa: F401  (re-exported)
    NORMALIZED_LOGIT_EPS,
    centered_normalized_logit_distance,
    class_centered,
    half_squared_logit_distance,
    kl_from_log_probs,
    normalized_logit_distance,
)
from nets.train.config import REGULARIZERS, Method, Regularizer


def regularizer_members(logits: torch.Tensor, form: Regularizer) -> torch.Tensor:
    """Per-member regularizer: ``logits (S, |G|, B, C)`` with ``[:, 0]`` the reference
    ``f(x)``; returns ``(S,)``, the mean over ``h = 1 .. |G|-1`` and the batch."""
    ref, other = logits[:, :1], logits[:, 1:]
    if form == "logit":  # Eq. 2
        per = half_squared_logit_distance(ref, other)
    elif form == "kl":  # Eq. 1
        logp = torch.log_softmax(logits, dim=-1)
        per = kl_from_log_probs(logp[:, :1], logp[:, 1:])
    elif form == "normalized_logit":  # Section 4.4
        per = normalized_logit_distance(ref, other)
    elif form == "centered_normalized_logit":  # ours, beyond the paper
        per = centered_normalized_logit_distance(ref, other)
    elif form == "detached_normalized_logit":  # ours: Section 4.4's form, no gradient through ||f(x)||^2
        per = normalized_logit_distance(ref, other, detach_denominator=True)
    else:
        raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {form!r}")
    return per.mean(dim=(1, 2))


def invariance_regularizer(logits_orbit: torch.Tensor, form: Regularizer = "logit") -> torch.Tensor:
    """Invariance regularizer ``I_f`` of Eq. 4 on the logits of whole orbits.

    logits_orbit: ``(|G|, B, C)``, member ``0`` the reference ``f(x)`` and member
    ``h`` the logits ``f(h x)`` of the same ``B`` samples. Returns the scalar mean
    over ``h != 0`` and the batch of

    * ``"logit"`` (Eq. 2): ``1/2 ||f(x) - f(hx)||_2^2``;
    * ``"kl"`` (Eq. 1): ``KL(softmax f(x) || softmax f(hx))`` (computed from ``log_softmax``;
      unchanged by adding a constant to a logit vector);
    * ``"normalized_logit"`` (Section 4.4): ``||f(x) - f(hx)||^2 / (||f(x)||^2 + 1e-6)``
      (the ``eps`` guard is ours);
    * ``"centered_normalized_logit"`` (ours, not the paper's): the normalized form on the
      class-centered logits ``c(v) = v - mean_c v_c``
      (:func:`centered_normalized_logit_distance`);
    * ``"detached_normalized_logit"`` (ours, another reading of Section 4.4): the normalized form's
      value with its denominator ``||f(x)||^2`` detached, so no gradient flows through it.

    Gradients flow through both ``f(x)`` and ``f(hx)`` (except that one denominator). With ``|G| = 1`` there is
    nothing to compare and the mean over an empty set is NaN, so it is refused.
    """
    if logits_orbit.ndim != 3:
        raise ValueError(f"logits_orbit must have shape (|G|, B, C), got {tuple(logits_orbit.shape)}")
    if logits_orbit.shape[0] < 2:
        raise ValueError("logits_orbit needs at least two orbit members (|G| >= 2)")
    return regularizer_members(logits_orbit.unsqueeze(0), form)[0]


def task_loss_members(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per member: ``logits (S, B, C)``, ``y (S, B)`` -> ``(S,)``."""
    S, B, C = logits.shape
    return F.cross_entropy(logits.reshape(S * B, C), y.reshape(S * B), reduction="none").view(S, B).mean(1)


def member_losses(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, method: Method,
    form: Regularizer,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Task loss and regularizer of every member on its batch, each ``(S,)``.

    model: the stacked members, ``(S, M, ...) -> (S, M, C)`` (a :class:`~nets.stacked.StackedMLP`
    or the generic stack :class:`nets.train.stacks.GenericStack`). x: DA ``(S, B, D)`` the augmented
    samples; IR ``(S, |G|, B, D)`` the orbit of each augmented sample with ``x[:, 0]`` the
    augmented sample itself; WT whatever the model pools (the StackedMLP takes the orbit).
    y: ``(S, B)``. The regularizer is zero for DA and WT.
    """
    if method == "IR":
        S, G, B, D = x.shape
        logits = model(x.reshape(S, G * B, D)).view(S, G, B, -1)
        return task_loss_members(logits[:, 0], y), regularizer_members(logits, form)
    task = task_loss_members(model(x), y)
    return task, torch.zeros_like(task)

