"""What every measure checks before it measures: images, groups, labels and targets (the model and
its logits: :mod:`nets.model_checks`).

Conventions shared by :mod:`nets.metrics`, :mod:`nets.attribution`, :mod:`nets.sensitivity`
and :mod:`nets.auditing`:

* Images are ``x: (N, *C, H, W)``: a batch axis, zero or more channel axes, and the two
  spatial axes the group acts on. The paper's data is ``(N, H, W)``; a CNN takes
  ``(N, 1, H, W)`` or ``(N, 3, H, W)``. Every batch handed to the model keeps this layout,
  with ``N`` replaced by the number of inputs (an orbit of ``n`` samples is
  ``(|G| n, *C, H, W)``, element-major).
* The model is any ``nn.Module`` or callable mapping ``(M, *C, H, W)`` to logits ``(M, classes)``
  (checked by :mod:`nets.model_checks`).
* A group is a :class:`nets.groups.Group` or its name (``"r4"``, see :func:`nets.groups.get_group`).

Each check raises ``ValueError`` with one line that names the problem.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional, Sequence, Union

import numpy as np
import torch

from nets.caller_warning import warn_at_caller
from nets.groups import Group, as_group  # noqa: F401  (re-exported: a Group or its name)
from nets.layout_hints import CHANNELS_LAST_MODEL, ChannelsLast, channels_last_hint, shape_str

__all__ = [
    "DEFAULT_CHUNK",
    "Reduction",
    "Target",
    "as_group",
    "check_chunk_size",
    "check_finite_nonempty",
    "check_floating",
    "check_images",
    "check_reduction",
    "reduce",
    "group_elements",
    "wide_dtype",
    "chunks",
    "model_chunk",
    "nonfinite_samples",
    "class_targets",
    "check_labels",
    "check_label_range",
    "cosine_similarity",
]

Reduction = Literal["mean", "none", "sum"]
Target = Union[int, torch.Tensor, Sequence[int]]

#: Default chunk size of the orbit measures (samples per chunk; each evaluates |G| times as many inputs).
DEFAULT_CHUNK = 1024

_FINITE_CHECK_CHUNK = 4096


def check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return int(chunk_size)


def model_chunk(model: Callable, chunk_size: int) -> int:
    """``chunk_size`` (checked by :func:`check_chunk_size`) divided by the model's ``batch_expansion``
    where it declares one (at least 1 is left): how many inputs the model runs for each input it is
    given. A weight-tied :class:`nets.train.GroupPooled` model runs the whole orbit, ``|G|`` inputs
    per input, so a chunk of its inputs costs ``|G|`` times a plain model's memory; divided, a pass
    holds about as many images whatever the model (the numbers agree up to round-off). Raises
    ``ValueError`` for a ``batch_expansion`` that is not a positive int."""
    chunk_size = check_chunk_size(chunk_size)
    k = getattr(model, "batch_expansion", 1)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"model.batch_expansion must be a positive int (inputs the model runs per input), got {k!r}")
    return max(1, chunk_size // int(k))


def check_finite_nonempty(x: torch.Tensor, what: str = "x") -> None:
    """``x`` is a tensor with at least one sample and no NaN/inf (checked in chunks)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch (shape {tuple(x.shape)}); need at least one sample")
    if x.is_meta:
        raise ValueError(f"{what} is on the meta device (a shape without values); give images that hold values")
    if nonfinite_samples(x)[0]:
        raise ValueError(f"{what} contains NaN or inf values")


def nonfinite_samples(x: torch.Tensor) -> tuple[int, int]:
    """How many samples (along the first axis) of ``x`` hold a NaN or inf, and the index of the first
    (``(0, -1)`` for none, and for integer tensors, which hold neither). Chunked, so the boolean mask
    of a 50k-image set is never held at once."""
    count, first = 0, -1
    if not (x.is_floating_point() or x.is_complex()):
        return count, first
    for start in range(0, x.shape[0], _FINITE_CHECK_CHUNK):
        chunk = x[start:start + _FINITE_CHECK_CHUNK]
        bad = ~torch.isfinite(chunk.reshape(len(chunk), -1)).all(1)
        n = int(bad.sum())
        if n and first < 0:
            first = start + int(bad.nonzero()[0])
        count += n
    return count, first


def check_floating(x: torch.Tensor) -> None:
    """Measures differentiate and average: integer images get a one-line ``ValueError``."""
    if not x.is_floating_point():
        raise ValueError(f"x has dtype {x.dtype}; the measures need floating-point images "
                         f"(convert and normalize them as the model was trained, e.g. x.float() / 255)")


def check_images(x: torch.Tensor, group: Optional[Group] = None) -> tuple[int, int, int]:
    """Validate images ``x: (N, *C, H, W)`` (non-empty, floating, finite, acted on by
    ``group`` on the last two axes); return ``(N, H, W)``. Images that look channels-last and that the
    group does not refuse are warned of (:class:`~nets.layout_hints.ChannelsLast`, at the caller's line):
    the group would act on width and channels."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"x must be a batch of images of shape (N, *C, H, W), got {tuple(x.shape)}")
    N, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    if N == 0:
        raise ValueError(f"x is an empty batch (shape {tuple(x.shape)}); need at least one sample")
    check_floating(x)
    if group is not None:
        if not isinstance(group, Group):
            raise ValueError(f"group must be a nets.groups.Group, got {type(group).__name__}")
        try:
            group.orbit_index(H, W)  # check_shape's own ValueError (non-square for R4), then the action at this size
        except ValueError as e:
            raise ValueError(f"{e}{channels_last_hint(x.shape)}") from None
        if channels_last_hint(x.shape):  # and the group took them: it acts on width and channels
            warn_at_caller(f"x of shape {shape_str(('N', *x.shape[1:]))} looks channels-last, (N, H, W, C): the "
                           f"group acts on its last two axes, width and channels here; if it is, give "
                           f"x.permute(0, 3, 1, 2), (N, C, H, W) ({CHANNELS_LAST_MODEL})", ChannelsLast)
    check_finite_nonempty(x)
    return N, H, W


def check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "none", "sum"):
        raise ValueError(f"reduction must be 'mean', 'none' or 'sum', got {reduction!r}")


def reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def group_elements(group: Group, include_identity: bool) -> list[int]:
    """The elements an orbit average runs over: all, or all but the identity (the paper's)."""
    elems = [g for g in group.elements if include_identity or g != group.identity]
    if not elems:  # the trivial group without its identity: nothing to average over
        raise ValueError(f"{group.name} is the identity alone: every model is invariant to it, so there is nothing to "
                         f"measure; give a group with more elements")
    return elems


def wide_dtype(t: torch.Tensor) -> torch.dtype:
    """float64 where the device has it (MPS does not), for round-off-sensitive sums."""
    return torch.float32 if t.device.type == "mps" else torch.float64


def chunks(n: int, chunk_size: int) -> range:
    return range(0, n, chunk_size)


def check_labels(y: torch.Tensor, n: int) -> None:
    """Labels of ``n`` samples: an integer tensor of shape ``(n,)``, else a one-line ``ValueError``."""
    if not isinstance(y, torch.Tensor) or y.shape != (n,):
        raise ValueError(f"y must be a tensor of shape ({n},) matching x, got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")


def check_label_range(y: torch.Tensor, classes: int) -> None:
    """Labels ``y`` of a model with ``classes`` logits lie in ``[0, classes)``, else a one-line ``ValueError``."""
    if int(y.min()) < 0 or int(y.max()) >= classes:
        raise ValueError(f"labels y must be in [0, {classes}) for a model with {classes} "
                         f"classes, got values in [{int(y.min())}, {int(y.max())}]")


def class_targets(target: Target, n: int, device: torch.device) -> torch.Tensor:
    """An int or a length-``n`` integer sequence/tensor -> ``(n,)`` long tensor."""
    if isinstance(target, bool):
        raise ValueError("target must be an int or an (N,) integer tensor, got a bool")
    if isinstance(target, (int, np.integer)):
        return torch.full((n,), int(target), dtype=torch.long, device=device)
    t = torch.as_tensor(target, device=device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        return t.long().expand(n).clone()
    if t.shape != (n,):
        raise ValueError(f"target must be an int or have shape (N,) = ({n},), got shape {tuple(t.shape)}")
    return t.long()


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity over the last axis, ``<a, b> / (||a|| ||b||)``, defined as 0 where
    either vector is zero (it has no direction). ``(..., D), (..., D) -> (...)``."""
    dot = (a * b).sum(-1)
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    norms = na * nb
    tiny = torch.finfo(norms.dtype).tiny
    cos = dot / norms.clamp_min(tiny)
    # where the squares underflow (entries of ~1e-150 in float64, down to none left at all) or
    # overflow (~1e155), rescale each vector by its largest entry first: the cosine does not depend
    # on the scale
    ma, mb = a.abs().amax(-1), b.abs().amax(-1)
    nonzero = (ma > 0) & (mb > 0)
    extreme = nonzero & ((norms < tiny ** 0.5) | ~torch.isfinite(dot) | ~torch.isfinite(norms))
    if bool(extreme.any()):
        sa = a / ma.unsqueeze(-1).clamp_min(tiny)
        sb = b / mb.unsqueeze(-1).clamp_min(tiny)
        rescaled = (sa * sb).sum(-1) / (sa.norm(dim=-1) * sb.norm(dim=-1)).clamp_min(tiny)
        cos = torch.where(extreme, rescaled, cos)
    return torch.where(nonzero, cos, torch.zeros_like(dot))
