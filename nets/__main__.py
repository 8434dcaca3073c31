"""``python -m nets EXPERIMENT --profile P [--device D] [--results DIR] [--seeds S ...]``

Experiments: table1, drift (Figure 4), spectral (Figure 5), tsne (Figure 2),
saliency (Figures 1 and 3), reproduce (all of them, then REPORT.md), and report
(redraw every figure from the JSON files and rewrite REPORT.md; trains nothing).
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

COMMANDS = (*EXPERIMENTS, "reproduce", "report")


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
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: train in this process as the experiments go (default); ray: first train every "
                        "training stack the experiment needs as a Ray task, then run it (docs/scaling.md)")
    p.add_argument("--address", default=None,
                   help="with --executor ray: the Ray cluster (auto, or HOST:PORT; default: RAY_ADDRESS, else a "
                        "new local cluster)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.recompute and args.experiment != "reproduce":
        parser.error("--recompute applies to reproduce only (a single experiment always runs the groups it is given)")
    if args.address is not None and args.executor != "ray":
        parser.error("--address applies to --executor ray only")
    if args.executor == "ray" and args.experiment == "report":
        parser.error("--executor ray applies to experiments that train; report trains nothing")
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
            draw(name, r, figure_dir(profile, args.results))
        path = write_report(out_dir(profile, args.results))
        print(f"wrote {path}")
        return 0
    from nets.experiments import runner

    if args.executor == "ray":
        from nets.distributed import pretrain

        pretrain(profile, args.experiment, args.results, device=args.device, address=args.address,
                 progress=not args.no_progress)
    extra = {"recompute": args.recompute} if args.experiment == "reproduce" else {}
    out = runner(args.experiment)(profile, args.results, device=args.device, progress=not args.no_progress,
                                  command=command, **extra)
    where = out if args.experiment == "reproduce" else out_dir(profile, args.results) / f"{args.experiment}.json"
    print(f"{args.experiment} ({profile.name}) finished in {time.time() - started:.0f} s: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
