"""CPU time lost to page faults: the same work with glibc's default malloc settings and with large
buffers kept by the process, side by side in fresh subprocesses.

On Linux, glibc serves an allocation above its mmap threshold (at most 32 MiB by default) with a
fresh ``mmap`` and returns it to the kernel on ``free``, so a CNN whose batches make buffers that
large faults every page in again on every step: system time, not arithmetic. The glibc tunables
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` (environment variables read at start-up;
no install needed) keep such buffers in the heap instead. PyTorch's CPU performance guide gives the
same advice through another allocator (jemalloc or tcmalloc by ``LD_PRELOAD``).

Two pieces of work, each run once per round in a fresh subprocess under each setting, in turn:
``train``, weight-tied training (``GroupPooled`` over ``t4xy``, 16 elements) of the small CNN of
:mod:`benchmarks.audit_chunking` on 300 seeded-noise RGB images of 32 x 32, batch 128, 2 epochs;
``si``, the weight-tied model's SI (:func:`nets.saliency_invariance`) on 8 of those images at the
default chunk. It records wall, user and system seconds and minor page faults per run, the medians, the
per-round ratios, whether the two settings gave the same numbers (final loss, SI), and the CPU.

    .venv/bin/python benchmarks/malloc_env.py --rounds 2 --out benchmarks/results/malloc_env_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.audit_chunking import tiny_cnn  # noqa: E402
from benchmarks.child import json_child  # noqa: E402
from nets.cli_types import positive_int  # noqa: E402
from nets.data import Split, Splits  # noqa: E402
from nets.metrics import saliency_invariance  # noqa: E402
from nets.results_io import cpu_info, run_provenance, write_json  # noqa: E402
from nets.train import GroupPooled, TrainConfig, train_runs  # noqa: E402

#: The environment of each setting, on top of the parent's (``None``: the variable removed).
SETTINGS: dict[str, dict[str, str | None]] = {
    "glibc_default": {"MALLOC_MMAP_THRESHOLD_": None, "MALLOC_TRIM_THRESHOLD_": None},
    "keep_buffers": {"MALLOC_MMAP_THRESHOLD_": str(1 << 40), "MALLOC_TRIM_THRESHOLD_": str(1 << 40)},
}
WORK = ("train", "si")
#: The sizes of both pieces of work, recorded in the results file.
SIZES = {"images": [3, 32, 32], "n_train": 300, "n_val": 100, "n_classes": 4, "group": "t4xy",
         "train": {"method": "WT", "epochs": 2, "batch_size": 128, "lr": 3e-3}, "si": {"n_samples": 8}}


def _splits() -> Splits:
    g = torch.Generator().manual_seed(0)
    part = lambda n: Split(torch.rand(n, *SIZES["images"], generator=g),  # noqa: E731
                           torch.randint(0, SIZES["n_classes"], (n,), generator=g))
    return Splits("noise", part(SIZES["n_train"]), part(SIZES["n_val"]), part(32), 0.0, 1.0, 0)


def run_work(work: str, threads: int) -> dict:
    """Child side: do ``work`` once and return its resource use and its numbers."""
    torch.set_num_threads(threads)
    splits = _splits()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    k, group = SIZES["n_classes"], SIZES["group"]
    if work == "train":
        cfg = TrainConfig(model="tiny", group=group, n_classes=k, **SIZES["train"])
        (run,) = train_runs([cfg], [0], splits, device="cpu", progress=False, model_fn=lambda c: tiny_cnn(k))
        value = run.history["loss"][-1]
    else:
        n = SIZES["si"]["n_samples"]
        model = GroupPooled(tiny_cnn(k), group).eval()
        value = float(saliency_invariance(model, splits.test.x[:n], splits.test.y[:n], group))
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {"work": work, "value": value, "wall_s": wall, "user_s": r1.ru_utime - r0.ru_utime,
            "system_s": r1.ru_stime - r0.ru_stime, "minor_faults": r1.ru_minflt - r0.ru_minflt}


def child(work: str, setting: str, threads: int) -> dict:
    env = dict(os.environ)
    for k, v in SETTINGS[setting].items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    cmd = [sys.executable, str(Path(__file__).resolve()), "--work", work, "--threads", str(threads)]
    r = json_child(cmd, f"{work} under {setting}", ROOT, env)
    print(f"  {work:5s} {setting:13s}: wall {r['wall_s']:.2f} s, user {r['user_s']:.2f} s, system "
          f"{r['system_s']:.2f} s, {r['minor_faults']:,} minor faults", flush=True)
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=positive_int, default=2)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--work", choices=WORK, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.work:
        print(json.dumps(run_work(args.work, args.threads)))
        return 0
    started = time.time()
    rounds = []
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", flush=True)
        rounds.append({w: {s: child(w, s, args.threads) for s in SETTINGS} for w in WORK})
    summary = {}
    for w in WORK:
        runs = [rd[w] for rd in rounds]
        summary[w] = {
            "median": {s: {k: statistics.median(rd[s][k] for rd in runs) for k in ("wall_s", "user_s", "system_s",
                                                                                  "minor_faults")}
                       for s in SETTINGS},
            "default_over_keep_wall": statistics.median(rd["glibc_default"]["wall_s"] / rd["keep_buffers"]["wall_s"]
                                                        for rd in runs),
            "same_numbers": all(rd["glibc_default"]["value"] == rd["keep_buffers"]["value"] for rd in runs),
        }
        print(f"{w}: default / keep_buffers wall {summary[w]['default_over_keep_wall']:.2f}x, same numbers: "
              f"{summary[w]['same_numbers']}")
    result = {"summary": summary, "rounds": rounds, "settings": SETTINGS, "sizes": SIZES, "threads": args.threads,
              "cpu": cpu_info(),
              "meta": run_provenance(device="cpu", started=started,
                                     command="python benchmarks/malloc_env.py " + " ".join(argv or sys.argv[1:]))}
    if args.out:
        print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
