"""Training many runs: :func:`train_runs` checks them all first (:mod:`nets.train.run_checks`), loads
finished runs from their checkpoints, groups the others into stacks (runs that differ only in seed and
``nu``) and trains each stack with :func:`~nets.train.loop.train_stack`."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from nets.caller_warning import warn_at_caller
from nets.data import Splits
from nets.groups import get_group
from nets.precision import check_precision, exact_float32
from nets.results_io import make_folder, precision_dir
from nets.train.batches import OrbitData
from nets.train.checkpoints import (check_same_data, check_same_group, checkpoint_path, data_fingerprint,
                                    finished_checkpoint, group_fingerprint, load_checkpoint, run_from_checkpoint,
                                    setting_changes)
from nets.train.config import TrainConfig, TrainedRun, check_device, resolve_device
from nets.train.loop import Member, train_stack
from nets.train.run_checks import (ChannelsLast, SameInitialWeights, UnusedClasses, check_configs, check_factory_model,
                                   check_images, check_labels, warn_unused_classes)

#: The warnings, also importable from here, where they were defined before nets.train.run_checks.
__all__ = ["AUTO_STACK", "AUTO_MIN_CHECKPOINT_S", "train_runs", "trained_before", "UnplannedTraining",
           "ResumedElsewhere", "warn_resumed_elsewhere", "ChannelsLast", "SameInitialWeights", "UnusedClasses"]


#: Whether ``train_runs(stack=None)`` stacks compatible runs, per device type: on the CPU the committed
#: results were trained so (a run's numbers depend on its stacking, to round-off), faster for every method
#: on one CPU and for DA only on another (``benchmarks/train_throughput_quick.py``, docs/trainer.md);
#: on CUDA it turns small kernels into large ones.
AUTO_STACK: dict[str, bool] = {"cpu": True, "cuda": True}
#: ``train_runs(min_checkpoint_s=None)``'s seconds between checkpoints at least, per device type
#: (others: 0). On a GPU an epoch of the paper MLP's stack takes tens of milliseconds, and a
#: checkpoint of each member (copied to the CPU, written and fsynced, about 12 ms on a CPU's disk)
#: every 10 epochs would be a large share of the training; a run stopped loses at most this much.
AUTO_MIN_CHECKPOINT_S: dict[str, float] = {"cuda": 30.0}


class ResumedElsewhere(UserWarning):
    """:func:`train_runs` resumes runs trained so far on another device, torch or thread count."""


def warn_resumed_elsewhere(resumed: Sequence[Member], device: torch.device) -> None:
    """:class:`ResumedElsewhere` naming the runs of ``resumed`` (members with an unfinished checkpoint)
    whose :func:`~nets.train.checkpoints.training_setting` differs from this process's on ``device``: their
    numbers will equal an uninterrupted run's under neither setting."""
    changed = [(m, setting_changes(m.ckpt, device)) for m in resumed]
    changed = [(m, c) for m, c in changed if c]
    if not changed:
        return
    runs = "; ".join(f"{m.config.key()} seed {m.seed} at epoch {m.start_epoch}: {', '.join(c)}"
                     for m, c in changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
    warn_at_caller(f"{len(changed)} run(s) resume from checkpoints trained so far under another setting ({runs}): "
                   f"their numbers will equal an uninterrupted run's under neither; for those, resume with the "
                   f"setting they started with (--threads, --device, the torch build)", ResumedElsewhere)


class UnplannedTraining(UserWarning):
    """Within :func:`trained_before`, :func:`train_runs` met runs that were not trained before it."""


#: Where every run was trained before, while :func:`trained_before` holds (else None).
_TRAINED_BEFORE: contextvars.ContextVar[str | None] = contextvars.ContextVar("trained_before", default=None)


@contextlib.contextmanager
def trained_before(where: str):
    """Within the block, every run :func:`train_runs` meets is expected finished, trained ``where``
    (``"on Ray"``: the driver of a Ray sweep measures what its tasks trained); a call that finds runs to
    train warns (:class:`UnplannedTraining`), naming them, and trains them here: a run the sweep's plan
    (:func:`nets.sweep_plan.plan`) missed, which would otherwise train on the driver unsaid."""
    token = _TRAINED_BEFORE.set(where)
    try:
        yield
    finally:
        _TRAINED_BEFORE.reset(token)


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
    min_checkpoint_s: float | None = None,
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
            stacked (:func:`~nets.train.factory.can_stack`) always trains one at a time.
        max_stack: at most this many runs per stack (``None``: no limit).
        checkpoint_every: epochs between checkpoints (and one at the end).
        min_checkpoint_s: seconds since a stack's last checkpoint (or its start) before the next
            one is written (the last one always is); ``None``: :data:`AUTO_MIN_CHECKPOINT_S` for
            the device (30 on CUDA, 0 elsewhere).
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
    if min_checkpoint_s is not None and not min_checkpoint_s >= 0:
        raise ValueError(f"min_checkpoint_s must be >= 0 seconds, got {min_checkpoint_s}")
    if finished_only and run_dir is None:
        raise ValueError("finished_only needs the run_dir that holds the finished runs")
    if max_stack is not None and max_stack < 1:
        raise ValueError(f"max_stack must be >= 1, got {max_stack}")
    keys = [(c.key(), s) for c in configs for s in seeds]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate (config, seed) pairs in train_runs")
    if torch.is_inference_mode_enabled():
        raise ValueError("train_runs was called under torch.inference_mode(), where nothing has a gradient and "
                         "nothing can train: call it outside (the trainer turns a caller's torch.no_grad() off itself)")
    dev = check_device(device, "device") if isinstance(device, str) else resolve_device(device)
    check_precision(precision, dev)
    if stack is None:
        stack = AUTO_STACK.get(dev.type, True)
    if min_checkpoint_s is None:
        min_checkpoint_s = AUTO_MIN_CHECKPOINT_S.get(dev.type, 0.0)
    rdir = precision_dir(run_dir, precision) if run_dir is not None else None
    empty = [name for name, part in (("train", splits.train), ("val", splits.val)) if len(part) == 0]
    if empty:
        raise ValueError(f"train_runs needs non-empty train and val splits; {' and '.join(empty)} "
                         f"{'has' if len(empty) == 1 else 'have'} no samples")
    splits = splits.plain()  # images that require grad, or made under inference_mode, as data
    in_shape = (int(splits.train.x.shape[-2]), int(splits.train.x.shape[-1]))
    check_images(splits)
    n_lab = check_labels(splits, configs)
    factories = check_configs(configs, splits, model_fn)

    results: dict[int, TrainedRun] = {}
    pending: list[tuple[int, Member]] = []
    fingerprint = functools.cache(lambda: data_fingerprint(splits))  # once, and only when a run needs it
    as_given = functools.cache(lambda: data_fingerprint(splits, as_given=True))  # what older checkpoints recorded
    group_fp = functools.cache(lambda group: group_fingerprint(group, *in_shape))

    for i, (c, s) in enumerate((c, s) for c in configs for s in seeds):
        path = checkpoint_path(rdir, c, s) if rdir is not None else None
        if finished_only:
            ckpt = finished_checkpoint(path, c, s)
        else:
            ckpt = load_checkpoint(path, c, s) if path is not None else None
        if ckpt is not None:
            check_same_data(ckpt, path, fingerprint, as_given)
            check_same_group(ckpt, path, functools.partial(group_fp, c.group))
        if ckpt is not None and ckpt["finished"]:
            try:
                results[i] = run_from_checkpoint(c, s, ckpt, in_shape, dev, factories[c.key()])
            except RuntimeError as e:  # load_state_dict: the factory no longer builds the trained model
                lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
                raise ValueError(f"{path}: the finished run's weights do not fit the model its factory builds now "
                                 f"({lines[1] if len(lines) > 1 else lines[0]}); train it again (move the file "
                                 f"aside) or restore the factory it was trained with") from None
        else:
            pending.append((i, Member(c, s, path, ckpt, fingerprint() if path is not None else None,
                                      group_fp(c.group) if path is not None else None)))

    warn_resumed_elsewhere([m for _, m in pending if m.ckpt is not None], dev)
    where = _TRAINED_BEFORE.get()
    if pending and where is not None:
        names = [f"{m.config.key()} seed {m.seed}" for _, m in pending]
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        warn_at_caller(f"{len(names)} run(s) were not trained {where} ({', '.join(names[:3])}{more}): training them "
                       f"here instead; the plan of the sweep missed them (please report it)", UnplannedTraining)
    stackable: dict[tuple, bool] = {}
    dtypes: dict[tuple, torch.dtype] = {}
    groups: dict[tuple, list[tuple[int, Member]]] = {}
    several_seeds = len(set(seeds)) > 1  # of the call, loaded or not: a seed added later starts as the others did
    for i, m in pending:  # each stack's model checked before any of them trains
        sk, fn = m.config.stack_key(), factories[m.config.key()]
        if sk not in stackable:
            stackable[sk], dtypes[sk] = ((stack, torch.float32) if fn is None
                                         else check_factory_model(m.config, fn, splits, stack, precision,
                                                                  several_seeds=several_seeds))
        k = (sk, m.start_epoch) if stackable[sk] else (i,)
        groups.setdefault(k, []).append((i, m))
    if rdir is not None and groups:  # after every check: a refused call leaves no folder behind
        make_folder(rdir)
    warn_unused_classes(n_lab, [m.config for _, m in pending])  # for what trains; a finished run loads as it is
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
            # a caller's autocast off, IEEE float32 on CUDA, cuDNN deterministic (nets.precision); and gradients on,
            # whatever torch.no_grad() the caller is in
            with exact_float32(dev), torch.enable_grad():
                runs = train_stack([m for _, m in chunk], tr, va, dev, checkpoint_every=checkpoint_every,
                                   min_checkpoint_s=min_checkpoint_s, progress=progress, on_epoch_end=on_epoch_end,
                                   model_fn=factories[cfg.key()], vmap=stackable[cfg.stack_key()],
                                   precision=precision)
            for (i, _), r in zip(chunk, runs):
                results[i] = r
    return [results[i] for i in range(len(keys))]
