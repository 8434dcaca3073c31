"""Saliency invariance similarity SI_f (paper Eq. 3) of any image classifier.

SI compares the saliency map of an image with the realigned map of its transformed copy,
``cos(m(x), g^{-1} m(g x))``, averaged over samples and (by default) the non-identity group
elements, as :mod:`nets.metrics` explains. The map ``m`` (absolute integrated gradients, thresholded
at 0.9 of the maximum, then smoothed) is :func:`nets.attribution.saliency_map`; the input conventions and one-line
errors are :mod:`nets.measure_inputs`'. :mod:`nets.metrics` re-exports :func:`saliency_invariance`.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import nn

from nets.attribution import (
    DEFAULT_IG_CHUNK, SMOOTHING_KERNEL, Baseline, IGMethod, gaussian_smooth, saliency_map, smoothing_commutes,
)
from nets.caller_warning import warn_at_caller
from nets.groups import Group, GroupLike, as_group
from nets.measure_inputs import (
    Reduction, check_chunk_size, check_images, check_label_range, check_labels, check_reduction, chunks,
    cosine_similarity, group_elements, model_chunk, reduce,
)
from nets.model_checks import check_model, logit_width, model_logits

__all__ = ["SaliencyTarget", "SmoothingSpansImage", "saliency_invariance"]

SaliencyTarget = Literal["label", "predicted"]


class SmoothingSpansImage(UserWarning):
    """The saliency maps' smoothing kernel spans a whole side of the image: the smoothed maps are nearly
    flat, and their cosine, SI, reads near 1 for any model (:func:`saliency_invariance`)."""


def _check_invariant_baseline(baseline: Baseline, group: Group, H: int, W: int, like: torch.Tensor) -> Baseline:
    """SI needs ``g b = b``; accept a number, an ``(H, W)`` tensor (the same for every channel) or a
    tensor of one image's shape ``(*C, H, W)``, fixed by the group."""
    if baseline is None or (isinstance(baseline, (int, float)) and not isinstance(baseline, bool)):
        return baseline
    image_shape = tuple(like.shape[1:])
    if not isinstance(baseline, torch.Tensor) or tuple(baseline.shape) not in ((H, W), (1, H, W), image_shape):
        raise ValueError(f"saliency_invariance needs a baseline that is None, a number, an ({H}, {W}) tensor "
                         f"or one of shape {image_shape}")
    b = baseline.to(device=like.device, dtype=like.dtype)
    b = b.reshape(image_shape) if tuple(b.shape) == image_shape and len(image_shape) > 2 else b.reshape(H, W)
    if not bool((group.orbit(b) == b).all()):
        raise ValueError(
            f"the baseline must be invariant under {group.name} (g b = b for every g), otherwise "
            f"saliency maps of an invariant model are not equivariant"
        )
    return b


def saliency_invariance(
    model: nn.Module,
    x: torch.Tensor,
    y: Optional[torch.Tensor],
    group: GroupLike,
    *,
    target: SaliencyTarget = "label",
    n_steps: int = 50,
    method: IGMethod = "gausslegendre",
    baseline: Baseline = None,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    threshold: Optional[float] = 0.9,
    smooth: bool = True,
    chunk_size: int = DEFAULT_IG_CHUNK,
) -> torch.Tensor:
    """Saliency invariance similarity SI_f (Eq. 3): mean over ``x`` and ``g`` of
    the cosine similarity between ``m(x)`` and ``g^{-1} m(gx)`` (flattened maps).

    ``m`` is :func:`saliency_map`. The target class is the true label ``y``
    (``target="label"``, the same for the whole orbit) or each input's own
    predicted class (``target="predicted"``, ``argmax f(gx)`` for ``m(gx)``; y
    may be None). The baseline must be fixed by the group (zero by default).
    A map that is all zero has no direction; its similarity is defined as 0.

    The smoothing of ``m`` commutes with every group of ``nets.groups``, so ``g^{-1}`` may realign
    the smoothed maps; for a group it does not commute with (a custom permutation of image tiles,
    say: :func:`~nets.attribution.smoothing_commutes`), the thresholded maps are realigned first and
    smoothed after, so that an exactly invariant model still gets SI = 1.

    With absolute maps every similarity is in ``[0, 1]``; the identity would
    contribute exactly 1, hence the default average over non-identity elements
    (module docstring). Multi-channel images: ``m`` sums ``|IG|`` over the channel
    axes (:func:`saliency_map`), so maps are ``(H, W)`` and ``g^{-1}`` realigns them on
    the spatial axes. x: ``(N, *C, H, W)``, y: ``(N,)`` integer labels. Returns a
    scalar, or ``(N,)`` with ``reduction="none"``. Raises a one-line ``ValueError`` for labels outside
    ``[0, classes)`` (:func:`~nets.measure_inputs.check_label_range`). Warns :class:`SmoothingSpansImage` where the
    smoothing's kernel spans a whole side of the images (``min(H, W) <= 3``): SI is then near 1 for any model.
    """
    group = as_group(group)
    N, H, W = check_images(x, group)
    check_model(model, x)
    check_reduction(reduction)
    chunk_size = check_chunk_size(chunk_size)
    if smooth and min(H, W) <= SMOOTHING_KERNEL:
        warn_at_caller(f"saliency_invariance: the {SMOOTHING_KERNEL}x{SMOOTHING_KERNEL} smoothing of the saliency maps "
                       f"spans a whole side of the {H}x{W} images, so the maps are nearly flat and SI reads near 1 "
                       f"whatever the model; pass smooth=False, or measure larger images", SmoothingSpansImage)
    if target not in ("label", "predicted"):
        raise ValueError(f"target must be 'label' or 'predicted', got {target!r}")
    if target == "label":
        if y is None:
            raise ValueError("target='label' needs labels y of shape (N,); without labels, pass "
                             "target='predicted' (each input's own predicted class)")
        check_labels(y, N)
        y = y.to(x.device).long()
        check_label_range(y, logit_width(model, x))
    baseline = _check_invariant_baseline(baseline, group, H, W, x)
    elems = group_elements(group, include_identity)
    G = group.order
    inv = torch.tensor([group.inverse(g) for g in group.elements], device=x.device)
    smooth_first = not smooth or smoothing_commutes(group, H, W)  # all of nets.groups: saliency_map's maps
    step = model_chunk(model, chunk_size)  # the predicted-target pass, through the model itself
    out = []
    for s in chunks(N, chunk_size):
        xc = x[s : s + chunk_size]
        n = xc.shape[0]
        flat = group.orbit(xc).reshape(G * n, *xc.shape[1:])  # element-major: flat[g*n + i] = g x_i
        if target == "label":
            assert y is not None
            tgt = y[s : s + n].repeat(G)
        else:
            with torch.no_grad():
                tgt = torch.cat([model_logits(model, flat[i : i + step]).argmax(-1) for i in range(0, G * n, step)])
        maps = saliency_map(model, flat, tgt, n_steps=n_steps, baseline=baseline, threshold=threshold,
                            smooth=smooth and smooth_first, method=method, chunk_size=chunk_size)
        aligned = group.act(maps, inv.repeat_interleave(n))  # g^{-1} m(g x)
        if smooth and not smooth_first:  # realigned first, then smoothed: what the smoothing does not commute with
            aligned = gaussian_smooth(aligned)
        aligned = aligned.view(G, n, H * W)
        out.append(cosine_similarity(aligned[0], aligned[elems]).mean(0))
    return reduce(torch.cat(out), reduction)


