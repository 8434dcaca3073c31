"""A model named on the command line: ``PKG.MODULE:FACTORY`` imported and called, weights loaded.

Shared by ``python -m nets audit`` (:mod:`nets.audit_cli`) and ``python -m nets cnn --model``
(:mod:`nets.experiments.cnn`), so that both read a factory and a weights file the same way and
refuse the same mistakes in one line (:class:`ModelSpecError`, a ``ValueError``).
"""

from __future__ import annotations

import importlib
import re

import torch
from torch import nn

from nets.results_io.torch_files import load_refusal, one_line, quiet_torch_load  # noqa: F401 - also used from here

__all__ = ["ModelSpecError", "load_factory", "load_weights", "load_state", "as_state_dict", "set_unsaved_buffers",
           "read_weights", "wt_config", "one_line", "load_refusal", "quiet_torch_load", "spec_model_name"]


class ModelSpecError(ValueError):
    """A factory or weights file that cannot be used; ``str(e)`` is one line naming it."""


def _failure(e: BaseException) -> str:
    """How a user's module or factory failed, in one line (``SystemExit``: the code it exited with)."""
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r})"
    return f"{type(e).__name__}: {one_line(e)}"


def import_spec(spec: str, flag: str = "--model", what: str = "FACTORY") -> object:
    """The object ``attr`` of ``"pkg.module:attr"``, importing the module; ``ModelSpecError`` (one
    line naming ``flag``, the option that gave ``spec``) for a malformed spec, a module that fails
    to import or an attribute it lacks."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ModelSpecError(f"{flag} must be PKG.MODULE:{what}, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any import failure is the user's module
        raise ModelSpecError(f"cannot import module {module_name!r} for {flag} {spec}: "
                             f"{_failure(e)}") from e
    if not hasattr(module, attr):
        raise ModelSpecError(f"module {module_name!r} has no {attr!r} ({flag} {spec})")
    return getattr(module, attr)


def load_factory(spec: str, flag: str = "--model") -> nn.Module:
    """``"pkg.module:factory"`` -> ``factory()``, which must be an ``nn.Module``; errors name
    ``flag``, the option that gave ``spec``."""
    factory = import_spec(spec, flag)
    if not callable(factory):
        module_name, _, attr = spec.rpartition(":")
        raise ModelSpecError(f"module {module_name!r} has no callable {attr!r} ({flag} {spec})")
    try:
        model = factory()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a factory that calls sys.exit ends no command silently
        raise ModelSpecError(f"{spec}() failed: {_failure(e)}") from e
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{spec}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


#: Prefix of the weights in a ``python -m nets cnn --model`` run's checkpoint (the model wrapped by
#: :func:`nets.image_layout.image_layout`), which :func:`load_weights` takes off.
WRAPPED = "inner."


#: Prefix of the names of a wrapped model's weights in the wrapper's (:class:`nets.models.TwoLogits`,
#: :class:`nets.models.CenteredLogits`), put before the names of weights saved from the bare model.
INNER = "model."


#: Prefix of the weights saved from ``nn.DataParallel`` / ``DistributedDataParallel``, taken off.
PARALLEL = "module."


#: What ``torch.compile(model)`` puts in the names of the weights of the module it compiles (its
#: ``OptimizedModule`` holds it as ``_orig_mod``): taken out, or put in, to match the model's names.
COMPILED = "_orig_mod."


def _uncompiled(name: str) -> str:
    """A weight's name without :data:`COMPILED` (the name in the module that was compiled)."""
    return name.replace(COMPILED, "")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _without_prefix(state: dict, own: dict, prefix: str) -> dict:
    """``state`` with ``prefix`` taken off its names where every name has it and none of the model's
    (``own``) does; else ``state`` as it is."""
    if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in own):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _with_prefix(state: dict, own: dict, prefix: str) -> dict:
    """``state`` with ``prefix`` put before its names where none has it and that makes them exactly
    the model's (``own``): weights of the model inside a wrapper such as
    :class:`nets.models.TwoLogits`; else ``state`` as it is."""
    if state and not any(k.startswith(prefix) for k in state) and {prefix + k for k in state} == set(own):
        return {prefix + k: v for k, v in state.items()}
    return state


def read_weights(path: str) -> tuple[object, dict]:
    """What a weights file holds, loaded with ``weights_only=True``, and the state dict in it: the
    file itself, a project checkpoint's ``"best_state"``, or the one state dict inside a training
    checkpoint such as ``{"state_dict": ..., "epoch": ...}``. ``ModelSpecError`` (one line) for a
    file that is missing, cannot be loaded so, or holds no state dict or several."""
    try:
        obj = quiet_torch_load(path)
    except FileNotFoundError as e:
        raise ModelSpecError(f"weights file {path} does not exist") from e
    except Exception as e:  # noqa: BLE001 - unpickling refusals, corrupt archives
        raise ModelSpecError(f"cannot load weights {path} with weights_only=True: {load_refusal(e, path)}") from e
    state = obj.get("best_state", obj) if isinstance(obj, dict) else obj
    if not _is_state_dict(state) and isinstance(obj, dict):  # a training checkpoint: {"state_dict": ..., "epoch": ...}
        inside = [k for k, v in obj.items() if _is_state_dict(v)]
        if len(inside) > 1:
            raise ModelSpecError(f"weights file {path} holds state dicts under {', '.join(map(repr, inside))}; save the "
                                 f"one to audit alone (torch.save(obj[{inside[0]!r}], FILE))")
        state = obj[inside[0]] if inside else state
    if not _is_state_dict(state):
        raise ModelSpecError(f"weights file {path} holds no state dict (a mapping of names to tensors), at its top "
                             f"level or under one key")
    return obj, state


def wt_config(obj: object) -> dict | None:
    """The training config of a WT run's checkpoint (what :func:`read_weights` loaded), else ``None``."""
    config = obj.get("config") if isinstance(obj, dict) else None
    return config if isinstance(config, dict) and config.get("method") == "WT" else None


def as_state_dict(model: nn.Module, state: dict) -> dict:
    """``state`` under the names of ``model.state_dict()`` where it is keyed as the trainer keys a run
    (``torch.func.stack_module_state``, so a checkpoint's ``"state"`` / ``"best_state"``): each tensor
    once, under its first name, and every buffer, persistent or not. A tensor tied to another (``h2.weight
    = h.weight``) is given under each of its names, and a non-persistent buffer
    (``register_buffer(..., persistent=False)``) is left out, for :func:`set_unsaved_buffers` to load
    (``load_state_dict`` refuses it). Other keys stay as they are, for ``load_state_dict`` to judge; a
    state dict saved by ``model.state_dict()`` comes back unchanged."""
    out = dict(state)
    first: dict[int, str] = {}
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, t in named:
        canonical = first.setdefault(id(t), name)
        if canonical != name and name not in out and canonical in state:
            out[name] = state[canonical]
    persistent = model.state_dict().keys()
    for name, _ in model.named_buffers(remove_duplicate=False):
        if name not in persistent:
            out.pop(name, None)
    return out


@torch.no_grad()
def set_unsaved_buffers(model: nn.Module, state: dict) -> None:
    """Copy into ``model`` the values ``state`` holds for its non-persistent buffers (a trainer checkpoint
    keeps them, as trained: one the forward updates may differ from the model's own), where the shapes
    agree; the rest of ``state`` is ``load_state_dict``'s (:func:`as_state_dict`)."""
    persistent = model.state_dict().keys()
    for name, buffer in model.named_buffers():
        if name not in persistent and name in state and tuple(state[name].shape) == tuple(buffer.shape):
            buffer.copy_(state[name])


def load_state(model: nn.Module, state: dict, path: str, obj: object = None) -> None:
    """Load ``state`` (read from ``path`` by :func:`read_weights`, which also gave ``obj``) into
    ``model``, with :data:`COMPILED` taken out or put in to match the model's names (a compiled model's
    weights, or a compiled model; the other fix-ups made as if neither was compiled), without the
    :data:`PARALLEL` prefix of a data-parallel model's and the :data:`WRAPPED`
    prefix of a ``cnn --model`` run's, with the :data:`INNER` prefix for the weights of the model
    inside a wrapper; ``ModelSpecError`` naming the first mismatch when it does not fit."""
    own = model.state_dict()
    plain = {_uncompiled(k): v for k, v in own.items()}  # the names fixed up below, as if neither was compiled
    state = {_uncompiled(k): v for k, v in state.items()}  # saved from a torch.compile'd model
    state = _without_prefix(state, plain, PARALLEL)  # saved from nn.DataParallel / DDP
    state = _without_prefix(state, plain, WRAPPED)  # a `cnn --model` run's: nets.image_layout's wrapper
    state = _with_prefix(state, plain, INNER)  # the weights of the model a TwoLogits wraps
    compiled = {_uncompiled(k): k for k in own}
    state = {compiled.get(k, k): v for k, v in state.items()}  # into a torch.compile'd model: its own names
    saved, state = state, as_state_dict(model, state)  # a checkpoint's: tied tensors once, unsaved buffers too
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})")
        if shapes:
            k = shapes[0]
            parts.append(f"{k!r} is {tuple(state[k].shape)} in the file but {tuple(own[k].shape)} in the model")
        wt = wt_config(obj) is not None and not any(k.startswith(INNER) for k in own)
        hint = ("; it is a WT run's checkpoint, which holds your model inside the group pooling (model.): "
                "load it with nets.checkpoint_model(model, FILE)") if wt else ""
        if not wt and state and all(k.startswith(INNER) for k in state) \
                and _without_prefix(state, own, INNER).keys() == own.keys():  # the names are behind "model."
            hint = ("; its names are the model's behind 'model.': the state dict of a model inside a wrapper, such as "
                    "a WT run's run.model (nets.train.GroupPooled, whose pooling makes it invariant): load that run's "
                    "checkpoint file with nets.checkpoint_model(model, FILE), which rebuilds the pooling, or save "
                    "the wrapped model alone, run.model.model.state_dict() (not invariant by itself)")
        raise ModelSpecError(f"weights file {path} does not match the model: {'; '.join(parts)}{hint}")
    model.load_state_dict(state)
    set_unsaved_buffers(model, saved)


def load_weights(model: nn.Module, path: str) -> None:
    """Load the state dict in the file ``path`` into ``model`` (:func:`read_weights`, then
    :func:`load_state`)."""
    obj, state = read_weights(path)
    load_state(model, state, path, obj)


#: What :func:`spec_model_name` makes of a factory spec: the characters ``TrainConfig.model`` allows.
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.]")


def spec_model_name(spec: str) -> str:
    """The run-key prefix of the model a factory spec builds (``TrainConfig.model``):
    ``"pkg.models:make_cnn"`` -> ``"pkg.models.make_cnn"``, so two factories never share checkpoints."""
    return _NAME_CHARS.sub("_", spec.replace(":", "."))
