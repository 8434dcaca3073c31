"""Table 1's SI under other saliency maps (beyond the paper): how much do claims 1-3 rest on the map?

The paper calls its saliency map function "a hyper-parameter" (Section 4.1: absolute integrated
gradients of the target class, values below 0.9 of the maximum set to zero, a 3 x 3 Gaussian of
standard deviation 1). This experiment measures the SI of Table 1's WT, DA and IR (every seed, every
group, the same test samples) under the paper's map and under variants that change one choice at a time
(:data:`SETTINGS`), and decides the claims' SI checks under each with the report's thresholds
(:class:`nets.verdicts.Thresholds`): WT SI >= 0.99 (claim 1), DA SI <= 0.8 (claim 2), IR SI >= 0.945
(claim 3), each on the Student's t 95% interval over seeds, and IR - DA paired over seeds. The
``paper`` setting recomputes Table 1's SI; its per-seed values are stored beside ``table1.json``'s as a
check that the same models were measured. IR's nu stays the one Table 1 chose with the paper's map.

Evaluation only: the models come from the checkpoints (:func:`nets.experiments.intervals.load_runs`
refuses to train). ``run_si_settings`` writes ``<results>/<profile>/si_settings.json``
(``python -m nets si-settings`` is the command; REPORT.md's section is :mod:`nets.si_settings_report`).
``--model cnn`` measures the CNN's Table 1 models (``cnn.json``, :mod:`nets.experiments.cnn`) and
writes ``cnn_si_settings.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from nets.experiments.common import checkpoint_dir, metadata, read_json, result_path, trained_precision, write_json
from nets.experiments.intervals import load_runs
from nets.experiments.profiles import Profile
from nets.experiments.scale import cnn_plan
from nets.experiments.si_maps import BLACK, METHODS, SETTINGS
from nets.experiments.table1 import profile_splits, table1_configs
from nets.groups import GroupLike, as_group
from nets.results_io import ResultsFileError, reading
from nets.saliency_measure import saliency_invariance
from nets.stats import decide, paired_t, t_interval
from nets.train import resolve_device
from nets.verdicts import Thresholds

__all__ = ["SETTINGS", "BLACK", "METHODS", "OUTPUTS", "Table1Source", "si_values", "summarize", "table1_source", "run_si_settings"]

#: The results file of each model: ``python -m nets si-settings [--model cnn]``.
OUTPUTS = {"mlp": "si_settings", "cnn": "cnn_si_settings"}


def si_values(models: Mapping[str, Sequence[torch.nn.Module]], x: torch.Tensor, y: torch.Tensor, group: GroupLike,
              settings: Mapping[str, Mapping[str, Any]] = SETTINGS, *, n_steps: int = 50,
              black: float | None = None) -> dict[str, dict[str, list[float]]]:
    """``{setting: {method: [SI of each model]}}``: each model's SI on ``x (N, *C, H, W)``, ``y (N,)``
    under each setting (the paper's map with ``n_steps`` IG steps, changed as the setting says). A
    setting's ``baseline: BLACK`` is the constant ``black`` (default: the smallest value in ``x``)."""
    group = as_group(group)
    black = float(x.min()) if black is None else black
    out: dict[str, dict[str, list[float]]] = {}
    for name, change in settings.items():
        kw = {"n_steps": n_steps, **change}
        if kw.get("baseline") == BLACK:
            kw["baseline"] = black
        out[name] = {m: [float(saliency_invariance(model, x, y, group, **kw)) for model in ms]
                     for m, ms in models.items()}
    return out


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _interval(values: Sequence[float]) -> dict[str, float]:
    iv = t_interval(values)
    return {"mean": iv.estimate, "low": iv.low, "high": iv.high}


def summarize(per_seed: Mapping[str, Sequence[float]], thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """One setting of one group: ``per_seed`` ``{"WT": [...], "DA": [...], "IR": [...]}`` (same seed
    order) -> each method's mean [t 95% interval over seeds], the claims' SI checks decided on it
    (``holds`` / ``fails`` / ``undecided``, :func:`nets.stats.decide`), and IR - DA paired over seeds."""
    t = thresholds
    checks = {"WT": (">=", t.wt_si_min, "claim 1: WT SI"), "DA": ("<=", t.da_si_max, "claim 2: DA SI"),
              "IR": (">=", t.ir_si_min, "claim 3: IR SI")}
    out: dict[str, Any] = {"methods": {}}
    for m, values in per_seed.items():
        entry = {"per_seed": [float(v) for v in values], **_interval(values)}
        if m in checks:
            op, bound, what = checks[m]
            entry["check"] = {"what": f"{what} {op} {bound:g}", "outcome": decide(t_interval(values), op, bound)}
        out["methods"][m] = entry
    if "IR" in per_seed and "DA" in per_seed:
        test = paired_t(per_seed["IR"], per_seed["DA"])
        out["IR_minus_DA"] = {"mean": test.interval.estimate, "low": test.interval.low, "high": test.interval.high,
                              "p_value": test.p_value}
    return out


@dataclass(frozen=True)
class Table1Source:
    """Where Table 1's models come from: the ``profile`` they were trained with, Table 1's results
    per group (``{"methods": {"WT": ..., "DA": ..., "IR": ...}}``), the model's name and factory
    (:func:`nets.train.train_runs`'s ``model_fn``; ``None``: the paper's MLP), the file read,
    the precision the models were trained at (:func:`nets.experiments.common.trained_precision`)
    and the file's ``meta`` (its provenance and profile)."""

    profile: Profile
    groups: dict[str, Any]
    model: str
    model_fn: Callable | None
    file: str
    precision: str = "fp32"
    meta: dict[str, Any] = field(default_factory=dict)


def table1_source(profile: Profile, results_root=None, model: str = "mlp",
                  command: str = "si-settings", why: str | None = None) -> Table1Source:
    """The MLP's Table 1 (``table1.json``) or the CNN's (``cnn.json``'s, on the CNN profile it
    records: :func:`nets.experiments.scale.cnn_plan`). Raises
    :class:`nets.results_io.ResultsFileError` (one line naming ``command`` and saying how to make it)
    when the file or one of the profile's groups is missing; ``why`` says what ``command`` needs
    it for (default: it measures Table 1's models and trains nothing)."""
    if model == "cnn":
        plan = cnn_plan(profile, results_root)
        t1 = plan.sources["cnn.json"]["table1"]["groups"]
        return Table1Source(plan.profile, {g: t1[g] for g in plan.profile.groups}, plan.model_name, plan.model_fn,
                            "cnn.json", trained_precision(plan.sources), plan.sources["cnn.json"].get("meta") or {})
    if model != "mlp":
        raise ValueError(f"unknown model {model!r}; known: {', '.join(OUTPUTS)}")
    path = result_path(profile, "table1", results_root)
    if not path.exists():
        why = why or f"{command} measures Table 1's models (and trains none)"
        raise ResultsFileError(f"no {path}: {why}; run `python -m nets table1 --profile {profile.name}` first")
    t1 = read_json(path)
    missing = [g for g in profile.groups if g not in t1.get("groups", {})]
    if missing:
        raise ResultsFileError(f"{path} has no results for {', '.join(missing)}; run `python -m nets table1 "
                               f"--profile {profile.name} --groups {' '.join(missing)}` first")
    with reading(path, f"`python -m nets {command}`"):  # what the commands read of it: IR's chosen nu per group
        for g in profile.groups:
            float(t1["groups"][g]["methods"]["IR"]["nu"])
            t1["groups"][g]["methods"]["WT"], t1["groups"][g]["methods"]["DA"]  # present, or one line
    return Table1Source(profile, {g: t1["groups"][g] for g in profile.groups}, "mlp", None, "table1.json",
                        trained_precision({"table1.json": t1}), t1.get("meta") or {})


def run_si_settings(profile: Profile, results_root=None, *, device: str = "auto",
                    settings: Mapping[str, Mapping[str, Any]] = SETTINGS, command: str | None = None,
                    progress: bool = True, model: str = "mlp", methods: Sequence[str] = METHODS) -> dict:
    """SI of ``profile``'s Table 1 models (``model="mlp"``: from ``table1.json``; ``"cnn"``: the
    CNN's, from ``cnn.json``) and the checkpoints under every setting, per group; writes
    ``si_settings.json`` (``cnn_si_settings.json``; module docstring). Trains nothing: a missing or
    unfinished checkpoint raises :class:`nets.results_io.WouldTrain`, a missing results file (or a
    group it lacks) :class:`nets.results_io.ResultsFileError`, before anything is written.
    ``methods``: which of WT, DA and IR to measure (the CNN's WT checkpoints are not archived)."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be some of {', '.join(METHODS)}, got {list(methods)}")
    started = time.time()
    dev = resolve_device(device)
    source = table1_source(profile, results_root, model)
    profile = source.profile
    splits = profile_splits(profile)
    n_si = min(profile.n_si_samples, len(splits.test))
    test = splits.test.subset(n_si).to(dev)
    black = float(splits.test.x.min())
    seeds = list(profile.seeds)
    groups: dict[str, Any] = {}
    run_dir = checkpoint_dir(profile, results_root)
    for g in profile.groups:
        table1 = source.groups[g]["methods"]
        configs = table1_configs(profile, g, table1["IR"]["nu"], model=source.model)
        models = {m: [r.model.to(dev).eval() for r in load_runs([cfg], seeds, splits, run_dir, dev, source.model_fn,
                                                                   source.precision)]
                  for m, cfg in configs.items() if m in methods}
        values = si_values(models, test.x, test.y, g, settings, n_steps=profile.ig_steps, black=black)
        recorded = {m: [r.get("SI") for r in sorted(table1[m].get("runs", []), key=lambda r: r["seed"])]
                    for m in models}
        check = None
        if "paper" in values:
            diffs = [abs(a - b) for m in models for a, b in zip(values["paper"][m], recorded[m]) if b is not None]
            check = {f"per_seed_{source.file.replace('.', '_')}": recorded, "max_abs_difference": max(diffs) if diffs else None}
        groups[g] = {"nu_IR": table1["IR"]["nu"], "settings": {s: summarize(v) for s, v in values.items()},
                     "paper_check": check}
        if progress:
            print(f"si_settings: {g} done ({time.time() - started:.0f} s)", flush=True)
    body = {
        "meta": metadata(profile, OUTPUTS[model], device=str(dev), started=started, command=command,
                         precision=source.precision),
        "protocol": {
            "settings": {name: {k: (v if v != BLACK else f"black: the constant {black:.6g}") for k, v in change.items()}
                         for name, change in settings.items()},
            "samples": f"the first {n_si} test samples, as Table 1's SI; every seed {seeds}",
            "paper_map": "absolute integrated gradients of the true class (Gauss-Legendre, "
                         f"{profile.ig_steps} steps, zero baseline), values below 0.9 of the maximum set to zero, "
                         "3 x 3 Gaussian (sigma 1); SI averages over the non-identity group elements",
            "intervals": "Student's t 95% interval over seeds; IR - DA: paired t over seeds (scipy.stats.ttest_rel)",
            "nu": "IR at the nu Table 1 chose with the paper's map",
            **({"models": f"the CNN's {_and([m + (' (logit form)' if m == 'IR' else '') for m in methods])} "
                          f"of {source.file}'s Table 1, its profile ({profile.epochs} epochs), loaded from the "
                          "checkpoints"} if model != "mlp" else {}),
            **({"methods": f"{_and(list(methods))} only"} if tuple(methods) != METHODS else {}),
        },
        "groups": groups,
    }
    write_json(result_path(profile, OUTPUTS[model], results_root), body)
    return body
