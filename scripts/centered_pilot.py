"""Pilot for the nu grid of our forms beyond the paper (docs/centered.md).

Trains IR with ``--form`` (default ``centered_normalized_logit``) at every nu of a wide grid (no early stop) at
the quick profile's sizes (10k / 2k train / validation, 1 seed, 25 epochs, SI on 100
validation samples), for each group, and prints validation SI and accuracy per nu as JSON.

    PYTHONPATH=. python scripts/centered_pilot.py --run-dir /tmp/centered_pilot [--epochs 25] [--threads 1]
        [--groups r4 t3] [--grid 1 3 10 30 100 300 1000] [--form detached_normalized_logit]
        [--out results/pilots/detached.json]

With ``--out`` the same JSON is also written (atomically) to that file with its provenance
(command, versions, CPU flags, commit) under ``meta``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from nets.cli_types import group_arg, positive_int
from nets.experiments.profiles import get_profile
from nets.experiments.table1 import profile_splits
from nets.results_io import check_file, command_line, run_provenance, write_json
from nets.train import CENTERED_FORM, DETACHED_FORM, TrainConfig, tune_nu

GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--epochs", type=positive_int, default=25)
    ap.add_argument("--threads", type=positive_int, default=1)
    ap.add_argument("--groups", nargs="+", type=group_arg, default=["r4", "t3"])
    ap.add_argument("--grid", type=float, nargs="+", default=list(GRID), help="nu values (default: 1 .. 1000)")
    ap.add_argument("--form", choices=[CENTERED_FORM, DETACHED_FORM], default=CENTERED_FORM)
    ap.add_argument("--out", type=check_file, default=None, help="also write the JSON here, with its provenance")
    args = ap.parse_args()
    started = time.time()
    torch.set_num_threads(args.threads)
    profile = get_profile("quick")
    splits = profile_splits(profile)
    grid = tuple(args.grid)
    out = {"form": args.form, "grid": list(grid), "epochs": args.epochs, "seeds": list(profile.seeds),
           "n_si_samples": profile.n_si_samples, "groups": {}}
    for g in args.groups:
        t0 = time.time()
        base = TrainConfig(method="IR", group=g, regularizer=args.form, epochs=args.epochs)
        sel, _ = tune_nu(base, grid, list(profile.seeds), splits, si_target=profile.si_target,
                         n_si_samples=profile.n_si_samples, device="cpu", run_dir=args.run_dir,
                         progress=False, search="full", n_steps=profile.ig_steps)
        out["groups"][g] = {**sel.to_dict(), "wall_time_s": round(time.time() - t0, 1)}
        print(json.dumps({g: out["groups"][g]}), flush=True)
    print(json.dumps(out))
    if args.out is not None:
        meta = run_provenance(device="cpu", started=started, command=command_line())
        write_json(args.out, {"meta": {**meta, "threads": args.threads, "profile_sizes": "quick"}, **out})


if __name__ == "__main__":
    main()
