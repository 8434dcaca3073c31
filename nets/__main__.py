"""``python -m nets SUBCOMMAND ...``: run the paper's experiments and write their report.

The subcommands and their parser are :mod:`nets.commands`, the checks of their options before
anything is loaded :mod:`nets.cli_checks`; this module runs the one asked for.

Bad input gets one line on stderr and exit code 2 (nothing is loaded or written first); a
refused overwrite exit 2; a damaged or missing results file for ``report``, a folder that
cannot be written, or a checkpoint that an evaluation-only subcommand lacks, exit 1; Ctrl-C exit 130, saying what was saved.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from contextlib import ExitStack
from typing import Sequence

from nets.checkpoint_archive import ArchiveError, read_manifest, restore
from nets.cli_checks import check_options, check_report_options, profile_of
from nets.commands import DEFAULTS, EVALUATION_ONLY, UsageError, build_parser, default_results_root
from nets.experiments.profiles import PAPER_DATASET
from nets.experiments.si_maps import METHODS as SI_METHODS, SETTINGS as SI_SETTINGS
from nets.precision import exact_float32
from nets.results_io import EXPERIMENTS, trained_elsewhere
from nets.reuse import ReuseRefused, reuse_checkpoints
from nets.startup import STARTING
from nets.train.config import check_device
from nets.train.runs import trained_before

# ---- subcommands ---------------------------------------------------------------------
def _report(args: argparse.Namespace, profile) -> int:
    from nets.experiments.common import draw
    from nets.figures import FIGURE_EXPERIMENTS
    from nets.report import load_results, write_report
    from nets.results_io import figure_dir, out_dir, read_json, reading

    folder = out_dir(profile, args.results)
    results = load_results(folder)
    if not results and not (folder / "cnn.json").exists():
        print(f"no results in {folder}/: nothing to report; run `python -m nets reproduce --profile "
              f"{profile.name} --results {args.results}` first", file=sys.stderr)
        return 1
    for name, r in results.items():
        if name in FIGURE_EXPERIMENTS:  # intervals.json, si_settings.json, ... have none
            with reading(folder / f"{name}.json", "its figures"):
                draw(name, r, figure_dir(profile, args.results))
    for name in ("cnn", "cnn_scale"):  # the CNN's, not among load_results' (its section reads them itself)
        if (folder / f"{name}.json").exists():
            with reading(folder / f"{name}.json", "its figures"):
                draw(name, read_json(folder / f"{name}.json"), figure_dir(profile, args.results))
    print(f"wrote {write_report(folder)}")
    return 0


def _writes(args: argparse.Namespace, profile) -> tuple[str, ...]:
    """The results files (names as ``result_path`` takes them) the experiment command ``args`` writes:
    ``reproduce`` writes those of its experiments with groups still to run (all under --recompute)."""
    from nets.experiments import scale, si_settings
    from nets.experiments.reproduce import pending_groups

    if args.command == "reproduce":
        pending = [n for n, todo in pending_groups(profile, args.results, args.precision, args.recompute).items()
                   if todo]
        return (*pending, "reproduce") if pending else ()
    if args.command == "per-class":
        return ("per_class",)
    if args.command == "train-size":
        return ("train_size",)
    if args.command in ("scale", "si-settings"):  # their file depends on --model
        return ((scale if args.command == "scale" else si_settings).OUTPUTS[args.model],)
    return (args.command,)


def _experiment(args: argparse.Namespace, profile, argv: Sequence[str] | None) -> int:
    from nets.experiments import runner
    from nets.experiments.common import SettingsMismatch, check_overwrite, folder_precision
    from nets.model_spec import ModelSpecError, one_line
    from nets.results_io import code_version, command_line, out_dir

    extra = {"recompute": args.recompute} if args.command == "reproduce" else {}
    if args.command == "si-settings" and args.settings is not None:
        extra["settings"] = {k: SI_SETTINGS[k] for k in dict.fromkeys(["paper", *args.settings])}
    if args.command == "si-settings" and args.methods is not None:
        extra["methods"] = tuple(m for m in SI_METHODS if m in args.methods)
    if args.command in ("scale", "si-settings") and args.model != "mlp":
        extra["model"] = args.model
    if args.command in ("centered", "detached") and args.nu_grid is not None:
        from nets.experiments.profiles import check_nu_grid

        try:
            extra["grid"] = check_nu_grid(args.nu_grid)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.command == "train-size" and args.sizes is not None:
        from nets.experiments.train_size import check_sizes

        try:
            extra["sizes"] = check_sizes(profile, args.sizes)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.command == "cnn":  # it writes cnn.json only, computed with the CNN's own sizes
        from nets.experiments.cnn import cnn_profile, cnn_sizes

        try:
            extra["sizes"] = sizes = cnn_sizes(profile.name, epochs=args.epochs, nu_grid=args.nu_grid)
        except ValueError as e:
            raise UsageError(str(e)) from None
        run_profile, experiments = cnn_profile(profile, sizes), ("cnn",)
        check_overwrite(run_profile, args.results, overwrite=args.overwrite, precision=args.precision,
                        experiments=experiments)
    else:
        run_profile, experiments = profile, EXPERIMENTS
        # an evaluation-only command measures the folder's models at the precision they were trained at
        precision = (folder_precision(profile, args.results) if args.command in EVALUATION_ONLY
                     and args.model == "mlp" else args.precision)
        check_overwrite(profile, args.results, overwrite=args.overwrite, precision=precision,
                        writes=_writes(args, profile))
    if read_manifest(out_dir(profile, args.results)) is not None:  # checkpoints kept in the repository's history
        report = restore(out_dir(profile, args.results))
        if report.restored:
            print(report.summary(), flush=True)
    if args.reuse_from is not None:
        print(reuse_checkpoints(run_profile, args.reuse_from, args.results, precision=args.precision,
                                experiments=experiments).summary(), flush=True)
    code_version()  # the code as it is now, recorded before a run that may last hours
    command = command_line(None if argv is None else ["python", "-m", "nets", *argv])
    started = time.time()
    ray_training = None
    if args.executor == "ray" and args.command == "reproduce" and not _writes(args, profile):
        print(f"reproduce ({profile.name}): every experiment's results are in the folder; nothing to train on Ray",
              flush=True)  # the serial pass below trains nothing either (a restored paper folder)
    elif args.executor == "ray":
        from nets.distributed import pretrain
        from nets.node_provenance import machines, mixed_machines_warning

        task_threads = args.task_threads or args.threads or 1
        trained_on = machines(pretrain(profile, args.command, args.results, device=args.device, address=args.address,
                                       progress=not args.no_progress, precision=args.precision,
                                       recompute=args.recompute,
                                       cpus_per_task=task_threads, gpus_per_task=args.task_gpus))
        trained = time.time() - started
        print(f"{args.command} ({profile.name}): training on Ray took {trained:.0f} s; now measuring", flush=True)
        mixed = mixed_machines_warning(trained_on)
        if mixed:
            print(f"warning: {mixed}", file=sys.stderr, flush=True)
        ray_training = {"wall_time_s": trained, "task_threads": task_threads, "machines": trained_on,
                        **({} if args.task_gpus is None else {"task_gpus": args.task_gpus})}
        if args.command == "reproduce":  # its wall time counts the training on Ray too, and says where it ran
            extra.update(started=started, ray_training=ray_training)
    if args.precision != "fp32":  # fp32 runs call every runner exactly as before
        extra["precision"] = args.precision
    try:
        with ExitStack() as within:
            within.enter_context(exact_float32(check_device(args.device)))  # on CUDA: IEEE float32 (nets.precision)
            if ray_training is not None:  # every result records where it trained; a run the plan missed is named
                within.enter_context(trained_elsewhere(ray_training))
                within.enter_context(trained_before("on Ray"))
            out = runner(args.command)(profile, args.results, device=args.device, progress=not args.no_progress,
                                       command=command, **extra)
    except ModelSpecError as e:  # scale / si-settings --model cnn: cnn.json's own model cannot be built here
        raise UsageError(one_line(e)) from None
    except ValueError as e:  # your model refused by the trainer or a measure: one line, not a traceback
        if profile.model is None or isinstance(e, SettingsMismatch):
            raise
        raise UsageError(f"--model {profile.model}: {one_line(e)}") from None
    where = out if args.command == "reproduce" else out_dir(profile, args.results) / f"{_writes(args, profile)[0]}.json"
    print(f"{args.command} ({profile.name}) finished in {time.time() - started:.0f} s: {where}")
    return 0


def _interrupted(args: argparse.Namespace, profile) -> int:
    from nets.results_io import checkpoint_dir, out_dir, saved_checkpoints_text

    if args.command == "report":
        print("interrupted: REPORT.md and each figure are written whole or not at all; run the same command "
              "again", file=sys.stderr)
    else:
        folder = out_dir(profile, args.results)
        done = sorted(p.name for p in folder.glob("*.json") if p.name != "checkpoints.manifest.json")
        results = (f"the results files in {folder}/ are whole ({', '.join(done)})" if done
                   else f"no results file was written in {folder}/")
        print(f"interrupted: {results}; {saved_checkpoints_text(checkpoint_dir(profile, args.results))}",
              file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nets``: the exit status. Warnings print as one line each, ``python -m nets
    SUBCOMMAND: warning: ...``, without the file, line and source text of Python's own format, and
    each text once (a warning raised again by every measure, such as torch's about a missing vmap
    rule, is said once)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []  # the subcommand, once parsed
    said: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = f"python -m nets{''.join(' ' + c for c in command[:1])}: warning: {message}"
        if text not in said:
            said.add(text)
            print(text, file=sys.stderr if file is None else file)

    with warnings.catch_warnings():
        warnings.showwarning = show
        return _main(argv, command)


def _main(argv: list[str], command: list[str]) -> int:
    try:  # the parser imports every extension, and the errors below their modules: Ctrl-C may come meanwhile
        parser = build_parser()
        args = parser.parse_args(argv)
        command[:] = [args.command] if args.command else []
        from nets.ray_cluster import ClusterError
        from nets.experiments.common import SettingsMismatch
        from nets.results_io import ResultsFileError, ResultsWriteError, WouldTrain
        from nets.train import TrainingDiverged
    except KeyboardInterrupt:
        print(STARTING, file=sys.stderr)
        return 130
    if getattr(args, "_extension", None) is not None:
        return int(args._extension.main(argv[argv.index(args.command) + 1:]) or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if not hasattr(args, "results"):
        args.results = str(default_results_root(getattr(args, "dataset", PAPER_DATASET),
                                                getattr(args, "precision", "fp32")))
    for k, v in DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    profile = None
    try:
        profile = profile_of(args)
        check_options(args, profile)
        if args.command == "report":
            check_report_options(args, profile)
            return _report(args, profile)
        return _experiment(args, profile, argv)
    except (UsageError, SettingsMismatch, ReuseRefused) as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (ResultsFileError, ResultsWriteError, ArchiveError, WouldTrain, ClusterError, TrainingDiverged) as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(args, profile) if profile is not None else 130


if __name__ == "__main__":
    sys.exit(main())
