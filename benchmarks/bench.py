"""Throughput and memory of our training and evaluation paths against a plain PyTorch reference.

Usage::

    python benchmarks/bench.py [--out benchmarks/results/cpu.json] [--quick] [--device cpu]

Everything runs side by side in one process on the same data (the real
Transforming-MNIST splits when ``nets.data.load_splits("mnist")`` works, else
synthetic splits of the same sizes; the JSON says which). The machine may be
shared, so every comparison is *interleaved*: one call of each contender per
round (A B A B ...), several rounds, the median time per contender, and the
median of the per-round time ratios (adjacent calls see the same load). The
reference is ``benchmarks/reference.py``: DataLoader over a TensorDataset,
``torch.rot90``/``torch.roll`` per group element, ``nn.Sequential``, default
``torch.optim.Adam``, one seed at a time.

Training is timed per epoch; what an epoch is and how ours and the reference alternate within
one: :mod:`benchmarks.contenders`.

FLOP counts: :mod:`benchmarks.flops` (analytic, per sample, for each method and measure).

An epoch counts ``n_train`` training samples plus ``n_val`` validation samples;
samples/s is ``n_train`` / epoch time. GFLOP/s is FLOPs / wall time; "% of
matmul" divides it by the machine's own float32 2048 x 2048 matmul rate
(``2 * 2048^3`` FLOPs per product, same threads). That rate is measured at the
start (median of 7) and at the end, and, because the load of a shared machine
changes within minutes, also once per round between the contenders: each row's
percentages use the median of its own rounds' products (the start-rate
percentages are in the JSON too). ``--threads``
sets torch's CPU threads; on a machine shared with other jobs, 1 thread gives
steady times where 2 threads stall on each other.

Memory: each item (one training epoch, ours with ``train_runs``' set-up; one
evaluation call) runs once in a fresh subprocess (``--memory-item``), on the
splits saved by the parent. On CPU the child resets the resident high-water
mark after its set-up (``/proc/self/clear_refs``) and reads it (``VmHWM``, the
per-process peak RSS; ``ru_maxrss`` would start at the parent's peak, which
Linux carries across fork and exec) before and after the item: ``peak`` is
the process's peak during the item (imports, data and model included),
``delta`` the item's own growth. On CUDA both come from
``torch.cuda.max_memory_allocated``.

The paper protocol's total FLOPs and its lower-bound time: :func:`benchmarks.flops.paper_protocol`.

Every timing is float32 (``"precision"`` in the JSON). The JSON is rewritten, atomically, after
each section (``"sections_done"``; ``"complete"`` stays false until the last), so a run stopped
by a time limit, as scripts/gpu_check.sh's stage limit may stop it, keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import reference as R  # noqa: E402
from nets.cli_types import group_arg, positive_int  # noqa: E402
from nets.experiments.common import write_json  # noqa: E402
from nets.groups import Group, get_group  # noqa: E402
from nets.precision import exact_float32  # noqa: E402

from benchmarks.bench_report import environment, protocol_summary, table, targets  # noqa: E402
from benchmarks.flops import (  # noqa: E402
    METHODS,
    eval_flops,
    paper_protocol,
    train_flops,
    validation_flops,
)
from benchmarks.contenders import (  # noqa: E402
    Data,
    eval_items,
    interleaved_training,
    load_data,
    ours_train,
    reference_trainer,
    save_data,
)
from benchmarks.peak_memory import peak_bytes, reset_peak  # noqa: E402
from benchmarks.timing import MatmulProbe, interleaved, matmul_rate, speedup, sync  # noqa: E402


# ---- sections ---------------------------------------------------------------------------------
def bench_training(group: Group, data: Data, device: torch.device, rounds: int, mm_start: float) -> dict:
    n, n_val = len(data.splits.train), len(data.splits.val)
    out = {}
    for method in METHODS:
        probe = MatmulProbe(device)
        ours1, ref1 = interleaved_training(method, group, data, device, 1, rounds, probe)
        ours4, ref4 = interleaved_training(method, group, data, device, 4, rounds, probe)
        mm = probe.median
        times = {"ours_1seed": ours1, "reference_vs_1seed": ref1, "ours_4seeds": ours4, "reference_vs_4seeds": ref4}
        fl = train_flops(method, group.order)
        val_fl = validation_flops(method, group.order)
        epoch_flops = n * fl + n_val * val_fl
        executed = n * train_flops(method, group.order, executed=True) + n_val * val_fl
        row: dict = {"flops_per_sample": fl, "val_flops_per_sample": val_fl, "samples_per_epoch": n,
                     "val_samples_per_epoch": n_val, "flops_per_epoch": epoch_flops,
                     "executed_flops_per_epoch": executed, "times_s": times,
                     "matmul_gflops_interleaved": probe.rates}
        for name, models, t in (("ours_1seed", 1, ours1), ("ours_4seeds", 4, ours4), ("reference", 1, ref1 + ref4)):
            med = statistics.median(t)
            gflops = models * epoch_flops / med / 1e9
            row[name] = {"epoch_s_median": med, "samples_per_s": models * n / med, "gflops": gflops,
                         "pct_of_matmul": 100 * gflops / mm,
                         "pct_of_matmul_executed": 100 * models * executed / med / 1e9 / mm,
                         "pct_of_matmul_start": 100 * gflops / mm_start}
        row["speedup_1seed"] = speedup(ref1, ours1)
        row["speedup_4seeds_per_model"] = speedup(ref4, ours4, fast_per=4)
        out[method] = row
        print(f"  {method}: ours {row['ours_1seed']['samples_per_s']:,.0f}/s (1 seed), "
              f"{row['ours_4seeds']['samples_per_s']:,.0f}/s per model (4 seeds), "
              f"reference {row['reference']['samples_per_s']:,.0f}/s; "
              f"x{row['speedup_1seed']:.2f} / x{row['speedup_4seeds_per_model']:.2f}", flush=True)
    return out


def bench_eval(group: Group, data: Data, device: torch.device, rounds: int, n_si: int, n_sigma: int,
               mm_start: float) -> dict:
    out = {}
    for item, (n, fns) in eval_items(data, group, device, n_si, n_sigma).items():
        probe = MatmulProbe(device)
        # On the CPU no warm-up round: the models and kernels are already warm from training. On CUDA
        # one: the measures' kernels (IG's, sigma_max's) load lazily on their first call.
        times, last = interleaved({**fns, "matmul": probe}, rounds, device, warmup=int(device.type == "cuda"))
        del times["matmul"], last["matmul"]
        mm = probe.median
        values = {k: float(v) for k, v in last.items()}
        fl = eval_flops(item, group.order)
        has_ref = "reference" in fns
        row: dict = {"n_samples": n, "flops_per_sample": fl, "times_s": times, "values": values,
                     "abs_diff": abs(values["ours"] - values["reference"]) if has_ref else None,
                     "matmul_gflops_interleaved": probe.rates}
        if not has_ref:
            row["reference"], row["reference_skipped"] = None, R.captum_missing()
        for name in fns:
            t = statistics.median(times[name])
            gflops = n * fl / t / 1e9
            row[name] = {"s_median": t, "samples_per_s": n / t, "s_per_1000": 1000 * t / n, "gflops": gflops,
                         "pct_of_matmul": 100 * gflops / mm, "pct_of_matmul_start": 100 * gflops / mm_start}
        row["speedup"] = speedup(times["reference"], times["ours"]) if has_ref else None
        out[item] = row
        versus = (f"reference {row['reference']['samples_per_s']:,.0f}/s (x{row['speedup']:.2f}); values "
                  f"{values['ours']:.6g} / {values['reference']:.6g}" if has_ref
                  else f"value {values['ours']:.6g}; no reference: {row['reference_skipped']}")
        print(f"  {item} on {n:,}: ours {row['ours']['samples_per_s']:,.0f}/s, {versus}", flush=True)
    return out


# ---- memory (one subprocess per item) ---------------------------------------------------
def memory_item_names() -> list[str]:
    train = [f"train:{m}:{who}" for m in METHODS for who in ("ours_1seed", "ours_4seeds", "reference")]
    evals = [f"eval:{i}:{who}" for i in ("LI", "DI", "SI", "sigma") for who in ("ours", "reference")
             if not (i == "SI" and who == "reference" and R.captum_missing())]
    return train + evals


def run_memory_item(name: str, args: argparse.Namespace) -> dict:
    """Child side: set up, reset the peak, run the item once, read the peak."""
    device = torch.device(args.device)
    group = get_group(args.group)
    data = load_data(device, args.quick, args.data_file)
    kind, item, who = name.split(":")
    if kind == "train":  # one epoch; for ours, train_runs' set-up (orbit tables, model, Adam) included
        fn = (reference_trainer(item, group, data, device) if who == "reference"
              else lambda: ours_train(item, group, data, device, 4 if who == "ours_4seeds" else 1, epochs=1))
    else:
        fn = eval_items(data, group, device, args.n_si, args.n_sigma)[item][1][who]
    reset = reset_peak(device)
    before = peak_bytes(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    seconds = time.perf_counter() - t0
    after = peak_bytes(device)
    return {"item": name, "peak_before_bytes": before, "peak_bytes": after, "delta_bytes": after - before,
            "peak_reset": reset, "seconds": seconds,
            "measure": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "VmHWM"}


def bench_memory(args: argparse.Namespace, data: Data) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "splits.pt"
        save_data(data, data_file)
        return {name: _memory_child(name, args, data_file) for name in memory_item_names()}


def _memory_child(name: str, args: argparse.Namespace, data_file: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-item", name, "--data-file", str(data_file),
           "--device", args.device, "--group", args.group, "--n-si", str(args.n_si), "--n-sigma", str(args.n_sigma)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.quick:
        cmd.append("--quick")
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
    if res.returncode != 0 or not lines:
        print(f"  {name}: FAILED\n{res.stderr[-1000:]}", flush=True)
        return {"error": (res.stderr or res.stdout)[-2000:]}
    r = json.loads(lines[-1])
    print(f"  {name}: peak {r['peak_bytes'] / 2**20:,.0f} MiB (+{r['delta_bytes'] / 2**20:,.0f} MiB "
          f"over {r['peak_before_bytes'] / 2**20:,.0f} MiB at its start)", flush=True)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default build/bench/<device>.json, git-ignored: the committed "
                         "benchmarks/results/ files are written only when named here)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--group", type=group_arg, default="r4")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and samples (a smoke run)")
    ap.add_argument("--threads", type=positive_int, default=None,
                    help="torch CPU threads (default: torch's choice); on a shared machine 1 is steadier")
    ap.add_argument("--rounds", type=positive_int, default=None, help="timed rounds per comparison (default 3, quick 2)")
    ap.add_argument("--n-si", type=positive_int, default=None, help="samples for SI (default 250, quick 50)")
    ap.add_argument("--n-sigma", type=positive_int, default=None, help="samples for sigma_max(J) (default 1000, quick 100)")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-item memory subprocesses")
    ap.add_argument("--n-train", type=positive_int, default=None,
                    help="train on the first N samples and validate on N/5 (default: all 10k / 2k; a smoke run "
                         "of this script, as scripts/gpu_check.sh's CPU path does)")
    ap.add_argument("--protocol-from", type=Path, default=None, metavar="JSON",
                    help="recount the paper protocol's FLOPs at the matmul rate measured in this results file "
                         "and rewrite its paper_protocol entry (times nothing)")
    ap.add_argument("--memory-item", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.protocol_from is not None and not args.protocol_from.is_file():
        ap.error(f"--protocol-from {args.protocol_from} does not exist")
    args.n_si = args.n_si or (50 if args.quick else 250)
    args.n_sigma = args.n_sigma or (100 if args.quick else 1000)
    rounds = args.rounds or (2 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device_type = torch.device(args.device).type
    except RuntimeError:
        ap.error(f"--device {args.device}: not a torch device (cpu, cuda, cuda:1, ...)")
    if device_type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch sees no CUDA device here")

    if args.protocol_from:
        res = json.loads(args.protocol_from.read_text())
        res["paper_protocol"] = paper_protocol(res["matmul"]["interleaved_median"])
        write_json(args.protocol_from, res)
        print(f"at {res['matmul']['interleaved_median']:.1f} GFLOP/s, {protocol_summary(res['paper_protocol'])}; "
              f"wrote {args.protocol_from}")
        return 0
    if args.memory_item:
        with exact_float32(torch.device(args.device)):  # as the timed runs
            print(json.dumps(run_memory_item(args.memory_item, args)))
        return 0

    device = torch.device(args.device)
    with exact_float32(device):  # as the trainer runs (nets.precision): on CUDA, IEEE float32, cuDNN deterministic
        return measure(args, device, rounds)


def measure(args: argparse.Namespace, device: torch.device, rounds: int) -> int:
    """The benchmark proper (module docstring): each section written as it finishes."""
    started = time.time()
    out = args.out or ROOT / "build" / "bench" / f"{device.type}.json"
    res: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "quick": args.quick,
                 "rounds": rounds, "precision": "float32", "environment": environment(device),
                 "group": args.group, "complete": False, "sections_done": []}

    def done(section: str) -> None:
        """Record ``section`` as measured and write what is measured so far (atomically), so that a
        run stopped by a time limit (scripts/gpu_check.sh's stage limit) keeps its finished sections."""
        res["sections_done"].append(section)
        res["wall_time_s"] = time.time() - started
        write_json(out, res)

    print(f"matmul rate on {device} ...", flush=True)
    res["matmul"] = {"start": matmul_rate(device)}
    done("matmul")
    mm = res["matmul"]["start"]["gflops_median"]
    group = get_group(args.group)
    data = load_data(device, args.quick, n_train=args.n_train)
    res["data"] = data.kind
    res["n_train"], res["n_val"] = len(data.splits.train), len(data.splits.val)
    print(f"training ({data.kind}, {args.group}, {rounds} rounds) ...", flush=True)
    res["training"] = bench_training(group, data, device, rounds, mm)
    done("training")
    print("evaluation ...", flush=True)
    res["eval"] = bench_eval(group, data, device, rounds, args.n_si, args.n_sigma, mm)
    res["matmul"]["end"] = matmul_rate(device)
    res["matmul"]["interleaved_median"] = statistics.median(
        r for sec in ("training", "eval") for row in res[sec].values() for r in row["matmul_gflops_interleaved"])
    res["environment"]["loadavg_end"] = list(os.getloadavg())
    res["paper_protocol"] = paper_protocol(res["matmul"]["interleaved_median"])
    done("eval")
    if not args.no_memory:
        print("memory (one subprocess per item) ...", flush=True)
        res["memory"] = bench_memory(args, data)
    res["targets"] = targets(res)
    res["environment"]["loadavg_final"] = list(os.getloadavg())
    res["complete"] = True
    done("memory" if not args.no_memory else "targets")  # atomic: temporary file, then os.replace
    print()
    print(table(res))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
