"""``reproduce``: every experiment of Section 4, then REPORT.md."""

from __future__ import annotations

import time
from pathlib import Path

from nets.experiments.common import EXPERIMENTS, metadata, out_dir, result_path, write_json
from nets.experiments.profiles import Profile

__all__ = ["run_reproduce", "RUNNERS"]


def _runners():
    from nets.experiments.drift import run_drift
    from nets.experiments.saliency import run_saliency
    from nets.experiments.spectral import run_spectral
    from nets.experiments.table1 import run_table1
    from nets.experiments.tsne import run_tsne

    return {"table1": run_table1, "drift": run_drift, "spectral": run_spectral, "tsne": run_tsne,
            "saliency": run_saliency}


def run_reproduce(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                  command: str | None = None) -> Path:
    """Run every experiment in order (table1 first: the others reuse its models),
    then write ``REPORT.md``; returns its path."""
    from nets.experiments.common import command_line
    from nets.report import write_report
    from nets.train import resolve_device

    started = time.time()
    command = command if command is not None else command_line()
    runners = _runners()
    walls = {}
    for name in EXPERIMENTS:
        walls[name] = runners[name](profile, results_root, device=device, progress=progress,
                                    command=command)["meta"]["wall_time_s"]
    # the whole sweep's provenance, for REPORT.md (also when `report` rewrites it later)
    meta = metadata(profile, "reproduce", device=str(resolve_device(device)), started=started, command=command)
    write_json(result_path(profile, "reproduce", results_root), {"meta": meta, "experiment_wall_time_s": walls})
    return write_report(out_dir(profile, results_root))


def RUNNERS() -> dict:
    """Experiment name -> runner (imported lazily: they import torch-heavy modules)."""
    return _runners()
