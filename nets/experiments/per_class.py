"""Table 1's accuracy over the orbit per class (beyond the paper): which digits does each method lose?

Table 1 reports one accuracy per model. This experiment loads the same models (every seed of WT,
DA and IR at the nu Table 1 chose, per group) and measures, on the whole test split, the share of
each class's orbit classified correctly and the class each one is most often taken for
(:func:`nets.class_accuracy.per_class_over_seeds`). REPORT.md's section
(:func:`nets.per_class_report.per_class_section`) gives each method's mean over seeds and WT - DA
per class with its paired t interval over seeds. As a check that the same models were measured, the
per-seed accuracies weighted back over the classes are stored beside ``table1.json``'s.

Evaluation only: the models come from the checkpoints (:func:`nets.experiments.intervals.load_runs`
refuses to train). ``python -m nets per-class --profile P`` writes ``<results>/<P>/per_class.json``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nets.class_accuracy import per_class_over_seeds
from nets.experiments.common import checkpoint_dir, metadata, result_path, write_json
from nets.experiments.intervals import load_runs
from nets.experiments.profiles import Profile
from nets.experiments.si_settings import table1_source
from nets.experiments.table1 import profile_splits, table1_configs
from nets.train import resolve_device

__all__ = ["run_per_class", "OUTPUT"]

#: The results file: ``python -m nets per-class``.
OUTPUT = "per_class"


def run_per_class(profile: Profile, results_root=None, *, device: str = "auto", command: str | None = None,
                  progress: bool = True) -> dict:
    """Orbit accuracy per class of ``profile``'s Table 1 models on the test split, per group; writes
    ``per_class.json`` (module docstring). Trains nothing: a missing or unfinished checkpoint raises
    :class:`nets.results_io.WouldTrain`, a missing ``table1.json`` (or a group it lacks)
    :class:`nets.results_io.ResultsFileError`, before anything is written."""
    started = time.time()
    dev = resolve_device(device)
    source = table1_source(profile, results_root, command="per-class")
    splits = profile_splits(profile)
    test = splits.test.to(dev)
    seeds = list(profile.seeds)
    run_dir = checkpoint_dir(profile, results_root)
    groups: dict[str, Any] = {}
    for g in profile.groups:
        table1 = source.groups[g]["methods"]
        configs = table1_configs(profile, g, table1["IR"]["nu"])
        models = {m: [r.model.to(dev).eval() for r in load_runs([cfg], seeds, splits, run_dir, dev,
                                                                   precision=source.precision)]
                  for m, cfg in configs.items()}
        entry = per_class_over_seeds(models, test.x, test.y, g)
        counts = np.array(entry["counts"], dtype=float)
        entry["check"] = {
            "accuracy_from_classes": {m: [float(np.dot(a, counts) / counts.sum()) for a in v["accuracy"]]
                                      for m, v in entry["methods"].items()},
            "accuracy_table1_json": {m: [r.get("accuracy") for r in sorted(table1[m].get("runs", []),
                                                                             key=lambda r: r["seed"])]
                                     for m in models},
        }
        groups[g] = {"nu_IR": table1["IR"]["nu"], **entry}
        if progress:
            print(f"per_class: {g} done ({time.time() - started:.0f} s)", flush=True)
    body = {
        "meta": metadata(profile, OUTPUT, device=str(dev), started=started, command=command,
                         precision=source.precision),
        "protocol": {
            "samples": f"all {len(splits.test)} test samples; every seed {seeds}; every element of the group",
            "accuracy": "per class: the share of its samples' orbit predictions (argmax) equal to the label",
            "taken_for": "per class: the other class with the largest share of its orbit predictions, from the "
                         "confusion matrix averaged over seeds",
            "intervals": "REPORT.md: WT - DA per class, paired t over seeds (scipy.stats.ttest_rel)",
            "nu": "IR at the nu Table 1 chose",
        },
        "groups": groups,
        "class_names": None if splits.class_names is None else list(splits.class_names),
    }
    write_json(result_path(profile, OUTPUT, results_root), body)
    return body

