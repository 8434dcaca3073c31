"""What every experiment shares: drawing and closing an experiment (``finish``) and merging
``--groups`` runs. Refusing to replace results computed with other settings is
:mod:`nets.experiments.overwrite`'s (re-exported here).

Paths, JSON, atomic writes and provenance live in :mod:`nets.results_io` (re-exported here for
the experiments' convenience)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from nets.experiments.overwrite import (  # noqa: F401  (re-exported)
    SettingsMismatch,
    check_overwrite,
    folder_precision,
    mark_seen,
    refuse_a_concurrent_writer,
    settings_conflicts,
    trained_precision,
)
from nets.experiments.profiles import PROFILES, Profile
from nets.results_io import (  # noqa: F401  (re-exported)
    EXPERIMENTS,
    GitUnanswered,
    PROVENANCE_FIELDS,
    RESULTS_ROOT,
    ResultsFileError,
    checkpoint_dir,
    command_line,
    committed_files,
    drawing_marker,
    dumps,
    figure_dir,
    folder_lock,
    git_commit,
    group_sections,
    make_folder,
    metadata,
    out_dir,
    peek_results,
    profile_differences,
    provenance,
    read_json,
    read_results,
    recorded_precision,
    result_groups,
    result_path,
    result_sittings,
    to_jsonable,
    versions,
    write_json,
    write_text,
)

__all__ = [
    "RESULTS_ROOT",
    "EXPERIMENTS",
    "out_dir",
    "checkpoint_dir",
    "figure_dir",
    "result_path",
    "write_json",
    "read_json",
    "dumps",
    "versions",
    "command_line",
    "metadata",
    "mean_std",
    "to_jsonable",
    "draw",
    "draw_interrupted",
    "finish",
    "finished_groups",
    "SettingsMismatch",
    "settings_conflicts",
    "check_overwrite",
    "trained_precision",
    "folder_precision",
]


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and population standard deviation (ddof=0: 0 for one seed) over seeds."""
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=0))}


def draw(experiment: str, results: dict, fig_dir: str | os.PathLike) -> list[Path]:
    """Draw and save (PNG + PDF) every figure of one experiment from its results dict; then remove its
    :func:`~nets.results_io.drawing_marker`, if any (its figures are whole again)."""
    from nets.figures import figures_for
    from nets.plot_style import save_figure

    paths: list[Path] = []
    for stem, fig in figures_for(experiment, results).items():
        paths += save_figure(fig, Path(fig_dir) / stem)
    drawing_marker(fig_dir, experiment).unlink(missing_ok=True)
    return paths


def draw_interrupted(profile: Profile, experiment: str, results_root=None) -> bool:
    """Draw the figures of ``experiment`` from its results file where a run stopped after writing the
    file and before its figures were whole (its :func:`~nets.results_io.drawing_marker` is there):
    whether it drew. A run that keeps the file as it is (``reproduce`` with nothing left to run)
    calls it, so that a figure missing, or stale from an earlier sitting, is not kept with it."""
    fig_dir = figure_dir(profile, results_root)
    path = result_path(profile, experiment, results_root)
    if not drawing_marker(fig_dir, experiment).exists() or not path.exists():
        return False
    print(f"{experiment}: a run stopped while drawing its figures; drawing them from {path}", flush=True)
    draw(experiment, {k: v for k, v in read_json(path).items() if k != "meta"}, fig_dir)
    return True


def finish(profile: Profile, experiment: str, body: dict, results_root=None, *, device: str, started: float,
           command: str | None = None, precision: str = "fp32") -> dict:
    """Close an experiment: holding the results folder's lock (:func:`~nets.results_io.folder_lock`,
    so runs of other ``--groups`` finishing at the same time take turns), keep the groups an
    earlier ``--groups`` run of the same sweep wrote (:func:`_merge_groups`) and write
    ``<experiment>.json`` with the provenance block (wall time up to the write; ``precision``: the
    training precision it records) and each group's sitting (``group_provenance``); then draw its
    figures from that JSON form of its results (so figures never show anything the JSON lacks).
    Returns the dict.

    Raises :class:`SettingsMismatch` (writing nothing) where ``<experiment>.json`` has changed since
    this process's :func:`check_overwrite` looked at it and now holds other settings: another run
    wrote it meanwhile, and replacing it would lose that run's results. (Without a
    :func:`check_overwrite` call, as from the Python API, there is nothing to compare with.)"""
    results = json.loads(dumps(to_jsonable(body)))
    path = result_path(profile, experiment, results_root)
    by_group = bool(group_sections(results))
    with folder_lock(path.parent):
        refuse_a_concurrent_writer(path, profile, precision)
        if by_group:
            results = _merge_groups(profile, results, path, precision)
        meta = metadata(profile, experiment, device=device, started=started, command=command, precision=precision)
        if by_group:  # which sitting computed each group (kept groups keep theirs)
            kept = results.pop("group_provenance", {})
            results["group_provenance"] = {g: kept.get(g) or provenance(meta) for g in result_groups(results)}
        results = {"meta": meta, **results}
        fig_dir = figure_dir(profile, results_root)
        make_folder(fig_dir)
        write_text(drawing_marker(fig_dir, experiment), f"{path.name} written, its figures not yet drawn\n")
        write_json(path, results)
        mark_seen(path)  # this process's own write is no one else's
        # inside the lock: a run finishing later cannot have its figures overdrawn by this one's
        draw(experiment, {k: v for k, v in results.items() if k != "meta"}, fig_dir)
    return results


def finished_groups(profile: Profile, experiment: str, results_root=None,
                    precision: str = "fp32") -> tuple[str, ...]:
    """The groups of ``profile`` whose results ``<experiment>.json`` already holds from
    this same sweep (same profile, sizes, seeds and precision; see :func:`_same_sweep`), in the
    profile's order; ``()`` when the file is missing, unreadable or from another sweep. A damaged
    file is left where it is: a run plans with this before its overwrite check, and a refused run
    changes nothing (the run that recomputes it moves it aside as it writes, :func:`_merge_groups`)."""
    old = _sweep_results(result_path(profile, experiment, results_root), profile, precision, move_damaged=False)
    return tuple(g for g in profile.groups if g in ((old or {}).get("groups") or {}))


def _sweep_results(path: Path, profile: Profile, precision: str = "fp32", *, move_damaged: bool = True) -> dict | None:
    """The results file at ``path`` if it exists, reads, and comes from this same sweep
    as ``profile`` at ``precision`` (:func:`_same_sweep`); else ``None``. A damaged file is moved
    aside (:func:`~nets.results_io.read_results`, so it is recomputed) where ``move_damaged``, else
    left where it is (:func:`~nets.results_io.peek_results`)."""
    old = read_results(path) if move_damaged else peek_results(path)
    return old if old is not None and _same_sweep(old.get("meta", {}), profile, precision) else None


def _same_sweep(meta: dict, profile: Profile, precision: str = "fp32") -> bool:
    """Whether results with provenance ``meta`` come from ``profile`` at ``precision`` but for the groups."""
    return not profile_differences(meta, profile, precision)


def _merge_groups(profile: Profile, results: dict, path: Path, precision: str = "fp32") -> dict:
    """Keep the groups of an existing ``path`` that this run did not compute (when that file is
    from the same profile, sizes and seeds), in every part keyed by group
    (:func:`~nets.results_io.group_sections`: the top-level ``groups``, or each section's, as in
    ``cnn.json``), and say which of the profile's groups are still missing: ``complete`` and
    ``pending_groups``. Updates ``results`` (:func:`finish`'s fresh JSON copy) in place and returns it."""
    done = result_groups(results)
    old = _sweep_results(path, profile, precision)
    if old is not None:
        old_sections = group_sections(old)
        for key, section in group_sections(results).items():
            before = old_sections.get(key, {}).get("groups", {})
            section["groups"] = {**{g: v for g, v in before.items() if g not in done}, **section["groups"]}
        old_prov = old.get("group_provenance") or {}
        results["group_provenance"] = {g: old_prov.get(g) or provenance(old.get("meta", {}))
                                       for g in result_groups(old) if g not in done}
    full = PROFILES[profile.name].groups if profile.name in PROFILES else profile.groups
    have = result_groups(results)
    order = [g for g in full if g in have] + [g for g in have if g not in full]
    for section in group_sections(results).values():
        section["groups"] = {g: section["groups"][g] for g in order if g in section["groups"]}
    pending = [g for g in full if g not in have]
    results.update(complete=not pending, pending_groups=pending)
    return results
