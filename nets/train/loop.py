"""The epoch loop: :func:`train_runs` groups the runs into stacks and :func:`train_stack` trains
one stack, epoch by epoch (see the package docstring for the protocol)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from nets.data import Splits
from nets.groups import get_group
from nets.stacked import StackedMLP
from nets.train.batches import OrbitData, batch_inputs, orbit_cayley
from nets.train.checkpoints import build_model, checkpoint_path, load_checkpoint, run_from_checkpoint, save_members
from nets.train.config import (
    HISTORY_KEYS,
    Method,
    TrainConfig,
    TrainedRun,
    TrainingDiverged,
    resolve_device,
    stream_seed,
)
from nets.train.evaluate import stacked_orbit_accuracy
from nets.train.losses import member_losses

#: Whether ``train_runs(stack=None)`` stacks compatible runs, per device type.
#: Measured with ``benchmarks/train_throughput_quick.py`` on the project's 2-core CPU
#: (torch 2.13, 2 threads, 4 seeds, paper MLP, 10k/2k samples), seconds per run-epoch
#: stacked vs one at a time: DA 0.29 vs 0.33, IR 0.86 vs 0.91, WT 0.64 vs 0.67; on a
#: busy machine stacking gained far more (DA 1.9x), as larger kernels amortise thread
#: synchronisation. On CUDA, stacking turns small kernels into large ones (not measured
#: here: no GPU was available).
AUTO_STACK: dict[str, bool] = {"cpu": True, "cuda": True}



def make_adam(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults otherwise; fused where supported, else foreach."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


@dataclass
class Member:
    config: TrainConfig
    seed: int
    path: Path | None
    ckpt: dict | None

    @property
    def start_epoch(self) -> int:
        return int(self.ckpt["epoch"]) if self.ckpt is not None else 0



def train_stack(
    members: list[Member],
    train: OrbitData,
    val: OrbitData,
    device: torch.device,
    *,
    checkpoint_every: int,
    progress: bool,
    on_epoch_end: Callable[[int], None] | None,
) -> list[TrainedRun]:
    """Train ``members`` (same stack key and start epoch) together; see :func:`train_runs`."""
    cfg = members[0].config
    S = len(members)
    start = members[0].start_epoch
    group = train.group
    method: Method = cfg.method
    model = StackedMLP(S, (train.H, train.W), cfg.n_classes, cfg.hidden, cfg.n_hidden_layers,
                       group=group if method == "WT" else None, pool=cfg.pool, device=device)
    names = [f"layers.{l}.{kind}" for kind in ("weight", "bias") for l in range(model.n_layers)]
    params = list(model.weights) + list(model.biases)  # same order as ``names``
    model.reset_parameters([torch.Generator().manual_seed(stream_seed(m.seed, 0)) for m in members])
    data_gens = [torch.Generator().manual_seed(stream_seed(m.seed, 1)) for m in members]
    opt = make_adam(params, cfg.lr, device)

    histories: list[dict[str, list[float]]] = [{k: [] for k in HISTORY_KEYS} for _ in members]
    best_params = [p.detach().clone() for p in params]
    best_acc = torch.full((S,), -1.0, dtype=torch.float64, device=device)
    best_epoch = torch.full((S,), -1, dtype=torch.long, device=device)
    prev_wall = [0.0] * S
    if start > 0:
        with torch.no_grad():
            for s, m in enumerate(members):
                ck = m.ckpt
                model.load_member_state_dict(s, ck["state"])
                for p, b, n in zip(params, best_params, names):
                    b[s].copy_(ck["best_state"][n])
                data_gens[s].set_state(ck["generator"])
                histories[s] = {k: list(ck["history"][k]) for k in HISTORY_KEYS}
                prev_wall[s] = float(ck["wall_time_s"])
            best_acc.copy_(torch.tensor([float(m.ckpt["best_val_accuracy"]) for m in members]))
            best_epoch.copy_(torch.tensor([int(m.ckpt["best_epoch"]) for m in members]))
        sd = opt.state_dict()
        sd["state"] = {
            i: {
                "step": torch.tensor(float(members[0].ckpt["optimizer"]["step"]), dtype=torch.float32),
                "exp_avg": torch.stack([m.ckpt["optimizer"]["exp_avg"][n] for m in members]).to(device),
                "exp_avg_sq": torch.stack([m.ckpt["optimizer"]["exp_avg_sq"][n] for m in members]).to(device),
            }
            for i, n in enumerate(names)
        }
        opt.load_state_dict(sd)

    nu = torch.tensor([m.config.nu for m in members], dtype=torch.float32, device=device)
    N, B, G = train.N, cfg.batch_size, group.order
    cayley_t = orbit_cayley(group, device)
    label = cfg.key() if S == 1 else "-".join(
        [cfg.group, method] + ([cfg.regularizer] if method == "IR" else [])) + f" [{S} runs]"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc=label, unit="epoch", leave=True, dynamic_ncols=True)

    t0 = time.perf_counter()
    try:
        for epoch in range(start, cfg.epochs):
            # One permutation and one element per sample and epoch, from each run's own generator.
            perm = torch.stack([torch.randperm(N, generator=g) for g in data_gens]).to(device)
            elem = torch.stack([torch.randint(0, G, (N,), generator=g) for g in data_gens]).to(device)
            y_epoch = train.y[perm]  # (S, N)
            sums = torch.zeros(3, S, dtype=torch.float64, device=device)
            for a in range(0, N, B):
                b = min(a + B, N)
                x = batch_inputs(train, method, elem[:, a:b], perm[:, a:b], cayley_t)
                task, reg = member_losses(model, x, y_epoch[:, a:b], method, cfg.regularizer)
                loss = task + nu * reg
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
                sums += torch.stack([loss, task, reg]).detach() * (b - a)
            val_acc = stacked_orbit_accuracy(model, val)
            with torch.no_grad():
                improved = val_acc > best_acc
                best_acc = torch.where(improved, val_acc, best_acc)
                best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
                for p, bp in zip(params, best_params):
                    bp.copy_(torch.where(improved.view(-1, *([1] * (p.ndim - 1))), p, bp))
            stats = torch.cat([sums / N, val_acc.unsqueeze(0)]).cpu().tolist()  # the one sync per epoch
            for s in range(S):
                for k, row in zip(HISTORY_KEYS, stats):
                    histories[s][k].append(float(row[s]))
            bad = [s for s in range(S) if not math.isfinite(stats[0][s])]
            if bad:
                who = ", ".join(f"{members[s].config.key()} seed {members[s].seed}" for s in bad)
                raise TrainingDiverged(f"loss became {stats[0][bad[0]]} in epoch {epoch + 1} of run(s) {who}")
            done = epoch + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(stats[0]):.4f}", val_acc=f"{np.mean(stats[3]):.4f}")
            if members[0].path is not None and (done % checkpoint_every == 0 or done == cfg.epochs):
                elapsed = time.perf_counter() - t0
                save_members(members, model, opt, names, best_params, best_acc, best_epoch, data_gens,
                              histories, [w + elapsed / S for w in prev_wall], done, cfg.epochs)
            if on_epoch_end is not None:
                on_epoch_end(done)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0

    runs = []
    best_acc_l, best_epoch_l = best_acc.cpu().tolist(), best_epoch.cpu().tolist()
    for s, m in enumerate(members):
        state = {n: bp[s].detach().clone() for n, bp in zip(names, best_params)}
        runs.append(TrainedRun(
            config=m.config, seed=m.seed, model=build_model(m.config, (train.H, train.W), state, device),
            best_epoch=int(best_epoch_l[s]), best_val_accuracy=float(best_acc_l[s]), history=histories[s],
            wall_time_s=prev_wall[s] + elapsed / S, stack_size=S,
        ))
    return runs



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
) -> list[TrainedRun]:
    """Train every ``(config, seed)`` on ``splits.train``, selecting on ``splits.val``.

    Returns the runs configs-major: ``[(c0, s0), (c0, s1), ..., (c1, s0), ...]``.

    Args:
        configs, seeds: the runs (seeds are non-negative integers).
        splits: ``train`` and ``val`` images ``(N, H, W)`` and labels ``(N,)``.
        device: ``"auto"`` (CUDA when available) or a device.
        run_dir: where checkpoints live (:func:`checkpoint_path`); finished runs are
            loaded instead of trained, unfinished ones continue from their checkpoint.
        progress: a tqdm bar per trained stack (epoch, loss, validation accuracy, ETA).
        stack: train runs that differ only in seed and ``nu`` together as one
            stacked model (``True``), one at a time (``False``), or per
            ``AUTO_STACK`` for the device (``None``).
        max_stack: at most this many runs per stack (``None``: no limit).
        checkpoint_every: epochs between checkpoints (and one at the end).
        on_epoch_end: called with the number of finished epochs after each epoch
            of each stack (after its checkpoint, if any).

    Raises:
        TrainingDiverged: a loss became NaN or infinite (names the runs and the epoch).
    """
    configs = list(configs)
    seeds = [int(s) for s in seeds]
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative, got {seeds}")
    if not configs or not seeds:
        return []
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if max_stack is not None and max_stack < 1:
        raise ValueError(f"max_stack must be >= 1, got {max_stack}")
    keys = [(c.key(), s) for c in configs for s in seeds]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate (config, seed) pairs in train_runs")
    dev = resolve_device(device)
    if stack is None:
        stack = AUTO_STACK.get(dev.type, True)
    rdir = Path(run_dir) if run_dir is not None else None
    if rdir is not None:
        rdir.mkdir(parents=True, exist_ok=True)
    if len(splits.val) == 0 or len(splits.train) == 0:
        raise ValueError("train_runs needs non-empty train and val splits")
    in_shape = (int(splits.train.x.shape[-2]), int(splits.train.x.shape[-1]))
    n_lab = int(max(splits.train.y.max(), splits.val.y.max())) + 1
    for c in configs:
        if n_lab > c.n_classes:
            raise ValueError(f"labels go up to {n_lab - 1} but {c.key()} has n_classes={c.n_classes}")

    results: dict[int, TrainedRun] = {}
    pending: list[tuple[int, Member]] = []
    for i, (c, s) in enumerate((c, s) for c in configs for s in seeds):
        path = checkpoint_path(rdir, c, s) if rdir is not None else None
        ckpt = load_checkpoint(path, c, s) if path is not None else None
        if ckpt is not None and ckpt["finished"]:
            results[i] = run_from_checkpoint(c, s, ckpt, in_shape, dev)
        else:
            pending.append((i, Member(c, s, path, ckpt)))

    groups: dict[tuple, list[tuple[int, Member]]] = {}
    for i, m in pending:
        k = (m.config.stack_key(), m.start_epoch) if stack else (i,)
        groups.setdefault(k, []).append((i, m))
    data_cache: dict[str, tuple[OrbitData, OrbitData]] = {}
    for grp in groups.values():
        size = max_stack or len(grp)
        for a in range(0, len(grp), size):
            chunk = grp[a:a + size]
            gname = chunk[0][1].config.group
            if gname not in data_cache:
                g = get_group(gname)
                data_cache[gname] = (OrbitData(splits.train, g, dev), OrbitData(splits.val, g, dev))
            tr, va = data_cache[gname]
            runs = train_stack([m for _, m in chunk], tr, va, dev, checkpoint_every=checkpoint_every,
                                progress=progress, on_epoch_end=on_epoch_end)
            for (i, _), r in zip(chunk, runs):
                results[i] = r
    return [results[i] for i in range(len(keys))]
