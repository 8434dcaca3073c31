"""Beyond the paper: does invariance to the group carry over to the transformations between its elements?

WT is exactly invariant to the four rotations by 90 degrees and DA was trained on them; neither
saw a rotation by 45 degrees. This experiment loads Table 1's models (every seed of WT, DA and IR
at the nu Table 1 chose, per group) and measures them on the test images transformed between the
group's identity and its first step (:func:`nets.between.between_for`: 13 angles from 0 to 90
degrees for R4 and D4, every shift from 0 to 12 pixels for T3), per step and seed
(:func:`nets.between.between_terms`): the orbit accuracy of the transformed images, and LI and DI
against the untransformed image's logits, averaged over the whole group. For rotations, the same
after rotating by the angle and back (``round_trip``): what the bilinear resampling alone costs.

At step 0 the accuracy is Table 1's orbit accuracy on the same samples, and at the group's step
(90 degrees, 12 pixels) the transformed image's orbit is the image's own: both ends are exact.
Samples: the first ``profile.n_drift_samples`` test samples (the paper profile's: all 50,000; then
``check`` stores each seed's accuracy at step 0 beside ``table1.json``'s, which it must equal).

Evaluation only: the models come from the checkpoints (:func:`nets.experiments.intervals.load_runs`
refuses to train). ``python -m nets between --profile P`` writes ``<results>/<P>/between.json`` and
``figures/between``; REPORT.md's section is :func:`nets.between_report.between_section`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from nets.between import between_for, between_terms
from nets.data.splits import normalize
from nets.experiments.common import checkpoint_dir, finish
from nets.experiments.intervals import load_runs
from nets.experiments.profiles import Profile
from nets.experiments.si_settings import table1_source
from nets.experiments.table1 import profile_splits, table1_configs
from nets.groups import get_group
from nets.train import resolve_device

__all__ = ["run_between", "between_results", "OUTPUT", "TERMS"]

#: The results file: ``python -m nets between``.
OUTPUT = "between"
#: The measures per step: orbit accuracy, LI and DI against the untransformed image.
TERMS = ("accuracy", "LI", "DI")


def _measure(model, x, y, group, transform) -> dict[str, float]:
    t = between_terms(model, x, y, group, transform)
    return {"accuracy": int(t["correct"].sum()) / (group.order * x.shape[0]), "LI": float(t["LI"].double().mean()),
            "DI": float(t["DI"].double().mean())}


def _summary(runs: list[dict], key: str) -> dict[str, list[float]]:
    a = np.asarray([r[key] for r in runs], dtype=np.float64)  # (seeds, steps)
    return {"mean": a.mean(0).tolist(), "std": a.std(0, ddof=0).tolist()}


def between_results(models: dict[str, dict[str, list]], nus: dict[str, float], x: torch.Tensor, y: torch.Tensor,
                    fill: float, *, progress: bool = False) -> dict[str, Any]:
    """``between.json``'s ``groups``: ``models[group][method]`` lists ``(seed, model)`` pairs
    (models in eval mode on ``x``'s device), ``nus[group]`` IR's nu (recorded only); ``x: (N, *C,
    H, W)`` test images, ``y: (N,)`` labels, ``fill`` the normalized background value rotations
    fill in. Per group: the steps, and per method the runs (per step: accuracy, LI, DI, and for
    rotations ``round_trip``'s) with mean and population std over seeds."""
    started = time.time()
    out: dict[str, Any] = {}
    for g, methods in models.items():
        group = get_group(g)
        between = between_for(group, tuple(x.shape[-2:]))
        entry: dict[str, Any] = {"kind": between.kind, "unit": between.unit, "axis": between.axis or None,
                                 "steps": list(between.steps), "group_step": between.group_step, "fill": fill,
                                 "nu_IR": nus[g], "methods": {}}
        for m, runs in methods.items():
            records = []
            for seed, model in runs:
                per_step = [_measure(model, x, y, group, between.transform(s, fill=fill)) for s in between.steps]
                rec: dict[str, Any] = {"seed": seed, **{k: [p[k] for p in per_step] for k in TERMS}}
                if between.kind == "rotation":
                    back = [_measure(model, x, y, group, between.round_trip(s, fill=fill)) for s in between.steps]
                    rec["round_trip"] = {k: [p[k] for p in back] for k in TERMS}
                records.append(rec)
            summary = {k: _summary(records, k) for k in TERMS}
            if between.kind == "rotation":
                summary["round_trip"] = {k: _summary([r["round_trip"] for r in records], k) for k in TERMS}
            entry["methods"][m] = {**summary, "runs": records}
            if progress:
                print(f"between: {g} {m} done ({time.time() - started:.0f} s)", flush=True)
        out[g] = entry
    return out


def run_between(profile: Profile, results_root=None, *, device: str = "auto", command: str | None = None,
                progress: bool = True) -> dict:
    """Table 1's models of ``profile`` on the transformations between each group's elements; writes
    ``between.json`` and its figure (module docstring). Trains nothing: a missing or unfinished
    checkpoint raises :class:`nets.results_io.WouldTrain`, a missing ``table1.json`` (or a group it
    lacks) :class:`nets.results_io.ResultsFileError`, and a group with no transformations between
    its elements (:func:`nets.between.between_for`) a ``ValueError``, before anything is measured."""
    started = time.time()
    dev = resolve_device(device)
    source = table1_source(profile, results_root, command="between")
    splits = profile_splits(profile)
    n = min(profile.n_drift_samples, len(splits.test))
    test = splits.test.subset(n).to(dev)
    for g in profile.groups:  # a group without transformations between its elements: before any model loads
        between_for(g, tuple(test.x.shape[-2:]))
    fill = float(normalize(torch.zeros(()), splits.mean, splits.std))  # a blank pixel, normalized
    seeds = list(profile.seeds)
    run_dir = checkpoint_dir(profile, results_root)
    models, nus = {}, {}
    for g in profile.groups:
        nus[g] = source.groups[g]["methods"]["IR"]["nu"]
        configs = table1_configs(profile, g, nus[g])
        models[g] = {m: [(r.seed, r.model.to(dev).eval()) for r in load_runs([cfg], seeds, splits, run_dir, dev,
                                                                              precision=source.precision)]
                     for m, cfg in configs.items()}
    groups = between_results(models, nus, test.x, test.y, fill, progress=progress)
    if n == len(splits.test):  # the whole test split: step 0 is Table 1's orbit accuracy, seed by seed
        for g, entry in groups.items():
            table1 = source.groups[g]["methods"]
            entry["check"] = {
                "accuracy_at_0": {m: [r["accuracy"][0] for r in v["runs"]] for m, v in entry["methods"].items()},
                "accuracy_table1_json": {m: [r.get("accuracy") for r in sorted(table1[m].get("runs", []),
                                                                                 key=lambda r: r["seed"])]
                                         for m in entry["methods"]},
            }
    body = {
        "protocol": {
            "samples": f"the first {n} test samples; every seed {seeds}; Table 1's models (IR at the nu it chose)",
            "transformations": "rotations by 13 angles from 0 to the group's step (bilinear resampling, blank pixels "
                               "filled in; multiples of 90 degrees exact) or cyclic shifts by every whole pixel from 0 "
                               "to the group's step (nets.between.between_for)",
            "accuracy": "orbit accuracy of the transformed images: the share of (sample, group element g) with "
                        "argmax f(g t x) = y",
            "LI": "mean over the samples and ALL group elements g of 1/2 ||f(g t x) - f(x)||^2 (Eq. 2's summand)",
            "DI": "the same mean of KL(softmax f(x) || softmax f(g t x)) (Eq. 1's summand), nats",
            "round_trip": "rotations only: the same measures after rotating by the angle and back (the resampling's "
                          "blur without the rotation)",
            "n_samples": n,
        },
        "groups": groups,
    }
    return finish(profile, OUTPUT, body, results_root, device=str(dev), started=started, command=command,
                  precision=source.precision)
