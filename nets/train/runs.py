"""Training many runs: :func:`train_runs` loads finished runs from their checkpoints, groups the
others into stacks (runs that differ only in seed and ``nu``) and trains each stack with
:func:`~nets.train.loop.train_stack`."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from nets.data import Splits
from nets.groups import get_group
from nets.measure_inputs import nonfinite_samples
from nets.layout_hints import channels_last_hint, channels_last_warning
from nets.precision import check_precision
from nets.results_io import make_folder, precision_dir
from nets.train.batches import OrbitData
from nets.train.checkpoints import (check_same_data, checkpoint_path, data_fingerprint, finished_checkpoint,
                                    load_checkpoint, run_from_checkpoint)
from nets.train.config import PAPER_MODEL, TrainConfig, TrainedRun, check_device, resolve_device
from nets.train.loop import Member, train_stack
from nets.train.stacks import (ModelFn, can_stack, check_model_output, declared_input_shape, init_model, input_shape_of,
                               model_dtype)

#: The trainer's channels-last hint: the images are ``splits.*.x``, fixed where they are built.
_CHANNELS_FIRST = "store them as x.permute(0, 3, 1, 2)"
CHANNELS_LAST = functools.partial(channels_last_hint, subject="the training images look", fix=_CHANNELS_FIRST)


class ChannelsLast(UserWarning):
    """The training images look like ``(N, H, W, C)`` with C in 1, 3, 4: a group acts on the last two
    axes, width and channels there, which a model that flattens its input trains on without complaint."""


class UnusedClasses(UserWarning):
    """The labels name fewer classes than a config's ``n_classes`` (default 9, the paper's): the model
    trains logits that are never a target, which the measures (LI, DI, sigma_max) still count."""


class SameInitialWeights(UserWarning):
    """Two seeds' models start from the same weights: the factory loads fixed (say pretrained) weights or
    seeds the RNG itself, so the seeds differ only in batch order and augmentation draws."""


#: Whether ``train_runs(stack=None)`` stacks compatible runs, per device type: stacking was
#: faster for every method on the CPU (``benchmarks/train_throughput_quick.py``; the
#: measurement is in docs/trainer.md), and on CUDA it turns small kernels into large ones.
AUTO_STACK: dict[str, bool] = {"cpu": True, "cuda": True}


def _factory(config: TrainConfig, model_fn) -> ModelFn | None:
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


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold equal trainable parameters (and have some)."""
    pa, pb = [p for p in a.parameters() if p.requires_grad], [p for p in b.parameters() if p.requires_grad]
    return bool(pa) and len(pa) == len(pb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(pa, pb))


def seeds_share_initial_weights(config: TrainConfig, factory: ModelFn) -> bool:
    """Whether ``factory`` builds equal trainable weights for ``config`` under seeds 0 and 1 (it loads
    fixed weights or seeds the RNG itself): what :class:`SameInitialWeights` warns of."""
    return _same_weights(init_model(config, 0, factory), init_model(config, 1, factory))


def _checked_model(config: TrainConfig, factory: ModelFn, splits: Splits, stack: bool,
                   precision: str, several_seeds: bool = False) -> tuple[bool, torch.dtype]:
    """Check ``config``'s model on two training samples, shaped as it takes them, in its dtype
    (:func:`~nets.train.stacks.check_model_output`), and on one where the last batch of an epoch
    feeds it one sample alone (DA and WT with ``n_train % batch_size == 1``; IR feeds that sample's
    whole orbit), which BatchNorm in training mode refuses; and refuse a factory whose models of two
    calls share parameters (it returns one module object, so every run would be the same model); warn
    (:class:`SameInitialWeights`) where ``several_seeds`` train from equal initial weights. Returns
    whether it can train stacked
    (:func:`~nets.train.stacks.can_stack`; ``False`` when ``stack`` is off) and the dtype it trains
    in (:func:`~nets.train.stacks.model_dtype`)."""
    model = init_model(config, 0, factory)
    other = init_model(config, 1, factory)
    if {id(p) for p in model.parameters()} & {id(p) for p in other.parameters()}:
        raise ValueError(f"{config.key()}: the factory's models share parameters from one call to the next (the same "
                         f"module object?); it must build a new model each call, e.g. return Net(), not a global one")
    if several_seeds and _same_weights(model, other):
        warnings.warn(f"{config.key()}: seeds 0 and 1 build the same initial weights (the factory loads fixed weights "
                      f"or calls torch.manual_seed itself): the seeds differ only in batch order and augmentation, "
                      f"and intervals over seeds cover only that", SameInitialWeights, stacklevel=4)
    dtype = model_dtype(model, config.key())
    if precision != "fp32" and dtype != torch.float32:
        raise ValueError(f"{config.key()}: precision {precision!r} autocasts a float32 model; this one is {dtype}")
    x = splits.train.x[:2].to(dtype)
    try:
        x = x.reshape(x.shape[0], *input_shape_of(model, tuple(x.shape[1:])))
    except ValueError as e:  # a declared input_shape that does not fit the data
        raise ValueError(f"{config.key()}: {e}") from None
    fix = {}
    if x.ndim == 3 and declared_input_shape(model) is None:  # (M, H, W): a conv would read M as channels
        h, w = x.shape[-2:]
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        c = 1 if conv is None else conv.in_channels
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
                           fix=f"the last batch of each epoch holds 1 sample alone (n_train {n} = {n // b} x batch_size "
                               f"{b} + 1): choose a batch_size that leaves 0 or at least 2 samples over")
    return stack and can_stack(model, x), dtype


def _check_images(splits: Splits) -> None:
    """The train and val images are floating point and finite, or a one-line ValueError naming the
    split (integer images would train unnormalized; a NaN would end as a diverged loss, or in
    validation as a silent prediction of class 0)."""
    for name, part in (("train", splits.train), ("val", splits.val)):
        x = part.x
        if not x.is_floating_point():
            raise ValueError(f"{name} images have dtype {x.dtype}; train on floating-point images, normalized as "
                             f"the model should see them (e.g. x.float() / 255)")
        count, first = nonfinite_samples(x)
        if count:
            raise ValueError(f"{name} images hold NaN or inf values ({count} of {len(x)} images, the first "
                             f"at index {first})")


def _check_labels(splits: Splits, configs: Sequence[TrainConfig]) -> int:
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


def _warn_unused_classes(n_lab: int, configs: Sequence[TrainConfig]) -> None:
    """:class:`UnusedClasses` for each ``n_classes`` of ``configs`` (the runs about to train) above the
    ``n_lab`` classes the labels name."""
    for n in sorted({c.n_classes for c in configs if c.n_classes > n_lab}):
        warnings.warn(f"the train and val labels name classes 0..{n_lab - 1} only, but n_classes={n}: {n - n_lab} "
                      f"logit(s) are never a target (for data of {n_lab} classes: TrainConfig(n_classes={n_lab}) and "
                      f"a model of {n_lab} logits)",
                      UnusedClasses, stacklevel=3)


def train_runs(
    configs: Sequence[TrainConfig],
    seeds: Sequence[int],
    splits: Splits,
    *,
    device: str | torch.device | None = "auto",
    run_dir: Path | str | None = None,
    progress: bool = True,
    stack: bool | None = None,
    max_stack: int | None = None,
    checkpoint_every: int = 10,
    on_epoch_end: Callable[[int], None] | None = None,
    model_fn: Callable[[TrainConfig], nn.Module] | Mapping[str, Callable[[TrainConfig], nn.Module]] | None = None,
    precision: str = "fp32",
    finished_only: bool = False,
) -> list[TrainedRun]:
    """Train every ``(config, seed)`` on ``splits.train``, selecting on ``splits.val``.

    Returns the runs configs-major: ``[(c0, s0), (c0, s1), ..., (c1, s0), ...]``.

    Args:
        configs, seeds: the runs (seeds are non-negative integers).
        splits: ``train`` and ``val`` images ``(N, *C, H, W)`` (the group acts on the last two
            axes; the paper MLP takes ``(N, H, W)``) and labels ``(N,)``.
        device: ``"auto"`` (CUDA when available) or a device.
        run_dir: where checkpoints live (:func:`checkpoint_path`); finished runs are
            loaded instead of trained, unfinished ones continue from their checkpoint.
        progress: a tqdm bar per trained stack (epoch, loss, validation accuracy, ETA).
        stack: train runs that differ only in seed and ``nu`` together as one
            stacked model (``True``), one at a time (``False``), or per
            ``AUTO_STACK`` for the device (``None``). A factory model that cannot be
            stacked (:func:`~nets.train.stacks.can_stack`) always trains one at a time.
        max_stack: at most this many runs per stack (``None``: no limit).
        checkpoint_every: epochs between checkpoints (and one at the end).
        on_epoch_end: called with the number of finished epochs after each epoch
            of each stack (after its checkpoint, if any).
        model_fn: the factory ``model_fn(config) -> nn.Module`` of every config whose ``model``
            is not ``"mlp"`` (or a mapping from model names to factories). The module maps
            ``(M, *in)`` to logits ``(M, n_classes)``, ``in`` being ``model.input_shape`` if it
            has one, else the data's sample shape; see :mod:`nets.train.stacks` (engines) and
            :mod:`nets.train.pooling` (WT).
        precision: ``"fp32"``, or ``"bf16"``: the training forward and loss under bf16
            autocast, weights, Adam state and validation in float32 (:mod:`nets.precision`;
            refused on a CPU without bf16 instructions). bf16 checkpoints live in
            ``run_dir / "bf16"``, apart from the float32 ones.
        finished_only: load the finished runs of ``run_dir`` and train nothing, for a command
            that only evaluates (:func:`~nets.train.checkpoints.finished_checkpoint`).

    Raises:
        TrainingDiverged: a loss became NaN or infinite (names the runs and the epoch).
        nets.results_io.WouldTrain: under ``finished_only``, a run's checkpoint is missing,
            damaged (left where it is) or unfinished.
    """
    configs = list(configs)
    seeds = [int(s) for s in seeds]
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative, got {seeds}")
    if not configs or not seeds:
        return []
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if finished_only and run_dir is None:
        raise ValueError("finished_only needs the run_dir that holds the finished runs")
    if max_stack is not None and max_stack < 1:
        raise ValueError(f"max_stack must be >= 1, got {max_stack}")
    keys = [(c.key(), s) for c in configs for s in seeds]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate (config, seed) pairs in train_runs")
    dev = check_device(device, "device") if isinstance(device, str) else resolve_device(device)
    check_precision(precision, dev)
    if stack is None:
        stack = AUTO_STACK.get(dev.type, True)
    rdir = precision_dir(run_dir, precision) if run_dir is not None else None
    if len(splits.val) == 0 or len(splits.train) == 0:
        raise ValueError("train_runs needs non-empty train and val splits")
    in_shape = (int(splits.train.x.shape[-2]), int(splits.train.x.shape[-1]))
    _check_images(splits)
    n_lab = _check_labels(splits, configs)
    if callable(model_fn) and not isinstance(model_fn, Mapping) and all(c.model == PAPER_MODEL for c in configs):
        raise ValueError(f"model_fn is given but every config trains the paper MLP (TrainConfig.model="
                         f"{PAPER_MODEL!r}); name your model, e.g. TrainConfig(model='mycnn', ...)")
    factories = {c.key(): _factory(c, model_fn) for c in configs}
    for c in configs:  # every config's checks before any run trains, not when its turn comes
        try:
            get_group(c.group).check_shape(*in_shape)
        except ValueError as e:
            raise ValueError(f"{c.key()}: {e}{CHANNELS_LAST(splits.train.x.shape)}") from None
        if factories[c.key()] is None and splits.train.x.ndim != 3:
            raise ValueError(f"{c.key()}: the paper MLP takes images (N, H, W), got {tuple(splits.train.x.shape)}")
    unrefused = channels_last_warning(splits.train.x.shape, "the training images", _CHANNELS_FIRST)
    if unrefused:  # a model that flattens them trains, the group acting on (W, C)
        warnings.warn(unrefused, ChannelsLast, stacklevel=2)

    results: dict[int, TrainedRun] = {}
    pending: list[tuple[int, Member]] = []
    fingerprint = functools.cache(lambda: data_fingerprint(splits))  # once, and only when a run needs it
    as_given = functools.cache(lambda: data_fingerprint(splits, as_given=True))  # what older checkpoints recorded

    for i, (c, s) in enumerate((c, s) for c in configs for s in seeds):
        path = checkpoint_path(rdir, c, s) if rdir is not None else None
        if finished_only:
            ckpt = finished_checkpoint(path, c, s)
        else:
            ckpt = load_checkpoint(path, c, s) if path is not None else None
        if ckpt is not None:
            check_same_data(ckpt, path, fingerprint, as_given)
        if ckpt is not None and ckpt["finished"]:
            try:
                results[i] = run_from_checkpoint(c, s, ckpt, in_shape, dev, factories[c.key()])
            except RuntimeError as e:  # load_state_dict: the factory no longer builds the trained model
                lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
                raise ValueError(f"{path}: the finished run's weights do not fit the model its factory builds now "
                                 f"({lines[1] if len(lines) > 1 else lines[0]}); train it again (move the file "
                                 f"aside) or restore the factory it was trained with") from None
        else:
            pending.append((i, Member(c, s, path, ckpt, fingerprint() if path is not None else None)))

    stackable: dict[tuple, bool] = {}
    dtypes: dict[tuple, torch.dtype] = {}
    groups: dict[tuple, list[tuple[int, Member]]] = {}
    several_seeds = len(set(seeds)) > 1  # of the call, loaded or not: a seed added later starts as the others did
    for i, m in pending:  # each stack's model checked before any of them trains
        sk, fn = m.config.stack_key(), factories[m.config.key()]
        if sk not in stackable:
            stackable[sk], dtypes[sk] = ((stack, torch.float32) if fn is None
                                         else _checked_model(m.config, fn, splits, stack, precision,
                                                             several_seeds=several_seeds))
        k = (sk, m.start_epoch) if stackable[sk] else (i,)
        groups.setdefault(k, []).append((i, m))
    if rdir is not None and groups:  # after every check: a refused call leaves no folder behind
        make_folder(rdir)
    _warn_unused_classes(n_lab, [m.config for _, m in pending])  # for what trains; a finished run loads as it is
    data_cache: dict[tuple[str, torch.dtype], tuple[OrbitData, OrbitData]] = {}
    for grp in groups.values():
        size = max_stack or len(grp)
        for a in range(0, len(grp), size):
            chunk = grp[a:a + size]
            cfg = chunk[0][1].config
            dk = (cfg.group, dtypes[cfg.stack_key()])
            if dk not in data_cache:
                g = get_group(cfg.group)
                data_cache[dk] = (OrbitData(splits.train, g, dev, dk[1]), OrbitData(splits.val, g, dev, dk[1]))
            tr, va = data_cache[dk]
            runs = train_stack([m for _, m in chunk], tr, va, dev, checkpoint_every=checkpoint_every,
                               progress=progress, on_epoch_end=on_epoch_end, model_fn=factories[cfg.key()],
                               vmap=stackable[cfg.stack_key()], precision=precision)
            for (i, _), r in zip(chunk, runs):
                results[i] = r
    return [results[i] for i in range(len(keys))]
