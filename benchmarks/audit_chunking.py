"""The audit of a weight-tied model with and without its chunks divided by ``batch_expansion``, and a
DA model's audit beside them: wall time and peak memory, side by side in one run.

A WT model (:class:`nets.train.pooling.GroupPooled`) runs the whole orbit, ``|G|`` inputs, per input,
and says so (``batch_expansion = |G|``); every measure divides its chunks by it
(:func:`nets.measure_inputs.model_chunk`). ``wt_undivided`` is the same model with
``batch_expansion = 1``, the measures' behaviour before they divided, so a pass holds ``|G|`` times the
images. The model is a small random-init CNN of ``(3, 32, 32)`` images (:func:`tiny_cnn`, 1,460
parameters at 4 classes), the images and labels are seeded noise; timing and memory do not depend on
the weights. Each audit runs once per round in a fresh subprocess (its peak is the process's
resident high-water mark, :mod:`benchmarks.peak_memory`, reset after set-up), the contenders in turn
(A B C A B C ...). The JSON records every round, the medians, the per-round ratios, the largest
relative difference between the divided and undivided measures (they must agree to round-off), and
the CPU (model, flags) and versions.

    .venv/bin/python benchmarks/audit_chunking.py --n 20 --group t4xy --threads 2 --rounds 2 \
        --out benchmarks/results/audit_chunking_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child import json_child  # noqa: E402
from benchmarks.peak_memory import peak_bytes, reset_peak  # noqa: E402
from nets.auditing import audit  # noqa: E402
from nets.cli_types import positive_int  # noqa: E402
from nets.groups import get_group  # noqa: E402
from nets.results_io import cpu_info, run_provenance, write_json  # noqa: E402
from nets.train.pooling import GroupPooled  # noqa: E402

CONTENDERS = ("wt_divided", "wt_undivided", "da")


class TinyCNN(nn.Module):
    """Conv 3->8, ReLU, 2x2 max-pool, conv 8->16, ReLU, global average, linear to ``classes``."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((-2, -1)))


def tiny_cnn(classes: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TinyCNN(classes).eval()


class UndividedPooled(GroupPooled):
    """:class:`GroupPooled` that does not declare its orbit: the measures chunk it as a plain model."""

    @property
    def batch_expansion(self) -> int:
        return 1


def build(name: str, args: argparse.Namespace) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(args.n, 3, 32, 32, generator=gen)
    y = torch.randint(0, args.classes, (args.n,), generator=gen)
    base = tiny_cnn(args.classes)
    if name == "da":
        return base, x, y
    group = get_group(args.group)
    return (GroupPooled if name == "wt_divided" else UndividedPooled)(base, group).eval(), x, y


def run_item(name: str, args: argparse.Namespace) -> dict:
    """Child side: build, reset the peak, audit once, read the peak and the measures."""
    torch.set_num_threads(args.threads)
    model, x, y = build(name, args)
    cpu = torch.device("cpu")
    reset = reset_peak(cpu)
    before = peak_bytes(cpu)
    t0 = time.perf_counter()
    res = audit(model, x, y, args.group, n_steps=args.n_steps, chunk_size=args.chunk_size, n_resamples=200)
    seconds = time.perf_counter() - t0
    return {"item": name, "seconds": seconds, "peak_bytes": peak_bytes(cpu), "peak_before_bytes": before,
            "peak_reset": reset, "measures": {k: e.value for k, e in res.measures.items()},
            "layers": [e.value for _, e in res.layers]}


def child(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--item", name, "--n", str(args.n),
           "--group", args.group, "--classes", str(args.classes), "--n-steps", str(args.n_steps),
           "--chunk-size", str(args.chunk_size), "--threads", str(args.threads)]
    r = json_child(cmd, f"the {name} audit", ROOT)
    print(f"  {name}: {r['seconds']:.1f} s, peak {r['peak_bytes'] / 2**30:.2f} GiB", flush=True)
    return r


def max_relative_difference(a: dict, b: dict) -> float:
    """Largest ``|a - b| / max(|a|, |b|)`` over the measures and layer values both have (0 where both are 0)."""
    pairs = [(a["measures"][k], b["measures"][k]) for k in a["measures"]] + list(zip(a["layers"], b["layers"]))
    return max((abs(u - v) / max(abs(u), abs(v)) if max(abs(u), abs(v)) > 0 else 0.0) for u, v in pairs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=positive_int, default=20, help="images audited")
    p.add_argument("--group", default="t4xy", help="the group (default t4xy, 16 elements)")
    p.add_argument("--classes", type=positive_int, default=4)
    p.add_argument("--n-steps", type=positive_int, default=50, help="SI's integration points")
    p.add_argument("--chunk-size", type=positive_int, default=256, help="the audit's chunk size")
    p.add_argument("--rounds", type=positive_int, default=1)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--item", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.item:
        print(json.dumps(run_item(args.item, args)))
        return 0
    started = time.time()
    rounds = []
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", flush=True)
        rounds.append({name: child(name, args) for name in CONTENDERS})
    med = {name: {k: statistics.median(rd[name][k] for rd in rounds) for k in ("seconds", "peak_bytes")}
           for name in CONTENDERS}
    result = {
        "median": med,
        "undivided_over_divided": {k: statistics.median(rd["wt_undivided"][k] / rd["wt_divided"][k] for rd in rounds)
                                   for k in ("seconds", "peak_bytes")},
        "wt_divided_over_da": {k: statistics.median(rd["wt_divided"][k] / rd["da"][k] for rd in rounds)
                               for k in ("seconds", "peak_bytes")},
        "divided_vs_undivided_max_relative_difference": max(
            max_relative_difference(rd["wt_divided"], rd["wt_undivided"]) for rd in rounds),
        "rounds": rounds,
        "settings": {"n": args.n, "group": args.group, "group_order": get_group(args.group).order,
                     "classes": args.classes, "n_steps": args.n_steps, "chunk_size": args.chunk_size,
                     "threads": args.threads, "image_shape": [3, 32, 32],
                     "parameters": sum(q.numel() for q in tiny_cnn(args.classes).parameters()),
                     "model": "TinyCNN (benchmarks/audit_chunking.py), random init, seed 0",
                     "peak_memory": "VmHWM of a fresh subprocess, reset after set-up"},
        "cpu": cpu_info(),
        "meta": run_provenance(device="cpu", started=started,
                               command="python benchmarks/audit_chunking.py " + " ".join(argv or sys.argv[1:])),
    }
    u = result["undivided_over_divided"]
    print(f"undivided / divided: time {u['seconds']:.2f}x, peak memory {u['peak_bytes']:.2f}x; the measures "
          f"differ by at most {result['divided_vs_undivided_max_relative_difference']:.1e} (relative)")
    if args.out:
        print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
