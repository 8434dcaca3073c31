"""``python -m nets checkpoints restore|manifest --profile P [--results DIR]``.

``restore`` brings back a profile's checkpoints from the commit its manifest names
(``results/<profile>/checkpoints.manifest.json``) and verifies every SHA-256, so the
experiments load the trained models instead of training them again. ``manifest``
writes that manifest from the checkpoints committed at ``HEAD`` (maintainers, after
committing new checkpoints; ``--add FILE ...`` appends files committed later). Errors are
one line on stderr, exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from nets.checkpoint_archive import ArchiveError, restore, write_manifest
from nets.cli_types import OneLineParser
from nets.dataset_files import DATASETS
from nets.results_io import PAPER_DATASET, RESULTS_ROOT, ResultsWriteError, out_dir
from nets.experiments.profiles import PROFILES, get_profile

__all__ = ["add_parser", "build_parser", "main"]


def _options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("action", choices=("restore", "manifest"),
                   help="restore: write <results>/<profile>/checkpoints/*.pt from the repository's history, "
                        "verified; manifest: write <results>/<profile>/checkpoints.manifest.json")
    p.add_argument("--profile", choices=sorted(PROFILES), default="paper", help="default: %(default)s")
    p.add_argument("--results", default=str(RESULTS_ROOT), help="results root (default: %(default)s)")
    p.add_argument("--dataset", choices=DATASETS, default=PAPER_DATASET,
                   help="with manifest: the checkpoints of runs on this dataset (fmnist: "
                        "<results>/<profile>/checkpoints/fmnist/); restore follows the manifest (default: %(default)s)")
    p.add_argument("--add", nargs="+", default=None, metavar="FILE",
                   help="with manifest: keep the manifest and add these checkpoint files, committed at HEAD "
                        "(checkpoints archived after the others; without a manifest, start one with these only)")
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``checkpoints`` subcommand of ``python -m nets``."""
    return _options(subparsers.add_parser(
        "checkpoints", description="restore a profile's checkpoints from the repository's history, verified\n\n"
        "writes: <results>/<profile>/checkpoints/*.pt (restore) or <results>/<profile>/checkpoints.manifest.json "
        "(manifest)", epilog="example: python -m nets checkpoints restore --profile paper",
        formatter_class=argparse.RawDescriptionHelpFormatter))


def build_parser() -> argparse.ArgumentParser:
    return _options(OneLineParser(prog="python -m nets checkpoints", description=__doc__.split("\n\n")[1],
                                            formatter_class=argparse.RawDescriptionHelpFormatter))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.add is not None and args.action != "manifest":
        parser.error("--add applies to `manifest` only")  # a usage error: exit 2
    folder = out_dir(get_profile(args.profile), args.results)
    try:
        if args.action == "restore":
            print(restore(folder).summary())
        else:
            print(f"wrote {write_manifest(folder, args.profile, add=args.add, dataset=args.dataset)}")
    except (ArchiveError, ResultsWriteError) as e:  # one line: a bad archive, or a folder it cannot write
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # every restored file is whole (atomic writes): a rerun goes on from there
        print("interrupted: the checkpoints restored so far are whole and verified; run the same command "
              "again to restore the rest", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
