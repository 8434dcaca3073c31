"""``reproduce``: every experiment of Section 4, then REPORT.md."""

from __future__ import annotations

import time
from pathlib import Path

from nets.experiments.common import (EXPERIMENTS, draw_interrupted, finished_groups, metadata, out_dir,
                                     profile_differences, read_json, result_path, write_json)
from nets.experiments.profiles import Profile

__all__ = ["run_reproduce", "experiment_runners", "pending_groups"]


def pending_groups(profile: Profile, results_root=None, precision: str = "fp32",
                   recompute: bool = False) -> dict[str, tuple[str, ...]]:
    """Experiment (each of ``EXPERIMENTS``) -> the groups of ``profile`` that ``reproduce`` still
    has to run for it, in the profile's order: those whose results its JSON does not yet hold from
    this same sweep (:func:`~nets.experiments.common.finished_groups`); every group under ``recompute``.
    An experiment with nothing to run maps to ``()``."""
    out = {}
    for name in EXPERIMENTS:
        done = () if recompute else finished_groups(profile, name, results_root, precision)
        out[name] = tuple(g for g in profile.groups if g not in done)
    return out


def experiment_runners() -> dict:
    """Experiment name -> its ``run_<name>`` function (imported on call: they import torch-heavy modules)."""
    from nets.experiments.centered import run_centered, run_detached
    from nets.experiments.cnn import run_cnn
    from nets.experiments.drift import run_drift
    from nets.experiments.saliency import run_saliency
    from nets.experiments.scale import run_scale
    from nets.experiments.spectral import run_spectral
    from nets.experiments.table1 import run_table1
    from nets.experiments.tsne import run_tsne

    return {"table1": run_table1, "drift": run_drift, "spectral": run_spectral, "tsne": run_tsne,
            "saliency": run_saliency,
            # beyond the paper, not in EXPERIMENTS (reproduce does not run them): their own subcommands
            "centered": run_centered, "detached": run_detached, "cnn": run_cnn, "scale": run_scale}


def run_reproduce(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                  command: str | None = None, recompute: bool = False, precision: str = "fp32",
                  started: float | None = None, ray_training: dict | None = None) -> Path:
    """Run every experiment in order (table1 first: the others reuse its models),
    then write ``REPORT.md``; returns its path.

    An interrupted sweep resumes: training runs are loaded from their checkpoints,
    and an experiment whose JSON already holds a group's results from this same
    sweep (same profile, sizes and seeds) is run only for the groups still missing,
    or skipped when none is (``recompute=True`` runs every group again). Each JSON
    keeps the groups it did not recompute (``nets.experiments.common.finish``).
    ``precision``: the training precision of every experiment (``nets.precision``); results
    from another precision are never kept. ``started`` (a ``time.time()``; default: now) and
    ``ray_training`` (``{"wall_time_s", "machines"}``): where the sitting trained before this call
    (the Ray executor's ``nets.distributed.pretrain``), its start, and that training's seconds and
    machines (:func:`nets.node_provenance.machines`), so that the sweep's wall time counts the training
    too and ``reproduce.json`` says how long it took on Ray, and where."""
    from nets.experiments.common import command_line
    from nets.report import write_report
    from nets.train import resolve_device

    started = time.time() if started is None else started
    command = command if command is not None else command_line()
    runners = experiment_runners()
    walls: dict[str, float] = {}
    kept: dict[str, list[str]] = {}
    for name, todo in pending_groups(profile, results_root, precision, recompute).items():
        done = [g for g in profile.groups if g not in todo]
        kept[name] = done
        if done:
            print(f"{name}: keeping {', '.join(done)} from {result_path(profile, name, results_root)}"
                  + (f"; running {', '.join(todo)}" if todo else "; nothing to run"), flush=True)
        if not todo:
            draw_interrupted(profile, name, results_root)  # a figure a stopped run left missing or stale
            continue
        part = profile if len(todo) == len(profile.groups) else profile.with_groups(todo)
        walls[name] = runners[name](part, results_root, device=device, progress=progress,
                                    command=command, **_precision_kw(precision))["meta"]["wall_time_s"]
    # the whole sweep's provenance, for REPORT.md (also when `report` rewrites it later); a
    # sitting that ran nothing keeps the record of the sitting that did, so REPORT.md is unchanged
    sweep = result_path(profile, "reproduce", results_root)
    if walls or not _same_sweep_recorded(sweep, profile, precision):
        meta = metadata(profile, "reproduce", device=str(resolve_device(device)), started=started, command=command,
                        precision=precision)
        write_json(sweep, {"meta": meta, "experiment_wall_time_s": walls, "kept_groups": kept,
                           **({} if ray_training is None else {"ray_training": ray_training})})
    else:
        print(f"reproduce: every experiment was already complete; keeping {sweep}", flush=True)
    return write_report(out_dir(profile, results_root))


def _precision_kw(precision: str) -> dict:
    """``precision`` as a runner's keyword, left out for fp32 (a runner that predates it runs as it did)."""
    return {} if precision == "fp32" else {"precision": precision}


def _same_sweep_recorded(path: Path, profile: Profile, precision: str = "fp32") -> bool:
    """Whether ``path`` (a ``reproduce.json``) exists, reads, and records this same sweep."""
    try:
        return not profile_differences(read_json(path).get("meta", {}), profile, precision)
    except (OSError, ValueError):
        return False
