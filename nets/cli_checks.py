"""The checks ``python -m nets`` makes of a subcommand's options before anything is loaded or
written: each refusal is one :class:`~nets.commands.UsageError` line (exit 2).

:func:`profile_of` builds the run's profile from the options (seeds, groups, dataset, nu grid,
epochs, regularizers, your ``--model``); :func:`check_options` checks the device, precision,
threads, the Ray executor's flags and the results folder; :func:`check_report_options` the flags
``report`` does not take.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Sequence

from nets.commands import EPOCHS_COMMANDS, LOGIT_GRID_COMMANDS, REGULARIZER_COMMANDS, UsageError
from nets.experiments.cnn import cnn_model
from nets.experiments.profiles import Profile, get_profile
from nets.precision import check_precision
from nets.ray_cluster import check_address, ray_import_error
from nets.results_io import check_folder, out_dir
from nets.train.config import check_device, resolve_device, set_threads

__all__ = ["check_seeds", "profile_of", "check_options", "check_report_options"]


def check_seeds(seeds: Sequence[int] | None) -> None:
    """Refuse a negative seed, or one listed twice (``--seeds``)."""
    if seeds is None:
        return
    bad = [s for s in seeds if s < 0]
    if bad:
        raise UsageError(f"--seeds must be non-negative integers, got {bad[0]}")
    repeated = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if repeated:
        raise UsageError(f"--seeds lists seed {repeated[0]} more than once")


def profile_of(args: argparse.Namespace) -> Profile:
    """The profile ``args`` asks for: ``--profile`` with the seeds, groups, dataset, logit nu grid,
    epochs and regularizers given (each where the subcommand takes it), and for ``cnn --model`` your
    factory, built once so that a bad spec is refused before anything else."""
    check_seeds(args.seeds)
    try:
        profile = get_profile(args.profile)
        if args.seeds:
            profile = profile.with_seeds(args.seeds)
        if args.groups:
            profile = profile.with_groups(args.groups)
        profile = profile.with_dataset(args.dataset)
        if args.command in LOGIT_GRID_COMMANDS and args.nu_grid is not None:
            profile = profile.with_nu_grid("logit", args.nu_grid)
        if args.command in EPOCHS_COMMANDS and args.epochs is not None:
            profile = profile.with_epochs(args.epochs)
        if args.command in REGULARIZER_COMMANDS and args.regularizers is not None:
            profile = profile.with_regularizers(args.regularizers)
        if args.command == "cnn" and args.factory is not None:  # your model in place of the SmallCNN
            profile = replace(profile, model=args.factory)
            cnn_model(profile, check_logits=True)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return profile


def _usage(check, *a) -> None:
    """``check(*a)``, its ``ValueError`` as a :class:`~nets.commands.UsageError` of the same line."""
    try:
        check(*a)
    except ValueError as e:
        raise UsageError(str(e)) from None


def check_options(args: argparse.Namespace, profile: Profile) -> None:
    """Refuse a device this machine does not have, ``--precision bf16`` where it cannot run (naming
    the missing CPU flags), a bad ``--threads``, the Ray executor's flags without ``--executor ray``
    or out of range, Ray missing or its ``--address`` unreachable, and a results folder that cannot
    be written (a file where it or its ``figures/`` / ``checkpoints/`` go, a read-only disk)."""
    _usage(check_device, args.device)
    if args.precision != "fp32":
        _usage(check_precision, args.precision, resolve_device(args.device))
    _usage(set_threads, args.threads)
    for flag, value in (("--address", args.address), ("--task-threads", args.task_threads),
                        ("--task-gpus", args.task_gpus)):
        if value is not None and args.executor != "ray":
            raise UsageError(f"{flag} applies to --executor ray only")
    if args.address is not None and (not args.address or args.address != args.address.strip()):
        raise UsageError(f"--address {args.address!r} is empty or has spaces around it: give auto, HOST:PORT, "
                         f"ray://HOST:PORT or local")
    if args.task_threads is not None and args.task_threads < 1:
        raise UsageError(f"--task-threads must be >= 1, got {args.task_threads}")
    if args.task_gpus is not None and not 0 < args.task_gpus <= 8:
        raise UsageError(f"--task-gpus must be more than 0 and at most 8 GPUs, got {args.task_gpus}")
    if args.task_gpus is not None and (kind := check_device(args.device).type) != "cuda":
        raise UsageError(f"--task-gpus applies to tasks that train on CUDA (--device cuda), not on {kind}")
    if args.executor == "ray":
        missing = ray_import_error()
        if missing is not None:
            raise UsageError(f"--executor ray {missing}")
        check_address(args.address)
    for folder in ("", "figures", "checkpoints"):
        check_folder(out_dir(profile, args.results) / folder)


def check_report_options(args: argparse.Namespace, profile: Profile) -> None:
    """Refuse flags ``report`` would ignore: it trains nothing (``--reuse-from``) and renders every
    result the folder holds, with the seeds and groups they were computed for."""
    if args.reuse_from is not None:
        raise UsageError("--reuse-from links checkpoints for a run that trains; report trains nothing")
    given = [flag for flag, value in (("--seeds", args.seeds), ("--groups", args.groups),
                                      ("--overwrite", args.overwrite or None)) if value is not None]
    if given:
        raise UsageError(f"{given[0]} does not apply to report, which renders every result the folder "
                         f"{out_dir(profile, args.results)}/ holds, with the seeds and groups they were "
                         "computed for")
