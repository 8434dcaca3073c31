"""What every experiment shares: drawing and closing an experiment (``finish``), merging
``--groups`` runs, and refusing to replace results computed with other settings.

Paths, JSON, atomic writes and provenance live in :mod:`nets.results_io` (re-exported here for
the experiments' convenience)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from nets.experiments.profiles import PROFILES, Profile
from nets.precision import PRECISION_COMMANDS
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
        _refuse_a_concurrent_writer(path, profile, precision)
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
        _SEEN[path.resolve()] = _identity(path)  # this process's own write is no one else's
        # inside the lock: a run finishing later cannot have its figures overdrawn by this one's
        draw(experiment, {k: v for k, v in results.items() if k != "meta"}, fig_dir)
    return results


#: What :func:`check_overwrite` saw of each results file (inode, mtime in ns, size; None: absent),
#: for :func:`finish` to tell whether another run wrote it since.
_SEEN: dict[Path, tuple[int, int, int] | None] = {}


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _refuse_a_concurrent_writer(path: Path, profile: Profile, precision: str) -> None:
    key, now = path.resolve(), _identity(path)
    if key not in _SEEN or now == _SEEN[key] or now is None:
        return  # not looked at by check_overwrite, unchanged since, or gone
    old = peek_results(path)
    diff = profile_differences((old or {}).get("meta", {}), profile, precision) if old is not None else []
    if diff:
        raise SettingsMismatch(
            f"another run wrote {path} with other settings ({', '.join(diff[:3])}) while this one ran; this "
            f"run's results were not written (its checkpoints are kept): rerun it with --results ANOTHER_DIR")


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


def trained_precision(sources: dict[str, dict]) -> str:
    """The training precision of the models that the results ``sources`` (file name -> results)
    describe, as their ``meta`` records it (:func:`~nets.results_io.recorded_precision`; ``"fp32"``
    for none): an evaluation-only command (``scale``, ``intervals``, ``si-settings``) loads those
    models from that precision's checkpoints (:func:`~nets.results_io.precision_dir`), measures
    them in float32 and records the precision they were trained at. Raises
    :class:`~nets.results_io.ResultsFileError` when the files disagree: their models are not one
    sweep's."""
    found = {name: recorded_precision(r.get("meta") or {}) for name, r in sources.items()}
    if len(set(found.values())) > 1:
        raise ResultsFileError(f"the results files disagree on the training precision "
                               f"({', '.join(f'{n}: {p}' for n, p in found.items())}): their models are not one "
                               f"sweep's; rerun one of them with the other's --precision")
    return next(iter(found.values()), "fp32")


def folder_precision(profile: Profile, results_root=None) -> str:
    """The training precision that the first results file of ``profile``'s folder (in
    :data:`EXPERIMENTS` order) records; ``"fp32"`` for a folder with none. What an
    evaluation-only command run on the folder reads and writes (:func:`trained_precision`)."""
    for name in EXPERIMENTS:
        old = peek_results(result_path(profile, name, results_root))  # a damaged file: left for its command
        if old is not None:
            return recorded_precision(old.get("meta") or {})
    return "fp32"


class SettingsMismatch(ValueError):
    """A run would replace results that were computed with other settings; ``str(e)`` is one
    line naming the folder, the difference and the way out."""


def settings_conflicts(profile: Profile, results_root=None, precision: str = "fp32",
                       experiments: Sequence[str] = (*EXPERIMENTS, "reproduce")) -> list[tuple[Path, list[str]]]:
    """The results files ``<name>.json`` of ``experiments`` in ``profile``'s folder (default: every
    experiment's and ``reproduce.json``) written with settings other than ``profile``'s at
    ``precision``, each with the differing fields (:func:`~nets.results_io.profile_differences`:
    sizes, seeds, method fields, the training precision; a ``--groups`` subset of the same sweep is
    no difference). A damaged file is no conflict, and is left where it is (the experiment that
    rewrites it moves it aside, :func:`~nets.results_io.read_results`)."""
    out = []
    for name in experiments:
        path = result_path(profile, name, results_root)
        old = peek_results(path)
        if old is not None:
            diff = profile_differences(old.get("meta", {}), profile, precision)
            if diff:
                out.append((path, diff))
    return out


def _short(v) -> str:
    text = json.dumps(v, separators=(",", ":"))
    return text if len(text) <= 40 else text[:37] + "..."


def check_overwrite(profile: Profile, results_root=None, *, overwrite: bool = False, precision: str = "fp32",
                    experiments: Sequence[str] = (*EXPERIMENTS, "reproduce"),
                    writes: Sequence[str] | None = None) -> None:
    """Refuse (raise :class:`SettingsMismatch`) a run into a folder holding results of
    ``experiments`` computed with other settings (:func:`settings_conflicts`), or one that would
    rewrite a results file of ``writes`` (names as ``result_path`` takes them; default
    ``experiments``) that a git repository tracks (:func:`~nets.results_io.committed_files`: the
    repository's reference results, such as ``results/paper``), unless ``overwrite``; where a
    repository holds the folder but git cannot say what it tracks (``GitUnanswered``), the run is
    refused too, naming the fix. Call it before anything is trained or written: a refused run
    changes nothing."""
    for name in experiments:
        path = result_path(profile, name, results_root)
        _SEEN[path.resolve()] = _identity(path)
    writing = (result_path(profile, n, results_root) for n in (experiments if writes is None else writes))
    try:
        committed = [] if overwrite else committed_files(writing)
    except GitUnanswered as e:
        raise SettingsMismatch(f"{e}; or write your own with --results results/local, or pass --overwrite") from None
    if committed:
        raise SettingsMismatch(
            f"refusing to replace results committed to the repository in {committed[0].parent}/ "
            f"({', '.join(p.name for p in committed)}); write your own with --results results/local "
            f"(--reuse-from results starts it from the committed checkpoints), or replace them with --overwrite "
            f"(git diff then shows what changed)")
    conflicts = settings_conflicts(profile, results_root, precision, experiments)
    if not conflicts:
        return
    if overwrite:
        rewritten = {result_path(profile, n, results_root) for n in (experiments if writes is None else writes)}
        replaced = [p.name for p, _ in conflicts if p in rewritten]
        kept = [p.name for p, _ in conflicts if p not in rewritten]
        print(f"--overwrite: results in {conflicts[0][0].parent}/ computed with other settings"
              + (f" ({', '.join(replaced)}) are replaced as this run rewrites them" if replaced else "")
              + (f"{';' if replaced else ''} {', '.join(kept)} stay as they are, so the folder will hold results of "
                 f"two settings (REPORT.md names them): run those experiments too, or write into a new --results"
                 if kept else ""), file=sys.stderr)
        return
    path, diff = conflicts[0]
    meta = read_json(path).get("meta") or {}
    old = {**(meta.get("profile") or {}), "precision": recorded_precision(meta)}
    new = {**json.loads(json.dumps(profile.to_dict())), "precision": precision}
    what = "; ".join(f"{k} {_short(old.get(k))} there, {_short(new.get(k))} here" for k in diff[:3])
    more = f" (and {len(conflicts) - 1} other file{'s' if len(conflicts) > 2 else ''})" if len(conflicts) > 1 else ""
    same_grid = ""
    if "nu_grids" in diff:  # most often a --nu-grid folder given a later command without its grid
        grid = (old.get("nu_grids") or {}).get("logit")
        same_grid = f", give the folder's grid again (--nu-grid {' '.join(f'{v:g}' for v in grid)})" if grid else ""
    if "epochs" in diff and old.get("epochs") != (PROFILES.get(str(old.get("name"))) or profile).epochs:
        same_grid += f", give the folder's length again (--epochs {old.get('epochs')})"  # an --epochs folder
    if "precision" in diff and old.get("precision") != "fp32":  # a bf16 folder: only the training commands read it
        takes = f"{', '.join(PRECISION_COMMANDS[:-1])} and {PRECISION_COMMANDS[-1]}"
        same_grid += (f", give the folder's precision again (--precision {old.get('precision')}: {takes} take it; "
                      "scale, intervals and si-settings read the folder's own)")
    raise SettingsMismatch(
        f"refusing to replace the results in {path.parent}/: {path.name}{more} was computed with other settings "
        f"({what}{'; ...' if len(diff) > 3 else ''}){same_grid}; write elsewhere with --results ANOTHER_DIR, "
        f"or replace them with --overwrite")
