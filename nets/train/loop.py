"""The epoch loop: :func:`train_stack` trains the members of one stack together, epoch by epoch
(see the package docstring for the protocol; :func:`~nets.train.runs.train_runs` plans the stacks).

Per epoch and member: one permutation of the training set and one group element per sample
from the member's own data generator; batches of ``batch_size`` (the last one partial); the
loss ``task + nu * reg`` (:func:`~nets.train.losses.member_losses`), summed over the members for
one backward and one Adam step; then the accuracy over the validation set's full orbit, the best
epoch's state kept per member, and a checkpoint every ``checkpoint_every`` epochs and at the end.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from nets.train.batches import OrbitData, batch_inputs, orbit_cayley
from nets.train.checkpoints import build_model, save_members
from nets.train.config import HISTORY_KEYS, PAPER_MODEL, Method, TrainConfig, TrainedRun, TrainingDiverged, stream_seed
from nets.precision import training_autocast
from nets.train.losses import member_losses
from nets.train.factory import ModelFn
from nets.train.stacks import GenericStack, MLPStack


def make_adam(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults otherwise; fused where supported, else foreach."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


@dataclass
class Member:
    """One run of a stack: its config, seed, checkpoint path (``None``: no checkpoints) and the
    checkpoint it resumes from (``None``: a fresh start)."""

    config: TrainConfig
    seed: int
    path: Path | None
    ckpt: dict | None
    data_sha256: str | None = None  # the train / val data's fingerprint, saved in the checkpoint
    group_sha256: str | None = None  # the group's action's fingerprint at the images' size, saved too

    @property
    def start_epoch(self) -> int:
        return int(self.ckpt["epoch"]) if self.ckpt is not None else 0


def check_resumable(member: Member, names: list[str], shapes: list[torch.Tensor]) -> None:
    """Raise a one-line ``ValueError`` naming ``member``'s checkpoint file where its saved weights
    do not fit the model the stack built now (the factory changed since: a layer added, removed or
    resized). ``names``: the stack's tensor names; ``shapes``: one member's tensor of each."""
    for key in ("state", "best_state"):
        saved = member.ckpt[key]
        missing = [n for n in names if n not in saved]
        extra = sorted(set(saved) - set(names))
        resized = [n for n, t in zip(names, shapes) if n in saved and tuple(saved[n].shape) != tuple(t.shape)]
        if missing or extra or resized:
            what = "; ".join(f"{label}: {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}" for label, v in
                             (("missing", missing), ("unexpected", extra), ("other shape", resized)) if v)
            raise ValueError(f"{member.path}: the unfinished run's checkpoint does not fit the model its factory "
                             f"builds now ({what}); train it again (move the file aside) or restore the factory "
                             "it was trained with")


def _resume(members: list[Member], stack, opt: torch.optim.Optimizer, best_state: list[torch.Tensor],
            data_gens: list[torch.Generator], histories: list[dict], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Load every member's checkpoint into the stack, its best state, generator, history and Adam;
    returns the best accuracies ``(S,)``, best epochs ``(S,)`` and earlier wall times."""
    names = stack.names
    with torch.no_grad():
        for s, m in enumerate(members):
            ck = m.ckpt
            check_resumable(m, names, [b[s] for b in best_state])
            stack.load_member(s, ck["state"])
            for b, n in zip(best_state, names):
                b[s].copy_(ck["best_state"][n])
            data_gens[s].set_state(ck["generator"])
            histories[s] = {k: list(ck["history"][k]) for k in HISTORY_KEYS}
        best_acc = torch.tensor([float(m.ckpt["best_val_accuracy"]) for m in members], dtype=torch.float64)
        best_epoch = torch.tensor([int(m.ckpt["best_epoch"]) for m in members], dtype=torch.long)
    sd = opt.state_dict()
    sd["state"] = {
        i: {
            "step": torch.tensor(float(members[0].ckpt["optimizer"]["step"]), dtype=torch.float32),
            "exp_avg": torch.stack([m.ckpt["optimizer"]["exp_avg"][n] for m in members]).to(device),
            "exp_avg_sq": torch.stack([m.ckpt["optimizer"]["exp_avg_sq"][n] for m in members]).to(device),
        }
        for i, n in enumerate(names[:len(stack.params)])
    }
    opt.load_state_dict(sd)
    return best_acc.to(device), best_epoch.to(device), [float(m.ckpt["wall_time_s"]) for m in members]


@contextlib.contextmanager
def _global_rng(stack, members: list[Member], device: torch.device) -> Iterator[None]:
    """For a stack trained one at a time, the global RNG that random layers (dropout) draw from:
    forked, and seeded from the run's seed (stream 2) or restored from its checkpoint."""
    if not stack.uses_global_rng:
        yield
        return
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        ck = members[0].ckpt
        torch.manual_seed(stream_seed(members[0].seed, 2))
        if ck is not None and "rng_state" in ck:
            torch.set_rng_state(ck["rng_state"])
            if cuda and "cuda_rng_state" in ck:
                torch.cuda.set_rng_state(ck["cuda_rng_state"], device)
        yield


def _extras(stack, members: list[Member], device: torch.device) -> list[dict] | None:
    """Checkpoint keys added to the layout: the data's and the group's fingerprints ``data_sha256`` and
    ``group_sha256`` (every run given them), and a factory model's ``engine``, ``wt_pooling`` (WT) and
    global RNG state."""
    data = [{k: v for k, v in (("data_sha256", m.data_sha256), ("group_sha256", m.group_sha256)) if v is not None}
            for m in members]
    if isinstance(stack, MLPStack):
        return data if any(data) else None
    extra: dict = {"engine": stack.engine}
    if stack.wt_pooling is not None:
        extra["wt_pooling"] = stack.wt_pooling
    if stack.uses_global_rng:
        extra["rng_state"] = torch.get_rng_state()
        if device.type == "cuda":
            extra["cuda_rng_state"] = torch.cuda.get_rng_state(device)
    return [{**extra, **d} for d in data]


def train_stack(
    members: list[Member],
    train: OrbitData,
    val: OrbitData,
    device: torch.device,
    *,
    checkpoint_every: int,
    progress: bool,
    on_epoch_end: Callable[[int], None] | None,
    model_fn: ModelFn | None = None,
    vmap: bool = True,
    precision: str = "fp32",
    min_checkpoint_s: float = 0.0,
) -> list[TrainedRun]:
    """Train ``members`` (same stack key and start epoch) together; see :func:`~nets.train.train_runs`.

    The paper MLP trains as a :class:`~nets.train.stacks.MLPStack`; a factory model ``model_fn``
    as a :class:`~nets.train.stacks.GenericStack` (``vmap=False``: one member, one at a time).
    ``precision``: ``"fp32"`` or ``"bf16"`` (the training forward and loss under autocast,
    :mod:`nets.precision`). Returns the members' runs in order."""
    cfg = members[0].config
    S = len(members)
    start = members[0].start_epoch
    group = train.group
    method: Method = cfg.method
    seeds = [m.seed for m in members]
    if cfg.model == PAPER_MODEL:
        stack = MLPStack([m.config for m in members], seeds, train, device)
    else:
        stack = GenericStack([m.config for m in members], seeds, train, device, model_fn, vmap=vmap)
    names, params, tensors = stack.names, stack.params, stack.tensors
    data_gens = [torch.Generator().manual_seed(stream_seed(m.seed, 1)) for m in members]
    opt = make_adam(params, cfg.lr, device)

    histories: list[dict[str, list[float]]] = [{k: [] for k in HISTORY_KEYS} for _ in members]
    best_state = [t.detach().clone() for t in tensors]
    best_acc = torch.full((S,), -1.0, dtype=torch.float64, device=device)
    best_epoch = torch.full((S,), -1, dtype=torch.long, device=device)
    prev_wall = [0.0] * S
    if start > 0:
        best_acc, best_epoch, prev_wall = _resume(members, stack, opt, best_state, data_gens, histories, device)

    nu = torch.tensor([m.config.nu for m in members], dtype=torch.float32, device=device)
    N = train.N
    cayley_t = orbit_cayley(group, device)
    label = cfg.key() if S == 1 else "-".join(
        ([cfg.model] if cfg.model != PAPER_MODEL else []) + [cfg.group, method]
        + ([cfg.regularizer] if method == "IR" else [])) + f" [{S} runs]"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc=label, unit="epoch", leave=True, dynamic_ncols=True)

    t0 = time.perf_counter()
    done, saved = start, None
    try:
        with _global_rng(stack, members, device):
            for epoch in range(start, cfg.epochs):
                stack.train()
                sums = _train_epoch(stack, opt, train, data_gens, method, nu, cfg, cayley_t, device, precision)
                stack.eval()
                val_acc = stack.orbit_accuracy(val)
                with torch.no_grad():
                    improved = val_acc > best_acc
                    best_acc = torch.where(improved, val_acc, best_acc)
                    best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
                    for t, bt in zip(tensors, best_state):
                        bt.copy_(torch.where(improved.view(-1, *([1] * (t.ndim - 1))), t, bt))
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
                due = done % checkpoint_every == 0 and time.perf_counter() - t0 - (saved or 0.0) >= min_checkpoint_s
                if members[0].path is not None and (due or done == cfg.epochs):
                    elapsed = saved = time.perf_counter() - t0
                    save_members(members, tensors, len(params), opt, names, best_state, best_acc, best_epoch,
                                 data_gens, histories, [w + elapsed / S for w in prev_wall], done, cfg.epochs,
                                 _extras(stack, members, device))
                if on_epoch_end is not None:
                    on_epoch_end(done)
    finally:
        if bar is not None:
            bar.close()
    # the wall time the final checkpoint holds, so a run loaded from it later reports the same one
    elapsed = saved if saved is not None and done == cfg.epochs else time.perf_counter() - t0

    runs = []
    best_acc_l, best_epoch_l = best_acc.cpu().tolist(), best_epoch.cpu().tolist()
    for s, m in enumerate(members):
        state = {n: bt[s].detach().clone() for n, bt in zip(names, best_state)}
        runs.append(TrainedRun(
            config=m.config, seed=m.seed,
            model=build_model(m.config, (train.H, train.W), state, device, model_fn),
            best_epoch=int(best_epoch_l[s]), best_val_accuracy=float(best_acc_l[s]), history=histories[s],
            wall_time_s=prev_wall[s] + elapsed / S, stack_size=S, engine=stack.engine,
            wt_pooling=stack.wt_pooling,
        ))
    return runs


def _train_epoch(stack, opt: torch.optim.Optimizer, train: OrbitData, data_gens: list[torch.Generator],
                 method: Method, nu: torch.Tensor, cfg: TrainConfig, cayley_t: torch.Tensor,
                 device: torch.device, precision: str = "fp32") -> torch.Tensor:
    """One epoch of every member; returns the sums over its samples of loss, task loss and
    regularizer, ``(3, S)`` float64 on the device."""
    N, B, G, S = train.N, cfg.batch_size, train.G, len(data_gens)
    # One permutation and one element per sample and epoch, from each run's own generator.
    perm = torch.stack([torch.randperm(N, generator=g) for g in data_gens]).to(device)
    elem = torch.stack([torch.randint(0, G, (N,), generator=g) for g in data_gens]).to(device)
    y_epoch = train.y[perm]  # (S, N)
    sums = torch.zeros(3, S, dtype=torch.float64, device=device)
    for a in range(0, N, B):
        b = min(a + B, N)
        x = batch_inputs(train, stack.batch_method, elem[:, a:b], perm[:, a:b], cayley_t)
        with training_autocast(precision, device):
            task, reg = member_losses(stack, x, y_epoch[:, a:b], method, cfg.regularizer)
            loss = task + nu * reg
            loss = loss if loss.dtype == torch.float64 else loss.float()  # bf16 autocast's losses to float32
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        sums += torch.stack([loss, task, reg]).detach() * (b - a)
    return sums
