"""What hooks meet in a model: a ``torch.compile``'d model runs its compiled graph, which skips hooks
added after it was compiled, so the per-layer profile and :func:`nets.model_checks.check_model` run
it eagerly within :func:`hooks_firing`; and backward hooks, which SI and sigma_max differentiate
through (:func:`backward_hooks`, warned of as :class:`BackwardHooks`)."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from torch import nn

__all__ = ["original_module", "compiled", "exported", "hooks_firing", "BackwardHooks", "backward_hooks"]


def original_module(module: nn.Module) -> nn.Module | None:
    """The module ``torch.compile(module)`` compiled, where ``module`` is its ``OptimizedModule`` (which
    holds it as its one child, ``_orig_mod``); else ``None``."""
    inner = getattr(module, "_orig_mod", None)
    return inner if isinstance(inner, nn.Module) and list(module.children()) == [inner] else None


def compiled(model: object) -> bool:
    """Whether ``model`` is, or holds, a ``torch.compile``'d module (``torch.compile(module)``'s
    ``OptimizedModule``, :func:`original_module`, or a module compiled in place by ``module.compile()``)."""
    return isinstance(model, nn.Module) and any(
        original_module(m) is not None or getattr(m, "_compiled_call_impl", None) is not None
        for m in model.modules())


def exported(model: object) -> bool:
    """Whether ``model`` is a ``torch.export`` program's module (``ep.module()``): a ``torch.fx`` graph
    whose ``train()`` and ``eval()`` torch replaced, on the instance, by ones that refuse."""
    return isinstance(model, torch.fx.GraphModule) and "train" in vars(model)


# torch's compiler stance is the process's: blocks of hooks_firing open in several threads share one
# force_eager stance, set by the first to enter and put back by the last to leave (as nets.precision's).
_STANCE_LOCK = threading.Lock()
_stance_depth = 0
_stance = None


@contextlib.contextmanager
def hooks_firing(model: object) -> Iterator[None]:
    """Within the block a ``torch.compile``'d ``model`` (:func:`compiled`) runs its Python forward as it
    is written (``torch.compiler.set_stance("force_eager")``, torch 2.6+): a graph compiled before a hook
    was added skips that hook, so a forward hook (the per-layer profile's, or the probe's of
    :func:`~nets.model_checks.check_model`) would not fire in it. The stance is the process's: blocks
    open in several threads share it (the first to enter sets it, the last to leave puts back the one
    before), and another thread's compiled model runs eagerly meanwhile too. Nothing changes for any
    other model."""
    global _stance_depth, _stance
    set_stance = getattr(torch.compiler, "set_stance", None)
    if set_stance is None or not compiled(model):
        yield
        return
    with _STANCE_LOCK:
        if _stance_depth == 0:
            _stance = set_stance("force_eager")  # set now; its __exit__ puts the previous stance back
        _stance_depth += 1
    try:
        yield
    finally:
        with _STANCE_LOCK:
            _stance_depth -= 1
            if _stance_depth == 0:
                _stance.__exit__(None, None, None)
                _stance = None


class BackwardHooks(UserWarning):
    """The model has backward hooks (``register_full_backward_hook`` / ``register_full_backward_pre_hook`` on a
    submodule, or torch's global ones): SI and sigma_max differentiate through them, so a hook that edits
    gradients (guided backpropagation's clamp, a gradient clip) changes them from the model's own."""


def backward_hooks(model: object) -> list[str]:
    """The submodules of ``model`` that hold backward hooks (``""`` for the model itself), and
    ``"(global)"`` where torch's global backward hooks are set; ``[]`` for none or a plain callable."""
    found = [] if not isinstance(model, nn.Module) else [
        name for name, m in model.named_modules() if m._backward_hooks or m._backward_pre_hooks]
    module_globals = torch.nn.modules.module
    if getattr(module_globals, "_global_backward_hooks", None) or getattr(module_globals,
                                                                           "_global_backward_pre_hooks", None):
        found.append("(global)")
    return found
