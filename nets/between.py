"""Transformations between a group's elements, and how a model fares on them (beyond the paper).

The paper measures invariance on the group it trains for: the four rotations by multiples of 90
degrees (R4), the three cyclic translations by a third of the width (T3). A researcher choosing
between weight tying and augmentation also asks what either buys *between* those elements: at 45
degrees, or a shift of 6 pixels. :class:`Between` names those transformations for the groups
that have them (rotations by any angle for ``r2``, ``r4``, ``d4``; cyclic shifts by any whole
number of pixels for ``t<n>`` / ``t<n>y``), and :func:`between_terms` measures a model on them.

For a transformation ``t`` (say, rotation by ``theta``) and images ``x: (N, *C, H, W)``, per sample:

- ``correct``: how many elements ``g`` of the group classify ``g t x`` as the label (the orbit
  accuracy of Table 1 on the transformed images; at ``t`` = identity exactly Table 1's count);
- ``LI``: the mean over ``g`` in G of Eq. 2's ``1/2 ||f(g t x) - f(x)||^2``, the distance from the
  untransformed sample's logits (the identity included: at ``t`` = identity this is
  ``include_identity=True``'s LI; a model invariant to G has ``LI = 1/2 ||f(t x) - f(x)||^2``);
- ``DI``: the same mean of Eq. 1's ``KL(softmax f(x) || softmax f(g t x))``, in float64.

Rotations by an angle that is not a multiple of 90 degrees resample the image (bilinear, the
pixels outside it filled with ``fill``: the background value of normalized images), so they also
blur it; a rotation by ``theta`` and back (:meth:`Between.round_trip`) measures that blur alone.
Multiples of 90 degrees are exact pixel permutations (``torch.rot90``), as are the shifts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F

from nets.groups import CyclicTranslations, Dihedral4, GroupLike, Rotations, as_group
from nets.logit_terms import orbit_logits
from nets.measure_inputs import (
    DEFAULT_CHUNK, check_chunk_size, check_images, check_label_range, check_labels, chunks, wide_dtype,
)
from nets.model_checks import check_model, model_logits
from nets.pairwise import half_squared_logit_distance, kl_from_log_probs

__all__ = ["BETWEEN_TERMS", "DEFAULT_STEPS", "Between", "between_for", "between_terms", "rotate", "shift"]

#: The per-sample terms :func:`between_terms` returns.
BETWEEN_TERMS = ("correct", "LI", "DI")
#: Points from the identity to the group's first step, both included (:func:`between_for`).
DEFAULT_STEPS = 13


def rotate(x: torch.Tensor, degrees: float, *, fill: float = 0.0) -> torch.Tensor:
    """Images ``x: (N, *C, H, W)`` (any leading axes, ``H == W``) rotated counter-clockwise by
    ``degrees``, as :class:`~nets.groups.Rotations` rotates by 90 (``torch.rot90``). A multiple of 90
    degrees is that exact permutation; any other angle samples the rotated image bilinearly
    (``torch.nn.functional.grid_sample``, pixel centres, ``align_corners=False``), pixels that come
    from outside the image taking the value ``fill``. Returns ``x``'s shape and dtype."""
    H, W = x.shape[-2], x.shape[-1]
    if x.ndim < 2 or H != W:
        raise ValueError(f"rotate needs square images (..., H, W) with H == W, got shape {tuple(x.shape)}")
    if not math.isfinite(degrees):
        raise ValueError(f"rotate: the angle must be finite, got {degrees}")
    quarter, rest = divmod(float(degrees), 90.0)
    if rest == 0.0:
        return torch.rot90(x, k=int(quarter) % 4, dims=(-2, -1)).clone()
    work = x.reshape(-1, 1, H, W)
    if work.dtype not in (torch.float32, torch.float64):
        work = work.float()
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    # output pixel q samples the input at R(-a) q, in (x right, y down) coordinates
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=work.dtype, device=work.device)
    grid = F.affine_grid(theta.expand(work.shape[0], 2, 3), list(work.shape), align_corners=False)
    out = F.grid_sample(work - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    return out.to(x.dtype).reshape(x.shape)


def shift(x: torch.Tensor, pixels: int, *, axis: Literal["x", "y"] = "x") -> torch.Tensor:
    """Images ``x: (..., H, W)`` shifted cyclically by ``pixels`` along the width (``axis="x"``) or
    the height (``"y"``), as :class:`~nets.groups.CyclicTranslations` shifts (``torch.roll``)."""
    if isinstance(pixels, bool) or int(pixels) != pixels:
        raise ValueError(f"shift: a cyclic shift moves by whole pixels, got {pixels!r}")
    if axis not in ("x", "y"):
        raise ValueError(f"shift: axis must be 'x' or 'y', got {axis!r}")
    return torch.roll(x, shifts=int(pixels), dims=-1 if axis == "x" else -2)


@dataclass(frozen=True)
class Between:
    """The transformations from a group's identity to its first step: ``kind`` ``"rotation"``
    (``steps`` in degrees) or ``"shift"`` (in pixels along ``axis``); ``group_step`` is the group's
    own smallest step (90 degrees for R4, ``W / n`` pixels for ``t<n>``), the last of ``steps``."""

    group: str
    kind: Literal["rotation", "shift"]
    steps: tuple[float, ...]
    group_step: float
    axis: str = ""

    @property
    def unit(self) -> str:
        return "degrees" if self.kind == "rotation" else "pixels"

    def transform(self, step: float, *, fill: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
        """The transformation by ``step`` (degrees or pixels) as a function of images."""
        if self.kind == "rotation":
            return lambda x: rotate(x, step, fill=fill)
        return lambda x: shift(x, int(step), axis=self.axis)  # type: ignore[arg-type]

    def round_trip(self, step: float, *, fill: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Rotation by ``step`` and back (the resampling's blur without the rotation); ``None`` for
        shifts, which are exact."""
        if self.kind != "rotation":
            return None
        return lambda x: rotate(rotate(x, step, fill=fill), -step, fill=fill)


def between_for(group: GroupLike, size: tuple[int, int], n_steps: int = DEFAULT_STEPS) -> Between:
    """The transformations between ``group``'s identity and its first step on ``(H, W)`` images:
    ``n_steps`` angles evenly from 0 to 360/n degrees for rotations (``r2``, ``r4``, ``d4``, whose
    reflections map those angles to the others), every whole pixel from 0 to ``W / n`` (or ``H / n``)
    for ``t<n>`` (``t<n>y``). Other groups (mirrors, ``t<n>xy``, your own) have none defined: a
    one-line ``ValueError`` (give :func:`between_terms` your own transform)."""
    g = as_group(group)
    H, W = size
    g.check_shape(H, W)
    if isinstance(g, (Rotations, Dihedral4)):
        if H != W:
            raise ValueError(f"{g.name}: rotations between its elements need a square image, got H={H}, W={W}")
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2 (the identity and the group's step), got {n_steps}")
        step = 360.0 / (g.n if isinstance(g, Rotations) else 4)
        return Between(g.name, "rotation", tuple(step * k / (n_steps - 1) for k in range(n_steps)), step)
    if isinstance(g, CyclicTranslations):
        step = (W if g.axis == "x" else H) // g.n
        return Between(g.name, "shift", tuple(float(k) for k in range(step + 1)), float(step), g.axis)
    raise ValueError(f"no transformations between the elements of {g.name} are defined (rotations for r2, r4, d4; "
                     f"whole-pixel shifts for t<n>, t<n>y); pass your own transform to nets.between.between_terms")


@torch.no_grad()
def between_terms(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                  group: GroupLike, transform: Callable[[torch.Tensor], torch.Tensor], *,
                  chunk_size: int = DEFAULT_CHUNK) -> dict[str, torch.Tensor]:
    """Per-sample ``{"correct": (N,) long, "LI": (N,), "DI": (N,)}`` of ``model`` on ``transform(x)``
    against ``x`` (module docstring): ``correct[i]`` counts the elements ``g`` of ``group`` (all of
    it) with ``argmax f(g t x_i) = y_i``; LI averages Eq. 2 and DI Eq. 1 between ``f(x_i)`` and
    ``f(g t x_i)`` over all of G (DI in float64, returned in the logits' dtype).

    x: ``(N, *C, H, W)`` on the model's device and dtype, y: ``(N,)`` labels in ``[0, classes)``;
    ``transform`` maps a chunk of images to transformed images of the same shape (say
    ``Between.transform(step)``, or your own). Errors are the measures' one-line ``ValueError``
    (:mod:`nets.metrics`), and one for a transform that changes the shape or returns non-finite images.
    """
    g = as_group(group)
    check_images(x, g)
    check_model(model, x)
    check_labels(y, x.shape[0])
    chunk_size = check_chunk_size(chunk_size)
    y = y.to(x.device)
    out: dict[str, list[torch.Tensor]] = {t: [] for t in BETWEEN_TERMS}
    for s in chunks(x.shape[0], chunk_size):
        xc = x[s : s + chunk_size]
        tx = transform(xc)
        if not isinstance(tx, torch.Tensor) or tx.shape != xc.shape:
            got = tuple(tx.shape) if isinstance(tx, torch.Tensor) else type(tx).__name__
            raise ValueError(f"transform must return images of the shape it was given, {tuple(xc.shape)}; got {got}")
        if not bool(torch.isfinite(tx).all()):
            raise ValueError("transform returned NaN or inf images")
        ref = model_logits(model, xc)  # (n, C)
        logits = orbit_logits(model, tx.to(x.dtype), g)  # (|G|, n, C)
        if s == 0:
            check_label_range(y, logits.shape[-1])
        yc = y[s : s + xc.shape[0]]
        out["correct"].append((logits.argmax(-1) == yc).sum(0))
        wide = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        ref_wide = ref.to(wide.dtype)
        out["LI"].append(half_squared_logit_distance(ref_wide, wide).mean(0))
        logp = F.log_softmax(logits.to(wide_dtype(logits)), dim=-1)
        logp0 = F.log_softmax(ref.to(wide_dtype(logits)), dim=-1)
        out["DI"].append(kl_from_log_probs(logp0, logp).clamp_min(0).mean(0).to(logits.dtype))
    return {t: torch.cat(v) for t, v in out.items()}
