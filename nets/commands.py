"""The subcommands of ``python -m nets`` and their parser (the dispatch is :mod:`nets.__main__`).

Every subcommand is one entry of :data:`SUBCOMMANDS` (the table of :mod:`nets.subcommands`) or
one module of :data:`EXTENSIONS` (a module with ``add_parser(subparsers)`` returning its parser,
and ``main(argv)`` taking the arguments after the subcommand's name), so adding one is one line.
Parse errors are one line (``prog: error: ...``), exit 2.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from nets.cli_types import OneLineParser, positive_int
from nets.dataset_files import DATASETS
from nets.experiments.centered import BEYOND_FORMS
from nets.experiments.profiles import PAPER_DATASET, PROFILES, REGULARIZERS
from nets.experiments.si_maps import METHODS as SI_METHODS, SETTINGS as SI_SETTINGS
from nets.precision import PRECISION_COMMANDS, PRECISIONS
from nets.results_io import RESULTS_ROOT
from nets.subcommands import EXAMPLE, SUBCOMMANDS, Subcommand  # re-exported

__all__ = ["EXTENSIONS", "EXAMPLE", "EVALUATION_ONLY", "LOGIT_GRID_COMMANDS", "REGULARIZER_COMMANDS", "Subcommand",
           "SUBCOMMANDS", "UsageError", "DEFAULTS", "default_results_root", "BF16_RESULTS_ROOT", "build_parser",
           "subcommand_names", "extensions"]

#: Modules that add a subcommand: ``add_parser(subparsers) -> ArgumentParser`` and ``main(argv) -> int``.
#: A module not (yet) present is skipped.
EXTENSIONS: tuple[str, ...] = ("nets.audit_cli", "nets.own_data_cli", "nets.checkpoints_cli")


class UsageError(ValueError):
    """Bad command-line input: one line, exit 2."""


def _run_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every experiment subcommand takes (also accepted before the subcommand, as before
    subcommands existed: ``python -m nets --profile smoke table1``)."""
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--profile", choices=sorted(PROFILES), default=d("quick"),
                   help="sizes: smoke (seconds, CI), quick (<15 min on 2 CPU cores), paper (the exact protocol)")
    p.add_argument("--device", default=d("auto"), help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--results", default=d(str(RESULTS_ROOT)), help=f"results root (default: {RESULTS_ROOT})")
    p.add_argument("--seeds", type=int, nargs="+", default=d(None), help="override the profile's seeds")
    p.add_argument("--groups", nargs="+", default=d(None), metavar="GROUP",
                   help="run only these of the profile's groups (r4, t3), or d4 (rotations and reflections, beyond the "
                        "paper); results of the others already in the results folder are kept, and the JSON lists "
                        "the profile's groups still pending")
    p.add_argument("--threads", type=int, default=d(None),
                   help="torch CPU threads (default: torch's choice; 1 is much faster on a machine shared with "
                        "other CPU-heavy processes)")
    p.add_argument("--no-progress", action="store_true", default=d(False), help="no progress bars")
    p.add_argument("--overwrite", action="store_true", default=d(False),
                   help="replace results in the folder that were computed with other settings (profile sizes, "
                        "seeds) or that a git repository tracks (the committed reference results); without it "
                        "such a run is refused and nothing is written")
    p.add_argument("--dataset", choices=DATASETS, default=d(PAPER_DATASET),
                   help="mnist: the paper's Transforming-MNIST (default); fmnist: Transforming-FMNIST, which the "
                        "paper builds but trains nothing on (Figure 4's drift then goes from FMNIST to MNIST); "
                        "results default to results/fmnist/ (docs/fmnist.md)")
    p.add_argument("--reuse-from", default=d(None), metavar="RESULTS",
                   help="before running, link the checkpoints of this other results root's folder of the same "
                        "profile (its results files must differ in the seeds only) into --results, so added seeds "
                        "train, finished ones load and unfinished ones go on here, the source left as it is "
                        "(docs/statistics.md)")


#: Subcommands that train nothing and evaluate checkpoints (no --executor, no --precision): they load
#: the folder's models at the precision its results files record, and measure them in float32.
EVALUATION_ONLY = ("scale", "si-settings", "intervals", "per-class", "between")

#: Subcommands whose ``--nu-grid`` replaces the profile's grid of IR's logit form (the CNN's and the
#: centered and detached forms' ``--nu-grid`` are their own experiments' grids).
LOGIT_GRID_COMMANDS = ("table1", "drift", "spectral", "tsne", "saliency", "reproduce", "intervals", "scale",
                       "si-settings", "per-class", "between", "train-size")

#: Subcommands whose ``--epochs`` replaces the profile's training length of every MLP (the CNN's
#: ``--epochs`` is its own, recorded in cnn.json's cnn_sizes).
EPOCHS_COMMANDS = (*LOGIT_GRID_COMMANDS, *BEYOND_FORMS)

#: Every option's value when neither the subcommand nor the command line sets it.
DEFAULTS = dict(profile="quick", device="auto", results=str(RESULTS_ROOT), seeds=None, groups=None, threads=None,
                 no_progress=False, overwrite=False, recompute=False, executor="local", address=None,
                 task_threads=None, task_gpus=None, precision="fp32", epochs=None, nu_grid=None, model="mlp",
                 factory=None, settings=None, methods=None, sizes=None, reuse_from=None, dataset=PAPER_DATASET,
                 regularizers=None)

#: Subcommands whose ``--regularizers`` chooses which of the paper's IR forms Figure 5 trains and
#: compares (``spectral``; ``centered``, ``detached`` and ``scale`` read that file and record the same
#: profile).
REGULARIZER_COMMANDS = ("spectral", *BEYOND_FORMS, "scale")


def default_results_root(dataset: str = PAPER_DATASET, precision: str = "fp32") -> Path:
    """The results root of a run not given ``--results``: ``results/`` for the paper's dataset in
    float32, else apart from those, one subfolder for another dataset and one for another training
    precision: ``results/bf16/``, ``results/fmnist/``, ``results/fmnist/bf16/``."""
    root = RESULTS_ROOT if dataset == PAPER_DATASET else RESULTS_ROOT / dataset
    return root if precision == "fp32" else root / precision


#: The results root of a bf16 run not given --results: apart from the float32 results.
BF16_RESULTS_ROOT = default_results_root(precision="bf16")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m nets`` parser: the experiments' subcommands and the extensions'."""
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, Any]:
    """The parser and its subcommands action (``.choices``: name -> subparser)."""
    lines = [f"  {s.name:<12} {s.summary}" for s in SUBCOMMANDS.values()]
    p = OneLineParser(prog="python -m nets", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Reproduce 'On genuine invariance learning without weight-tying': train, measure, "
                            "report.\n\nsubcommands:\n" + "\n".join(lines) + "\n  (EXTENSIONS)",
                epilog="examples:\n"
                       "  python -m nets table1 --profile smoke --results /tmp/gi   # seconds: one experiment\n"
                       f"  {EXAMPLE}   # minutes: everything, then REPORT.md\n"
                       "  python -m nets report --profile paper   # redraw the committed results\n"
                       "Results go to <results>/<profile>/ (default results/quick/); a run never replaces results "
                       "computed with other settings unless given --overwrite.")
    _run_options(p, suppress=True)
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=OneLineParser,
                           help="one of the subcommands above; `python -m nets SUBCOMMAND --help` for its options")
    for s in SUBCOMMANDS.values():
        sp = sub.add_parser(s.name, description=f"{s.summary}.\n\nwrites: {s.writes}.",
                            epilog=f"example: {s.example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        _run_options(sp, suppress=True)
        # the subcommands that train the MLP's stacks (nets.sweep_plan.plan) take --executor / --address and
        # --precision: centered and cnn train their own runs locally in float32; the others train nothing
        if s.name in PRECISION_COMMANDS:
            sp.add_argument("--executor", choices=("local", "ray"), default=argparse.SUPPRESS,
                            help="local: train in this process as the experiment goes (default); ray: first train "
                                 "every training stack it needs as a Ray task, then run it (docs/scaling.md)")
            sp.add_argument("--task-threads", type=int, default=argparse.SUPPRESS, metavar="N",
                            help="with --executor ray: the CPUs each training task asks for and the torch threads it "
                                 "trains on (default: --threads, else 1); a Ray run gives a local run's numbers "
                                 "where its --task-threads and --threads both equal that run's --threads "
                                 "(docs/scaling.md)")
            sp.add_argument("--task-gpus", type=float, default=argparse.SUPPRESS, metavar="F",
                            help="with --executor ray and --device cuda: the GPUs each training task asks for "
                                 "(default 1; a fraction such as 0.25 lets four stacks share a GPU, whose small "
                                 "kernels one stack leaves mostly idle)")
            sp.add_argument("--address", default=argparse.SUPPRESS,
                            help="with --executor ray: the Ray cluster (auto, HOST:PORT of its GCS, ray://HOST:PORT, or local for a "
                                 "new cluster of this process; default: RAY_ADDRESS, else a cluster `ray start` "
                                 "started on this machine, else a new local cluster)")
        if s.name in PRECISION_COMMANDS:
            sp.add_argument("--precision", choices=PRECISIONS, default=argparse.SUPPRESS,
                            help="fp32 (default), or bf16: the training forward and loss under bfloat16 autocast, "
                                 "weights, optimizer and every measure float32; needs CUDA or a CPU with avx512_bf16 "
                                 f"or amx_bf16; results default to {BF16_RESULTS_ROOT}/ (docs/scaling.md)")
        if s.name == "cnn":
            sp.add_argument("--model", dest="factory", default=argparse.SUPPRESS, metavar="PKG.MODULE:FACTORY",
                            help="your own model in place of the SmallCNN: FACTORY() returns an nn.Module mapping "
                                 "images to 9 logits (its input_shape attribute, e.g. (1, 36, 36), sets the layout it "
                                 "takes); write it to its own folder with --results (docs/cnn.md)")
            sp.add_argument("--epochs", type=positive_int, default=argparse.SUPPRESS, metavar="N",
                            help="train every CNN for N epochs instead of the profile's CNN epochs (6 for paper; "
                                 "300 is the paper's, docs/cnn.md); recorded in cnn.json's cnn_sizes")
            sp.add_argument("--nu-grid", type=float, nargs="+", default=argparse.SUPPRESS, metavar="NU",
                            help="IR's (logit form) nu values, searched smallest first, instead of the profile's "
                                 "CNN grid (paper: 10 30 100; the paper's MLP grid: 1 3 10 30 100)")
        if s.name in LOGIT_GRID_COMMANDS:
            sp.add_argument("--nu-grid", type=float, nargs="+", default=argparse.SUPPRESS, metavar="NU",
                            help="IR's (logit form) nu values, searched smallest first, instead of the profile's "
                                 "(paper: 1 3 10 30 100); recorded in every results file, and a folder whose "
                                 "results used another grid is refused, so write elsewhere with --results and give "
                                 "the same grid to every later command on that folder (docs/fmnist.md)")
        if s.name in EPOCHS_COMMANDS:
            sp.add_argument("--epochs", type=positive_int, default=argparse.SUPPRESS, metavar="N",
                            help="train every model for N epochs instead of the profile's (paper: 300), to see "
                                 "whether a verdict moves with training length; recorded in every results file, "
                                 "and a folder whose results used another length is refused, so write elsewhere "
                                 "with --results and give the same N to every later command on that folder")
        if s.name in BEYOND_FORMS:
            paper_grid = " ".join(f"{v:g}" for v in BEYOND_FORMS[s.name].grids["paper"])
            sp.add_argument("--nu-grid", type=float, nargs="+", default=argparse.SUPPRESS, metavar="NU",
                            help=f"the {s.name} form's nu values, searched smallest first, instead of the "
                                 f"profile's (paper: {paper_grid}); a folder whose {s.name}.json "
                                 "used another grid is refused, so write elsewhere with --results")
        if s.name in REGULARIZER_COMMANDS:
            sp.add_argument("--regularizers", nargs="*", choices=REGULARIZERS, default=argparse.SUPPRESS,
                            metavar="FORM",
                            help="only these of the paper's IR forms (" + " ".join(REGULARIZERS) + "; default: all), "
                                 "none for DA alone; recorded in the profile, so give the same to spectral and to "
                                 "the centered / detached / scale run that reads its spectral.json "
                                 "(docs/detached.md)")
        if s.name == "scale":
            sp.add_argument("--model", choices=("mlp", "cnn"), default=argparse.SUPPRESS,
                            help="mlp: the paper's MLP (default; reads spectral.json and centered.json); cnn: the "
                                 "CNN of `python -m nets cnn` (reads cnn.json, with the CNN's sizes it records; "
                                 "writes cnn_scale.json and figures/cnn_scale)")
        if s.name == "si-settings":
            sp.add_argument("--settings", nargs="+", choices=tuple(SI_SETTINGS), default=argparse.SUPPRESS,
                            metavar="NAME", help="measure only these saliency maps, paper first (default: all: "
                                                 + ", ".join(repr(n) for n in SI_SETTINGS) + ")")
            sp.add_argument("--methods", nargs="+", choices=SI_METHODS, default=argparse.SUPPRESS,
                            help="measure only these of Table 1's models (default: WT DA IR)")
            sp.add_argument("--model", choices=("mlp", "cnn"), default=argparse.SUPPRESS,
                            help="mlp: the paper's MLP (default; reads table1.json); cnn: the CNN of `python -m "
                                 "nets cnn` (reads cnn.json's Table 1, with the CNN's sizes it records; writes "
                                 "cnn_si_settings.json)")
        if s.name == "train-size":
            sp.add_argument("--sizes", type=int, nargs="+", default=argparse.SUPPRESS, metavar="N",
                            help="the training set sizes, each below the profile's (default: 1/40, 1/20, 1/10 and "
                                 "1/4 of it; paper: 250 500 1000 2500); the full size is Table 1's runs")
        if s.name == "reproduce":
            sp.add_argument("--recompute", action="store_true", default=argparse.SUPPRESS,
                            help="run every experiment for every group again (default: a group whose results from "
                                 "this same sweep are already on disk is kept, so an interrupted reproduce resumes)")
    extra = []
    for module in extensions():
        sp = module.add_parser(sub)
        sp.set_defaults(_extension=module)
        extra.append(f"  {sp.prog.split()[-1]:<12} {(sp.description or '').splitlines()[0] if sp.description else ''}")
    p.description = p.description.replace("\n  (EXTENSIONS)", "".join("\n" + e for e in extra))
    return p, sub


def subcommand_names() -> tuple[str, ...]:
    """Every subcommand ``python -m nets`` accepts, the extensions' included, in the help's order."""
    return tuple(_build()[1].choices)


def extensions() -> list:
    """The modules of :data:`EXTENSIONS` that exist, imported."""
    out = []
    for name in EXTENSIONS:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return out
