"""``python -m nets own-data``: the paper's claims on your model and your own images.

    python -m nets own-data --model PKG.MODULE:FACTORY --data FILE.pt|FILE.npz --groups r4 [t4 ...]
                            --out DIR [--epochs 20] [--seeds 0 1 2 3] [--nu-grid 1 3 10 30 100]
                            [--si-samples 200] [--sigma-samples 500] [--ig-steps 50] [--device auto]
                            [--threads N] [--profile smoke]

``FILE`` holds your three splits, each images ``x_<split> (N, *C, H, W)`` (floating point, normalized
as the model should see them) and integer labels ``y_<split> (N,)``:
``torch.save({"x_train": ..., "y_train": ..., "x_val": ..., "y_val": ..., "x_test": ..., "y_test": ...}, FILE)``
or ``numpy.savez(FILE, x_train=..., ...)``. ``FACTORY()`` builds the model (float32, logits
``(N, classes)``); it is trained as WT, DA and IR with the paper's optimizer (Adam 8e-4, batch 512) for
``--epochs`` per seed, then measured on the test split, and the paper's claims 1, 1b, 2, 3 and 5 are
decided on 95% intervals over the seeds (:mod:`nets.experiments.own_data`). Writes
``DIR/own_data.json``, ``DIR/REPORT.md`` and the checkpoints ``DIR/checkpoints/`` (an interrupted run
resumes). Any problem with the inputs is one line on stderr, ``error: ...``, exit status 2, before
anything trains; a folder that cannot be written, one line and exit status 1; Ctrl-C, one line and exit
status 130 (the run resumes from its checkpoints). ``--profile smoke`` tries the plumbing in seconds
(1 epoch, seeds 0 and 1, nu 10, 8 SI and sigma_max images; a flag given sets its own value), as the
other commands' smoke profile does; its verdicts mean nothing.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from nets.cli_types import OneLineParser, nonnegative_int, positive_float, positive_int
from nets.experiments.own_data import OwnDataSettings, run_own_data
from nets.model_spec import one_line
from nets.results_io import ResultsWriteError, check_folder, saved_checkpoints_text
from nets.train.config import TrainingDiverged, set_threads

__all__ = ["add_parser", "build_parser", "main"]

SUMMARY = "the paper's claims 1-3 and 5 on your model trained on your own images (train / val / test in one file)"
_DEFAULT = OwnDataSettings()
#: ``--profile``: the settings a flag not given takes.
PROFILES = {"default": _DEFAULT,
            "smoke": OwnDataSettings(seeds=(0, 1), epochs=1, nu_grid=(10.0,), n_si_samples=8, n_sigma_samples=8)}
#: Each settings field and the flag that sets it.
FLAGS = {"seeds": "--seeds", "epochs": "--epochs", "nu_grid": "--nu-grid", "n_si_samples": "--si-samples",
         "n_sigma_samples": "--sigma-samples", "ig_steps": "--ig-steps", "batch_size": "--batch-size", "lr": "--lr"}


def _description() -> str:
    return SUMMARY + ".\n\n" + "\n\n".join(__doc__.split("\n\n")[1:])


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PKG.MODULE:FACTORY",
                   help="importable factory returning the nn.Module (called with no arguments)")
    p.add_argument("--data", required=True, metavar="FILE.pt|FILE.npz",
                   help="x_train, y_train, x_val, y_val, x_test, y_test (torch.save of a dict, or numpy.savez)")
    p.add_argument("--groups", nargs="+", required=True, metavar="GROUP",
                   help="r4, r2, t3, d4, f2 (mirror), f2y, t<n>, t<n>y, t<n>xy, or your own as PKG.MODULE:GROUP (a "
                        "nets.groups.Group); each must fit your images (rotations: square; t<n>: n | W; t<n>xy: n | H "
                        "and n | W)")
    p.add_argument("--out", required=True, metavar="DIR", help="own_data.json, REPORT.md and checkpoints/ go here")
    p.add_argument("--profile", choices=tuple(PROFILES), default="default",
                   help="smoke: seconds, to try the plumbing (1 epoch, seeds 0 1, nu 10, 8 SI and sigma_max images); "
                        "the flags below override it (default: their defaults)")
    p.add_argument("--epochs", type=positive_int, help=f"per seed (default {_DEFAULT.epochs})")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", help=f"distinct (default {list(_DEFAULT.seeds)})")
    p.add_argument("--nu-grid", type=float, nargs="+", metavar="NU",
                   help=f"IR's nu values, searched smallest first for validation SI >= 0.95 (default "
                        f"{list(_DEFAULT.nu_grid)})")
    p.add_argument("--si-samples", type=positive_int,
                   help=f"SI on the first this many validation / test images (default {_DEFAULT.n_si_samples})")
    p.add_argument("--sigma-samples", type=positive_int,
                   help=f"sigma_max on the first this many test images (default {_DEFAULT.n_sigma_samples})")
    p.add_argument("--ig-steps", type=positive_int,
                   help=f"integrated-gradients steps of each saliency map (default {_DEFAULT.ig_steps})")
    p.other_names = {"--n-steps": "own-data names it --ig-steps"}  # --group: argparse takes it for --groups
    p.add_argument("--batch-size", type=positive_int,
                   help=f"training batch (default {_DEFAULT.batch_size}, the paper's; a small training split wants "
                        "fewer)")
    p.add_argument("--lr", type=positive_float, help=f"Adam's learning rate (default {_DEFAULT.lr})")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``own-data`` subcommand to an ``argparse`` subparsers object; return its parser."""
    p = subparsers.add_parser("own-data", help=SUMMARY, description=_description(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m nets own-data", description=_description(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    return p


def settings_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> OwnDataSettings:
    """The run's settings: ``--profile``'s, each flag given replacing its field; a bad value is
    argparse's one-line usage error naming the flag."""
    base = PROFILES[args.profile]
    given = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in FLAGS.items()}
    values = {field: (tuple(v) if isinstance(v, list) else v) for field, v in given.items() if v is not None}
    if "seeds" in values and len(set(values["seeds"])) != len(values["seeds"]):
        parser.error(f"--seeds must be distinct, got {list(values['seeds'])}")
    try:
        return replace(base, **values)
    except ValueError as e:  # OwnDataSettings' checks the flags' types leave: the nu grid, which its message names
        parser.error(str(e))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_of(args, parser)
    try:
        check_folder(args.out)  # before the work, not after it
    except ResultsWriteError as e:
        print(f"error: --out {args.out}: {one_line(e)}", file=sys.stderr)
        return 1
    try:
        set_threads(args.threads)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "nets", "own-data", *argv]) if argv is not None else None  # None: this process's
    try:
        results = run_own_data(args.model, args.data, args.groups, args.out, settings, device=args.device,
                               progress=not args.no_progress, command=command)
    except (ResultsWriteError, TrainingDiverged) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    except ValueError as e:  # OwnDataError, ImageFileError, ModelSpecError, the trainer's and measures' errors
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # checkpoints and results files are written atomically: none is half-written
        print(f"interrupted: {saved_checkpoints_text(Path(args.out) / 'checkpoints')}", file=sys.stderr)
        return 130
    print(f"wrote {args.out}/own_data.json and {args.out}/REPORT.md "
          f"({len(results['table1']['groups'])} group(s), seeds {list(settings.seeds)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
