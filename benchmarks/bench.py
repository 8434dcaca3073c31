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

Training is timed per epoch, and an epoch is what ``nets.train`` does in one:
Adam steps over the 10k training split (batch 512, one random group element
per sample) and then the accuracy over the full orbit of the 2k validation
split; the reference epoch does both too. Our epochs are timed inside one
``train_runs`` call, between its ``on_epoch_end`` callbacks (so set-up is not
counted), and the callback runs one reference epoch: the two alternate
(ours, reference, ours, ...), the first of each untimed. IR uses the logit
regularizer with ``nu = 1``. Ours runs with 1 seed and with 4 seeds stacked
into one model (throughput per model = 4 x samples / epoch time).

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import reference as R  # noqa: E402
from nets import metrics  # noqa: E402
from nets.data import Splits  # noqa: E402
from nets.experiments.common import write_json  # noqa: E402
from nets.groups import Group, get_group  # noqa: E402
from nets.models import MLP  # noqa: E402

from benchmarks.bench_report import environment, protocol_summary, table, targets  # noqa: E402
from benchmarks.flops import (  # noqa: E402
    HIDDEN,
    IN_SHAPE,
    METHODS,
    N_CLASSES,
    N_HIDDEN,
    eval_flops,
    paper_protocol,
    train_flops,
    validation_flops,
)
from benchmarks.peak_memory import peak_bytes, reset_peak  # noqa: E402
from benchmarks.timing import MatmulProbe, interleaved, matmul_rate, speedup, sync  # noqa: E402

BATCH, LR, NU = 512, 8e-4, 1.0


# ---- data and models ---------------------------------------------------------------------
@dataclass
class Data:
    kind: str  # "transforming-mnist" or "synthetic (why)"
    splits: Splits  # on the CPU, as nets.data returns them
    test_x: torch.Tensor  # on the device
    test_y: torch.Tensor


def load_data(device: torch.device, quick: bool, data_file: Path | None = None, n_train: int | None = None) -> Data:
    """The real splits (test cut to 10k with ``quick``), else synthetic ones of the same sizes;
    or the splits saved by :func:`save_data` (the memory subprocesses: a quicker start than
    building the splits from MNIST again, and the same data as the parent)."""
    from nets import data as D

    if data_file is not None:
        d = torch.load(data_file, weights_only=True)
        kind = d.pop("kind")
        sp = {k: D.Split(d[f"{k}_x"], d[f"{k}_y"]) for k in ("train", "val", "test")}
        splits = D.Splits(kind, sp["train"], sp["val"], sp["test"], 0.0, 1.0, 0)
    else:
        try:
            splits = D.load_splits("mnist", progress=False)
            kind = "transforming-mnist"
        except Exception as e:  # no network / no cache: same sizes, synthetic content
            splits = D.synthetic_splits(10_000, 2_000, 50_000, seed=0)
            kind = f"synthetic ({type(e).__name__}: {e})"[:200]
        if quick:
            splits = replace(splits, test=splits.test.subset(10_000))
        if n_train is not None:  # a smoke run: the first n_train training and n_train / 5 validation samples
            splits = replace(splits, train=splits.train.subset(min(n_train, len(splits.train))),
                             val=splits.val.subset(min(max(n_train // 5, 1), len(splits.val))))
    return Data(kind, splits, splits.test.x.to(device), splits.test.y.to(device))


def save_data(data: Data, path: Path) -> None:
    sp = data.splits
    # clone(): a slice (the quick test subset) would otherwise save its whole storage
    torch.save({"kind": data.kind, **{f"{k}_{a}": getattr(sp[k], a).clone() for k in ("train", "val", "test")
                                      for a in ("x", "y")}}, path)


def eval_model(device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our MLP and the reference ``nn.Sequential`` with the same weights (eval mode)."""
    torch.manual_seed(0)
    ours = MLP(IN_SHAPE, N_CLASSES, HIDDEN, N_HIDDEN).to(device).eval()
    return ours, R.reference_from(ours).eval()


# ---- training contenders ----------------------------------------------------------------
def reference_trainer(method: str, group: Group, data: Data, device: torch.device) -> Callable[[], object]:
    """One call = one reference epoch (one seed): training, then the validation orbit accuracy."""
    torch.manual_seed(0)
    model = (R.ReferenceInvariantMLP(group, IN_SHAPE, N_CLASSES, HIDDEN, N_HIDDEN) if method == "WT"
             else R.reference_mlp(IN_SHAPE, N_CLASSES, HIDDEN, N_HIDDEN)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    # The DataLoader reads CPU tensors and each batch is moved to the device, as users do.
    loader = R.reference_loader(data.splits.train.x, data.splits.train.y, BATCH)
    val = (data.splits.val.x, data.splits.val.y)
    gen = torch.Generator().manual_seed(0)
    return lambda: R.reference_train_epoch(model, opt, loader, method, group, NU, device, gen, val)


def ours_train(method: str, group: Group, data: Data, device: torch.device, n_seeds: int, epochs: int,
               between: Callable[[], object] | None = None) -> list[float]:
    """Train with ``nets.train.train_runs`` (``n_seeds`` seeds stacked into one model) and
    return the seconds of epochs 2 .. ``epochs`` (each: training, then the validation orbit
    accuracy), measured between ``on_epoch_end`` calls. ``between()`` runs inside each
    callback, outside the timed spans: that is how the reference interleaves (ours, reference,
    ours, ...)."""
    from nets.train import TrainConfig, train_runs

    cfg = TrainConfig(method=method, group=group.name, regularizer="logit", nu=NU if method == "IR" else 0.0,
                      epochs=epochs, batch_size=BATCH, lr=LR)
    times: list[float] = []
    mark: list[float | None] = [None]

    def on_epoch_end(done: int) -> None:
        sync(device)
        now = time.perf_counter()
        if mark[0] is not None:
            times.append(now - mark[0])
        if between is not None:
            between()
        sync(device)
        mark[0] = time.perf_counter()

    train_runs([cfg], list(range(n_seeds)), data.splits, device=device, progress=False, stack=True,
               on_epoch_end=on_epoch_end)
    return times


def interleaved_training(method: str, group: Group, data: Data, device: torch.device, n_seeds: int,
                         rounds: int, probe: MatmulProbe) -> tuple[list[float], list[float]]:
    """``rounds`` (ours epoch, reference epoch, matmul probe) rounds, after one untimed
    epoch of each; returns (ours seconds, reference seconds), pair ``k`` adjacent in time."""
    ref_epoch = reference_trainer(method, group, data, device)
    ref_times: list[float] = []

    def ref() -> None:
        t0 = time.perf_counter()
        ref_epoch()
        sync(device)
        ref_times.append(time.perf_counter() - t0)
        probe()

    ours = ours_train(method, group, data, device, n_seeds, rounds + 1, between=ref)
    return ours, ref_times[1:]


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


def eval_items(data: Data, group: Group, device: torch.device, n_si: int, n_sigma: int):
    """``{item: (n_samples, {"ours": fn, "reference": fn})}``; each fn returns the metric. Without
    captum (:func:`benchmarks.reference.captum_missing`) SI has no ``"reference"``."""
    ours, ref = eval_model(device)
    xt, yt = data.test_x, data.test_y
    xs, ys, xj = xt[:n_si], yt[:n_si], xt[:n_sigma]
    si_ref = {} if R.captum_missing() else {
        "reference": lambda: R.reference_saliency_invariance(ref, xs, ys, group, 50, device=device)}
    return {
        "LI": (len(xt), {"ours": lambda: metrics.logit_invariance(ours, xt, group),
                         "reference": lambda: R.reference_logit_invariance(ref, xt, group, device=device)}),
        "DI": (len(xt), {"ours": lambda: metrics.distribution_invariance(ours, xt, group),
                         "reference": lambda: R.reference_distribution_invariance(ref, xt, group, device=device)}),
        "SI": (n_si, {"ours": lambda: metrics.saliency_invariance(ours, xs, ys, group, n_steps=50), **si_ref}),
        "sigma": (n_sigma, {"ours": lambda: metrics.jacobian_spectral_norm(ours, xj).mean(),
                            "reference": lambda: R.reference_jacobian_spectral_norm(ref, xj, device).mean()}),
    }


def bench_eval(group: Group, data: Data, device: torch.device, rounds: int, n_si: int, n_sigma: int,
               mm_start: float) -> dict:
    out = {}
    for item, (n, fns) in eval_items(data, group, device, n_si, n_sigma).items():
        probe = MatmulProbe(device)
        # No warm-up round: the models and kernels are already warm from training.
        times, last = interleaved({**fns, "matmul": probe}, rounds, device, warmup=0)
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
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/<device>.json)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--group", default="r4")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and samples (a smoke run)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's choice); on a shared machine 1 is steadier")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per comparison (default 3, quick 2)")
    ap.add_argument("--n-si", type=int, default=None, help="samples for SI (default 250, quick 50)")
    ap.add_argument("--n-sigma", type=int, default=None, help="samples for sigma_max(J) (default 1000, quick 100)")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-item memory subprocesses")
    ap.add_argument("--n-train", type=int, default=None,
                    help="train on the first N samples and validate on N/5 (default: all 10k / 2k; a smoke run "
                         "of this script, as scripts/gpu_check.sh's CPU path does)")
    ap.add_argument("--protocol-from", type=Path, default=None, metavar="JSON",
                    help="recount the paper protocol's FLOPs at the matmul rate measured in this results file "
                         "and rewrite its paper_protocol entry (times nothing)")
    ap.add_argument("--memory-item", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.n_si = args.n_si or (50 if args.quick else 250)
    args.n_sigma = args.n_sigma or (100 if args.quick else 1000)
    rounds = args.rounds or (2 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.protocol_from:
        res = json.loads(args.protocol_from.read_text())
        res["paper_protocol"] = paper_protocol(res["matmul"]["interleaved_median"])
        write_json(args.protocol_from, res)
        print(f"at {res['matmul']['interleaved_median']:.1f} GFLOP/s, {protocol_summary(res['paper_protocol'])}; "
              f"wrote {args.protocol_from}")
        return 0
    if args.memory_item:
        print(json.dumps(run_memory_item(args.memory_item, args)))
        return 0

    device = torch.device(args.device)
    started = time.time()
    res: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "quick": args.quick,
                 "rounds": rounds, "environment": environment(device), "group": args.group}
    print(f"matmul rate on {device} ...", flush=True)
    res["matmul"] = {"start": matmul_rate(device)}
    mm = res["matmul"]["start"]["gflops_median"]
    group = get_group(args.group)
    data = load_data(device, args.quick, n_train=args.n_train)
    res["data"] = data.kind
    res["n_train"], res["n_val"] = len(data.splits.train), len(data.splits.val)
    print(f"training ({data.kind}, {args.group}, {rounds} rounds) ...", flush=True)
    res["training"] = bench_training(group, data, device, rounds, mm)
    print("evaluation ...", flush=True)
    res["eval"] = bench_eval(group, data, device, rounds, args.n_si, args.n_sigma, mm)
    res["matmul"]["end"] = matmul_rate(device)
    res["matmul"]["interleaved_median"] = statistics.median(
        r for sec in ("training", "eval") for row in res[sec].values() for r in row["matmul_gflops_interleaved"])
    res["environment"]["loadavg_end"] = list(os.getloadavg())
    if not args.no_memory:
        print("memory (one subprocess per item) ...", flush=True)
        res["memory"] = bench_memory(args, data)
    res["paper_protocol"] = paper_protocol(res["matmul"]["interleaved_median"])
    res["targets"] = targets(res)
    res["environment"]["loadavg_final"] = list(os.getloadavg())
    res["wall_time_s"] = time.time() - started
    out = args.out or ROOT / "benchmarks" / "results" / f"{device.type}.json"
    write_json(out, res)  # atomic: temporary file, then os.replace
    print()
    print(table(res))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
