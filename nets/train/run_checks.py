"""What :func:`~nets.train.runs.train_runs` checks before any run trains: the images, the labels,
each config's group and model factory, and each factory model on two training samples. Every check
raises a one-line ValueError that names the config and the fix, or warns (:class:`ChannelsLast`,
:class:`UnusedClasses`, :class:`SameInitialWeights`) where training can go on."""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import torch
from torch import nn

from nets.caller_warning import warn_at_caller
from nets.data import Splits
from nets.groups import get_group
from nets.layout_hints import ChannelsLast, channels_last_hint, channels_last_warning, shape_str
from nets.measure_inputs import nonfinite_samples
from nets.train.config import PAPER_MODEL, TrainConfig
from nets.train.factory import (ModelFn, can_stack, check_model_output, declared_input_shape, init_model, input_shape_of,
                                model_dtype)

__all__ = ["CHANNELS_FIRST_FIX", "CHANNELS_LAST", "ChannelsLast", "UnusedClasses", "SameInitialWeights",
           "model_factory", "same_weights", "seeds_share_initial_weights", "check_factory_model", "check_images",
           "check_labels", "check_configs", "warn_unused_classes"]

#: The trainer's channels-last hint: the images are ``splits.*.x``, fixed where they are built.
CHANNELS_FIRST_FIX = "store them as x.permute(0, 3, 1, 2)"
CHANNELS_LAST = functools.partial(channels_last_hint, subject="the training images look", fix=CHANNELS_FIRST_FIX)


class UnusedClasses(UserWarning):
    """The labels name fewer classes than a config's ``n_classes`` (default 9, the paper's): the model
    trains logits that are never a target, which the measures (LI, DI, sigma_max) still count."""


class SameInitialWeights(UserWarning):
    """Two seeds' models start from the same weights: the factory loads fixed (say pretrained) weights or
    seeds the RNG itself, so the seeds differ only in batch order and augmentation draws."""


def model_factory(config: TrainConfig, model_fn) -> ModelFn | None:
    """The factory of ``config.model``: ``None`` for the paper MLP, else ``model_fn`` (a callable,
    or a mapping from model names to callables). Raises ValueError when there is none."""
    if config.model == PAPER_MODEL:
        return None
    fn = model_fn.get(config.model) if isinstance(model_fn, Mapping) else model_fn
    if isinstance(model_fn, Mapping) and not callable(fn):
        has = ", ".join(repr(k) for k in model_fn) or "none"
        raise ValueError(f"{config.key()}: model_fn has no factory for model {config.model!r} (it has {has}); add "
                         f"{config.model!r}: f with f(config) -> nn.Module")
    if not callable(fn):
        raise ValueError(f"{config.key()}: model {config.model!r} needs a factory: pass "
                         f"train_runs(..., model_fn=f) with f(config) -> nn.Module")
    return fn


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold equal trainable parameters (and have some)."""
    pa, pb = [p for p in a.parameters() if p.requires_grad], [p for p in b.parameters() if p.requires_grad]
    return bool(pa) and len(pa) == len(pb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(pa, pb))


def seeds_share_initial_weights(config: TrainConfig, factory: ModelFn) -> bool:
    """Whether ``factory`` builds equal trainable weights for ``config`` under seeds 0 and 1 (it loads
    fixed weights or seeds the RNG itself): what :class:`SameInitialWeights` warns of."""
    return same_weights(init_model(config, 0, factory), init_model(config, 1, factory))


def check_factory_model(config: TrainConfig, factory: ModelFn, splits: Splits, stack: bool,
                   precision: str, several_seeds: bool = False) -> tuple[bool, torch.dtype]:
    """Check ``config``'s model on two training samples, shaped as it takes them, in its dtype
    (:func:`~nets.train.factory.check_model_output`), and on one where the last batch of an epoch
    feeds it one sample alone (DA and WT with ``n_train % batch_size == 1``; IR feeds that sample's
    whole orbit), which BatchNorm in training mode refuses; and refuse a factory whose models of two
    calls share trainable parameters (it returns one module object, so every run would be the same
    model); a frozen part shared between calls passes (each run's model is loaded into a copy); warn
    (:class:`SameInitialWeights`) where ``several_seeds`` train from equal initial weights. Returns
    whether it can train stacked
    (:func:`~nets.train.factory.can_stack`; ``False`` when ``stack`` is off) and the dtype it trains
    in (:func:`~nets.train.factory.model_dtype`)."""
    model = init_model(config, 0, factory)
    other = init_model(config, 1, factory)
    shared = {id(p) for p in model.parameters()} & {id(p) for p in other.parameters()}
    if any(p.requires_grad for p in model.parameters() if id(p) in shared):
        raise ValueError(f"{config.key()}: the factory's models share parameters from one call to the next (the same "
                         f"module object?); it must build a new model each call, e.g. return Net(), not a global one")
    if several_seeds and same_weights(model, other):
        warn_at_caller(f"{config.key()}: seeds 0 and 1 build the same initial weights (the factory loads fixed weights "
                      f"or calls torch.manual_seed itself): the seeds differ only in batch order and augmentation, "
                      f"and intervals over seeds cover only that", SameInitialWeights)
    dtype = model_dtype(model, config.key())
    if precision != "fp32" and dtype != torch.float32:
        raise ValueError(f"{config.key()}: precision {precision!r} autocasts a float32 model; this one is {dtype}")
    x = splits.train.x[:2].to(dtype)
    try:
        x = x.reshape(x.shape[0], *input_shape_of(model, tuple(x.shape[1:])))
    except ValueError as e:  # a declared input_shape that does not fit the data
        raise ValueError(f"{config.key()}: {e}") from None
    fix = {}
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if x.ndim == 3 and declared_input_shape(model) is None and conv is not None:  # a conv would read M as channels
        h, w = x.shape[-2:]
        c = conv.in_channels
        fix = {"fix": f"the images are (N, {h}, {w}), without a channel axis: if the model takes (N, C, H, W), "
                      f"give it input_shape = (1, {h}, {w}), or store the images as (N, 1, {h}, {w}) "
                      f"(x.unsqueeze(1))" + ("" if c == 1 else f"; its first convolution takes {c} channels, so "
                                             f"also repeat the one channel in its forward (x.expand(-1, {c}, -1, -1))")}
    elif CHANNELS_LAST(splits.train.x.shape):  # (N, H, W, 3): a conv would read H as channels
        fix = {"fix": CHANNELS_LAST(splits.train.x.shape)[2:]}
    check_model_output(model, x, config.n_classes, config.key(), **fix)
    n, b = splits.train.x.shape[0], config.batch_size
    if config.method != "IR" and n % b == 1:
        check_model_output(model, x[:1], config.n_classes, config.key(),
                           fix=f"the last batch of each epoch holds 1 sample alone (n_train {n} = {n // b} x "
                               f"batch_size {b} + 1): choose a batch_size that leaves 0 or at least 2 samples over",
                           alone=True)
    return stack and can_stack(model, x), dtype


def check_images(splits: Splits) -> None:
    """The train and val images are floating point and finite, and have one shape per sample, or a
    one-line ValueError naming the split (integer images would train unnormalized; a NaN would end as
    a diverged loss, or in validation as a silent prediction of class 0; validation images of another
    layout with as many values would be reshaped to the training one, scrambled, and pick each run's
    best epoch on them; axes of size 1 aside, as ``(N, 1, H, W)`` against ``(N, H, W)``, which reshape
    to the same images)."""
    train, val = tuple(splits.train.x.shape[1:]), tuple(splits.val.x.shape[1:])
    if [d for d in train if d != 1] != [d for d in val if d != 1]:  # axes of 1 aside, which reshape harmlessly
        val_hint = channels_last_hint(splits.val.x.shape, "the val images look", CHANNELS_FIRST_FIX)
        train_hint = CHANNELS_LAST(splits.train.x.shape)
        hint = "" if bool(val_hint) == bool(train_hint) else val_hint or train_hint  # the split that looks so
        raise ValueError(f"the val images are {shape_str(('N', *val))}, the train images {shape_str(('N', *train))}: "
                         f"give both splits one shape per sample (validation picks each run's best epoch){hint}")
    for name, part in (("train", splits.train), ("val", splits.val)):
        x = part.x
        if not x.is_floating_point():
            raise ValueError(f"{name} images have dtype {x.dtype}; train on floating-point images, normalized as "
                             f"the model should see them (e.g. x.float() / 255)")
        count, first = nonfinite_samples(x)
        if count:
            raise ValueError(f"{name} images hold NaN or inf values ({count} of {len(x)} images, the first "
                             f"at index {first})")


def check_labels(splits: Splits, configs: Sequence[TrainConfig]) -> int:
    """Labels are integer class indices in ``[0, n_classes)`` of every config, or a one-line ValueError;
    returns the number of classes they name (the largest label + 1)."""
    for name, part in (("train", splits.train), ("val", splits.val)):
        y = part.y
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise ValueError(f"{name} labels must be integer class indices, got dtype {y.dtype}")
        if int(y.min()) < 0:
            raise ValueError(f"{name} labels must be class indices >= 0, got {int(y.min())}")
    top = {name: int(part.y.max()) for name, part in (("train", splits.train), ("val", splits.val))}
    n_lab = max(top.values()) + 1
    where = " and ".join(name for name, t in top.items() if t == n_lab - 1)
    for c in configs:
        if n_lab > c.n_classes:
            raise ValueError(f"{where} labels go up to {n_lab - 1} but {c.key()} has n_classes={c.n_classes}")
    return n_lab


def warn_unused_classes(n_lab: int, configs: Sequence[TrainConfig]) -> None:
    """:class:`UnusedClasses` for each ``n_classes`` of ``configs`` (the runs about to train) above the
    ``n_lab`` classes the labels name."""
    for n in sorted({c.n_classes for c in configs if c.n_classes > n_lab}):
        warn_at_caller(f"the train and val labels name classes 0..{n_lab - 1} only, but n_classes={n}: {n - n_lab} "
                      f"logit(s) are never a target (for data of {n_lab} classes: TrainConfig(n_classes={n_lab}) and "
                      f"a model of {n_lab} logits)",
                      UnusedClasses)


def check_configs(configs: Sequence[TrainConfig], splits: Splits, model_fn) -> dict[str, ModelFn | None]:
    """Every config's checks before any run trains, not when its turn comes: ``model_fn`` is given only where
    a config trains another model than the paper MLP, each such config has a factory
    (:func:`model_factory`), its group fits the images (``H, W``, the last two axes), and the paper MLP
    gets ``(N, H, W)``; warns (:class:`ChannelsLast`) of images that look channels-last but pass. Returns
    each config key's factory (``None`` for the paper MLP)."""
    in_shape = (int(splits.train.x.shape[-2]), int(splits.train.x.shape[-1]))
    if callable(model_fn) and not isinstance(model_fn, Mapping) and all(c.model == PAPER_MODEL for c in configs):
        raise ValueError(f"model_fn is given but every config trains the paper MLP (TrainConfig.model="
                         f"{PAPER_MODEL!r}); name your model, e.g. TrainConfig(model='mycnn', ...)")
    factories = {c.key(): model_factory(c, model_fn) for c in configs}
    for c in configs:
        try:
            get_group(c.group).orbit_index(*in_shape)  # check_shape, then the action, before any model probe
        except ValueError as e:
            raise ValueError(f"{c.key()}: {e}{CHANNELS_LAST(splits.train.x.shape)}") from None
        if factories[c.key()] is None and splits.train.x.ndim != 3:
            raise ValueError(f"{c.key()}: the paper MLP takes images (N, H, W), got {tuple(splits.train.x.shape)}")
    unrefused = channels_last_warning(splits.train.x.shape, "the training images", CHANNELS_FIRST_FIX)
    if unrefused:  # a model that flattens them trains, the group acting on (W, C)
        warn_at_caller(unrefused, ChannelsLast)
    return factories
