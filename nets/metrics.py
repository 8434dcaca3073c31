"""Invariance measures of Section 3.2 on any image classifier.

Every measure has the form ``measure(model, x, group, ...) -> tensor``:

* :func:`logit_invariance` (LI, Eq. 2), :func:`distribution_invariance` (DI, Eq. 1),
  :func:`saliency_invariance` (SI, Eq. 3): mean over samples by default,
  ``reduction="none"`` gives per-sample values ``(N,)`` (already averaged over
  the group elements), ``reduction="sum"`` sums over samples.
* :func:`orbit_measures`: accuracy over the full orbit, LI and DI from one pass.
* :func:`orbit_centroid_invariance`, :func:`layer_invariance_profile`: extras.

This module holds the orbit-logit measures (LI, DI, the orbit centroid), computed from the
orbit's logits and per-sample terms of :mod:`nets.logit_terms` (:func:`orbit_logits` is
re-exported); the others live in one module each and are re-exported here, so
``from nets.metrics import X`` works for every measure: SI in :mod:`nets.saliency_measure`,
the saliency map, integrated gradients and smoothing in :mod:`nets.attribution`, the
per-layer profile in :mod:`nets.layer_profile`, the input sensitivity ``sigma_max(J)`` of
Section 4.4 in :mod:`nets.sensitivity`.

Why the group averages skip the identity by default. Eq. 1-3 write the sums
over ``g ~ G``; the identity contributes ``0`` to LI and DI and exactly ``1`` to
SI (``0`` for a sample whose map is all zero, since a zero map has no direction). Table 1 reports SI = 0.17 for the data-augmented model on R4; including the
identity in a 4-element average would force SI >= 1/4 = 0.25 for absolute
(non-negative) saliency maps, whose cosine similarities are all >= 0. So the
paper's averages run over the non-identity elements, and so do ours
(``include_identity=True`` restores the full-orbit average: LI and DI are then
multiplied by ``(|G|-1)/|G|`` and SI becomes ``((|G|-1) SI + 1)/|G|`` where no map is all zero).

Conventions (:mod:`nets.measure_inputs`). Images are ``x: (N, *C, H, W)``: zero or more
channel axes, the group acting on the last two. The model is any ``nn.Module`` or callable
mapping ``(M, *C, H, W)`` to logits ``(M, classes)``; the orbit of a chunk of ``n`` samples
reaches it as one ``(|G| n, *C, H, W)`` batch (element-major). ``group`` is a
:class:`~nets.groups.Group` or its name (``"r4"``). ``x`` must be on the model's device and
have its dtype. Refused with a one-line ``ValueError``: images that are not floating or not
finite, a group that does not fit ``(H, W)``, a model that refuses the input shape (both
shapes named), an output that is not ``(M, classes)``, NaN or inf logits, and a model whose
output for one sample depends on the rest of the batch or on chance (batch normalization
with batch statistics, active dropout: call ``model.eval()``; the measures never change the
mode; any other cause is caught by a probe on two samples, ``check_samplewise``).
Work is done in chunks of ``chunk_size`` samples (each chunk evaluates its whole orbit,
``|G|`` times as many inputs, and integrated gradients ``n_steps`` times as many), so memory
is bounded independently of ``N``. All returned tensors are detached.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from nets.attribution import (  # noqa: F401  (re-exported)
    DEFAULT_IG_CHUNK,
    IG_METHODS,
    Baseline,
    IGMethod,
    gaussian_kernel,
    gaussian_smooth,
    ig_quadrature,
    integrated_gradients,
    saliency_map,
)
from nets.groups import GroupLike
from nets.layer_profile import layer_invariance_profile  # noqa: F401  (re-exported)
from nets.logit_terms import di_per_sample, li_per_sample, orbit_logit_chunks
from nets.logit_terms import orbit_logits  # noqa: F401  (re-exported)
from nets.measure_inputs import (  # noqa: F401  (cosine_similarity re-exported)
    DEFAULT_CHUNK,
    Reduction,
    as_group,
    check_chunk_size,
    check_label_range,
    check_labels,
    check_reduction,
    cosine_similarity,
    group_elements,
    reduce,
)
from nets.saliency_measure import SaliencyTarget, saliency_invariance  # noqa: F401  (re-exported)
from nets.sensitivity import (  # noqa: F401  (re-exported)
    DEFAULT_JAC_CHUNK,
    JacobianMethod,
    centered_logit_norm,
    class_common_logit_share,
    jacobian_spectral_norm,
)

__all__ = [
    "logit_invariance",
    "distribution_invariance",
    "orbit_measures",
    "orbit_terms",
    "orbit_logits",
    "ORBIT_TERMS",
    "OPTIONAL_ORBIT_TERMS",
    "saliency_invariance",
    "orbit_centroid_invariance",
    "layer_invariance_profile",
    "cosine_similarity",
    "saliency_map",
    "gaussian_smooth",
    "gaussian_kernel",
    "integrated_gradients",
    "ig_quadrature",
    "jacobian_spectral_norm",
    "class_common_logit_share",
    "centered_logit_norm",
]

#: The per-sample terms :func:`orbit_terms` computes.
ORBIT_TERMS = ("correct", "LI", "DI")
#: Terms :func:`orbit_terms` computes only when asked: ``predictions (N, |G|)``.
OPTIONAL_ORBIT_TERMS = ("predictions",)


def _orbit_logit_measure(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    per_sample: Callable[[torch.Tensor], torch.Tensor],
    reduction: Reduction,
    chunk_size: int,
) -> torch.Tensor:
    """Shared body of the logit measures: validate, evaluate the orbit logits
    ``(|G|, n, C)`` chunk by chunk, map them to per-sample values ``(n,)`` with
    ``per_sample``, and reduce over the samples."""
    chunks_ = orbit_logit_chunks(model, x, group, chunk_size)
    check_reduction(reduction)
    return reduce(torch.cat([per_sample(logits) for _, logits in chunks_]), reduction)


# ---- LI, DI, orbit centroid, per-layer profile ---------------------------------------
@torch.no_grad()
def orbit_terms(
    model: nn.Module,
    x: torch.Tensor,
    y: Optional[torch.Tensor],
    group: GroupLike,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    terms: Sequence[str] = ORBIT_TERMS,
) -> dict[str, torch.Tensor]:
    """Per-sample terms of :func:`orbit_measures` from one pass over the orbit logits:
    ``{"correct": (N,) long, "LI": (N,), "DI": (N,)}``, with ``correct[i]`` the number of
    elements ``g`` (all of ``G``) with ``argmax f(g x_i) = y_i`` (the one count behind every
    accuracy over the orbit, the trainer's :func:`nets.train.orbit_accuracy` included) and LI/DI
    as :func:`logit_invariance` / :func:`distribution_invariance` with ``reduction="none"``.
    x: ``(N, *C, H, W)``, y: ``(N,)`` integer labels in ``[0, classes)`` (else ``ValueError``).
    ``terms``: which of :data:`ORBIT_TERMS` and :data:`OPTIONAL_ORBIT_TERMS` to compute (and
    return); ``"predictions"`` is ``(N, |G|)`` long, column ``g`` the argmax of ``f(g x)`` over all
    of ``G`` in the group's element order (:mod:`nets.class_accuracy`). ``y`` may be ``None``
    (unlabelled images) when ``terms`` leaves out ``"correct"``.
    """
    known = ORBIT_TERMS + OPTIONAL_ORBIT_TERMS
    unknown = sorted(set(terms) - set(known))
    if unknown:
        raise ValueError(f"unknown orbit terms {unknown}; known: {', '.join(known)}")
    if y is None and "correct" in terms:
        raise ValueError("the orbit accuracy needs labels y of shape (N,); without labels, leave out 'correct'")
    group = as_group(group)
    chunks_ = orbit_logit_chunks(model, x, group, chunk_size)  # validates x; nothing evaluated yet
    if y is not None:
        check_labels(y, x.shape[0])
        y = y.to(x.device)
    elems = group_elements(group, include_identity)
    per_sample = {"correct": lambda logits, s: (logits.argmax(-1) == y[s : s + logits.shape[1]]).sum(0),
                  "LI": lambda logits, s: li_per_sample(logits, elems),
                  "DI": lambda logits, s: di_per_sample(logits, elems),
                  "predictions": lambda logits, s: logits.argmax(-1).T}
    out: dict[str, list[torch.Tensor]] = {t: [] for t in known if t in terms}
    for s, logits in chunks_:  # logits: (|G|, n, C)
        if s == 0 and y is not None:
            check_label_range(y, logits.shape[-1])
        for t, values in out.items():
            values.append(per_sample[t](logits, s))
    return {t: torch.cat(values) for t, values in out.items()}


def orbit_measures(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """Accuracy over the full orbit, LI (Eq. 2) and DI (Eq. 1) from one pass over the orbit logits.

    The same numbers as ``nets.train.orbit_accuracy``, :func:`logit_invariance` and
    :func:`distribution_invariance` (up to float round-off in the batching), at a third
    of their cost: each orbit input is classified once. x: ``(N, *C, H, W)``, y: ``(N,)``.
    Returns ``{"accuracy", "LI", "DI"}`` (LI/DI averaged as those functions do); the
    per-sample terms are :func:`orbit_terms`.
    """
    if y is None:
        raise ValueError("orbit_measures gives the orbit accuracy, which needs labels y of shape (N,); for unlabelled "
                         "images, logit_invariance and distribution_invariance give LI and DI alone")
    group = as_group(group)
    t = orbit_terms(model, x, y, group, include_identity=include_identity, chunk_size=chunk_size)
    return {"accuracy": int(t["correct"].sum()) / (group.order * x.shape[0]), "LI": float(t["LI"].mean()),
            "DI": float(t["DI"].mean())}


@torch.no_grad()
def logit_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Logit invariance error LI_f (Eq. 2): mean over samples ``x`` and group
    elements ``g`` of ``1/2 ||f(x) - f(g x)||_2^2``.

    The average over ``g`` skips the identity unless ``include_identity=True``
    (see the module docstring). x: ``(N, *C, H, W)``. Returns a scalar, or ``(N,)``
    with ``reduction="none"``.
    """
    elems = group_elements(as_group(group), include_identity)
    return _orbit_logit_measure(model, x, group, lambda z: li_per_sample(z, elems), reduction, chunk_size)


@torch.no_grad()
def distribution_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Predictive distribution invariance error DI_f (Eq. 1): mean over ``x`` and
    ``g`` of ``KL(u_x || q_{gx})`` with ``u_x = softmax f(x)``, ``q_{gx} = softmax f(gx)``.

    Computed from ``log_softmax`` (``sum_c u_c (log u_c - log q_c)``), which is
    stable for large logits, in float64: KL is second order in the logit
    difference, but round-off in the log-probabilities enters at first order,
    so float32 would report ~1e-8 for logits equal to round-off (a weight-tied
    model). Round-off that makes a value slightly negative is clamped to 0
    (KL >= 0). The result has the logits' dtype. Invariant to adding a per-sample constant to the
    logits, unlike LI, so ``LI = 0`` implies ``DI = 0`` but not conversely.
    x: ``(N, *C, H, W)``. Returns a scalar, or ``(N,)`` with ``reduction="none"``.
    """
    elems = group_elements(as_group(group), include_identity)
    return _orbit_logit_measure(model, x, group, lambda z: di_per_sample(z, elems), reduction, chunk_size)


@torch.no_grad()
def orbit_centroid_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Spread of the logits over the orbit around their centroid:
    ``1/|G| sum_g 1/2 ||f(gx) - c(x)||^2`` with ``c(x) = 1/|G| sum_h f(hx)``.

    Unlike LI, which measures distances to the reference point ``f(x)``, this
    depends on the orbit only (the same for every ``x`` in one orbit), and equals
    the all-pairs average ``1/(2|G|^2) sum_{g,h} 1/2 ||f(gx) - f(hx)||^2``.
    x: ``(N, *C, H, W)``. Returns a scalar, or ``(N,)`` with ``reduction="none"``.
    """

    def per_sample(logits: torch.Tensor) -> torch.Tensor:
        c = logits.mean(0, keepdim=True)
        return 0.5 * (logits - c).pow(2).sum(-1).mean(0)

    return _orbit_logit_measure(model, x, group, per_sample, reduction, chunk_size)
