"""What :mod:`benchmarks.bench` records and prints: the machine (versions, CPU model and the flags that
matter, GPU, git commit, load), the table of every comparison, the paper protocol's count, and the
issue's targets (reported, never asserted)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy
import torch

from benchmarks.flops import METHODS
from nets.results_io import cpu_info, cuda_float32

__all__ = ["environment", "table", "protocol_summary", "targets"]

ROOT = Path(__file__).resolve().parent.parent


def environment(device: torch.device) -> dict:
    """Versions, platform, device (and GPU name), threads, the CPU's model and flags, git commit, load."""
    env = {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
        "platform": platform.platform(), "device": str(device), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "loadavg_start": list(os.getloadavg()), "cpu": cpu_info(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda_float32"] = cuda_float32()
    try:
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                           cwd=ROOT, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def table(res: dict) -> str:
    mm, env = res["matmul"], res["environment"]
    lines = [f"device {env['device']} ({env['torch_threads']} torch threads), data {res['data']}, group {res['group']}",
             f"matmul 2048 float32: {mm['start']['gflops_median']:.1f} GFLOP/s at the start, "
             f"{mm['interleaved_median']:.1f} interleaved (median; the %matmul columns use each row's own), "
             f"{mm['end']['gflops_median']:.1f} at the end; loadavg {env['loadavg_start'][0]:.2f} -> "
             f"{env['loadavg_end'][0]:.2f}", "",
             f"{'training':8} {'who':12} {'samples/s':>11} {'GFLOP/s':>8} {'%matmul':>8} {'%m exec':>8} "
             f"{'speed-up':>9}"]
    for m, row in res["training"].items():
        for who, sp in (("ours_1seed", row["speedup_1seed"]), ("ours_4seeds", row["speedup_4seeds_per_model"]),
                        ("reference", None)):
            r = row[who]
            lines.append(f"{m:8} {who:12} {r['samples_per_s']:11,.0f} {r['gflops']:8.1f} "
                         f"{r['pct_of_matmul']:7.1f}% {r['pct_of_matmul_executed']:7.1f}% "
                         f"{'' if sp is None else f'x{sp:.2f}':>9}")
    lines += ["", f"{'eval':8} {'who':12} {'n':>7} {'samples/s':>11} {'s/1000':>8} {'%matmul':>8} {'speed-up':>9}"]
    for item, row in res["eval"].items():
        for who in ("ours", "reference"):
            r = row[who]
            if r is None:
                lines.append(f"{item:8} {who:12} skipped: {row['reference_skipped']}")
                continue
            sp = f"x{row['speedup']:.2f}" if who == "ours" and row["speedup"] is not None else ""
            lines.append(f"{item:8} {who:12} {row['n_samples']:7,} {r['samples_per_s']:11,.0f} "
                         f"{r['s_per_1000']:8.3f} {r['pct_of_matmul']:7.1f}% {sp:>9}")
    if res.get("memory"):
        lines += ["", f"{'memory':28} {'peak MiB':>9} {'item MiB':>9}"]
        for name, r in res["memory"].items():
            if "error" in r:
                lines.append(f"{name:28} {'failed':>9}")
            else:
                lines.append(f"{name:28} {r['peak_bytes'] / 2**20:9,.0f} {r['delta_bytes'] / 2**20:9,.0f}")
    lines += ["", protocol_summary(res["paper_protocol"])]
    t = res["targets"]
    lines += ["", "targets: " + "; ".join(f"{k} {'met' if v['met'] else 'NOT met'} ({v['value']:.3g})"
                                          for k, v in t.items())]
    return "\n".join(lines)


def protocol_summary(p: dict) -> str:
    """One line on :func:`paper_protocol`'s count: the full grid and the ascending search's best case."""
    return (f"paper protocol: {p['total_gflop']:,.0f} GFLOP; lower bound at the matmul rate "
            f"{p['lower_bound_s_at_matmul_rate'] / 3600:.2f} h ({p['source']}); with the ascending nu "
            f"search {p['total_gflop_ascending_best_case']:,.0f} GFLOP, "
            f"{p['lower_bound_s_ascending_best_case'] / 3600:.2f} h, in the best case (every form's "
            "smallest nu reaches the SI target)")


def targets(res: dict) -> dict:
    """The issue's targets, reported (not asserted)."""
    out = {}
    for m in METHODS:
        v = res["training"][m]["speedup_1seed"]
        out[f"{m} ours >= 2x reference (1 seed)"] = {"value": v, "met": v >= 2}
    v = res["training"]["DA"]["ours_1seed"]["pct_of_matmul"]
    out["DA >= 60% of matmul (1 seed)"] = {"value": v, "met": v >= 60}
    v = res["training"]["DA"]["ours_4seeds"]["pct_of_matmul"]
    out["DA >= 60% of matmul (4 seeds)"] = {"value": v, "met": v >= 60}
    mem = res.get("memory") or {}
    peaks = [r["peak_bytes"] for k, r in mem.items() if k.startswith("eval:") and k.endswith(":ours") and "peak_bytes" in r]
    if peaks:
        v = max(peaks) / 2**30
        out["eval peak memory <= 4 GiB (ours)"] = {"value": v, "met": v <= 4}
    return out
