"""Epoch time of bf16 autocast training against float32, per method, side by side in one run.

Usage::

    python benchmarks/bf16_epoch.py [--device cpu] [--threads 2] [--rounds 3] [--n-train N]
                                    [--out build/bench/bf16_epoch_<device>.json]

For each method (DA, IR with the logit regularizer at nu = 1, WT; group R4; 4 seeds
stacked, the paper's model and batch size) and each round, one ``train_runs`` call per
precision, alternating (fp32, bf16, fp32, ...); an epoch's time is read between
``on_epoch_end`` callbacks (set-up and the first epoch excluded). Reported: the median
epoch time per precision and the median of the per-round ratios. Where the time goes:
per method and precision, one two-epoch ``train_runs`` call whose second epoch (its training
steps and validation; no set-up) runs under ``torch.profiler``: the operators with the
most self time and their share. The matrix products alone: the first layer's product (4 seeds
stacked, a batch of 512 and of its R4 orbit, 2,048 rows, by 1,296 by 128), float32 against
bf16, interleaved (``first_layer_matmul``: GFLOP/s and the ratio). The JSON records the device, the CPU's model and the flags
that matter, torch's threads and the load average per round. bf16 is refused where ``nets.precision`` refuses it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.flops import widths  # noqa: E402
from benchmarks.timing import interleaved  # noqa: E402
from nets.cli_types import positive_int  # noqa: E402
from nets.data import load_splits  # noqa: E402
from nets.experiments.common import write_json  # noqa: E402
from nets.results_io import cpu_info  # noqa: E402
from nets.precision import BF16_CPU_FLAGS, check_precision, cpu_flags  # noqa: E402
from nets.train import TrainConfig, train_runs  # noqa: E402

METHODS = {"DA": dict(method="DA"), "IR": dict(method="IR", regularizer="logit", nu=1.0), "WT": dict(method="WT")}


def epoch_times(cfg: TrainConfig, splits, device, precision: str, seeds: int) -> list[float]:
    """Per-epoch wall times of one ``train_runs`` call after its first epoch."""
    stamps: list[float] = []

    def tick(done: int) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())

    train_runs([cfg], list(range(seeds)), splits, device=device, progress=False, stack=True,
               on_epoch_end=tick, precision=precision)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def first_layer_matmul(device, seeds: int, rounds: int = 7) -> dict:
    """The first layer's stacked product ``(seeds, rows, 1296) @ (seeds, 1296, 128)``, float32
    against bf16 tensors (what autocast hands ``bmm``), interleaved: median GFLOP/s per precision
    and the median per-round ratio, for a batch of 512 (DA) and of its R4 orbit (2,048 rows: IR, WT)."""
    d_in, d_out = widths()[:2]
    out = {}
    for rows in (512, 2048):
        a32, b32 = torch.randn(seeds, rows, d_in, device=device), torch.randn(seeds, d_in, d_out, device=device)
        a16, b16 = a32.bfloat16(), b32.bfloat16()
        reps = 20  # products per timed call, so a call lasts long enough to time
        times, _ = interleaved({"fp32": lambda: [torch.bmm(a32, b32) for _ in range(reps)],
                                "bf16": lambda: [torch.bmm(a16, b16) for _ in range(reps)]}, rounds, device)
        flop = 2 * seeds * rows * d_in * d_out * reps
        out[str(rows)] = {"gflops_median": {p: flop / statistics.median(t) / 1e9 for p, t in times.items()},
                          "bf16_speedup_median": statistics.median(f / b for f, b in zip(times["fp32"], times["bf16"]))}
    return out


def top_ops(cfg: TrainConfig, splits, device, precision: str, seeds: int, n: int = 8) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    prof = profile(activities=acts)

    def window(done: int) -> None:  # profile the second epoch only (set-up and first epoch excluded)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if done == 1:
            prof.start()
        elif done == 2:
            prof.stop()

    train_runs([replace(cfg, epochs=2)], list(range(seeds)), splits, device=device, progress=False,
               stack=True, precision=precision, on_epoch_end=window)
    rows = [(e.key, e.self_device_time_total if device.type == "cuda" else e.self_cpu_time_total)
            for e in prof.key_averages()]
    total = sum(t for _, t in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return [{"op": k, "self_ms": round(t / 1000, 2), "share": round(t / total, 4)} for k, t in rows[:n]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=positive_int, default=None)
    ap.add_argument("--rounds", type=positive_int, default=3)
    ap.add_argument("--epochs", type=positive_int, default=3, help="epochs per call (the first is not timed)")
    ap.add_argument("--seeds", type=positive_int, default=4)
    ap.add_argument("--n-train", type=positive_int, default=None, help="first N training, N/5 validation samples")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default build/bench/bf16_epoch_<device>.json, "
                    "git-ignored: a committed benchmarks/results/ file is written only when named here)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        check_precision("bf16", device)  # bf16 is refused where it would run many times slower
    except ValueError as e:
        ap.error(str(e))
    splits = load_splits("mnist", progress=False)
    if args.n_train:
        splits = replace(splits, train=splits.train.subset(min(args.n_train, len(splits.train))),
                         val=splits.val.subset(min(max(args.n_train // 5, 1), len(splits.val))))
    flags = cpu_flags()
    res: dict = {"command": " ".join(["python", *sys.argv]), "device": str(device), "cpu": cpu_info(),
                 "torch": torch.__version__, "threads": torch.get_num_threads(),
                 "cpu_flags": {f: f in flags for f in (*BF16_CPU_FLAGS, "avx512f", "amx_tile")},
                 "n_train": len(splits.train), "n_val": len(splits.val), "seeds": args.seeds,
                 "loadavg_start": list(os.getloadavg()), "methods": {}}
    for m in args.methods:
        cfg = TrainConfig(group="r4", epochs=args.epochs, **METHODS[m])
        times = {"fp32": [], "bf16": []}
        ratios, loads = [], []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            t32 = statistics.median(epoch_times(cfg, splits, device, "fp32", args.seeds))
            t16 = statistics.median(epoch_times(cfg, splits, device, "bf16", args.seeds))
            times["fp32"].append(t32)
            times["bf16"].append(t16)
            ratios.append(t32 / t16)
        res["methods"][m] = {
            "epoch_s": times,
            "loadavg_1min_per_round": loads,
            "epoch_s_median": {p: statistics.median(v) for p, v in times.items()},
            "bf16_speedup_median": statistics.median(ratios),
            "top_ops": {p: top_ops(cfg, splits, device, p, args.seeds) for p in ("fp32", "bf16")},
        }
        print(f"{m}: fp32 {res['methods'][m]['epoch_s_median']['fp32']:.3f} s, bf16 "
              f"{res['methods'][m]['epoch_s_median']['bf16']:.3f} s per epoch ({args.seeds} seeds): "
              f"x{res['methods'][m]['bf16_speedup_median']:.2f}", flush=True)
    res["first_layer_matmul"] = first_layer_matmul(device, args.seeds)
    print("first layer's matmul, bf16 / fp32 rate: " + ", ".join(
        f"{rows} rows x{v['bf16_speedup_median']:.2f}" for rows, v in res["first_layer_matmul"].items()), flush=True)
    res["loadavg_end"] = list(os.getloadavg())
    out = args.out or ROOT / "build" / "bench" / f"bf16_epoch_{device.type}.json"
    write_json(out, res)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
