"""How often the audit's comparison reads a direction where there is none: its paired percentile bootstrap
(``nets.sample_bootstrap.paired_bootstrap``, read by ``nets.compare_effect.direction``) on two
exchangeable models, by simulation.

Each replicate draws per-sample values for A and B from one distribution with a shared per-sample
difficulty (``z``, normal with spread ``--sigma``) and each model's own noise (spread 0.5): for a ratio
measure (LI, DI, sigma_max: B / A of the means) the values are ``exp(z + noise)``, lognormal and skewed
as per-sample LI and sigma_max are; for a difference measure (accuracy, SI: B - A of the means) they are
``z + noise`` (the shared ``z`` cancels in B - A, so there the rate does not depend on ``--sigma``). B and
A are exchangeable, so a 95% interval should read "B < A" or "B > A" in 5% of replicates; the file records
that rate per (kind, sigma, N) with its Monte Carlo standard error.

    .venv/bin/python benchmarks/bootstrap_coverage.py --out benchmarks/results/bootstrap_coverage.json
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nets.cli_types import positive_int  # noqa: E402
from nets.compare_effect import direction  # noqa: E402
from nets.results_io import cpu_info, run_provenance, write_json  # noqa: E402
from nets.sample_bootstrap import paired_bootstrap, ratio_of_means  # noqa: E402


def _ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return ratio_of_means(b, a, axis)  # B / A of the means, as nets.audit_compare reads LI, DI and sigma_max


def _difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return b.mean(axis) - a.mean(axis)  # B - A, as it reads accuracy and SI


def false_direction_rate(kind: str, sigma: float, n: int, replicates: int, seed: int) -> float:
    """The share of ``replicates`` in which the comparison of two exchangeable models reads a direction."""
    rng = np.random.default_rng(seed)
    statistic = _ratio if kind == "ratio" else _difference
    read = 0
    for i in range(replicates):
        z = rng.normal(0.0, sigma, n)
        a, b = (z + rng.normal(0.0, 0.5, n) for _ in range(2))
        if kind == "ratio":
            a, b = np.exp(a), np.exp(b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's note on a degenerate resample, if any
            effect = paired_bootstrap((a, b), statistic, seed=i)
        read += direction(kind, effect, n) in ("B < A", "B > A")
    return read / replicates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    p.add_argument("--n", type=positive_int, nargs="+", default=[100, 1000], help="samples per audit")
    p.add_argument("--replicates", type=positive_int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    started = time.time()
    rows = []
    for kind in ("ratio", "difference"):
        for sigma in args.sigmas:
            for n in args.n:
                rate = false_direction_rate(kind, sigma, n, args.replicates, args.seed)
                se = (0.05 * 0.95 / args.replicates) ** 0.5
                rows.append({"kind": kind, "sigma": sigma, "n_samples": n, "replicates": args.replicates,
                             "false_direction_rate": rate, "nominal": 0.05, "mc_standard_error_at_nominal": se})
                print(f"{kind:10s} sigma {sigma:g}, N = {n:5d}: a direction read in {rate:.3f} of "
                      f"{args.replicates} (nominal 0.05, MC se {se:.3f})", flush=True)
    if args.out is not None:
        write_json(args.out, {"rows": rows, "cpu": cpu_info(),
                              "meta": run_provenance(device="cpu", started=started,
                                                     command=" ".join(["python", *sys.argv]))})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
