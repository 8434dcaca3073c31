"""Refusing to replace results: a run into a folder whose results files were computed with other
settings, or that a git repository tracks, is refused before it trains (:func:`check_overwrite`),
and one whose file another run rewrote meanwhile before it writes
(:func:`refuse_a_concurrent_writer`, called by :func:`nets.experiments.common.finish`); the training
precision a folder's files record (:func:`trained_precision`, :func:`folder_precision`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from nets.experiments.profiles import PROFILES, Profile
from nets.precision import PRECISION_COMMANDS
from nets.results_io import (EXPERIMENTS, GitUnanswered, ResultsFileError, committed_files, peek_results,
                             profile_differences, read_json, recorded_precision, result_path)

__all__ = ["SettingsMismatch", "settings_conflicts", "check_overwrite", "mark_seen", "refuse_a_concurrent_writer",
           "trained_precision", "folder_precision"]


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
        mark_seen(path)
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


#: What :func:`check_overwrite` saw of each results file (inode, mtime in ns, size; None: absent),
#: for :func:`~nets.experiments.common.finish` to tell whether another run wrote it since.
_SEEN: dict[Path, tuple[int, int, int] | None] = {}


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def mark_seen(path: Path) -> None:
    """Record ``path`` as this process last saw it (its own write, or :func:`check_overwrite`'s look)."""
    _SEEN[path.resolve()] = _identity(path)


def refuse_a_concurrent_writer(path: Path, profile: Profile, precision: str) -> None:
    """Raise :class:`SettingsMismatch` where the results file ``path`` changed since this process last
    saw it (:func:`mark_seen`) and now holds settings other than ``profile``'s at ``precision``: another
    run wrote it meanwhile. A file never seen, unchanged or gone passes."""
    key, now = path.resolve(), _identity(path)
    if key not in _SEEN or now == _SEEN[key] or now is None:
        return  # not looked at by check_overwrite, unchanged since, or gone
    old = peek_results(path)
    diff = profile_differences((old or {}).get("meta", {}), profile, precision) if old is not None else []
    if diff:
        raise SettingsMismatch(
            f"another run wrote {path} with other settings ({', '.join(diff[:3])}) while this one ran; this "
            f"run's results were not written (its checkpoints are kept): rerun it with --results ANOTHER_DIR")


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
