"""A model's call as every measure makes it: :func:`model_logits` calls the model and refuses what it
returns unless it is finite logits ``(M, classes)``, naming the layout the model accepts where it refused
the one given; running out of memory is never taken for a refusal (:func:`is_out_of_memory`).
:mod:`nets.model_checks` (the checks of the model before it is measured) builds on it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from nets.caller_warning import warn_at_caller
from nets.layout_hints import CHANNELS_LAST_FORWARD, accepts_channels_last, channels_last_hint, probe_layouts, shape_str

__all__ = [
    "MemoryFormatRefused",
    "takes_contiguous",
    "OutOfMemoryError",
    "is_out_of_memory",
    "raised",
    "is_export_guard",
    "deterministic_fix",
    "model_logits",
    "logit_width",
    "ONE_LOGIT_FIX",
    "is_one_logit",
    "logits_inside",
    "LogProbabilities",
    "output_kind",
    "refuse_probabilities",
    "check_output_kind",
]


#: CUDA's out-of-memory error (``torch.OutOfMemoryError`` from torch 2.5, ``torch.cuda.OutOfMemoryError`` before).
OutOfMemoryError = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def is_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocator giving up: CUDA's :data:`OutOfMemoryError`, the CPU
    allocator's ``RuntimeError`` ("can't allocate memory"), MPS's ("out of memory"), or Python's
    ``MemoryError``. Measures let it through as it is (not as a model that refused its input),
    so a caller can say to lower the chunk size."""
    if isinstance(e, (OutOfMemoryError, MemoryError)):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(s in text for s in ("out of memory", "can't allocate memory",
                                                                     "not enough memory"))


def deterministic_fix(e: BaseException) -> str | None:
    """What to do where ``e`` is torch refusing an operation under ``torch.use_deterministic_algorithms(True)``
    (an operation with no deterministic implementation; on CUDA, cuBLAS without ``CUBLAS_WORKSPACE_CONFIG``);
    ``None`` for any other error."""
    text = str(e)
    if "CUBLAS_WORKSPACE_CONFIG" in text:
        return ("torch.use_deterministic_algorithms(True) is on, and cuBLAS needs CUBLAS_WORKSPACE_CONFIG=:4096:8 "
                "in the environment before Python starts for that")
    if "does not have a deterministic implementation" in text:
        return ("it runs an operation that has no deterministic implementation, and "
                "torch.use_deterministic_algorithms(True) is on; turn it off or pass warn_only=True")
    return None


def is_export_guard(e: BaseException) -> bool:
    """Whether ``e`` is a ``torch.export`` program refusing inputs of sizes it was not exported for (its
    ``_guards_fn``: ``AssertionError: Guard failed: x.size()[0] == 2``)."""
    return isinstance(e, (AssertionError, RuntimeError)) and str(e).startswith("Guard failed")


def raised(e: BaseException) -> str:
    """What a model raised, in one line: ``"Type: first line of its message"`` (the type alone
    for an empty message)."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


#: How a binary classifier of one logit ``z`` becomes one the measures and the trainer take.
ONE_LOGIT_FIX = "nets.TwoLogits(model), logits [-z/2, z/2] with the same probabilities (docs/audit.md#one-logit)"


def is_one_logit(out: object, n: int) -> bool:
    """Whether ``out``, a model's output for ``n`` images, is one logit per image: ``(n, 1)`` or ``(n,)``."""
    return isinstance(out, torch.Tensor) and tuple(out.shape) in ((n,), (n, 1))


class MemoryFormatRefused(ValueError):
    """The model refuses images stored non-contiguously (``torch.channels_last``) that it takes once
    contiguous: the shape is right, the strides are not (a ``.view()`` in its forward)."""


def takes_contiguous(model: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> bool:
    """Whether ``inputs`` is stored non-contiguously and ``model`` maps a contiguous copy of its first two
    samples, under the caller's gradient mode and with the same ``requires_grad`` (a refusal that comes
    from gradients, an in-place edit of a leaf, is then not blamed on the layout). Running out of memory is
    raised as it is."""
    if inputs.is_contiguous():
        return False
    probe = inputs[:2].detach().contiguous().requires_grad_(inputs.requires_grad)
    try:
        model(probe)
    except Exception as e:  # noqa: BLE001 - any other refusal: the memory format is not the cause
        if is_out_of_memory(e):
            raise
        return False
    return True


def model_logits(model: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """``model(inputs)``, checked: real floating-point logits ``(M, classes)`` for ``inputs (M, ...)``, all finite.

    A model that raises on ``inputs`` (any ``Exception``: a shape mismatch, an ``assert`` on the
    layout, a ``KeyError``) gets a one-line ``ValueError`` naming the layout given, ``(M, *C, H,
    W)`` (``M`` is the batch the measure built: an orbit holds ``|G|`` times the samples), what the
    model raised and, when adding or removing one channel axis makes the model accept it, the
    layout it needs; images in another memory format (``torch.channels_last``) that the model takes
    contiguous get :class:`MemoryFormatRefused`, naming ``x.contiguous()``. Running out of memory
    (:func:`is_out_of_memory`) is raised as it is. Gradients
    flow through (the caller chooses ``no_grad``).
    """
    try:
        out = model(inputs)
    except Exception as e:  # noqa: BLE001 - whatever the model raises is reported in one line
        if is_out_of_memory(e):
            raise  # not a layout the model refuses: the batch is too large for the memory
        fix = deterministic_fix(e)
        if fix is not None:  # the caller's setting, not a layout
            raise ValueError(f"model refused input of shape {shape_str(inputs.shape)}: {fix} (model raised "
                             f"{raised(e)})") from e
        if is_export_guard(e):  # torch.export's fixed sizes: no layout of ours would do
            raise ValueError(f"model refused input of shape {shape_str(inputs.shape)}: it was exported (torch.export) "
                             f"for inputs of other sizes, and the measures build batches of every size; export it "
                             f"with a dynamic batch, dynamic_shapes=({{0: torch.export.Dim('batch')}},) (model "
                             f"raised {raised(e)})") from e
        if takes_contiguous(model, inputs):  # the memory layout, not the shape (a .view() in the model)
            raise MemoryFormatRefused(f"model refused images {shape_str(('M', *inputs.shape[1:]))} stored in another "
                                      f"memory format (torch.channels_last?), and takes them contiguous: pass "
                                      f"x.contiguous() (model raised {raised(e)})") from e
        needed = probe_layouts(model, inputs.detach())
        need = channels_last_hint(inputs.shape) or (f"; it accepts {shape_str(needed)}" if needed else "")
        if accepts_channels_last(needed, inputs.shape):  # keep the images channels-first, wrap the model
            need += f", channels-last: wrap it, forward(x) = {CHANNELS_LAST_FORWARD}"
        group = getattr(model, "group", None) if getattr(model, "pooling", None) is not None else None
        inner = (f"; as WT, it hands the model inside all {group.order} x M images of the orbits"
                 if group is not None and hasattr(group, "order") else "")  # torch's message counts those
        raise ValueError(f"model refused input of shape {shape_str(('M', *inputs.shape[1:]))} "
                         f"(M = {inputs.shape[0]}, the batch the measure built){inner}{need} (images must be "
                         f"(N, *C, H, W) as the model expects; model raised {raised(e)})") from e
    M = inputs.shape[0]
    if is_one_logit(out, M):
        raise ValueError(f"model returned one logit per image, {shape_str(out.shape)}, where the measures need "
                         f"logits ({M}, classes), classes >= 2; for a binary classifier of one logit give "
                         f"{ONE_LOGIT_FIX}")
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != M:
        got = shape_str(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        squeeze = (f"; a fully convolutional head's {got} gives them with out.flatten(1) at the end of its forward"
                   if isinstance(out, torch.Tensor) and out.ndim > 2 and out.shape[0] == M
                   and math.prod(out.shape[2:]) == 1 else "")
        raise ValueError(f"model must map inputs ({M}, ...) to logits ({M}, classes); got output {got}"
                         f"{logits_inside(out)}{squeeze}")
    if not out.is_floating_point():  # integer, bool or complex: no real-valued logits to compare or divide
        raise ValueError(f"model returned {str(out.dtype).removeprefix('torch.')} logits, where the measures need "
                         f"real floating-point logits ({M}, classes): drop the cast, comparison or complex layer at "
                         f"the end of its forward")
    if not bool(torch.isfinite(out.detach()).all()):
        raise ValueError(f"model returned NaN or inf logits for inputs of shape {shape_str(inputs.shape)}")
    return out


def logits_inside(out: object) -> str:
    """A hint where the logits are inside an output that is not them: a ``logits`` field (a Hugging
    Face ``ModelOutput``, a dict) or the tensors of a tuple; else ``""``."""
    field = out.get("logits") if isinstance(out, dict) else getattr(out, "logits", None)
    if isinstance(field, torch.Tensor):
        pick = '["logits"]' if isinstance(out, dict) and not hasattr(out, "logits") else ".logits"
        return (f", whose logits field holds {shape_str(field.shape)}: give a module that returns it, e.g. one "
                f"whose forward is `return model(x){pick}`")
    if isinstance(out, (tuple, list)):
        shapes = ", ".join(shape_str(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in out)
        return f" of {shapes}: give a module that returns the logits alone"
    return ""


def logit_width(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """The number of logits ``model`` returns, from one image of ``x (N, *C, H, W)``
    (:func:`model_logits`' checks; no gradients)."""
    with torch.no_grad():
        return int(model_logits(model, x[:1]).shape[-1])


class LogProbabilities(UserWarning):
    """The model returns log-probabilities (each row's logsumexp is 0), not logits: DI is the same for
    both, LI and sigma_max are of the log-probabilities (:func:`check_output_kind`)."""


def output_kind(out: torch.Tensor) -> str:
    """What the rows of ``out (M, classes)`` are: ``"probabilities"`` (each row non-negative and summing
    to 1), ``"log-probabilities"`` (each row's logsumexp 0, a final ``log_softmax``) or ``"logits"``;
    to within ``max(1e-4, 4 eps)`` of the dtype. Integer outputs are ``"logits"`` (refused elsewhere)."""
    if not out.is_floating_point():
        return "logits"
    o = out.detach().double()
    tol = max(1e-4, 4 * torch.finfo(out.dtype).eps)
    if bool((o >= 0).all()) and bool(((o.sum(-1) - 1).abs() <= tol).all()):
        return "probabilities"
    if bool((o <= 0).all()) and bool((torch.logsumexp(o, -1).abs() <= tol).all()):
        return "log-probabilities"
    return "logits"


def refuse_probabilities(out: torch.Tensor, who: str = "the model") -> None:
    """A one-line ``ValueError`` where ``out``'s rows are probabilities (:func:`output_kind`), not logits."""
    if output_kind(out) == "probabilities":
        raise ValueError(f"{who} returns probabilities (each row >= 0 and summing to 1), where logits are needed: "
                         f"drop its final softmax (or make it a log_softmax)")


def check_output_kind(out: torch.Tensor, who: str = "the model") -> None:
    """Refuse (one-line ``ValueError``) probabilities in place of logits, and warn
    (:class:`LogProbabilities`) for log-probabilities, by :func:`output_kind` of ``out``, the logits of
    a few samples. Probabilities taken for logits would make DI the divergence between the softmaxes of
    probabilities (near 0 for any model), LI and sigma_max as small, and training a cross-entropy of
    them. Log-probabilities give the logits' DI and accuracy, but LI and sigma_max of the logits
    shifted per sample by their logsumexp: compare models that return the same kind."""
    refuse_probabilities(out, who)
    if output_kind(out) == "log-probabilities":
        warn_at_caller(f"{who} returns log-probabilities (each row's logsumexp is 0, a final log_softmax): DI and "
                       f"accuracy are as for its logits, LI and sigma_max are of the log-probabilities (the logits "
                       f"shifted per sample); compare models that return the same kind", LogProbabilities)
