"""``python -m nets.data {fetch,info,show}``: fetch and verify the IDX files, print what the
splits hold, plot a few orbits."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from nets.cli_types import nonnegative_int
from nets.data.orbits import MAX_SAMPLES, plot_orbits
from nets.data.splits import (
    DATASETS,
    DROPPED_CLASS,
    N_CLASSES,
    FetchError,
    IdxError,
    load_splits,
    normalize_splits,
    raw_splits,
)
from nets.fetch_step import FOLDERS, cache_root, canonical_name, fetch
from nets.groups import get_group
from nets.results_io import ResultsWriteError, check_file

__all__ = ["main"]

DESCRIPTION = "Transforming-MNIST and Transforming-FMNIST (paper Section 4.1), and the drift of Section 4.3."

def _cmd_fetch(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    report = fetch(args.dataset, from_dir=args.from_dir, cache_dir=args.cache, progress=not args.quiet,
                   sources=[] if args.offline else None)
    width = max(len(f"{FOLDERS[d]}/{fn}") for d, files in report.items() for fn in files)
    for dataset, files in report.items():
        for fn, r in files.items():
            status = "verified" if r.verified else "NOT VERIFIED"
            print(f"{FOLDERS[dataset] + '/' + fn:{width}s}  {status}  sha256 {r.sha256[:16]}...  "
                  f"from {r.source}  ({r.seconds:.2f} s)")
            if args.verbose:
                for why in r.tried:
                    print(f"{'':{width}s}    (tried {why})")
    print(f"cache: {cache_root(args.cache)}  ({time.perf_counter() - t0:.2f} s)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    for name in args.dataset:
        key = canonical_name(name)
        t0 = time.perf_counter()
        raw = raw_splits(key, args.split_seed, args.cache, None, None, not args.quiet)
        splits = normalize_splits(raw)
        dt = time.perf_counter() - t0
        pooled = raw.pooled_counts
        kept = sum(pooled) - pooled[DROPPED_CLASS[key]]
        print(f"== {key} ({cache_root(args.cache) / FOLDERS[key]}), built in {dt:.2f} s")
        for fn, digest in raw.files.items():
            print(f"  {fn:26s} sha256 {digest}  verified")
        print(f"  pooled train+test: {sum(pooled)} images; per class {list(pooled)}")
        print(f"  after dropping class {DROPPED_CLASS[key]}: {kept} images, 9 classes (labels 0..8)")
        if splits.class_names:
            print("  classes " + ", ".join(f"{c} {n}" for c, n in enumerate(splits.class_names[:N_CLASSES])))
        used = sum(len(splits[s]) for s in ("train", "val", "test"))
        print(f"  split seed {args.split_seed}: train {len(splits.train)} / val {len(splits.val)} / "
              f"test {len(splits.test)} (unused {kept - used}); images {tuple(splits.train.x.shape[1:])}")
        for s in ("train", "val", "test"):
            counts = torch.bincount(splits[s].y, minlength=N_CLASSES).tolist()
            print(f"  {s:5s} per class {counts}")
        tx = splits.train.x
        print(f"  normalization (scalar, padded training images in [0,1]): mean {splits.mean:.6f}, "
              f"std {splits.std:.6f}; normalized train mean {tx.mean().item():+.2e}, std {tx.std().item():.6f}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    splits = load_splits(args.dataset, args.split_seed, args.cache, progress=not args.quiet)
    group = get_group(args.group)
    out = plot_orbits(splits[args.split], group, args.n, args.out,
                      title=f"{canonical_name(args.dataset)} {args.split}: each sample under every {group.name} element g")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nets.data", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cache", type=Path, default=None, help="cache root (default: $GENUINE_INVARIANCE_CACHE, "
                       "else $XDG_CACHE_HOME/genuine-invariance, else ~/.cache/genuine-invariance)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("fetch", help="fetch and verify the IDX files into the cache")
    p.add_argument("--from", dest="from_dir", type=Path, default=None,
                   help="a folder holding the IDX files (raw or .gz; default: $GENUINE_INVARIANCE_DATA_FROM)")
    p.add_argument("--dataset", nargs="+", default=list(DATASETS), help="datasets (default: both)")
    p.add_argument("--offline", action="store_true",
                   help="only the --from folder and the cache, never the network (a machine without one)")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the sources that failed first")
    common(p)
    p = sub.add_parser("info", help="counts per split and class, normalization statistics, checksums")
    p.add_argument("--dataset", nargs="+", default=list(DATASETS))
    p.add_argument("--split-seed", type=nonnegative_int, default=0)
    common(p)
    p = sub.add_parser("show", help="plot a few samples under every group element")
    p.add_argument("--dataset", default="mnist", help="mnist or fmnist (default: %(default)s)")
    p.add_argument("--group", default="r4", help="the group whose elements are the columns: r4, t3, d4, f2, "
                   "t<n>xy, ... (default: %(default)s)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-seed", type=nonnegative_int, default=0)
    p.add_argument("--n", type=int, default=4, help=f"number of samples (rows, at most {MAX_SAMPLES})")
    p.add_argument("--out", type=Path, required=True, help="the figure's file: .png, .pdf or .svg")
    common(p)
    args = parser.parse_args(argv)
    try:  # names first: an unknown dataset or group is a usage error (exit 2), listing the known ones
        for d in [args.dataset] if isinstance(args.dataset, str) else args.dataset:
            canonical_name(d)
        if args.command == "show":
            get_group(args.group)
            if args.out.suffix.lower() not in (".png", ".pdf", ".svg"):
                raise ValueError(f"--out {args.out}: name the figure's file with .png, .pdf or .svg")
            if not 1 <= args.n <= MAX_SAMPLES:
                raise ValueError(f"--n must be in [1, {MAX_SAMPLES}] (one figure row per sample), got {args.n}")
        if args.command == "fetch" and args.from_dir is not None and not args.from_dir.is_dir():
            raise ValueError(f"--from {args.from_dir} is not a folder")
    except ValueError as e:
        print(f"python -m nets.data {args.command}: error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "show":
            check_file(args.out)  # before the data is loaded, not after
        return {"fetch": _cmd_fetch, "info": _cmd_info, "show": _cmd_show}[args.command](args)
    except (FetchError, IdxError, ValueError, ResultsWriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # downloads and cache files are written atomically: nothing half-written
        print("interrupted: the files fetched so far are whole and verified; run the same command again",
              file=sys.stderr)
        return 130
