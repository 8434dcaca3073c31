"""Beyond the paper: Table 1's claims when the training set is smaller than the paper's 10,000 images.

Built-in invariance is expected to pay most where data is scarce: WT sees every image's whole
orbit in every forward pass, DA one random element of it per epoch. The paper trains on 10,000
images only. This experiment trains WT, DA and IR (the logit form, at the nu Table 1 chose per
group, read from ``table1.json``) on the first ``n`` training images (the split is a seeded
permutation of the pooled data, so a random sample; the sizes are nested) for each ``n`` of
:func:`train_sizes`, every seed of the profile, and measures Table 1's four numbers on the same
test split (:func:`nets.experiments.table1.evaluate`). The full size is Table 1's own runs, read
from ``table1.json``, not trained again.

Equal training budget. Every size trains for ``profile.epochs`` epochs of at most as many Adam
steps as the full-size run (``ceil(n_train / 512)``, 20 for the paper; exactly as many at the
paper's default sizes), so the batches shrink with the data: ``batch_size = ceil(n * 512 / n_train)``,
the same share of the data as Table 1's batch (:func:`batch_size_for`; larger where that would
leave one sample alone in a batch). Each point records its ``batch_size`` and ``steps_per_epoch``. Step
count, epochs, learning rate and validation (the best epoch by validation orbit accuracy, on the
whole validation split) are the paper's; only the data and the batch size change. A smaller ``n`` with the paper's batch of 512 would also train for fewer
steps, and the curve would mix less data with less training.

Checkpoints: ``<results>/<profile>/checkpoints/train_size/n<N>/`` (one folder per size: a run's
checkpoint names its config, not its data). ``python -m nets train-size --profile P [--sizes N ...]``
writes ``<results>/<P>/train_size.json`` and ``figures/train_size`` after every group and size (an
interrupted run resumes from the checkpoints): a group enters ``groups`` only once all its sizes
and Table 1's point are in; until then its sizes so far are under ``in_progress`` and the file
lists it in ``pending_groups``; REPORT.md's section is
:func:`nets.train_size_report.train_size_section`.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Sequence

from nets.experiments.common import (SettingsMismatch, checkpoint_dir, finish, mean_std, profile_differences,
                                     read_results, result_path)
from nets.experiments.profiles import Profile
from nets.experiments.si_settings import Table1Source, table1_source
from nets.experiments.table1 import evaluate, profile_splits, table1_configs
from nets.results_io import ResultsFileError
from nets.train import resolve_device, train_runs

__all__ = ["run_train_size", "train_sizes", "check_sizes", "batch_size_for", "table1_for", "OUTPUT", "FRACTIONS",
           "MEASURES", "PAPER_BATCH"]

#: The results file: ``python -m nets train-size``.
OUTPUT = "train_size"
#: Default sizes, as fractions of the profile's training set (paper: 250, 500, 1,000, 2,500 of 10,000).
FRACTIONS = (1 / 40, 1 / 20, 1 / 10, 1 / 4)
#: Table 1's measures, per size and seed.
MEASURES = ("accuracy", "LI", "DI", "SI")
#: The paper's batch size (Section 4.1), that of Table 1's runs.
PAPER_BATCH = 512
_KEPT = (*MEASURES, "best_epoch", "best_val_accuracy", "train_wall_time_s")


def train_sizes(profile: Profile) -> tuple[int, ...]:
    """The default sizes of ``profile``: :data:`FRACTIONS` of its ``n_train``, rounded, at least 2."""
    return tuple(sorted({max(2, round(f * profile.n_train)) for f in FRACTIONS}))


def check_sizes(profile: Profile, sizes: Sequence[int]) -> tuple[int, ...]:
    """``--sizes``, sorted without repeats; each an integer in ``[2, profile.n_train)`` (the full size
    is Table 1's). Raises ``ValueError`` naming the first bad one."""
    bad = [n for n in sizes if isinstance(n, bool) or int(n) != n or not 2 <= int(n) < profile.n_train]
    if not sizes or bad:
        raise ValueError(f"--sizes needs integers from 2 to {profile.n_train - 1} (the full {profile.n_train} is "
                         f"Table 1's), got {bad[0] if bad else 'none'}")
    return tuple(sorted({int(n) for n in sizes}))


def batch_size_for(n: int, n_full: int, full_batch: int = PAPER_BATCH) -> int:
    """The batch size of ``n`` training images: the same share of them as ``full_batch`` is of
    ``n_full``, ``ceil(n * full_batch / n_full)`` (at most ``n``), so an epoch takes at most as many
    Adam steps as the full-size run's ``ceil(n_full / full_batch)`` (as many for the paper's sizes);
    larger (up to ``n``) while a batch would hold one sample alone: a batch of 1, or a last batch of
    1 (the trainer refuses that for BatchNorm's sake). ``full_batch`` itself at ``n = n_full``."""
    if not 1 <= n <= n_full:
        raise ValueError(f"n must be in [1, {n_full}], got {n}")
    b = min(math.ceil(n * full_batch / n_full), n)
    while b < n and (b == 1 or n % b == 1):  # 25 images in batches of 2 or 3 both leave one alone
        b += 1
    return b


def _check_sizes_of_folder(profile: Profile, results_root, sizes: tuple[int, ...]) -> None:
    """Refuse to merge with a ``train_size.json`` of this sweep whose groups used other sizes."""
    path = result_path(profile, OUTPUT, results_root)
    old = read_results(path)
    if old is not None and not profile_differences(old.get("meta", {}), profile):
        if [int(n) for n in old.get("sizes", sizes)] != list(sizes):
            raise SettingsMismatch(f"{path} used the sizes {old.get('sizes')}, this run {list(sizes)}; move it away "
                                   f"or write elsewhere with --results")


def _point(n: int, batch: int | None, steps: int, source: str, per_method: dict[str, list[dict]]) -> dict:
    methods = {m: {**{k: mean_std([r[k] for r in runs]) for k in MEASURES}, "runs": runs}
               for m, runs in per_method.items()}
    return {"n_train": n, "batch_size": batch, "steps_per_epoch": steps, "source": source, "methods": methods}


def _table1_point(profile: Profile, entry: dict) -> dict:
    per_method = {m: [{"seed": r["seed"], **{k: r.get(k) for k in _KEPT}}
                      for r in sorted(v["runs"], key=lambda r: r["seed"])] for m, v in entry["methods"].items()}
    return _point(profile.n_train, PAPER_BATCH, math.ceil(profile.n_train / PAPER_BATCH), "table1.json", per_method)


def run_train_size(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                   command: str | None = None, sizes: Sequence[int] | None = None) -> dict:
    """Train and measure WT, DA and IR on each size of ``sizes`` (default :func:`train_sizes`), per
    group of ``profile``, and write ``train_size.json`` with its figure (module docstring).

    Raises :class:`nets.results_io.ResultsFileError` (before training) when ``table1.json`` or one of
    the profile's groups in it is missing, or it was computed with other settings than ``profile``
    or trained in another precision than float32 (:func:`table1_for`), ``ValueError`` for bad
    ``sizes`` (:func:`check_sizes`), and :class:`SettingsMismatch` where the folder's
    ``train_size.json`` of this sweep used other sizes."""
    started = time.time()
    sizes = train_sizes(profile) if sizes is None else check_sizes(profile, sizes)
    source = table1_for(profile, results_root)
    _check_sizes_of_folder(profile, results_root, sizes)
    dev = resolve_device(device)
    splits = profile_splits(profile)
    seeds = list(profile.seeds)
    groups: dict[str, Any] = {}
    for g in profile.groups:
        nu = float(source.groups[g]["methods"]["IR"]["nu"])
        entry = {"nu_IR": nu, "points": []}
        for n in sizes:
            batch = batch_size_for(n, profile.n_train)
            configs = {m: replace(c, batch_size=batch) for m, c in table1_configs(profile, g, nu).items()}
            sub = replace(splits, train=splits.train.subset(n))
            run_dir = checkpoint_dir(profile, results_root) / OUTPUT / f"n{n}"
            runs = train_runs(list(configs.values()), seeds, sub, device=dev, run_dir=run_dir, progress=progress)
            k = len(seeds)
            per_method = {m: [{k_: v for k_, v in evaluate(r, sub, g, profile, dev).items() if k_ in (*_KEPT, "seed")}
                              for r in runs[i * k:(i + 1) * k]] for i, m in enumerate(configs)}
            entry["points"].append(_point(n, batch, math.ceil(n / batch), "trained", per_method))
            if progress:
                print(f"train-size: {g} n = {n} done ({time.time() - started:.0f} s)", flush=True)
            finish(profile, OUTPUT, _body(profile, splits, sizes, groups, {g: entry}), results_root,
                   device=str(dev), started=started, command=command)
        entry["points"].append(_table1_point(profile, source.groups[g]))
        groups[g] = entry
        out = finish(profile, OUTPUT, _body(profile, splits, sizes, groups), results_root, device=str(dev),
                     started=started, command=command)
    return out


def table1_for(profile: Profile, results_root=None) -> Table1Source:
    """Table 1's results that train-size completes (:func:`nets.experiments.si_settings.table1_source`):
    ``table1.json`` of the same settings as ``profile`` (but the groups) and float32 training.
    Raises :class:`nets.results_io.ResultsFileError`, one line naming the file and the fix, where it
    is missing, lacks a group, or differs (its full-size point would not be this sweep's)."""
    source = table1_source(profile, results_root, command="train-size",
                           why="train-size takes its full-size point and IR's nu from it")
    path = result_path(profile, "table1", results_root)
    diff = profile_differences(source.meta, profile, source.precision)
    if diff:
        raise ResultsFileError(f"{path} was computed with other settings ({', '.join(diff[:3])}) than this "
                               f"train-size run; give the same ones, or write Table 1 with them first "
                               f"(`python -m nets table1 --results ANOTHER_DIR ...`)")
    if source.precision != "fp32":
        raise ResultsFileError(f"{path} records precision {source.precision!r}; train-size compares with Table "
                               "1's float32 runs: run it on a folder of float32 results")
    return source


def _body(profile: Profile, splits, sizes: tuple[int, ...], groups: dict, in_progress: dict | None = None) -> dict:
    steps = min(math.ceil(profile.n_train / PAPER_BATCH), len(splits.train))
    return {
        "protocol": {
            "data": f"the first n of the {len(splits.train)} training images (a seeded permutation of the pooled "
                    "data, so nested random samples); the same validation and test splits as Table 1",
            "training": f"WT, DA and IR (logit form, Table 1's nu) for {profile.epochs} epochs of at most {steps} "
                        f"Adam step{'s' if steps != 1 else ''} each (each point's steps_per_epoch), as "
                        f"Table 1's runs on {profile.n_train} images with batches of {PAPER_BATCH}: batch_size = "
                        f"ceil(n * {PAPER_BATCH} / {profile.n_train}), the same share of the data "
                        "(nets.experiments.train_size.batch_size_for); every seed of the profile",
            "measures": "Table 1's: orbit accuracy over the whole test split's orbit, LI and DI over the test split, "
                        f"SI on its first {min(profile.n_si_samples, len(splits.test))} samples "
                        "(nets.experiments.table1.evaluate)",
            "full_size": f"n = {profile.n_train}: Table 1's runs, copied from table1.json",
        },
        "sizes": list(sizes),
        "groups": groups,
        **({"in_progress": in_progress} if in_progress else {}),
    }
