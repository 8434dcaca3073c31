"""Quick training throughput of ``nets.train`` (no real data needed).

Times DA / IR / WT epochs of the paper's MLP (233k parameters, batch 512) on
synthetic 36x36 data (10k train, 2k validation, as in the paper), a stack of
``--seeds`` runs trained together versus the same runs one after another, and
compares the DA epoch with the machine's matmul rate.

An epoch here is what ``train_runs`` does per epoch: the training pass *and*
the validation accuracy over the full validation orbit (|G| x 2k inputs).
Times are the median over the timed epochs (the first epoch is a warm-up).

    .venv/bin/python benchmarks/train_throughput_quick.py [--epochs 4] [--seeds 4] [--json out.json]

FLOPs counted for the DA epoch (per sample, multiply-adds x 2): forward of all
layers; backward: weight gradients of all layers, input gradients of all but
the first; plus the forward of the validation orbit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nets.data import synthetic_splits  # noqa: E402
from nets.train import TrainConfig, resolve_device, train_runs  # noqa: E402


CLOCK = time.perf_counter  # or time.process_time (--cpu-time)


def matmul_gflops(device: torch.device, m: int, k: int, n: int, reps: int = 10) -> float:
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = CLOCK()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, CLOCK() - t)
    return 2 * m * k * n / best / 1e9


def da_epoch_flops(n_train: int, n_val_orbit: int, widths: list[int]) -> float:
    macs = [a * b for a, b in zip(widths[:-1], widths[1:])]
    fwd = 2 * sum(macs)
    bwd = 2 * sum(macs) + 2 * sum(macs[1:])  # weight grads + input grads (not for the data)
    return n_train * (fwd + bwd) + n_val_orbit * fwd


def epoch_times(configs, seeds, splits, device, stack: bool, epochs: int) -> list[float]:
    """Epoch times of training ``configs x seeds`` (stacked, or one by one and summed)."""
    stamps: list[float] = []

    def hook(done: int) -> None:
        stamps.append(CLOCK())

    if stack:
        train_runs(configs, seeds, splits, device=device, progress=False, stack=True, on_epoch_end=hook)
        per = [b - a for a, b in zip(stamps[:-1], stamps[1:])][: epochs - 1]
        return per
    total = []
    for s in seeds:
        stamps.clear()
        train_runs(configs, [s], splits, device=device, progress=False, stack=False, on_epoch_end=hook)
        total.append([b - a for a, b in zip(stamps[:-1], stamps[1:])])
    # sequential time of one "epoch of every run" = sum over runs of their epoch times
    return [sum(col) for col in zip(*total)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=4, help="epochs per measurement (first is warm-up)")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--methods", default="DA,IR,WT")
    p.add_argument("--group", default="r4")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process CPU clock (use with --threads 1 on a busy machine)")
    args = p.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    splits = synthetic_splits(n_train=10_000, n_val=2_000, n_test=0, seed=0)
    seeds = list(range(args.seeds))
    mm_big = matmul_gflops(dev, 2048, 2048, 2048, reps=5)
    mm_layer = matmul_gflops(dev, 512, 1296, 128, reps=20)
    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"clock {'process CPU' if args.cpu_time else 'wall'}; per run-epoch = median epoch time / runs")
    print(f"matmul GFLOP/s: 2048^3 {mm_big:.1f}; 512x1296x128 {mm_layer:.1f}")
    out = {"device": str(dev), "threads": torch.get_num_threads(), "matmul_gflops_2048": mm_big,
           "matmul_gflops_512x1296x128": mm_layer, "methods": {}}
    for method in args.methods.split(","):
        cfg = TrainConfig(method=method, group=args.group, epochs=args.epochs, nu=1.0 if method == "IR" else 0.0)
        row = {}
        for stack in (True, False):
            per = epoch_times([cfg], seeds, splits, dev, stack, args.epochs)
            row["stacked" if stack else "sequential"] = statistics.median(per) / len(seeds)
        row["speedup_stacked"] = row["sequential"] / row["stacked"]
        out["methods"][method] = row
        line = (f"{method}: per run-epoch stacked({len(seeds)}) {row['stacked']:.3f} s, "
                f"sequential {row['sequential']:.3f} s, stacked speedup {row['speedup_stacked']:.2f}x")
        if method == "DA":
            from nets.groups import get_group

            G = get_group(args.group).order
            fl = da_epoch_flops(10_000, G * 2_000, [1296] + [128] * 5 + [9])
            for k in ("stacked", "sequential"):
                row[f"gflops_{k}"] = fl / row[k] / 1e9
            line += (f"; {fl / 1e9:.1f} GFLOP/epoch -> {row['gflops_stacked']:.1f} GFLOP/s stacked "
                     f"({100 * row['gflops_stacked'] / mm_big:.0f}% of 2048^3 matmul), "
                     f"{row['gflops_sequential']:.1f} sequential ({100 * row['gflops_sequential'] / mm_big:.0f}%)")
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
