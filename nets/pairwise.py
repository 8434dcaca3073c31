"""The paper's pairwise formulas: the logits ``f(x)`` of a sample against the logits ``f(hx)`` of a
transformed copy, over the last (class) axis, broadcasting the rest.

The one home of these formulas: the measures LI and DI (:mod:`nets.metrics`) and the trainer's
invariance regularizer (:mod:`nets.train.losses`) both call them. Plain torch, no other module of
ours, so both can import it.

* :func:`half_squared_logit_distance`, Eq. 2: ``1/2 ||f(x) - f(hx)||_2^2``;
* :func:`kl_from_log_probs`, Eq. 1: ``KL(u_x || q_hx) = sum_c u_c (log u_c - log q_c)``;
* :func:`normalized_logit_distance`, Section 4.4: ``||f(x) - f(hx)||^2 / (||f(x)||^2 + eps)``, its
  denominator optionally detached (our other reading of it, not the paper's);
* :func:`centered_normalized_logit_distance`, ours (not the paper's): the same on class-centered
  logits, ``||c(f(x)) - c(f(hx))||^2 / (||c(f(x))||^2 + eps)``, ``c(v) = v - mean_c v_c``.
"""

from __future__ import annotations

import torch

__all__ = [
    "NORMALIZED_LOGIT_EPS",
    "half_squared_logit_distance",
    "kl_from_log_probs",
    "normalized_logit_distance",
    "class_centered",
    "centered_normalized_logit_distance",
]

#: Guard in the denominator of the normalized logit form, ``||f(x)||^2 + eps``.
NORMALIZED_LOGIT_EPS = 1e-6


def half_squared_logit_distance(ref: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Eq. 2's summand, ``1/2 ||f(x) - f(hx)||_2^2`` over the last (class) axis.

    ref: logits ``f(x)`` ``(..., C)``; other: logits ``f(hx)``, broadcastable against ``ref``.
    Returns the broadcast shape without the class axis, computed as ``0.5 * sum_c (other - ref)^2``.
    """
    return 0.5 * (other - ref).pow(2).sum(-1)


def kl_from_log_probs(logp_ref: torch.Tensor, logp_other: torch.Tensor) -> torch.Tensor:
    """Eq. 1's summand, ``KL(u_x || q_hx) = sum_c u_c (log u_c - log q_c)`` over the last axis.

    logp_ref: ``log_softmax f(x)`` ``(..., C)``; logp_other: ``log_softmax f(hx)``, broadcastable.
    Taking log-probabilities (not probabilities) keeps it stable for large logits; the caller
    chooses the dtype (the measures use float64) and whether to clamp round-off below 0.
    """
    return (logp_ref.exp() * (logp_ref - logp_other)).sum(-1)


def normalized_logit_distance(ref: torch.Tensor, other: torch.Tensor,
                              eps: float = NORMALIZED_LOGIT_EPS, *, detach_denominator: bool = False) -> torch.Tensor:
    """Section 4.4's normalized logit form, ``||f(x) - f(hx)||^2 / (||f(x)||^2 + eps)`` over the
    last axis; ``eps`` (:data:`NORMALIZED_LOGIT_EPS`, our guard, not in the paper) keeps the
    denominator away from 0. Shapes as in :func:`half_squared_logit_distance`.

    ``detach_denominator=True`` (ours, the paper does not say): the same value, but no gradient
    flows through ``||f(x)||^2``, so the gradient is the logit form's (Eq. 2) times
    ``2 / (||f(x)||^2 + eps)`` per sample, and growing ``||f(x)||`` (a class-common shift, say)
    no longer lowers the loss through the denominator."""
    den = ref.pow(2).sum(-1) + eps
    return (other - ref).pow(2).sum(-1) / (den.detach() if detach_denominator else den)


def class_centered(logits: torch.Tensor) -> torch.Tensor:
    """``c(v) = v - mean_c v_c`` over the last (class) axis: the logits less their class-common
    part, which the softmax ignores (:class:`nets.models.CenteredLogits` applies it to a model)."""
    return logits - logits.mean(-1, keepdim=True)


def centered_normalized_logit_distance(ref: torch.Tensor, other: torch.Tensor,
                                       eps: float = NORMALIZED_LOGIT_EPS) -> torch.Tensor:
    """The centered normalized logit form, **ours, not the paper's** (a method change beyond it):

        ``||c(f(x)) - c(f(hx))||^2 / (||c(f(x))||^2 + eps)``,  ``c(v) = v - mean_c v_c``,

    i.e. :func:`normalized_logit_distance` of the class-centered logits (:func:`class_centered`).
    A shift ``s`` added to every logit of ``f(x)`` and ``f(hx)`` leaves it unchanged, so, unlike
    Section 4.4's form, it cannot be lowered by growing a class-common logit shift (which
    inflates ``||f(x)||^2`` without making the model any more invariant; docs/findings.md).
    Shapes as in :func:`half_squared_logit_distance`; ``eps`` as in the normalized form.
    """
    return normalized_logit_distance(class_centered(ref), class_centered(other), eps)
