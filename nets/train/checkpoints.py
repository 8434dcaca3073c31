"""Checkpoints: where a run's file lives, the atomic save, the load (checked against the run's
config and seed), the checkpoint layout, and a finished run rebuilt from its file.

Layout (format 1; plain tensors, dicts, lists and numbers, so it loads with
``torch.load(..., weights_only=True)``): ``format``, ``config`` (:meth:`TrainConfig.to_dict`),
``seed``, ``epoch`` (epochs done), ``finished``, ``best_state`` (the state dict of the best
validation epoch), ``best_epoch``, ``best_val_accuracy``, ``generator`` (the data generator's
state), ``history``, ``wall_time_s``, ``stack_size``, ``torch_version``, and since 2026-12-07
``device`` and, on a CPU, ``torch_threads`` (:func:`training_setting`), and ``trained_under``, each
setting the run was trained under in order (:func:`settings_trained_under`); while unfinished also
``state`` (current state dict) and ``optimizer`` (Adam's ``step``, ``exp_avg``, ``exp_avg_sq``
per parameter). Runs of a factory model also record ``engine`` and ``wt_pooling`` (WT), and,
when trained one at a time, the global RNG state ``rng_state`` (and ``cuda_rng_state`` on CUDA)
that random layers draw from. Runs trained by :func:`~nets.train.train_runs` record
``data_sha256``, the fingerprint of the train and val data (:func:`data_fingerprint`), so a run is
never loaded or resumed on other data (:func:`check_same_data`), and ``group_sha256``, the fingerprint
of the group's action at the images' size (:func:`group_fingerprint`), so a run is never loaded under a
custom group whose code changed since (:func:`check_same_group`); a checkpoint without them (written
before they existed: the archived paper runs) is not checked.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from nets.data import Splits
from nets.groups import get_group
from nets.model_spec import as_state_dict, set_unsaved_buffers
from nets.models import MLP, InvariantMLP
from nets.results_io import ResultsFileError, WouldTrain, atomic_torch_save, load_torch_file, read_torch_file
from nets.train.config import PAPER_MODEL, TrainConfig, TrainedRun
from nets.train.factory import ModelFn, copy_module, init_model

#: Version of the checkpoint layout; a different version is refused on load.
CHECKPOINT_FORMAT = 1


def checkpoint_path(run_dir: Path | str, config: TrainConfig, seed: int) -> Path:
    """Where :func:`train_runs` keeps the checkpoint of ``(config, seed)``."""
    return Path(run_dir) / f"{config.key()}-seed{int(seed)}.pt"


def atomic_save(obj: dict, path: Path) -> None:
    """``torch.save(obj, path)`` atomically (:func:`nets.results_io.atomic_torch_save`): ``path``
    is either the old file or the complete new one."""
    atomic_torch_save(obj, path)


def load_checkpoint(path: Path, config: TrainConfig, seed: int) -> dict | None:
    """The checkpoint at ``path``, loaded with ``weights_only=True``; ``None`` if there is none,
    or if it is damaged (empty, truncated, not a checkpoint): then it is moved aside to
    ``*.corrupt`` with a one-line warning (:func:`nets.results_io.load_torch_file`) and the run
    starts again.

    Raises :class:`nets.results_io.ResultsFileError` (a ``ValueError``) when it does not pass
    :func:`check_checkpoint`."""
    ckpt = load_torch_file(path, "checkpoint")
    return None if ckpt is None else check_checkpoint(ckpt, path, config, seed)


def finished_checkpoint(path: Path, config: TrainConfig, seed: int) -> dict:
    """The finished checkpoint at ``path``, for a command that evaluates and trains nothing: a
    missing, damaged (left where it is) or unfinished one raises
    :class:`nets.results_io.WouldTrain`, one line naming the file; one that does not pass
    :func:`check_checkpoint` raises its :class:`~nets.results_io.ResultsFileError`."""
    if not path.exists():
        raise WouldTrain(f"no checkpoint {path}; this command evaluates only")
    try:
        ckpt = read_torch_file(path, "checkpoint")
    except ResultsFileError as e:
        raise WouldTrain(f"{e}; this command evaluates only and left it there: restore it (`python -m nets "
                         f"checkpoints restore` where the folder has a manifest) or train it again") from None
    check_checkpoint(ckpt, path, config, seed)
    if not ckpt.get("finished"):
        raise WouldTrain(f"checkpoint {path} is unfinished (training reached epoch {ckpt.get('epoch')} of "
                         f"{config.epochs}); this command evaluates only: finish it with the command that trains it")
    return ckpt


def check_checkpoint(ckpt: dict, path: Path, config: TrainConfig, seed: int) -> dict:
    """``ckpt`` (loaded from ``path``) if its format is :data:`CHECKPOINT_FORMAT` and it belongs to
    ``config`` and ``seed``; else raises :class:`nets.results_io.ResultsFileError` naming the file."""
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ResultsFileError(f"{path}: checkpoint format {ckpt.get('format')!r}, expected {CHECKPOINT_FORMAT}; "
                               "move it away or use another results folder")
    if ckpt.get("config") != config.to_dict() or ckpt.get("seed") != int(seed):
        raise ResultsFileError(
            f"{path}: checkpoint is for config {ckpt.get('config')} seed {ckpt.get('seed')}, "
            f"not {config.to_dict()} seed {seed}; move it away or use another run_dir (--results on the command line)"
        )
    return ckpt


def data_fingerprint(splits: Splits, *, as_given: bool = False) -> str:
    """SHA-256 of the train and val images and labels (dtype, shape and bytes of each, in that
    order): what a run was trained and selected on. The test split is not part of it. The data as
    the model sees it, so two ways of storing the same data agree: labels hash as int64 (int32 or
    uint8 labels train the same), and images as ``(N, C, H, W)`` with their axes between the first
    and the last two merged into ``C``, or ``(N, H, W)`` where that is 1 (``(N, H, W)`` and
    ``(N, 1, H, W)`` agree; the model reads either through its ``input_shape``). Other image dtypes
    or values, or other labels, fingerprint differently. ``as_given``: the data exactly as stored
    (the fingerprint checkpoints recorded before this one; for ``(N, H, W)`` float images and int64
    labels the two agree)."""
    h = hashlib.sha256()
    for part in (splits.train, splits.val):
        x, y = part.x.detach().cpu(), part.y.detach().cpu()
        if not as_given:
            channels = math.prod(x.shape[1:-2])
            x, y = x.reshape(len(x), *((channels,) if channels != 1 else ()), *x.shape[-2:]), y.to(torch.int64)
        for t in (x, y):
            t = t.contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def check_same_data(ckpt: dict, path: Path | None, fingerprint: Callable[[], str],
                    as_given: Callable[[], str] | None = None) -> None:
    """A one-line ``ValueError`` naming ``path`` where ``ckpt`` records a ``data_sha256`` other than
    ``fingerprint()`` and other than ``as_given()`` too, where given (the data as stored, the way
    checkpoints written before :func:`data_fingerprint` took the model's view recorded it); each is
    called only when needed, and a checkpoint without a fingerprint is not checked."""
    got = ckpt.get("data_sha256")
    if got is None or got == fingerprint() or (as_given is not None and got == as_given()):
        return
    raise ValueError(f"{path}: this run was trained on other train / val data (data_sha256 {got[:12]}..., "
                     f"these splits {fingerprint()[:12]}...); use another run_dir for other data, or move the "
                     f"file aside to train it again")


def group_fingerprint(group: str, H: int, W: int) -> str:
    """SHA-256 of ``group``'s action on ``H x W`` images, its source indices ``(order, H*W)``
    (:meth:`nets.groups.Group.orbit_index`): what DA augments with, IR compares and WT pools over.
    Another action under the same name (a custom group's code edited) fingerprints differently."""
    idx = get_group(group).orbit_index(H, W).detach().cpu().to(torch.int64).contiguous()
    h = hashlib.sha256(f"{tuple(idx.shape)}".encode())
    h.update(idx.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def check_same_group(ckpt: dict, path: Path | None, fingerprint: Callable[[], str]) -> None:
    """A one-line ``ValueError`` naming ``path`` where ``ckpt`` records a ``group_sha256`` other than
    ``fingerprint()`` (:func:`group_fingerprint`; called only when the checkpoint has one)."""
    got = ckpt.get("group_sha256")
    if got is None or got == fingerprint():
        return
    group = (ckpt.get("config") or {}).get("group")
    raise ValueError(f"{path}: this run was trained under another action of group {group!r} (group_sha256 "
                     f"{got[:12]}..., its action now {fingerprint()[:12]}...): the group's code changed since; "
                     f"use another run_dir, or move the file aside to train it again")


def build_model(config: TrainConfig, in_shape: tuple[int, int], state: dict, device: torch.device,
                model_fn: ModelFn | None = None) -> nn.Module:
    """The trained model of ``config`` holding ``state``, in eval mode on ``device``: the paper's
    :class:`MLP` / :class:`InvariantMLP` (``in_shape``: ``(H, W)``), or for another model
    ``model_fn(config)`` (wrapped in :class:`~nets.train.pooling.GroupPooled` for WT)."""
    if config.model != PAPER_MODEL:
        if model_fn is None:
            raise ValueError(f"{config.key()}: model {config.model!r} needs its model_fn")
        model = copy_module(init_model(config, 0, model_fn))  # its own tensors: calls may share a frozen part
        model.load_state_dict(as_state_dict(model, state))
        set_unsaved_buffers(model, state)
        return model.to(device).eval()
    kw = dict(in_shape=in_shape, n_classes=config.n_classes, hidden=config.hidden,
              n_hidden_layers=config.n_hidden_layers)
    if config.method == "WT":
        model: nn.Module = InvariantMLP(get_group(config.group), pool=config.pool, **kw)
    else:
        model = MLP(**kw)
    model.load_state_dict(state)
    return model.to(device).eval()


def recorded_wt_pooling(ckpt: dict) -> str | None:
    """The pooling a WT run's checkpoint was trained with: its ``wt_pooling`` (a factory model's
    run records it), else the paper MLP's first-layer pooling with the config's ``pool``; ``None``
    for a DA or IR run's."""
    config = ckpt.get("config") or {}
    if config.get("method") != "WT":
        return None
    return ckpt.get("wt_pooling") or f"first_layer-{config.get('pool', 'max')}"


def run_from_checkpoint(config: TrainConfig, seed: int, ckpt: dict, in_shape: tuple[int, int],
                        device: torch.device, model_fn: ModelFn | None = None) -> TrainedRun:
    """The finished run stored in ``ckpt`` (its best-validation model, see :func:`build_model`)."""
    return TrainedRun(
        config=config, seed=int(seed), model=build_model(config, in_shape, ckpt["best_state"], device, model_fn),
        best_epoch=int(ckpt["best_epoch"]), best_val_accuracy=float(ckpt["best_val_accuracy"]),
        history={k: list(v) for k, v in ckpt["history"].items()}, wall_time_s=float(ckpt["wall_time_s"]),
        stack_size=int(ckpt.get("stack_size", 1)), engine=str(ckpt.get("engine", "stacked_mlp")),
        wt_pooling=recorded_wt_pooling(ckpt),
    )


def training_setting(device: torch.device) -> dict:
    """What besides the seed decides a run's last digits, as its checkpoint records it: the device
    type, torch's version and, on a CPU, torch's threads (kernels split their sums by thread)."""
    return {"device": device.type, "torch_version": str(torch.__version__),
            **({"torch_threads": torch.get_num_threads()} if device.type == "cpu" else {})}


def settings_trained_under(ckpt: dict | None) -> list[dict]:
    """Every :func:`training_setting` a run's checkpoint was trained under so far, in order (one per
    change: ``trained_under``; a checkpoint that predates it, its one recorded setting)."""
    if ckpt is None:
        return []
    if ckpt.get("trained_under"):
        return list(ckpt["trained_under"])
    one = {k: ckpt[k] for k in ("device", "torch_version", "torch_threads") if k in ckpt}
    return [one] if one else []


def setting_changes(ckpt: dict, device: torch.device) -> list[str]:
    """How this process's :func:`training_setting` on ``device`` differs from the first one ``ckpt``'s
    run was trained under (:func:`settings_trained_under`), as ``"torch_threads 1 -> 2"``, or, that one
    matching, from any later one; what a setting does not record is not compared."""
    now = training_setting(device)
    for past in settings_trained_under(ckpt):
        changed = [f"{k} {past[k]} -> {v}" for k, v in now.items() if k in past and past[k] != v]
        if changed:
            return changed
    return []


def _with_setting(history: list[dict], now: dict) -> list[dict]:
    return history if history and history[-1] == now else [*history, now]


def save_members(members: Sequence[Any], tensors: Sequence[torch.Tensor], n_params: int,
                 opt: torch.optim.Optimizer, names: Sequence[str], best_state: Sequence[torch.Tensor],
                 best_acc: torch.Tensor, best_epoch: torch.Tensor, data_gens: Sequence[torch.Generator],
                 histories: Sequence[dict], wall: Sequence[float], done: int, epochs: int,
                 extras: Sequence[dict] | None = None) -> None:
    """Write the checkpoint of every member ``s`` of a stack to ``members[s].path`` (layout above).

    tensors: the stack's state ``(S, ...)`` in ``names`` order, the first ``n_params`` of them
    Adam's parameters; best_state likewise; extras: per member, keys added to its checkpoint."""
    finished = done == epochs
    params = list(tensors[:n_params])
    step = None
    if not finished:
        st = opt.state[params[0]]
        step = float(st["step"])
    acc, ep = best_acc.cpu().tolist(), best_epoch.cpu().tolist()
    setting = training_setting(tensors[0].device)
    # each stacked tensor copied to the CPU once (one copy from a GPU, not one per member), then sliced
    best_cpu = [bp.detach().cpu() for bp in best_state]
    if not finished:
        state_cpu = [p.detach().cpu() for p in tensors]
        moments = {k: [opt.state[p][k].detach().cpu() for p in params] for k in ("exp_avg", "exp_avg_sq")}
    for s, m in enumerate(members):
        ckpt: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "config": m.config.to_dict(),
            "seed": int(m.seed),
            "epoch": int(done),
            "finished": bool(finished),
            "best_state": {n: bp[s].clone() for n, bp in zip(names, best_cpu)},
            "best_epoch": int(ep[s]),
            "best_val_accuracy": float(acc[s]),
            "generator": data_gens[s].get_state(),
            "history": {k: list(v) for k, v in histories[s].items()},
            "wall_time_s": float(wall[s]),
            "stack_size": len(members),
            **setting,
            "trained_under": _with_setting(settings_trained_under(m.ckpt), setting),
        }
        if not finished:  # a finished run never resumes: only its selected weights are kept
            ckpt["state"] = {n: p[s].clone() for n, p in zip(names, state_cpu)}
            ckpt["optimizer"] = {"step": step, **{k: {n: t[s].clone() for n, t in zip(names, ms)}
                                                  for k, ms in moments.items()}}
        if extras is not None:
            ckpt.update(extras[s])
        atomic_save(ckpt, m.path)

