"""sigma_max of the input Jacobian by its two methods, side by side, as the number of classes grows.

``nets.sensitivity.jacobian_spectral_norm`` computes the dense ``(C, D)`` Jacobian with ``jacrev``
(``C`` vector-Jacobian products, exact) or runs batched power iteration on ``J^T J`` (two passes an
iteration, a lower bound that stops once the rest of its climb, extrapolated from its last two steps, is
within a relative ``tol``; before 2026-12-07, at a relative change of ``tol``). Which is cheaper depends on ``C``:
this times both, interleaved (A B A B ...) in one run, on a small CNN of a ``(3, 32, 32)`` image with
``C`` classes at random init, and records how far power iteration's estimate is below the exact
value, the dense Jacobian's bytes per sample, and the CPU (model, flags) and versions.

    .venv/bin/python benchmarks/sigma_methods.py --classes 10 100 1000 --n 32 --out benchmarks/results/sigma_methods_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import interleaved  # noqa: E402
from nets.cli_types import positive_int  # noqa: E402
from nets.results_io import cpu_info, run_provenance, write_json  # noqa: E402
from nets.sensitivity import jacobian_spectral_norm  # noqa: E402


def small_cnn(classes: int, seed: int = 0) -> nn.Module:
    """Three stride-2 convolutions (16, 32, 64 channels), global average pooling, a linear layer to ``classes``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                         nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, classes)).eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=positive_int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--n", type=positive_int, default=32, help="samples (one chunk)")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    x = torch.randn(args.n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    rows = []
    for c in args.classes:
        model = small_cnn(c)
        fns = {m: (lambda m=m: jacobian_spectral_norm(model, x, method=m, chunk_size=args.n))
               for m in ("jacrev", "power")}
        times, last = interleaved(fns, args.rounds, torch.device("cpu"))
        exact, power = last["jacrev"], last["power"]
        row = {"classes": c, "seconds": {m: statistics.median(t) for m, t in times.items()},
               "seconds_all": times,
               "power_over_jacrev_time": statistics.median(b / a for a, b in zip(times["jacrev"], times["power"])),
               "power_relative_shortfall_max": float(((exact - power) / exact).max()),
               "dense_jacobian_bytes_per_sample": c * x[0].numel() * x.element_size()}
        rows.append(row)
        print(f"C = {c:5d}: jacrev {row['seconds']['jacrev']:.3f} s, power {row['seconds']['power']:.3f} s "
              f"(power / jacrev {row['power_over_jacrev_time']:.2f}), power below exact by at most "
              f"{row['power_relative_shortfall_max']:.2e} (relative)", flush=True)
    result = {"rows": rows, "n_samples": args.n, "rounds": args.rounds, "threads": args.threads,
              "image_shape": [3, 32, 32], "model": "small_cnn (benchmarks/sigma_methods.py), random init",
              "cpu": cpu_info(), "meta": run_provenance(device="cpu", started=started,
                                                         command="python benchmarks/sigma_methods.py "
                                                                 + " ".join(argv or sys.argv[1:]))}
    if args.out:
        print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
