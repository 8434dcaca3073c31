"""More seeds without retraining the old ones: a run's checkpoints taken from another results folder.

An undecided verdict says how many seeds would decide it (:func:`nets.stats.seeds_to_decide`).
Adding seeds to a committed run means training only the new ones; the old seeds' finished models
are the source folder's checkpoints. :func:`reuse_checkpoints` links them (a hard link, else an
atomic copy) into the new folder before the run starts, so the trainer finds them finished and
loads them (:func:`nets.train.train_runs`), and the source folder is never written:

    python -m nets table1 --profile paper --groups t3 --seeds 0 1 2 3 4 5 6 7 8 9 10 11 \\
        --results results/paper-s12 --reuse-from results

A checkpoint's file name is its config's key and seed (:func:`nets.train.checkpoint_path`; the key
names every config field that differs from the default), so a file of the same name is the same
training run, provided it was trained on the same data: the source's results files must record the
same profile (sizes, data, method fields, precision) but for the seeds, groups and nu grids (a grid
only chooses which IR runs exist), and a source without results files is refused. A source with a
checkpoint manifest (checkpoints archived in the repository's history) is restored first
(:func:`nets.checkpoint_archive.restore`, verified).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nets.checkpoint_archive import read_manifest, restore
from nets.results_io import (EXPERIMENTS, atomic_write, checkpoint_dir, make_folder, out_dir, precision_dir,
                              profile_differences, read_json, result_path)

__all__ = ["ReuseRefused", "ReuseReport", "reuse_checkpoints"]

#: Differences between the source's and the run's profile that keep a checkpoint the same run: the
#: seeds, and the nu grids and regularizer forms, which only choose which IR runs exist (a
#: checkpoint's name holds its form and nu), so more seeds may be added at the nu the source chose
#: (``--nu-grid 100``), or for DA alone (``spectral --regularizers``).
ALLOWED_DIFFERENCES = frozenset({"seeds", "nu_grids", "regularizers"})


class ReuseRefused(ValueError):
    """The source folder cannot lend its checkpoints to this run; ``str(e)`` is one line naming why."""


@dataclass
class ReuseReport:
    """What :func:`reuse_checkpoints` did: files linked (or copied), files the run's folder already had,
    files restored into the source from its manifest, and the two folders."""

    linked: list[str]
    present: list[str]
    restored: list[str]
    source: Path
    target: Path

    def summary(self) -> str:
        restored = f", after restoring {len(self.restored)} from its manifest" if self.restored else ""
        return (f"reused {len(self.linked)} checkpoint(s) from {self.source}{restored} into {self.target} "
                f"({len(self.present)} already there)")


def _checked_source(profile: Any, source_root, precision: str, experiments: Sequence[str]) -> Path:
    """The source's checkpoint folder, once its results files show the same profile but for the seeds
    and nu grids. They are only read (:func:`nets.results_io.read_json`): a damaged one is an error
    naming it, left where it is, not moved aside as a run's own damaged results file is."""
    recorded = []
    for name in experiments:
        path = result_path(profile, name, source_root)
        if not path.exists():
            continue
        old = read_json(path)
        meta = old.get("meta", {}) if isinstance(old, dict) else {}
        diff = [k for k in profile_differences(meta, profile, precision) if k not in ALLOWED_DIFFERENCES]
        if diff:
            raise ReuseRefused(f"{path} was computed with other settings ({', '.join(diff[:3])}); only the "
                               "seeds, nu grids and regularizer forms may differ, so its checkpoints are other runs")
        recorded.append(name)
    if not recorded:
        raise ReuseRefused(f"{out_dir(profile, source_root)}/ holds no results file of {', '.join(experiments)} "
                           f"to show which profile its checkpoints were trained with; nothing reused")
    return precision_dir(checkpoint_dir(profile, source_root), precision)


def reuse_checkpoints(profile: Any, source_root, results_root, *, precision: str = "fp32",
                      experiments: Sequence[str] = EXPERIMENTS) -> ReuseReport:
    """Link every checkpoint of ``profile``'s folder under ``source_root`` (at ``precision``) that the
    folder under ``results_root`` lacks into it; a file it has already is left alone (its run goes on
    from it). ``experiments``: the results files that must record ``profile`` but for the seeds, forms and
    nu grids (``("cnn",)`` for the CNN, whose profile is its own). Raises :class:`ReuseRefused` when
    the two folders are the same, the source has no such results file, or one records other settings;
    :class:`nets.checkpoint_archive.ArchiveError` when its manifest cannot be restored,
    :class:`nets.results_io.ResultsFileError` when one of its results files is damaged."""
    src_out, dst_out = out_dir(profile, source_root), out_dir(profile, results_root)
    if src_out.resolve() == dst_out.resolve():
        raise ReuseRefused(f"--reuse-from names the run's own folder {dst_out}/; give the folder to take "
                           "checkpoints from")
    restored = restore(src_out).restored if read_manifest(src_out) is not None else []
    source = _checked_source(profile, source_root, precision, experiments)
    target = precision_dir(checkpoint_dir(profile, results_root), precision)
    linked, present = [], []
    files = sorted(source.glob("*.pt")) if source.is_dir() else []
    if files:
        make_folder(target)
    for f in files:
        dest = target / f.name
        if dest.exists():
            present.append(f.name)
            continue
        _link_or_copy(f, dest)
        linked.append(f.name)
    return ReuseReport(linked, present, restored, source, target)


def _link_or_copy(src: Path, dest: Path) -> None:
    """A hard link (the trainer replaces checkpoints by rename, so the source is never changed through
    it), else an atomic copy (:func:`nets.results_io.atomic_write`)."""
    try:
        os.link(src, dest)
    except OSError:
        atomic_write(dest, lambda f: f.write(src.read_bytes()), binary=True)
