"""``python -m nets EXPERIMENT --profile P [--device D] [--results DIR] [--seeds S ...]``

Experiments: table1, drift (Figure 4), spectral (Figure 5), tsne (Figure 2),
saliency (Figures 1 and 3), reproduce (all of them, then REPORT.md), report
(redraw every figure from the JSON files and rewrite REPORT.md; trains nothing), and
intervals (bootstrap intervals over test samples from the checkpoints; trains nothing).
Results go to ``<results>/<profile>/``; finished training runs are loaded from
``<results>/<profile>/checkpoints/``, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from nets.experiments.common import EXPERIMENTS, RESULTS_ROOT, command_line, draw, figure_dir, out_dir
from nets.experiments.profiles import PROFILES, get_profile

COMMANDS = (*EXPERIMENTS, "reproduce", "report", "intervals")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nets", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=COMMANDS)
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="sizes: smoke (seconds, CI), quick (<15 min on 2 CPU cores), paper (the exact protocol)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--results", default=str(RESULTS_ROOT), help="results root (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the profile's seeds")
    p.add_argument("--groups", nargs="+", default=None, metavar="GROUP",
                   help="run only these of the profile's groups (r4, t3); results of the others already in the "
                        "results folder are kept, and the JSON lists the groups still pending")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is much faster on a machine shared with "
                        "other CPU-heavy processes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--recompute", action="store_true",
                   help="reproduce: run every experiment for every group again (default: a group whose results "
                        "from this same sweep are already on disk is kept, so an interrupted reproduce resumes)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.recompute and args.experiment != "reproduce":
        parser.error("--recompute applies to reproduce only (a single experiment always runs the groups it is given)")
    profile = get_profile(args.profile)
    if args.seeds:
        profile = profile.with_seeds(args.seeds)
    if args.groups:
        profile = profile.with_groups(args.groups)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    command = command_line(None if argv is None else ["python", "-m", "nets", *argv])
    started = time.time()
    if args.experiment == "report":
        from nets.report import load_results, write_report

        results = load_results(out_dir(profile, args.results))
        for name, r in results.items():
            if name in EXPERIMENTS:  # intervals.json has no figure
                draw(name, r, figure_dir(profile, args.results))
        path = write_report(out_dir(profile, args.results))
        print(f"wrote {path}")
        return 0
    if args.experiment == "intervals":
        from nets.experiments.intervals import run_intervals

        run_intervals(profile, args.results, device=args.device, progress=not args.no_progress, command=command)
        print(f"intervals ({profile.name}) finished in {time.time() - started:.0f} s: "
              f"{out_dir(profile, args.results) / 'intervals.json'}")
        return 0
    from nets.experiments import runner

    extra = {"recompute": args.recompute} if args.experiment == "reproduce" else {}
    out = runner(args.experiment)(profile, args.results, device=args.device, progress=not args.no_progress,
                                  command=command, **extra)
    where = out if args.experiment == "reproduce" else out_dir(profile, args.results) / f"{args.experiment}.json"
    print(f"{args.experiment} ({profile.name}) finished in {time.time() - started:.0f} s: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
