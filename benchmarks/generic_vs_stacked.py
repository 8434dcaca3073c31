"""The paper's MLP trained by the two stacking engines of ``nets.train``, side by side.

* ``stacked_mlp``: :class:`nets.stacked.StackedMLP` (``torch.baddbmm`` over the members, WT's
  first layer pooled over the input orbit, validation with one shared first-layer matmul);
* ``vmap``: the generic engine, ``torch.func.stack_module_state`` + ``vmap(functional_call)``
  over :class:`nets.models.MLP` from a factory (WT through ``GroupPooled``'s first-layer pooling).

Same data, same seeds, same epochs; each measurement is the second epoch of a ``train_runs``
call (the first is a warm-up; an epoch includes the validation accuracy over the full orbit),
timed between ``on_epoch_end`` callbacks; the two engines alternate within every round (their
order flips from round to round), so both see the same machine load. Reports seconds per
run-epoch (median over rounds) and the median of the per-round ratios ``vmap / stacked_mlp``
(above 1: the StackedMLP is faster), by the wall clock and by the process CPU clock (less
sensitive to other jobs on a shared machine). Records the CPU model, the CPU capability torch uses,
threads, the load average before and after, and the data used.

    .venv/bin/python benchmarks/generic_vs_stacked.py [--rounds 3] [--seeds 4] [--n-train 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nets.cli_types import positive_int  # noqa: E402
from nets.data import Splits, synthetic_splits  # noqa: E402
from nets.models import MLP  # noqa: E402
from nets.results_io import cpu_info  # noqa: E402
from nets.train import TrainConfig, train_runs  # noqa: E402

#: Git-ignored by default: the committed benchmarks/results/generic_vs_stacked_cpu.json is written only with --out.
OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "generic_vs_stacked_cpu.json"


def load_data(n_train: int, n_val: int) -> tuple[Splits, str]:
    """Real Transforming-MNIST subsets when fetched, else synthetic data of the same shape."""
    try:
        from nets.data import load_splits

        full = load_splits("mnist", progress=False)
        return Splits(full.name, full.train.subset(n_train), full.val.subset(n_val), full.test.subset(0),
                      full.mean, full.std, full.split_seed), "mnist (real)"
    except Exception as err:  # noqa: BLE001 - any failure to load means: use synthetic data
        print(f"real data unavailable ({err}); using synthetic data", file=sys.stderr)
        return synthetic_splits(n_train=n_train, n_val=n_val, n_test=0, seed=0), "synthetic"


def second_epoch(config: TrainConfig, seeds, splits: Splits, model_fn=None) -> tuple[float, float]:
    """Wall and process-CPU seconds of the second epoch of ``train_runs([config], seeds)`` stacked."""
    stamps: list[tuple[float, float]] = []
    train_runs([config], seeds, splits, device="cpu", progress=False, stack=True, model_fn=model_fn,
               on_epoch_end=lambda done: stamps.append((time.perf_counter(), time.process_time())))
    return stamps[1][0] - stamps[0][0], stamps[1][1] - stamps[0][1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--seeds", type=positive_int, default=4)
    p.add_argument("--n-train", type=positive_int, default=2000)
    p.add_argument("--n-val", type=positive_int, default=500)
    p.add_argument("--methods", default="DA,IR,WT")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    splits, data_name = load_data(args.n_train, args.n_val)
    H, W = splits.train.x.shape[-2:]
    seeds = list(range(args.seeds))

    def factory(c: TrainConfig) -> MLP:
        return MLP(in_shape=(H, W), n_classes=c.n_classes, hidden=c.hidden, n_hidden_layers=c.n_hidden_layers)

    load_before = os.getloadavg()
    out: dict = {
        "what": "seconds per run-epoch of the paper MLP (233k parameters, batch 512), second epoch of "
                "train_runs, stacked members; vmap / stacked_mlp ratio per round (>1: StackedMLP faster)",
        "cpu_model": cpu_info()["model"], "cpu": cpu_info(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "data": data_name, "n_train": len(splits.train), "n_val": len(splits.val), "seeds": len(seeds),
        "rounds": args.rounds, "load_average_before": list(load_before), "methods": {},
    }
    for method in args.methods.split(","):
        nu = 1.0 if method == "IR" else 0.0
        paper = TrainConfig(method=method, nu=nu, epochs=2)
        generic = TrainConfig(method=method, nu=nu, epochs=2, model="mlp_generic")
        row: dict = {}
        for clock, k in (("wall", 0), ("cpu", 1)):
            row[clock] = {"stacked_mlp_s": [], "vmap_s": []}
        for r in range(args.rounds):
            order = ["stacked_mlp", "vmap"] if r % 2 == 0 else ["vmap", "stacked_mlp"]
            for engine in order:
                t = (second_epoch(paper, seeds, splits) if engine == "stacked_mlp"
                     else second_epoch(generic, seeds, splits, factory))
                for clock, k in (("wall", 0), ("cpu", 1)):
                    row[clock][f"{engine}_s"].append(t[k] / len(seeds))
        for clock in ("wall", "cpu"):
            st, vm = row[clock]["stacked_mlp_s"], row[clock]["vmap_s"]
            row[clock] = {"median_stacked_mlp_s": statistics.median(st), "median_vmap_s": statistics.median(vm),
                          "ratio_vmap_over_stacked": statistics.median(v / s for s, v in zip(st, vm)),
                          "rounds_stacked_mlp_s": st, "rounds_vmap_s": vm}
        out["methods"][method] = row
        print(f"{method}: per run-epoch " + "; ".join(
            f"{clock} StackedMLP {row[clock]['median_stacked_mlp_s']:.3f} s, vmap {row[clock]['median_vmap_s']:.3f} s, "
            f"ratio vmap/stacked {row[clock]['ratio_vmap_over_stacked']:.2f}" for clock in ("wall", "cpu")), flush=True)
    out["load_average_after"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, suffix=".tmp", delete=False) as f:
        json.dump(out, f, indent=2)
    os.replace(f.name, args.out)
    print(f"load average before {load_before}, after {out['load_average_after']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
