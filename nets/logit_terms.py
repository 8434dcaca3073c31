"""The orbit's logits, chunk by chunk, and the per-sample LI and DI terms read from them.

The one pass over the orbit that the logit measures of :mod:`nets.metrics` share (LI, DI, the
orbit centroid, :func:`~nets.metrics.orbit_terms`), and that :mod:`nets.between` reuses:

* :func:`orbit_logits`: the logits ``(|G|, n, classes)`` of a chunk's whole orbit, the model
  seeing one ``(|G| n, *C, H, W)`` batch (element-major, ``[0]`` the identity).
* :func:`orbit_logit_chunks`: validates the images, the model and the chunk size at once
  (:mod:`nets.measure_inputs`, :mod:`nets.model_checks`) and yields ``(start, logits)`` lazily.
* :func:`li_per_sample`, :func:`di_per_sample`: orbit logits ``(|G|, n, C)`` -> per-sample LI
  (Eq. 2) and DI (Eq. 1) ``(n,)``, averaged over the group elements given (the identity skipped
  or not, as :mod:`nets.metrics` explains), in a dtype wide enough for the formula; their
  formulas are :mod:`nets.pairwise`'s.

Pure tensor functions: no gradient is switched off here (the measures run under ``no_grad``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nets.groups import Group, GroupLike
from nets.measure_inputs import as_group, check_images, chunks, model_chunk, wide_dtype
from nets.model_checks import check_model, model_logits
from nets.pairwise import half_squared_logit_distance, kl_from_log_probs

__all__ = ["orbit_logits", "orbit_logit_chunks", "li_per_sample", "di_per_sample"]


def orbit_logits(model: nn.Module, xc: torch.Tensor, group: Group) -> torch.Tensor:
    """Logits of the whole orbit of a chunk: ``(n, *C, H, W) -> (|G|, n, classes)``, ``[0]`` = identity.
    The model sees one ``(|G| n, *C, H, W)`` batch (:func:`~nets.model_checks.model_logits`' checks;
    unchecked images: the measures validate ``xc`` first)."""
    orbit = group.orbit(xc)  # (|G|, n, *C, H, W)
    G, n = orbit.shape[:2]
    out = model_logits(model, orbit.reshape(G * n, *xc.shape[1:]))
    return out.view(G, n, -1)


def orbit_logit_chunks(model: nn.Module, x: torch.Tensor, group: GroupLike, chunk_size: int):
    """Validate ``x``, ``model`` and ``chunk_size`` now; return a lazy iterator of ``(start, logits)``
    with the orbit logits ``(|G|, n, C)`` of ``x[start : start + chunk_size]``."""
    group = as_group(group)
    check_images(x, group)
    check_model(model, x)
    chunk_size = model_chunk(model, chunk_size)
    return ((s, orbit_logits(model, x[s : s + chunk_size], group)) for s in chunks(x.shape[0], chunk_size))


def li_per_sample(logits: torch.Tensor, elems: list[int]) -> torch.Tensor:
    """Orbit logits ``(|G|, n, C)`` -> per-sample LI ``(n,)``: mean over ``elems`` of 1/2 ||f(x) - f(gx)||^2,
    in float32 for float16 / bfloat16 logits (float16 overflows once a logit gap passes 256). A value
    that still overflows (finite logits past about 1e19 in float32) is a one-line ``ValueError``."""
    wide = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    li = half_squared_logit_distance(wide[0], wide[elems]).mean(0)
    if not bool(torch.isfinite(li).all()):
        raise ValueError(f"LI overflows {li.dtype}: the model's logits reach {float(logits.abs().max()):.3g}, "
                         f"whose squared gaps pass the dtype's range; measure it in float64 (model and images)")
    return li


def di_per_sample(logits: torch.Tensor, elems: list[int]) -> torch.Tensor:
    """Orbit logits ``(|G|, n, C)`` -> per-sample DI ``(n,)``: mean over ``elems`` of KL(u_x || q_gx), in float64."""
    logp = F.log_softmax(logits.to(wide_dtype(logits)), dim=-1)
    p0 = logp[0]
    kl = kl_from_log_probs(p0, logp[elems]).clamp_min(0)  # (|elems|, n)
    return kl.mean(0).to(logits.dtype)
