"""Which image layout a model refused and which it would take, for the one-line errors of the
measures (:func:`nets.model_checks.model_logits`), the trainer and ``own-data``: images that look
channels-last, named with the permute that fixes them (:func:`channels_last_hint`) or warned of where
nothing refuses them (:class:`ChannelsLast`), and the layout a model accepts when one channel axis is
added or removed, or its channels moved last (:func:`probe_layouts`)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

__all__ = ["ChannelsLast", "CHANNEL_COUNTS", "CHANNELS_LAST_MODEL", "CHANNELS_LAST_FORWARD", "accepts_channels_last",
           "channels_last_hint", "channels_last_warning", "probe_layouts", "shape_str"]

#: The channel counts whose channels-last images ``(N, H, W, C)`` are named or warned of: grey, two-channel
#: (optical flow, a stereo pair), RGB, RGBA.
CHANNEL_COUNTS = (1, 2, 3, 4)

#: The forward of a wrapper that hands a model written for ``(N, H, W, C)`` channels-first images.
CHANNELS_LAST_FORWARD = "net(x.permute(0, 2, 3, 1))"
#: What a model written for ``(N, H, W, C)`` images needs once the images are stored channels-first.
CHANNELS_LAST_MODEL = ("a model written for (N, H, W, C) then takes them through a wrapper whose forward is "
                       f"{CHANNELS_LAST_FORWARD}")


class ChannelsLast(UserWarning):
    """Images look like ``(N, H, W, C)`` with C of 1 to 4 (:data:`CHANNEL_COUNTS`) and nothing refused them:
    a group acts on the last two axes, width and channels there (``f2`` would swap the colour channels rather
    than mirror the image), which a model that takes that layout is measured or trained under without
    complaint."""


def channels_last_hint(shape: Sequence[int], subject: str = "x looks",
                       fix: str = "give x.permute(0, 3, 1, 2)") -> str:
    """``"; x looks channels-last, ..."`` (``subject`` and its verb, then) naming the fix (``fix``, default
    ``x.permute(0, 3, 1, 2)``) for a batch of 4 axes whose last holds 1 to 4 values and whose two
    before it hold more, the first of them more than 4 (``(N, 3, 8, 2)`` reads as well as 3-channel 8 x 2
    images, and gets no hint); ``""`` otherwise. Only an error message's ending: the measures and the
    trainer take ``(N, *C, H, W)`` and act on the last two axes."""
    if (len(shape) == 4 and shape[-1] in CHANNEL_COUNTS and shape[1] not in CHANNEL_COUNTS
            and min(shape[1], shape[2]) > shape[-1]):
        return f"; {subject} channels-last, (N, H, W, C) = {shape_str(('N', *shape[1:]))}: {fix}, (N, C, H, W)"
    return ""


def channels_last_warning(shape: Sequence[int], images: str, fix: str) -> str:
    """The warning for ``images`` of ``shape`` that look channels-last (:func:`channels_last_hint`'s
    test) where nothing refuses them: the group would act on width and channels; ``fix`` says how to
    store them channels-first. ``""`` for images that do not look so."""
    if not channels_last_hint(shape):
        return ""
    return (f"{images} {tuple(shape)} look channels-last, (N, H, W, C): the group acts on their last two axes, "
            f"width and channels here; if they are, {fix}, (N, C, H, W)")


def shape_str(shape: Sequence) -> str:
    """``(M, 1, 36, 36)``: a shape as the messages write it (a 1-tuple with its comma)."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def probe_layouts(model: Callable, inputs: torch.Tensor) -> Optional[tuple[int, ...]]:
    """The layout a model accepts when it refuses ``inputs``: one channel axis added or removed, or, for
    ``(M, C, H, W)`` with C of 1 to 4, the channels last (:func:`accepts_channels_last`)."""
    probe = inputs[:2]
    candidates = [probe.unsqueeze(1)]
    if probe.ndim >= 4 and probe.shape[1] == 1:
        candidates.append(probe.squeeze(1))
    if probe.ndim >= 4 and probe.shape[1] != 3:
        candidates.append(probe.expand(probe.shape[0], 3, *probe.shape[2:]) if probe.shape[1] == 1
                          else probe[:, :1].expand(probe.shape[0], 3, *probe.shape[2:]))
    if probe.ndim == 3:
        candidates.append(probe.unsqueeze(1).expand(probe.shape[0], 3, *probe.shape[1:]))
    if probe.ndim == 4 and probe.shape[1] in CHANNEL_COUNTS:  # a model written for channels-last images
        candidates.append(probe.permute(0, 2, 3, 1))
    for c in candidates:
        try:
            with torch.no_grad():
                out = model(c)
        except Exception:  # noqa: BLE001 - any refusal means "not this layout either"
            continue
        if isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[0] == c.shape[0]:
            return ("M", *c.shape[1:])  # type: ignore[return-value]
    return None


def accepts_channels_last(needed: Optional[Sequence], inputs_shape: Sequence[int]) -> bool:
    """Whether ``needed`` (:func:`probe_layouts`) is ``inputs_shape`` ``(M, C, H, W)`` with its channels
    moved last, ``(M, H, W, C)``: a model written for channels-last images."""
    return (needed is not None and len(inputs_shape) == 4
            and tuple(needed[1:]) == (*inputs_shape[2:], inputs_shape[1]))
