"""Side-by-side timing on a machine whose load may change: contenders called in turn (A B A B ...),
the median over rounds, speed-ups as the median of per-round ratios, and the machine's own float32
matmul rate probed between them (:class:`MatmulProbe`), so every percentage of it compares like with
like. CUDA work is synchronized before each clock reading."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

__all__ = ["sync", "MatmulProbe", "matmul_rate", "interleaved", "speedup"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class MatmulProbe:
    """The machine's float32 ``n x n`` matmul rate, one product per call (``2 n^3`` FLOPs).

    Called between the contenders of every round, so the percentages compare each
    contender with the rate the machine gave at the same time (its load varies)."""

    def __init__(self, device: torch.device, n: int = 2048) -> None:
        self.device, self.n = device, n
        self.a = torch.randn(n, n, device=device)
        self.b = torch.randn(n, n, device=device)
        self.rates: list[float] = []

    def __call__(self) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        torch.mm(self.a, self.b)
        sync(self.device)
        self.rates.append(2 * self.n**3 / (time.perf_counter() - t0) / 1e9)
        return self.rates[-1]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def matmul_rate(device: torch.device, repeats: int = 7, warmup_s: float = 0.5) -> dict:
    """Median GFLOP/s of ``repeats`` float32 2048 x 2048 products, after two warm-up products and,
    on a GPU, ``warmup_s`` seconds of them more (an idle GPU runs at a fraction of its clock until
    work raises it: 345 against 1980 MHz on an H200, the device library's KINDS.md)."""
    probe = MatmulProbe(device)
    warm = 2
    for _ in range(warm):
        probe()
    if device.type == "cuda":
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < warmup_s:
            probe()
            warm += 1
    for _ in range(repeats):
        probe()
    rates = probe.rates[warm:]
    return {"gflops_median": statistics.median(rates), "gflops_all": rates}


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, device: torch.device,
                warmup: int = 1) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Seconds per call of each function, called in turn (A B A B ...) for ``rounds`` rounds
    after ``warmup`` untimed rounds; also each function's last return value."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    last: dict[str, object] = {}
    for r in range(warmup + rounds):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            last[name] = fn()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times, last


def speedup(slow: list[float], fast: list[float], fast_per: float = 1.0) -> float:
    """Median over rounds of ``t_slow / (t_fast / fast_per)``: the speed-up of ``fast``
    (``fast_per`` models trained per call)."""
    return statistics.median(s / (f / fast_per) for s, f in zip(slow, fast))
