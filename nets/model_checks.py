"""What every measure checks of the model before and while it measures it (:mod:`nets.measure_inputs`
checks the images, groups and labels).

The model is any ``nn.Module`` or callable mapping images ``(M, *C, H, W)`` to logits
``(M, classes)``, one sample at a time: :func:`check_model` refuses one whose output for a sample
depends on the rest of the batch or on chance (:mod:`nets.model_probes`), whose dtype is not the
images', or whose tensors have no values; :func:`check_differentiable` one whose logits carry no
gradient to the images. :func:`model_logits` (:mod:`nets.model_logits`, here too) calls it and refuses
what it returns unless it is finite ``(M, classes)`` logits.

Each check raises ``ValueError`` with one line that names the problem.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Callable, Iterator, Optional

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_pre_hook

from nets import model_logits as logits_module, model_probes as probes_module
from nets.caller_warning import warn_at_caller
from nets.precision import autocast_on
from nets.model_logits import (  # noqa: F401  (re-exported: the measures import them from here)
    ONE_LOGIT_FIX, LogProbabilities, OutOfMemoryError, check_output_kind, is_one_logit, is_out_of_memory, logit_width,
    logits_inside, model_logits, output_kind, raised, refuse_probabilities)
from nets.model_hooks import BackwardHooks, backward_hooks, compiled, hooks_firing  # noqa: F401 (re-exported)
from nets.model_probes import COPIES, SAMPLEWISE_RTOL, check_copies_agree, check_samplewise  # noqa: F401 (re-exported)

__all__ = ["check_model", "check_differentiable", "compiled", "hooks_firing", "AutocastActive", "BackwardHooks",
           "backward_hooks", "ZeroInputGradient", "on_meta_device", "device_mismatch", "parameter_dtype",
           *probes_module.__all__, *logits_module.__all__]  # the last two modules' names, re-exported


def _batch_dependent_modules(model: nn.Module) -> list[tuple[str, bool]]:
    """Submodules whose output for one sample depends on the rest of the batch or on chance:
    batch normalization using batch statistics, dropout in training mode. Each as ``(what,
    eval_fixes)``: whether ``model.eval()`` would make it sample-wise (not for batch normalization
    without running statistics)."""
    found = []
    for name, m in model.named_modules():
        where = f"{name or type(model).__name__} ({type(m).__name__}"
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is None:
                found.append((f"{where} using batch statistics, track_running_stats=False)", False))
            elif m.training:
                found.append((f"{where} using batch statistics)", True))
        elif isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
            found.append((f"{where} in training mode)", True))
    return found


def check_model(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    """Refuse a model the measures cannot evaluate sample by sample.

    * not callable;
    * an ``nn.Module`` with batch normalization that uses batch statistics (training mode, or
      ``track_running_stats=False``) or active dropout: its output for one sample depends on the
      other samples of the batch (an orbit, an IG path) or on chance, so no measure of it is a
      property of the model. The measures never change the model's mode; call ``model.eval()``.
    * a plain callable (a lambda, a bound method, an object of yours), or a module that holds one
      unregistered (in a Python list), that runs such a module: refused as the module is called, before
      it runs (torch's global forward pre-hook), so the probe never updates its running statistics;
    * a module whose buffers the probe changed (an ``InstanceNorm`` tracking running statistics in
      training mode): refused, its buffers put back as they were;
    * a module with any submodule in training mode whose logits differ between copies of one sample
      in one batch (drop-path, stochastic depth: :func:`check_copies_agree`);
    * any model (module or plain callable) whose logits, probed on two samples, change between two
      calls or when a sample is alone (:func:`check_samplewise`): the same two faults caused by
      code the module check cannot see (``F.dropout``, a hand-written batch statistic).
    * a model none of whose parameters or buffers is on ``x``'s device (:func:`device_mismatch`);
      and it warns (:class:`AutocastActive`) where the caller's ``torch.autocast`` is on;
    * floating-point parameters of another dtype than ``x`` (a float32 model given float64
      images, say): cast one of them; parameters or buffers on the meta device (no values).
    * a model that edits its input in place (``x.mul_(2)`` in its forward): the measures reuse the
      images they hand it and differentiate through them (:func:`check_samplewise`).
    """
    if not callable(model):
        raise ValueError(f"model must be an nn.Module or a callable returning logits, got {type(model).__name__}")
    if autocast_on(x.device.type):
        cast = torch.get_autocast_dtype(x.device.type)
        warn_at_caller(f"the model is measured under the caller's torch.autocast ({cast}): its logits and gradients "
                       f"are computed in that type, not {x.dtype}; measure outside the autocast block (audit and "
                       f"the trainer turn it off)", AutocastActive)
    module = isinstance(model, nn.Module)
    if module:
        _check_module(model, x)
    modes = tuple(m.training for m in model.modules()) if module else ()
    training = any(modes)
    kept = {name: b.detach().clone() for name, b in model.named_buffers()} if training else {}
    refusal = None  # a probe's, said unless the model changed its buffers (the more telling cause)
    try:  # a training-mode module the model runs is refused as it is called, before it runs: registered or not
        with _refusing_batch_dependent_calls(model):
            try:
                check_samplewise(model, x)
                if training and _COPIES_PASSED.get(model) != modes:
                    check_copies_agree(model, x)
                    _COPIES_PASSED[model] = modes
            except ValueError as e:
                refusal = e
    except _BatchDependentCall as e:
        what, eval_fixes = _batch_dependent_modules(e.module)[0]
        what = what.split(" (", 1)[-1].rstrip(")")  # "BatchNorm2d using batch statistics"
        fix = ("call .eval() on the network it belongs to before measuring" if eval_fixes
               else "model.eval() cannot fix it: give the normalization running statistics")
        given = ("the model runs a module it does not register" if module
                 else "the callable given as the model runs a module")
        raise ValueError(f"{given} whose output depends on the rest of the batch or on chance: {what}; {fix} "
                         f"(refused before it ran, so its running statistics are as they were)") from None
    finally:  # whichever probe refused, or none: the buffers the probes changed are put back
        changed = _put_back(model, kept) if kept else []
    if changed:  # running statistics in training mode (an InstanceNorm tracking them), spectral_norm's iteration
        raise ValueError(f"the model changes its buffers as it runs ({', '.join(changed[:3])}"
                         f"{' ...' if len(changed) > 3 else ''}: running statistics of a module in training "
                         f"mode, or spectral_norm's power iteration?), so measuring it would change it, and its output "
                         f"with it; call model.eval() (they were put back as they were)") from None
    if refusal is not None:
        raise refusal


#: The models :func:`check_copies_agree` passed, each with the training flags of its modules then: a model
#: measured again in the same modes is not probed again (each measure calls :func:`check_model`).
_COPIES_PASSED: "weakref.WeakKeyDictionary[nn.Module, tuple[bool, ...]]" = weakref.WeakKeyDictionary()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two buffers hold the same values, a NaN matching a NaN (a sentinel buffer of NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)


def _put_back(model: nn.Module, kept: dict[str, torch.Tensor]) -> list[str]:
    """Restore every buffer of ``model`` named in ``kept`` whose values changed (by name: a buffer the
    forward registered is left alone); returns the names restored."""
    changed = [(name, b) for name, b in model.named_buffers() if name in kept and not _same(b, kept[name])]
    with torch.no_grad():
        for name, b in changed:
            if b.shape == kept[name].shape and b.dtype == kept[name].dtype:
                b.copy_(kept[name])
            else:  # replaced by a tensor of another shape: the old one back
                owner, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(owner), leaf, kept[name])
    return [name for name, _ in changed]


class _BatchDependentCall(BaseException):
    """Raised inside the model's call as a batch-dependent module is about to run: a ``BaseException``,
    so that neither the model's own ``except Exception`` nor :func:`model_logits` takes it for a refusal
    of the input."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__(type(module).__name__)
        self.module = module


@contextlib.contextmanager
def _refusing_batch_dependent_calls(model: object) -> Iterator[None]:
    """Within the block, any ``nn.Module`` call (torch's global forward pre-hook) of a batch
    normalization using batch statistics or an active dropout raises :class:`_BatchDependentCall`
    before that module runs: whatever wraps the network (a lambda, a bound method, a dict of
    networks, an object of the user's), its running statistics are never updated by the probe. (For a
    compiled model, a pre-hook on each of its own modules, which :func:`~nets.model_hooks.hooks_firing` makes fire.)"""

    thread = threading.get_ident()  # the hook is process-wide: another thread's training is left alone

    def refuse(module: nn.Module, args: tuple) -> None:
        if (threading.get_ident() == thread and not any(True for _ in module.children())
                and _batch_dependent_modules(module)):
            raise _BatchDependentCall(module)

    # a compiled module's own modules, hooked one by one: torch warns of a global hook on a compiled call
    handles = ([m.register_forward_pre_hook(refuse) for m in model.modules()] if compiled(model)
               else [register_module_forward_pre_hook(refuse)])
    try:
        with hooks_firing(model):
            yield
    finally:
        for handle in handles:
            handle.remove()


class AutocastActive(UserWarning):
    """A measure was called inside the caller's ``torch.autocast``: it measures the model in the autocast
    type (bf16, say), not in its own (``nets.audit`` and the trainer turn autocast off)."""


class ZeroInputGradient(UserWarning):
    """The logits' gradient with respect to the images is zero at the sample :func:`check_differentiable`
    probes: a measure that differentiates them reads the model as not responding to its input."""


def check_differentiable(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, needs: str) -> None:
    """Refuse, in one ``ValueError``, a model whose logits for ``x[:1]`` carry no gradient back to
    the input (a ``.detach()``, an integer cast or ``torch.no_grad()`` in its forward, of the logits or
    of the input alone, the parameters still having theirs): ``needs`` (the measure that
    differentiates it) would fail, or read zeros, on it; warn (:class:`ZeroInputGradient`) where that
    gradient is there but zero (a ``round()`` of the input: the measure reads 0), and where the model has
    backward hooks (:class:`~nets.model_hooks.BackwardHooks`, :func:`~nets.model_hooks.backward_hooks`). Called under
    ``torch.inference_mode()``, which no ``enable_grad`` undoes, it says so instead."""
    hooked = backward_hooks(model)
    if hooked:
        names = ", ".join(n or "the model itself" for n in hooked[:3]) + (" ..." if len(hooked) > 3 else "")
        warn_at_caller(f"{needs} differentiates the logits through the model's backward hooks ({names}): a hook "
                       f"that edits gradients (guided backpropagation, a clip) changes it from the model's own "
                       f"gradients; remove them (handle.remove()) to measure those", BackwardHooks)
    if torch.is_inference_mode_enabled():
        raise ValueError(f"{needs} differentiates the logits with respect to the images, but it was called under "
                         f"torch.inference_mode(), where nothing has a gradient: call it outside (torch.no_grad() "
                         f"is fine)")
    with torch.enable_grad():
        probe = x[:1].detach().clone().requires_grad_(True)
        out = model_logits(model, probe)
        # logits weighted unequally: a sum of probabilities or of centered logits has no gradient, they do
        weights = torch.arange(1, out.shape[-1] + 1, dtype=out.dtype, device=out.device)
        grad = (torch.autograd.grad(out @ weights, probe, torch.ones_like(out[:, 0]), allow_unused=True)[0]
                if out.requires_grad else None)
    if grad is None:  # none at all, or only to the parameters: the input is cut from the graph
        to = "" if not out.requires_grad else " to the images (only to the model's parameters)"
        raise ValueError(f"{needs} differentiates the logits with respect to the images, but the model's logits "
                         f"carry no gradient{to} (a .detach(), an integer cast or torch.no_grad() in its forward?)")
    if not bool(grad.any()):
        warn_at_caller(f"{needs}: the logits' gradient with respect to the images is zero on the first sample "
                       f"(a model that does not use its input, or a round() or another quantization of it in the "
                       f"forward?): {needs} reads it as 0, an input the logits do not respond to", ZeroInputGradient)


def on_meta_device(model: nn.Module) -> bool:
    """Whether any parameter or buffer of ``model`` is on the meta device (a shape without values):
    refused by the measures (:func:`check_model`) and by the trainer (:func:`nets.train.factory.model_dtype`)."""
    return any(t.is_meta for t in [*model.parameters(), *model.buffers()])


def device_mismatch(model_devices: set[torch.device], x_device: torch.device) -> Optional[str]:
    """The one-line refusal of images on ``x_device`` for a model whose parameters and buffers are on
    ``model_devices``, or ``None`` when it holds a tensor there or holds none (a model split across devices
    takes its images on one of them). The measures never move a model or its images: that is the caller's
    choice (``model.to(x.device)``, or ``x.to(...)``)."""
    if not model_devices or x_device in model_devices:
        return None
    where = ", ".join(sorted(str(d) for d in model_devices))
    to = next(iter(model_devices)) if len(model_devices) == 1 else None
    fix = f"move one of them (model.to('{x_device}') or x.to('{to}'))" if to else "move x to one of them"
    return f"x is on {x_device} but the model's parameters and buffers are on {where}; {fix}"


def parameter_dtype(model: nn.Module, default: Optional[torch.dtype] = torch.float32) -> Optional[torch.dtype]:
    """The dtype of ``model``'s first floating-point parameter, ``default`` when it has none: the
    dtype its images must have (the measures require it, the trainer and ``audit`` cast to it)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), default)


def _check_module(model: nn.Module, x: torch.Tensor) -> None:
    bad = _batch_dependent_modules(model)
    if bad:
        fix = ("call model.eval() before measuring it" if any(eval_fixes for _, eval_fixes in bad)
               else "model.eval() cannot fix it: give the normalization running statistics")
        raise ValueError(f"model outputs depend on the rest of the batch or on chance: "
                         f"{', '.join(what for what, _ in bad[:3])}{' ...' if len(bad) > 3 else ''}; {fix}")
    if on_meta_device(model):
        raise ValueError("the model's tensors are on the meta device (shapes without values); load or "
                         "initialise its weights first (e.g. model.to_empty(device='cpu') and a state dict)")
    apart = device_mismatch({t.device for t in [*model.parameters(), *model.buffers()]}, x.device)
    if apart:
        raise ValueError(apart)
    dtype = parameter_dtype(model, None)
    if dtype is not None and dtype != x.dtype:
        raise ValueError(f"x has dtype {x.dtype} but the model's parameters are {dtype}; "
                         f"cast one of them (e.g. x.to({dtype}))")
