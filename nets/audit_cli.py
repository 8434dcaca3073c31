"""``python -m nets audit``: audit your own model on Transforming-MNIST / -FMNIST test images, or on yours.

    python -m nets audit --model PKG.MODULE:FACTORY [--weights FILE.pt] --dataset mnist|fmnist
                         --group r4|t3|d4|f2|... --n 1000 --out DIR [--channels 0|1|3]
                         [--baseline PKG.MODULE:FACTORY [--baseline-weights FILE.pt]] [--device D] [--threads N]
    python -m nets audit --model PKG.MODULE:FACTORY [--weights FILE.pt] --images FILE.pt|FILE.npz
                         --group r4|t3|d4|f2|t3xy|PKG.MODULE:GROUP|... [--n N] --out DIR [--baseline ...]

``FACTORY()`` (called with no arguments) builds the model; ``--weights`` loads a state dict
saved with ``torch.save(model.state_dict(), FILE)`` (or one of this project's checkpoints,
whose ``"best_state"`` is used) with ``torch.load(..., weights_only=True)``; a WT run's checkpoint is
measured pooled over its group as it was trained (:func:`nets.weights_file.checkpoint_model`). The model is put
in eval mode (the output says so), so batch normalization uses its running statistics. The
first ``--n`` test images (36 x 36, normalized) reach the model as ``(N, 1, 36, 36)`` by
default; ``--channels 0`` gives ``(N, 36, 36)``, ``--channels 3`` repeats the image on three
channels ``(N, 3, 36, 36)``. ``--images`` takes your own labelled images instead, ``x (N, *C, H, W)``
floating point and normalized as the model was trained, ``y (N,)`` integer labels, saved as
``torch.save({"x": x, "y": y}, FILE.pt)`` or ``numpy.savez(FILE.npz, x=x, y=y)``
(:mod:`nets.image_file`; the first ``--n``, default all, are used as stored). ``--no-labels``
measures without labels (``--images`` then needs only ``x``): no accuracy, and SI's saliency maps
target each input's own predicted class. Prints the table of :meth:`nets.auditing.AuditResult.to_markdown` and
writes ``audit.json``, ``audit.png`` and ``audit.pdf`` into ``DIR`` (each atomically, :func:`nets.results_io.write_bytes`).
With ``--baseline``, the model (B) is also compared with that baseline model (A) on the same images
(:func:`nets.audit_compare.compare_samples`: B - A or B / A per measure, paired bootstrap intervals
over the samples, a direction), printed and written to ``DIR/compare.json``.
Any problem with the inputs is one line on stderr, ``error: ...``, exit status 2, and nothing
written; a folder that cannot be written, or running out of memory (which names ``--chunk-size``),
one line and exit status 1; Ctrl-C, one line and exit status 130.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from nets.audit_compare import images_per_model
from nets.audit_inputs import AuditError, audit_images, ready_model  # re-exported
from nets.cli_types import OneLineParser
from nets.image_file import load_labelled, load_unlabelled
from nets.layout_hints import CHANNELS_LAST_MODEL, ChannelsLast, channels_last_warning
from nets.model_checks import is_out_of_memory, parameter_dtype
from nets.model_spec import one_line
from nets.precision import exact_float32
from nets.audit_outputs import write_audit
from nets.results_io import ResultsWriteError, check_folder, run_provenance, sha256_file
from nets.train import GroupPooled
from nets.train.config import check_device, set_threads

__all__ = ["AuditError", "add_parser", "build_parser", "main", "audit_images"]


SUMMARY = "audit your own model: LI, DI, SI, sigma_max, orbit accuracy, per-layer invariance, 95% intervals"


def _description() -> str:
    return SUMMARY + ".\n\n" + "\n\n".join(__doc__.split("\n\n")[1:])


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``audit`` subcommand to an ``argparse`` subparsers object; return its parser."""
    p = subparsers.add_parser("audit", help=SUMMARY.replace("%", "%%"), description=_description(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m nets audit", description=_description(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="PKG.MODULE:FACTORY",
                   help="importable factory returning the nn.Module (called with no arguments)")
    p.add_argument("--weights", default=None, metavar="FILE.pt", help="state dict (torch.save(model.state_dict()))")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=("mnist", "fmnist"), default=None,
                        help="this project's test images (default mnist)")
    source.add_argument("--images", default=None, metavar="FILE.pt|FILE.npz",
                        help='your labelled images: torch.save({"x": x, "y": y}, FILE) or numpy.savez(FILE, x=x, y=y), '
                             "x (N, *C, H, W) float, normalized as the model was trained, y (N,) int")
    p.add_argument("--no-labels", action="store_true",
                   help="measure without labels: --images needs only x (a y in it is not used); no accuracy, "
                        "SI's saliency maps target each input's own predicted class")
    p.add_argument("--group", required=True,
                   help="r4, r2, t3, d4, f2 (left-right mirror), f2y, t<n>, t<n>y, t<n>xy, or your own "
                   "nets.groups.Group as PKG.MODULE:GROUP; one group (run audit once per group)")
    p.add_argument("--n", type=int, default=None,
                   help="the first N samples (default 1000 of --dataset, every image of --images)")
    p.add_argument("--channels", type=int, choices=(0, 1, 3), default=None,
                   help="--dataset images as 0: (N, 36, 36); 1: (N, 1, 36, 36) (default); 3: (N, 3, 36, 36), "
                        "the image repeated")
    p.add_argument("--out", required=True, metavar="DIR", help="where audit.json, audit.png, audit.pdf go")
    p.add_argument("--n-steps", type=int, default=50, help="integrated-gradients steps for SI (default %(default)s)")
    p.other_names = {"--groups": "audit measures one group, --group GROUP (run it once per group)",
                     "--ig-steps": "audit names it --n-steps"}
    p.add_argument("--si-samples", type=int, default=None, help="SI on the first this many samples (default all)")
    p.add_argument("--sigma-samples", type=int, default=None,
                   help="sigma_max on the first this many samples (default all)")
    p.add_argument("--chunk-size", type=int, default=256,
                   help="samples per pass through the model (SI: a quarter of it, times --n-steps); lower it "
                        "for a large model or image that runs out of memory (default %(default)s)")
    p.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--baseline", default=None, metavar="PKG.MODULE:FACTORY",
                   help="also compare the model with this one on the same images (paired intervals; compare.json)")
    p.add_argument("--baseline-weights", default=None, metavar="FILE.pt", help="state dict of the --baseline model")


#: The measures' keyword arguments that an error may begin with, and the options that set them.
FLAGS = {"n_steps": "--n-steps", "si_samples": "--si-samples", "sigma_samples": "--sigma-samples",
         "n_resamples": "--n-resamples", "chunk_size": "--chunk-size"}


def as_flags(message: str) -> str:
    """``message`` with a leading keyword argument of the measures named as its option
    (``si_samples must be ...`` -> ``--si-samples must be ...``)."""
    word = message.split(" ", 1)[0]
    return FLAGS[word] + message[len(word):] if word in FLAGS else message


def channels_hint(message: str) -> str:
    """For a model that refused ``--dataset`` images but accepts a layout ``--channels`` gives
    (``it accepts (M, 3, 36, 36)``, or ``(M, 36, 36)``): the option that gives it; else ``""``."""
    m = re.search(r"it accepts \(M, (?:(\d+), )?36, 36\)", message)
    channels = None if m is None else (m.group(1) or "0")
    return f" (with --dataset: give --channels {channels})" if channels in ("0", "1", "3") else ""


def _pooling(model: nn.Module) -> dict | None:
    """The group pooling a WT model measures (``{"group", "pooling"}``), else ``None``."""
    return {"group": model.group_record, "pooling": model.pooling} if isinstance(model, GroupPooled) else None


def _label(spec: str, weights: str | None) -> str:
    """How a compared model is named: its factory, and its weights file's name when one is loaded."""
    return spec if not weights else f"{spec} ({Path(weights).name})"


def _pair_labels(args: argparse.Namespace) -> tuple[str, str]:
    """The baseline's and the model's names in the comparison, told apart: by the weights files'
    paths as given where their names alone agree (``runA/model.pt``, ``runB/model.pt``), else by a
    ``baseline`` tag (the same factory, or the same file, compared with itself)."""
    a, b = _label(args.baseline, args.baseline_weights), _label(args.model, args.weights)
    if a == b and args.baseline_weights and args.weights:
        a, b = f"{args.baseline} ({args.baseline_weights})", f"{args.model} ({args.weights})"
    return (f"{a} [baseline]", b) if a == b else (a, b)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``audit`` (module docstring); returns the exit status (Ctrl-C: 130)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args, argv)
    except KeyboardInterrupt:  # the files are written at the end, each atomically: none is half-written
        print(f"interrupted: audit writes its files into {args.out}/ when it is done, each whole or not at "
              "all; run the same command again", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    started = time.time()
    from nets.audit_compare import compare_samples, logit_width
    from nets.auditing import audit, sample_measures

    try:
        check_folder(args.out)  # before the work, not after it
    except ResultsWriteError as e:
        print(f"error: --out {args.out}: {one_line(e)}", file=sys.stderr)
        return 1
    try:
        if args.baseline_weights and not args.baseline:
            raise AuditError("--baseline-weights needs --baseline")
        if args.chunk_size < 1:
            raise AuditError(f"--chunk-size must be at least 1, got {args.chunk_size}")
        try:
            device = check_device(args.device)
            set_threads(args.threads)
        except ValueError as e:  # "gpu", "cuda:x", CUDA on a machine without it, --threads 0
            raise AuditError(str(e)) from None
        if args.images and args.channels is not None:
            raise AuditError("--channels shapes --dataset images; --images are used as stored in the file")
        model, note = ready_model(args.model, args.weights, device, args.device)
        notes, baseline = [note], None
        if args.baseline:
            baseline, note = ready_model(args.baseline, args.baseline_weights, device, args.device, "--baseline")
            notes.append(note)
        # read in the wider of the two models' dtypes, then cast to each: a float16 model against its float32
        # original measures the float32 one on the images as stored, not on a float16 cast of them
        dtype = parameter_dtype(model) if baseline is None else \
            torch.promote_types(parameter_dtype(model), parameter_dtype(baseline))
        if args.images and args.no_labels:
            x = load_unlabelled(args.images, args.n, dtype, flag="--images")
            y = class_names = None
        elif args.images:
            x, y, class_names = load_labelled(args.images, args.n, dtype, flag="--images")
        else:
            x, y, class_names = audit_images(args.dataset or "mnist", 1000 if args.n is None else args.n,
                                             1 if args.channels is None else args.channels)
            x = x.to(dtype)  # as --images: a float64 / float16 / bfloat16 model gets its own dtype
            if args.no_labels:
                y, class_names = None, None
        images_sha256 = sha256_file(args.images) if args.images else None
        x, y = x.to(device), (None if y is None else y.to(device))
        x_base, x = (x, x) if baseline is None else \
            images_per_model(x, baseline, model, names=(f"--baseline {args.baseline}", f"--model {args.model}"))
        sizes = dict(n_steps=args.n_steps, si_samples=args.si_samples, sigma_samples=args.sigma_samples,
                     chunk_size=args.chunk_size)
        boot = dict(n_resamples=args.n_resamples, seed=args.seed)
        with warnings.catch_warnings():  # said once below, in this command's words
            warnings.simplefilter("ignore", ChannelsLast)
            result = audit(model, x, y, args.group, **sizes, **boot, name=args.model, class_names=class_names)
            comparison = None
            if baseline is not None:
                try:
                    base = sample_measures(baseline, x_base, y, args.group, **sizes)
                except ValueError as e:
                    raise AuditError(f"--baseline {args.baseline}: {one_line(e)}") from None
                names = _pair_labels(args)
                comparison = compare_samples(base, result.samples, args.group, names=names,
                                             input_shape=tuple(x.shape), **boot, class_names=class_names,
                                             settings={"n_steps": args.n_steps, "include_identity": False,
                                                       "chunk_size": args.chunk_size},
                                             n_logits=(logit_width(baseline, x_base), logit_width(model, x)))
        unrefused = channels_last_warning(tuple(x.shape), "the --images images", "save x as x.permute(0, 3, 1, 2)")
        if unrefused:  # measured all the same: the group acted on width and channels
            warnings.warn(f"{unrefused} ({CHANNELS_LAST_MODEL})", ChannelsLast, stacklevel=1)
    except ValueError as e:  # AuditError, ImageFileError and every measure's one-line ValueError
        message = as_flags(one_line(e))
        hint = "" if args.images or message.startswith("--baseline") else channels_hint(message)
        print(f"error: {message}{hint}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
        print(f"error: out of memory on --device {args.device} at --chunk-size {args.chunk_size} "
              f"({one_line(e)[:200]}); lower --chunk-size (or --n, --si-samples, --sigma-samples, or "
              f"--n-resamples, whose bootstrap holds --n-resamples x --n values)",
              file=sys.stderr)
        return 1
    if args.images:
        data = {"images": args.images, "images_sha256": images_sha256}
    else:
        data = {"dataset": args.dataset or "mnist", "split": "test",
                "channels": 1 if args.channels is None else args.channels}
    data["labels"] = not args.no_labels
    result.settings["chunk_size"] = args.chunk_size
    result.settings["source"] = {"model": args.model, "weights": args.weights,
                                 "weights_sha256": sha256_file(args.weights) if args.weights else None,
                                 **data, "eval_mode": True,
                                 "device": str(device), "wt_pooling": _pooling(model)}
    with exact_float32(device):  # as the measures ran: on CUDA its cuda_float32 record says so
        result.settings["provenance"] = run_provenance(
            device=str(device), started=started,
            command=shlex.join(["python", "-m", "nets", "audit", *argv]) if argv is not None else None)
    table = result.to_markdown()
    for note in filter(None, notes):
        print(f"({note})")
    print("(model put in eval mode: batch normalization uses running statistics, dropout is off)")
    print(table)
    if comparison is not None:
        comparison.settings["source"] = {**result.settings["source"], "baseline": args.baseline,
                                         "baseline_weights": args.baseline_weights,
                                         "baseline_wt_pooling": _pooling(baseline)}
        comparison.settings["provenance"] = result.settings["provenance"]
        print(comparison.to_markdown())
    try:
        written = write_audit(Path(args.out), result, comparison)
    except (ResultsWriteError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
