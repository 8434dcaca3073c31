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

__all__ = ["ModelSpecError", "load_factory", "load_weights", "one_line", "spec_model_name"]


class ModelSpecError(ValueError):
    """A factory or weights file that cannot be used; ``str(e)`` is one line naming it."""


def import_spec(spec: str, flag: str = "--model", what: str = "FACTORY") -> object:
    """The object ``attr`` of ``"pkg.module:attr"``, importing the module; ``ModelSpecError`` (one
    line naming ``flag``, the option that gave ``spec``) for a malformed spec, a module that fails
    to import or an attribute it lacks."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ModelSpecError(f"{flag} must be PKG.MODULE:{what}, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's module
        raise ModelSpecError(f"cannot import module {module_name!r} for {flag} {spec}: "
                             f"{type(e).__name__}: {one_line(e)}") from e
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
    except Exception as e:  # noqa: BLE001
        raise ModelSpecError(f"{spec}() failed: {type(e).__name__}: {one_line(e)}") from e
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{spec}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(e: BaseException) -> str:
    """The first line of ``e``'s message, without terminal formatting codes (torch's load errors
    carry some)."""
    text = _TERMINAL_CODES.sub("", str(e)).strip()
    return text.splitlines()[0] if text else type(e).__name__


#: Prefix of the weights in a ``python -m nets cnn --model`` run's checkpoint (the model wrapped by
#: :func:`nets.image_layout.image_layout`), which :func:`load_weights` takes off.
WRAPPED = "inner."


#: Prefix of the weights saved from ``nn.DataParallel`` / ``DistributedDataParallel``, taken off.
PARALLEL = "module."


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _without_prefix(state: dict, own: dict, prefix: str) -> dict:
    """``state`` with ``prefix`` taken off its names where every name has it and none of the model's
    (``own``) does; else ``state`` as it is."""
    if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in own):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_weights(model: nn.Module, path: str) -> None:
    """Load a state dict (or a project checkpoint's ``"best_state"``, without the :data:`WRAPPED`
    prefix of a ``cnn --model`` run's; or the one state dict inside a training checkpoint such as
    ``{"state_dict": ..., "epoch": ...}``, without the :data:`PARALLEL` prefix of a data-parallel
    model's) with ``weights_only=True``; a file that does not match the model names the first mismatch."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ModelSpecError(f"weights file {path} does not exist") from e
    except Exception as e:  # noqa: BLE001 - unpickling refusals, corrupt archives
        raise ModelSpecError(f"cannot load weights {path} with weights_only=True: "
                             f"{type(e).__name__}: {one_line(e)}") from e
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
    own = model.state_dict()
    state = _without_prefix(state, own, PARALLEL)  # saved from nn.DataParallel / DDP
    if isinstance(obj, dict) and "best_state" in obj:  # a `cnn --model` run's: nets.image_layout's wrapper
        state = _without_prefix(state, own, WRAPPED)
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
        wt = (isinstance(obj, dict) and isinstance(obj.get("config"), dict) and obj["config"].get("method") == "WT"
              and not any(k.startswith("model.") for k in own))
        hint = ("; it is a WT run's checkpoint, which holds your model inside the group pooling (model.): audit a DA "
                "or IR run's, or build the pooled model in Python (nets.train.GroupPooled)") if wt else ""
        raise ModelSpecError(f"weights file {path} does not match the model: {'; '.join(parts)}{hint}")
    model.load_state_dict(state)


#: What :func:`spec_model_name` makes of a factory spec: the characters ``TrainConfig.model`` allows.
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.]")


def spec_model_name(spec: str) -> str:
    """The run-key prefix of the model a factory spec builds (``TrainConfig.model``):
    ``"pkg.models:make_cnn"`` -> ``"pkg.models.make_cnn"``, so two factories never share checkpoints."""
    return _NAME_CHARS.sub("_", spec.replace(":", "."))
