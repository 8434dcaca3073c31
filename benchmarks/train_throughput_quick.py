"""Quick training throughput of ``nets.train`` (no real data needed).

Times DA / IR / WT epochs of the paper's MLP (233k parameters, batch 512) on
synthetic 36x36 data (10k train, 2k validation, as in the paper), a stack of
``--seeds`` runs trained together versus the same runs one after another, and
compares the DA epoch with the machine's matmul rate.

An epoch here is what ``train_runs`` does per epoch: the training pass *and*
the validation accuracy over the full validation orbit (|G| x 2k inputs).
Each measurement is the second epoch of a ``train_runs`` call (the first is a
warm-up), timed between ``on_epoch_end`` callbacks; stacked and sequential
measurements alternate for ``--rounds`` rounds (the machine may be shared), and
the report gives medians and the median of the per-round ratios.

    .venv/bin/python benchmarks/train_throughput_quick.py [--rounds 3] [--seeds 4] [--threads 1 --cpu-time]

FLOPs counted for the DA epoch (per sample, multiply-adds x 2): forward of all
layers; backward: weight gradients of all layers, input gradients of all but
the first; plus the forward of the validation orbit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nets.cli_types import group_arg, positive_int  # noqa: E402
from nets.data import synthetic_splits  # noqa: E402
from nets.results_io import cpu_info, run_provenance, write_json  # noqa: E402
from nets.train import TrainConfig, resolve_device, train_runs  # noqa: E402


CLOCK = time.perf_counter  # or time.process_time (--cpu-time)


def matmul_gflops(device: torch.device, m: int, k: int, n: int, reps: int = 10) -> float:
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = CLOCK()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, CLOCK() - t)
    return 2 * m * k * n / best / 1e9


def da_epoch_flops(n_train: int, n_val_orbit: int, widths: list[int]) -> float:
    macs = [a * b for a, b in zip(widths[:-1], widths[1:])]
    fwd = 2 * sum(macs)
    bwd = 2 * sum(macs) + 2 * sum(macs[1:])  # weight grads + input grads (not for the data)
    return n_train * (fwd + bwd) + n_val_orbit * fwd


def one_epoch(cfg: TrainConfig, seeds, splits, device, stack: bool) -> float:
    """Seconds of the second epoch of ``train_runs([cfg], seeds)`` (the first is a warm-up)."""
    stamps: list[float] = []

    def hook(done: int) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(CLOCK())

    train_runs([cfg], seeds, splits, device=device, progress=False, stack=stack, on_epoch_end=hook)
    return stamps[1] - stamps[0]


def reference_epoch_fn(cfg: TrainConfig, splits, device):
    """One epoch of ``benchmarks/reference.py`` (DataLoader, rot90 per element, nn.Sequential,
    default Adam, validation orbit accuracy), as a callable; None if it cannot be imported."""
    try:
        from benchmarks import reference as R
    except Exception:  # the reference belongs to the benchmark suite; optional here
        return None
    from nets.groups import get_group

    group = get_group(cfg.group)
    torch.manual_seed(0)
    model = (R.ReferenceInvariantMLP(group, (36, 36), 9, 128, 5) if cfg.method == "WT"
             else R.reference_mlp((36, 36), 9, 128, 5)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loader = R.reference_loader(splits.train.x, splits.train.y, cfg.batch_size)
    gen = torch.Generator().manual_seed(0)
    val = (splits.val.x, splits.val.y)
    fn = lambda: R.reference_train_epoch(model, opt, loader, cfg.method, group, cfg.nu, device, gen, val)  # noqa: E731
    fn()  # warm-up
    return fn


def interleaved(cfg: TrainConfig, seeds, splits, device, rounds: int, reference: bool = False):
    """Per round: one stacked epoch of all ``seeds``, then one epoch of each seed alone
    (summed), then (``reference``) one reference epoch. Adjacent measurements see the
    same machine load; returns seconds per run-epoch (stacked, sequential, reference)
    for every round."""
    ref_fn = reference_epoch_fn(cfg, splits, device) if reference else None
    stacked, sequential, ref = [], [], []
    for _ in range(rounds):
        stacked.append(one_epoch(cfg, seeds, splits, device, True) / len(seeds))
        sequential.append(sum(one_epoch(cfg, [s], splits, device, False) for s in seeds) / len(seeds))
        if ref_fn is not None:
            t = CLOCK()
            ref_fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            ref.append(CLOCK() - t)
    return stacked, sequential, ref


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved (stacked, sequential) rounds")
    p.add_argument("--seeds", type=positive_int, default=4)
    p.add_argument("--methods", default="DA,IR,WT")
    p.add_argument("--group", type=group_arg, default="r4")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--reference", action="store_true",
                   help="also time benchmarks/reference.py's plain epoch, interleaved")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process CPU clock (use with --threads 1 on a busy machine)")
    args = p.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    started = time.time()
    splits = synthetic_splits(n_train=10_000, n_val=2_000, n_test=0, seed=0)
    seeds = list(range(args.seeds))
    mm_big = matmul_gflops(dev, 2048, 2048, 2048, reps=5)
    mm_layer = matmul_gflops(dev, 512, 1296, 128, reps=20)
    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"clock {'process CPU' if args.cpu_time else 'wall'}; seconds per run-epoch (median of rounds)")
    print(f"matmul GFLOP/s: 2048^3 {mm_big:.1f}; 512x1296x128 {mm_layer:.1f}")
    out = {"device": str(dev), "threads": torch.get_num_threads(), "matmul_gflops_2048": mm_big,
           "matmul_gflops_512x1296x128": mm_layer, "methods": {}}
    for method in args.methods.split(","):
        cfg = TrainConfig(method=method, group=args.group, epochs=2, nu=1.0 if method == "IR" else 0.0)
        st, sq, ref = interleaved(cfg, seeds, splits, dev, args.rounds, args.reference)
        row = {"stacked": statistics.median(st), "sequential": statistics.median(sq),
               "speedup_stacked": statistics.median(b / a for a, b in zip(st, sq)),
               "rounds_stacked": st, "rounds_sequential": sq}
        if ref:
            row.update(reference=statistics.median(ref), rounds_reference=ref,
                       speedup_vs_reference_sequential=statistics.median(r / a for a, r in zip(sq, ref)),
                       speedup_vs_reference_stacked=statistics.median(r / a for a, r in zip(st, ref)))
        out["methods"][method] = row
        line = (f"{method}: per run-epoch stacked({len(seeds)}) {row['stacked']:.3f} s, "
                f"sequential {row['sequential']:.3f} s, stacked speedup {row['speedup_stacked']:.2f}x")
        if ref:
            line += (f"; reference {row['reference']:.3f} s -> ours {row['speedup_vs_reference_sequential']:.2f}x "
                     f"alone, {row['speedup_vs_reference_stacked']:.2f}x stacked")
        if method == "DA":
            from nets.groups import get_group

            G = get_group(args.group).order
            fl = da_epoch_flops(10_000, G * 2_000, [1296] + [128] * 5 + [9])
            for k in ("stacked", "sequential"):
                row[f"gflops_{k}"] = fl / row[k] / 1e9
            line += (f"; {fl / 1e9:.1f} GFLOP/epoch -> {row['gflops_stacked']:.1f} GFLOP/s stacked "
                     f"({100 * row['gflops_stacked'] / mm_big:.0f}% of 2048^3 matmul), "
                     f"{row['gflops_sequential']:.1f} sequential ({100 * row['gflops_sequential'] / mm_big:.0f}%)")
        print(line, flush=True)
    if args.json:  # atomically, with the CPU's model and flags, versions, threads and the command
        out.update(cpu=cpu_info(), settings={"rounds": args.rounds, "seeds": args.seeds, "group": args.group,
                                             "clock": "process CPU" if args.cpu_time else "wall"},
                   meta=run_provenance(device=str(dev), started=started, command=" ".join(
                       ["python", "benchmarks/train_throughput_quick.py", *(sys.argv[1:] if argv is None else argv)])))
        print(f"wrote {write_json(args.json, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
