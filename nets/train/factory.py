"""A factory's model, as the trainer takes it: :func:`init_model` builds each run's from the factory
``model_fn(config) -> nn.Module`` (its initial weights depending on the seed only; WT's wrapped in
:class:`~nets.train.pooling.GroupPooled`), :func:`model_dtype` and :func:`input_shape_of` say what
it trains in and on, :func:`check_model_output` refuses one that cannot train, in one line naming the
run, and :func:`can_stack` decides whether its members train stacked (:mod:`nets.train.stacks`).
:func:`copy_module` copies one for a probe.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.parameter import is_lazy

from nets.layout_hints import CHANNEL_COUNTS, CHANNELS_LAST_FORWARD
from nets.model_checks import (ONE_LOGIT_FIX, is_one_logit, logits_inside, on_meta_device, parameter_dtype, raised,
                               refuse_probabilities)
from nets.model_hooks import exported
from nets.train.config import TrainConfig, stream_seed
from nets.train.pooling import GroupPooled

__all__ = ["ModelFn", "copy_module", "init_model", "TRAINABLE_DTYPES", "model_dtype", "declared_input_shape",
           "input_shape_of", "check_model_output", "can_stack"]

ModelFn = Callable[[TrainConfig], nn.Module]


def copy_module(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)``, where a module may hold a tensor computed from its parameters as a plain
    attribute (pruning's ``weight = weight_orig * weight_mask``, the legacy ``torch.nn.utils.weight_norm``'s):
    such a tensor is not a graph leaf, which ``deepcopy`` refuses, so the copy holds it detached. Its
    forward pre-hook computes it again from the copy's own parameters before each forward."""
    memo = {id(v): v.detach().clone() for m in model.modules() for v in vars(m).values()
            if isinstance(v, torch.Tensor) and not v.is_leaf}
    return copy.deepcopy(model, memo)


def init_model(config: TrainConfig, seed: int, model_fn: ModelFn) -> nn.Module:
    """``model_fn(config)`` called with the global RNG forked and seeded from ``seed`` (stream 0),
    so its initial weights depend on the seed only, and the caller's RNG is left as it was (but for
    one case: where CUDA is available and not yet initialized, torch queues the seeding of its CUDA
    generators until it initializes, so they start from the last factory call's seed, the same in
    every run). WT wraps it in :class:`~nets.train.pooling.GroupPooled`. Raises TypeError for a non-module,
    ValueError for a DataParallel, TorchScript or torch.export module."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(stream_seed(seed, 0))
        model = model_fn(config)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_fn for {config.key()} must return an nn.Module, got {type(model).__name__}")
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):  # torch.func refuses them
        raise ValueError(f"{config.key()}: the factory returns a {type(model).__name__}; return the bare module "
                         f"(its .module): the trainer calls the model functionally, on one device")
    if exported(model):  # its train() refuses
        raise ValueError(f"{config.key()}: the factory returns a torch.export program's module, which cannot switch "
                         f"to training mode; return the nn.Module before torch.export")
    if isinstance(model, torch.jit.ScriptModule):  # functional_call and vmap refuse it mid-training
        raise ValueError(f"{config.key()}: the factory returns a TorchScript module; return the nn.Module before "
                         f"torch.jit.script / trace: the trainer calls the model functionally")
    model_dtype(model, config.key())
    if config.method == "WT":
        model = GroupPooled(model, config.group, config.pool)  # by name: a custom group's spec is kept
    return model


#: The floating dtypes a factory model trains in; the data are cast to the model's. Half precision
#: is autocast on a float32 model (``precision="bf16"``), not half-precision weights.
TRAINABLE_DTYPES = (torch.float32, torch.float64)


def model_dtype(model: nn.Module, key: str) -> torch.dtype:
    """The dtype ``model`` trains in, that of its first floating-point parameter (float32 when it has
    none): the images are cast to it. Raises a one-line ``ValueError`` naming run ``key`` for
    parameters or buffers on the meta device (shapes without values), lazy modules not yet shaped
    (``nn.LazyConv2d``), or a dtype not in :data:`TRAINABLE_DTYPES`."""
    lazy = next((n for n, t in [*model.named_parameters(), *model.named_buffers()] if is_lazy(t)), None)
    if lazy is not None:
        raise ValueError(f"{key}: the model's {lazy!r} is a lazy module's, not shaped yet (nn.Lazy*): the factory "
                         f"must build shaped weights, by one forward on a dummy batch (model(torch.zeros(1, *shape))) "
                         f"or with the layer's in_features / in_channels")
    if on_meta_device(model):
        raise ValueError(f"{key}: the model's tensors are on the meta device (shapes without values); the factory "
                         f"must build real weights (or call to_empty(device='cpu') and initialise them)")
    dtype = parameter_dtype(model)
    if dtype not in TRAINABLE_DTYPES:
        raise ValueError(f"{key}: the trainer trains float32 or float64 models, got {dtype} parameters; build it in "
                         f"one of those (for bf16, precision='bf16' autocasts a float32 model)")
    return dtype


def declared_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """``model.input_shape`` as a tuple of ints; ``None`` where the model declares none. Raises
    ValueError (one line) for one that is not a sequence of positive sizes (``"abc"``, ``(0, 36)``)."""
    declared = getattr(model, "input_shape", None)
    if declared is None:
        return None
    try:
        shape = tuple(int(d) for d in declared)
        if isinstance(declared, (str, bytes)) or not shape or min(shape) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"model.input_shape must be a tuple of positive sizes such as (1, 36, 36), got "
                         f"{declared!r}") from None
    return shape


def input_shape_of(model: nn.Module, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample input shape the model receives: ``model.input_shape`` if set (same number of
    values as ``sample_shape``, same last two axes, on which the group acts), else ``sample_shape``."""
    shape = declared_input_shape(model) or tuple(sample_shape)
    if math.prod(shape) != math.prod(sample_shape) or shape[-2:] != tuple(sample_shape[-2:]):
        more = (f"; for a model on {shape[0]} channels of these images, declare input_shape "
                f"{(math.prod(sample_shape[:-2]), *shape[-2:])} and repeat the channel in its forward "
                f"(x.expand(-1, {shape[0]}, -1, -1))" if shape[-2:] == tuple(sample_shape[-2:]) and len(shape) == 3
                and math.prod(sample_shape[:-2]) == 1 else "")
        if len(shape) == 3 and shape[:2] == tuple(sample_shape[-2:]) and shape[2] in CHANNEL_COUNTS \
                and math.prod(shape) == math.prod(sample_shape):
            more = (f"; {shape} looks channels-last, (H, W, C): declare input_shape {(shape[2], *shape[:2])} and "
                    f"take the images through a wrapper whose forward is {CHANNELS_LAST_FORWARD}")
        raise ValueError(f"model.input_shape {shape} does not fit data samples of shape {tuple(sample_shape)} "
                         f"(same number of values and the same last two axes needed){more}")
    return shape


def _forked_rng(x: torch.Tensor):
    """The global RNG forked (CPU, and ``x``'s CUDA device), so a probe's random layers leave the caller's as it was."""
    return torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [])


def check_model_output(model: nn.Module, x: torch.Tensor, n_classes: int, key: str,
                       fix: str = "give it a matching input_shape attribute or reshape the data",
                       alone: bool = False) -> None:
    """Refuse, in one ``ValueError`` naming run ``key``, a model that cannot train on inputs ``x
    (M, *in)``: one that raises on them (whatever it raises; the message ends with ``fix``), returns
    anything but logits ``(M, n_classes)``, logits that hold NaN (put down to ``fix`` where ``alone``:
    ``x`` is the one sample a batch holds alone, as the last of an epoch may; else to the model's
    initial weights or forward), has no trainable parameter or
    logits that carry no gradient to them, or, pooling WT at its first layer, whose
    ``after_first_layer(first_layer(x))`` is not its own forward. Runs on a copy, in training mode as
    training does (the first-layer check in eval mode, where dropout is off), with the global RNG forked."""
    probe = copy_module(model).train()
    pooled = isinstance(probe, GroupPooled)
    where = f" under WT's {probe.pooling} pooling" if pooled else ""
    layout = "(M, " + ", ".join(str(d) for d in x.shape[1:]) + ")"

    def refuse(cause: BaseException, at: str) -> ValueError:
        return ValueError(f"{key}: the model refused training inputs {layout}{at} ({raised(cause)}); {fix}")

    def check_logits(out: object) -> None:
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0], n_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            if is_one_logit(out, x.shape[0]):
                hint = f": one logit per image; for a binary classifier of one logit give {ONE_LOGIT_FIX}"
            elif isinstance(got, tuple) and len(got) == 2 and got[0] == x.shape[0]:
                hint = (f": the run has {n_classes} classes (TrainConfig n_classes); return {n_classes} logits, or "
                        f"set n_classes={got[1]} where the data has {got[1]} classes")
            else:
                hint = logits_inside(out)
            raise ValueError(f"{key}: the model must map inputs {layout} to logits (M, n_classes) = "
                             f"({x.shape[0]}, {n_classes}); got {got}{hint}")
        if not out.is_floating_point():  # integer, bool or complex: cross-entropy has nothing to train
            raise ValueError(f"{key}: the model returned {str(out.dtype).removeprefix('torch.')} logits, where "
                             f"training needs real floating-point logits: drop the cast, comparison or complex "
                             f"layer at the end of its forward")
        refuse_probabilities(out, f"{key}: the model")  # cross-entropy would take them for logits

    with _forked_rng(x), torch.no_grad():
        alone_refused = None
        if pooled:  # the model alone first: what it returns, or refuses, is not the pooling's doing
            try:
                alone = probe.model(x)
            except Exception as e:  # noqa: BLE001 - a batch norm may refuse one sample that its orbit feeds
                alone_refused = e
            else:
                check_logits(alone)
        try:
            with torch.enable_grad():  # as training runs it: its logits must carry a gradient (checked below)
                out = probe(x)
        except Exception as e:  # noqa: BLE001 - whatever the model raises is reported in one line
            raise (refuse(alone_refused, "") if alone_refused is not None else refuse(e, where)) from None
        check_logits(out)
        if torch.isnan(out).any():  # -inf is a masked class's logit, which trains; NaN trains nothing
            why = f"; {fix}" if alone else ": its initial weights or its forward make them so"
            raise ValueError(f"{key}: the model's logits on training inputs {layout} hold NaN before any "
                             f"training{why}")
        if not any(p.requires_grad for p in probe.parameters()):
            raise ValueError(f"{key}: the model has no trainable parameters (none, or all with requires_grad=False)")
        if not out.requires_grad:
            raise ValueError(f"{key}: the model's logits carry no gradient to its parameters (a .detach(), an "
                             f"integer cast or torch.no_grad() in its forward?): nothing would train")
        if pooled and probe.pooling.startswith("first_layer"):
            inner = probe.model.eval()
            whole, split = inner(x), inner.after_first_layer(inner.first_layer(x))
            if whole.shape != split.shape or not torch.allclose(whole, split, rtol=1e-4, atol=1e-5):
                raise ValueError(f"{key}: WT pools at the first layer, but the model's "
                                 f"after_first_layer(first_layer(x)) is not its forward(x); make them agree, "
                                 f"or remove those methods to pool the logits")


def can_stack(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``model`` can train stacked: on a copy, in training mode, a forward on ``x``
    ``(M, *in)`` changes no buffer, and a ``vmap`` over two members, each with its own input as
    in training, runs. The global RNG is forked: the caller's is left as it was."""
    probe = copy_module(model).train()
    before = [b.detach().clone() for b in probe.buffers()]
    with _forked_rng(x), torch.no_grad():
        probe(x)
        if any(not torch.equal(a, b) for a, b in zip(before, probe.buffers())):
            return False
        params, buffers = stack_module_state([probe, probe])
        try:
            vmap(lambda p, b, xx: functional_call(probe, (p, b), (xx,)), in_dims=(0, 0, 0))(
                params, buffers, torch.stack([x, x.flip(0)]))
        except Exception:  # noqa: BLE001 - any refusal under vmap means "train one at a time"
            return False
    return True
