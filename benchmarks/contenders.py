"""The contenders :mod:`benchmarks.bench` times side by side: our training and measures, and the
plain PyTorch reference (:mod:`benchmarks.reference`), on the same data and weights.

Training is timed per epoch, and an epoch is what ``nets.train`` does in one:
Adam steps over the 10k training split (batch 512, one random group element
per sample) and then the accuracy over the full orbit of the 2k validation
split; the reference epoch does both too. Our epochs are timed inside one
``train_runs`` call, between its ``on_epoch_end`` callbacks (so set-up is not
counted), and the callback runs one reference epoch: the two alternate
(ours, reference, ours, ...), the first of each untimed. IR uses the logit
regularizer with ``nu = 1``. Ours runs with 1 seed and with 4 seeds stacked
into one model (throughput per model = 4 x samples / epoch time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from benchmarks import reference as R
from benchmarks.flops import HIDDEN, IN_SHAPE, N_CLASSES, N_HIDDEN
from benchmarks.timing import MatmulProbe, sync
from nets import data as D
from nets import metrics
from nets.data import Splits
from nets.groups import Group
from nets.models import MLP
from nets.train import TrainConfig, train_runs

__all__ = ["BATCH", "LR", "NU", "Data", "load_data", "save_data", "eval_model", "reference_trainer", "ours_train",
           "interleaved_training", "eval_items"]

BATCH, LR, NU = 512, 8e-4, 1.0


# ---- data and models ---------------------------------------------------------------------
@dataclass
class Data:
    kind: str  # "transforming-mnist" or "synthetic (why)"
    splits: Splits  # on the CPU, as nets.data returns them
    test_x: torch.Tensor  # on the device
    test_y: torch.Tensor


def load_data(device: torch.device, quick: bool, data_file: Path | None = None, n_train: int | None = None) -> Data:
    """The real splits (test cut to 10k with ``quick``), else synthetic ones of the same sizes;
    or the splits saved by :func:`save_data` (the memory subprocesses: a quicker start than
    building the splits from MNIST again, and the same data as the parent)."""
    if data_file is not None:
        d = torch.load(data_file, weights_only=True)
        kind = d.pop("kind")
        sp = {k: D.Split(d[f"{k}_x"], d[f"{k}_y"]) for k in ("train", "val", "test")}
        splits = D.Splits(kind, sp["train"], sp["val"], sp["test"], 0.0, 1.0, 0)
    else:
        try:
            splits = D.load_splits("mnist", progress=False)
            kind = "transforming-mnist"
        except Exception as e:  # no network / no cache: same sizes, synthetic content
            splits = D.synthetic_splits(10_000, 2_000, 50_000, seed=0)
            kind = f"synthetic ({type(e).__name__}: {e})"[:200]
        if quick:
            splits = replace(splits, test=splits.test.subset(10_000))
        if n_train is not None:  # a smoke run: the first n_train training and n_train / 5 validation samples
            splits = replace(splits, train=splits.train.subset(min(n_train, len(splits.train))),
                             val=splits.val.subset(min(max(n_train // 5, 1), len(splits.val))))
    return Data(kind, splits, splits.test.x.to(device), splits.test.y.to(device))


def save_data(data: Data, path: Path) -> None:
    sp = data.splits
    # clone(): a slice (the quick test subset) would otherwise save its whole storage
    torch.save({"kind": data.kind, **{f"{k}_{a}": getattr(sp[k], a).clone() for k in ("train", "val", "test")
                                      for a in ("x", "y")}}, path)


def eval_model(device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our MLP and the reference ``nn.Sequential`` with the same weights (eval mode)."""
    torch.manual_seed(0)
    ours = MLP(IN_SHAPE, N_CLASSES, HIDDEN, N_HIDDEN).to(device).eval()
    return ours, R.reference_from(ours).eval()


# ---- training contenders ----------------------------------------------------------------
def reference_trainer(method: str, group: Group, data: Data, device: torch.device) -> Callable[[], object]:
    """One call = one reference epoch (one seed): training, then the validation orbit accuracy."""
    torch.manual_seed(0)
    model = (R.ReferenceInvariantMLP(group, IN_SHAPE, N_CLASSES, HIDDEN, N_HIDDEN) if method == "WT"
             else R.reference_mlp(IN_SHAPE, N_CLASSES, HIDDEN, N_HIDDEN)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    # The DataLoader reads CPU tensors and each batch is moved to the device, as users do.
    loader = R.reference_loader(data.splits.train.x, data.splits.train.y, BATCH)
    val = (data.splits.val.x, data.splits.val.y)
    gen = torch.Generator().manual_seed(0)
    return lambda: R.reference_train_epoch(model, opt, loader, method, group, NU, device, gen, val)


def ours_train(method: str, group: Group, data: Data, device: torch.device, n_seeds: int, epochs: int,
               between: Callable[[], object] | None = None) -> list[float]:
    """Train with ``nets.train.train_runs`` (``n_seeds`` seeds stacked into one model) and
    return the seconds of epochs 2 .. ``epochs`` (each: training, then the validation orbit
    accuracy), measured between ``on_epoch_end`` calls. ``between()`` runs inside each
    callback, outside the timed spans: that is how the reference interleaves (ours, reference,
    ours, ...)."""
    cfg = TrainConfig(method=method, group=group.name, regularizer="logit", nu=NU if method == "IR" else 0.0,
                      epochs=epochs, batch_size=BATCH, lr=LR)
    times: list[float] = []
    mark: list[float | None] = [None]

    def on_epoch_end(done: int) -> None:
        sync(device)
        now = time.perf_counter()
        if mark[0] is not None:
            times.append(now - mark[0])
        if between is not None:
            between()
        sync(device)
        mark[0] = time.perf_counter()

    train_runs([cfg], list(range(n_seeds)), data.splits, device=device, progress=False, stack=True,
               on_epoch_end=on_epoch_end)
    return times


def interleaved_training(method: str, group: Group, data: Data, device: torch.device, n_seeds: int,
                         rounds: int, probe: MatmulProbe) -> tuple[list[float], list[float]]:
    """``rounds`` (ours epoch, reference epoch, matmul probe) rounds, after one untimed
    epoch of each; returns (ours seconds, reference seconds), pair ``k`` adjacent in time."""
    ref_epoch = reference_trainer(method, group, data, device)
    ref_times: list[float] = []

    def ref() -> None:
        t0 = time.perf_counter()
        ref_epoch()
        sync(device)
        ref_times.append(time.perf_counter() - t0)
        probe()

    ours = ours_train(method, group, data, device, n_seeds, rounds + 1, between=ref)
    return ours, ref_times[1:]


def eval_items(data: Data, group: Group, device: torch.device, n_si: int, n_sigma: int):
    """``{item: (n_samples, {"ours": fn, "reference": fn})}``; each fn returns the metric. Without
    captum (:func:`benchmarks.reference.captum_missing`) SI has no ``"reference"``."""
    ours, ref = eval_model(device)
    xt, yt = data.test_x, data.test_y
    xs, ys, xj = xt[:n_si], yt[:n_si], xt[:n_sigma]
    si_ref = {} if R.captum_missing() else {
        "reference": lambda: R.reference_saliency_invariance(ref, xs, ys, group, 50, device=device)}
    return {
        "LI": (len(xt), {"ours": lambda: metrics.logit_invariance(ours, xt, group),
                         "reference": lambda: R.reference_logit_invariance(ref, xt, group, device=device)}),
        "DI": (len(xt), {"ours": lambda: metrics.distribution_invariance(ours, xt, group),
                         "reference": lambda: R.reference_distribution_invariance(ref, xt, group, device=device)}),
        "SI": (n_si, {"ours": lambda: metrics.saliency_invariance(ours, xs, ys, group, n_steps=50), **si_ref}),
        "sigma": (n_sigma, {"ours": lambda: metrics.jacobian_spectral_norm(ours, xj).mean(),
                            "reference": lambda: R.reference_jacobian_spectral_norm(ref, xj, device).mean()}),
    }
