"""Checkpoints: where a run's file lives, the atomic save, the load (checked against the run's
config and seed), the checkpoint layout, and a finished run rebuilt from its file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nets.groups import get_group
from nets.models import MLP, InvariantMLP
from nets.train.config import TrainConfig, TrainedRun

#: Version of the checkpoint layout; a different version is refused on load.
CHECKPOINT_FORMAT = 1


def checkpoint_path(run_dir: Path | str, config: TrainConfig, seed: int) -> Path:
    """Where :func:`train_runs` keeps the checkpoint of ``(config, seed)``."""
    return Path(run_dir) / f"{config.key()}-seed{int(seed)}.pt"


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, config: TrainConfig, seed: int) -> dict | None:
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {ckpt.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    if ckpt.get("config") != config.to_dict() or ckpt.get("seed") != int(seed):
        raise ValueError(
            f"{path}: checkpoint is for config {ckpt.get('config')} seed {ckpt.get('seed')}, "
            f"not {config.to_dict()} seed {seed}; move it away or use another run_dir"
        )
    return ckpt


def build_model(config: TrainConfig, in_shape: tuple[int, int], state: dict, device: torch.device) -> nn.Module:
    kw = dict(in_shape=in_shape, n_classes=config.n_classes, hidden=config.hidden,
              n_hidden_layers=config.n_hidden_layers)
    if config.method == "WT":
        model: nn.Module = InvariantMLP(get_group(config.group), pool=config.pool, **kw)
    else:
        model = MLP(**kw)
    model.load_state_dict(state)
    return model.to(device).eval()


def run_from_checkpoint(config: TrainConfig, seed: int, ckpt: dict, in_shape: tuple[int, int],
                         device: torch.device) -> TrainedRun:
    return TrainedRun(
        config=config, seed=int(seed), model=build_model(config, in_shape, ckpt["best_state"], device),
        best_epoch=int(ckpt["best_epoch"]), best_val_accuracy=float(ckpt["best_val_accuracy"]),
        history={k: list(v) for k, v in ckpt["history"].items()}, wall_time_s=float(ckpt["wall_time_s"]),
        stack_size=int(ckpt.get("stack_size", 1)),
    )



def save_members(members, model, opt, names, best_params, best_acc, best_epoch, data_gens, histories,
                  wall, done, epochs) -> None:
    finished = done == epochs
    params = list(model.weights) + list(model.biases)
    step = None
    if not finished:
        st = opt.state[params[0]]
        step = float(st["step"])
    acc, ep = best_acc.cpu().tolist(), best_epoch.cpu().tolist()
    for s, m in enumerate(members):
        ckpt: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "config": m.config.to_dict(),
            "seed": int(m.seed),
            "epoch": int(done),
            "finished": bool(finished),
            "best_state": {n: bp[s].detach().cpu().clone() for n, bp in zip(names, best_params)},
            "best_epoch": int(ep[s]),
            "best_val_accuracy": float(acc[s]),
            "generator": data_gens[s].get_state(),
            "history": {k: list(v) for k, v in histories[s].items()},
            "wall_time_s": float(wall[s]),
            "stack_size": len(members),
            "torch_version": str(torch.__version__),
        }
        if not finished:  # a finished run never resumes: only its selected weights are kept
            ckpt["state"] = {n: p[s].detach().cpu().clone() for n, p in zip(names, params)}
            ckpt["optimizer"] = {
                "step": step,
                "exp_avg": {n: opt.state[p]["exp_avg"][s].detach().cpu().clone() for n, p in zip(names, params)},
                "exp_avg_sq": {n: opt.state[p]["exp_avg_sq"][s].detach().cpu().clone()
                               for n, p in zip(names, params)},
            }
        atomic_save(ckpt, m.path)

