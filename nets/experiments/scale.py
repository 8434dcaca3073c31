"""Beyond the paper: is Figure 5's drop in sigma_max(J) a smaller logit scale or a smoother function?

Why. Every IR form lowers sigma_max(J) of the centered logits below DA's except our centered
normalized form on R4 (``centered.json``). Our reading there (docs/centered.md) was that a
scale-free form (``verify/test_regularizer_scaling.py``) makes the function invariant in shape
while nothing pulls the logit scale down. This experiment tests that reading by splitting
sigma_max into scale times sensitivity per unit of scale.

Measured (evaluation only: every model comes from the folder's checkpoints, and one that would
need training is an error, as for ``intervals``) for DA and the chosen nu of each IR form in
``spectral.json``, and of each form of ours (:data:`nets.experiments.centered.BEYOND_FORMS`: the
centered form in ``centered.json``, the detached form in ``detached.json``) whose results file the
folder has from the same profile; per seed on the first ``profile.n_sigma_samples`` test samples ``x_i``:

- ``sigma_max_centered``: mean_i sigma_max(d c(f(x_i)) / dx), ``c(v) = v - mean_c v_c``, the
  centered logits the softmax sees (the same number as ``spectral.json``'s, recomputed);
- ``logit_scale``: mean_i ||c(f(x_i))|| (:func:`nets.sensitivity.centered_logit_norm`);
- ``relative_sensitivity``: sigma_max_centered / logit_scale, unchanged by ``f -> a f``.

So per seed sigma = scale x relative exactly, and each IR model's log-ratio to DA's (paired over
seeds) is the sum of a scale part and a relative part; the report decides each against 1 on the
95% t interval of the paired log-ratio (``nets.scale_report``).

The CNN (``--model cnn``, beyond the MLP): the same split for DA and IR (logit form, the nu
``cnn.json`` chose) of :mod:`nets.experiments.cnn`, on its own profile as ``cnn.json`` records it
(:func:`nets.experiments.cnn.recorded_sizes`: epochs, nu grid, evaluation sizes), from the CNN's
checkpoints in the same folder.

``python -m nets scale --profile P`` writes ``<results>/<P>/scale.json`` and ``figures/scale``;
with ``--model cnn``, ``cnn_scale.json`` and ``figures/cnn_scale``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping

import torch

from nets.experiments.centered import BEYOND_FORMS, spectral_results
from nets.experiments.cnn import cnn_model, cnn_profile, recorded_sizes
from nets.experiments.common import (checkpoint_dir, finish, mean_std, profile_differences, result_path,
                                     trained_precision)
from nets.experiments.intervals import load_runs
from nets.experiments.profiles import Profile
from nets.experiments.spectral import sigma_inputs, spectral_config
from nets.model_spec import ModelSpecError
from nets.models import CenteredLogits
from nets.results_io import ResultsFileError, examine_results, read_json, reading, recorded_precision
from nets.sensitivity import centered_logit_norm, jacobian_spectral_norm
from nets.train import TrainConfig, TrainedRun, resolve_device

__all__ = ["MEASURES", "OUTPUTS", "MissingCNNResults", "ScalePlan", "scale_measures", "model_configs", "mlp_plan",
           "cnn_plan", "run_scale"]

#: Per seed and model, in this order: sigma_max_centered = logit_scale x relative_sensitivity.
MEASURES = ("sigma_max_centered", "logit_scale", "relative_sensitivity")
#: The results file (and figure stem) of each model family (``--model``).
OUTPUTS = {"mlp": "scale", "cnn": "cnn_scale"}


class MissingCNNResults(ResultsFileError):
    """The folder has no usable ``cnn.json`` for this profile (the CNN's chosen nu come from it)."""


@dataclass(frozen=True)
class ScalePlan:
    """What to measure: the ``profile`` the models were trained with, per group ``{key: (config,
    source entry, source file)}``, the source files' results by name, the model factory
    (``None``: the paper's MLP), a sentence on the models for the protocol and the models'
    ``TrainConfig.model`` (the prefix of their run keys)."""

    profile: Profile
    configs: dict[str, dict[str, tuple]]
    sources: dict[str, dict]
    model_fn: Callable | None
    models: str
    model_name: str = "mlp"


def scale_measures(model, x: torch.Tensor) -> dict[str, float]:
    """The three :data:`MEASURES` of one model on ``x: (N, *S)`` (any classifier of ``x`` that
    does not mix samples; see :func:`nets.sensitivity.jacobian_spectral_norm`)."""
    centered = CenteredLogits(model)
    sigma = float(jacobian_spectral_norm(centered, x).double().mean())
    with torch.no_grad():
        scale = float(centered_logit_norm(model(x)).mean())
    return {"sigma_max_centered": sigma, "logit_scale": scale,
            "relative_sensitivity": sigma / scale if scale > 0 else float("nan")}


def model_configs(profile: Profile, group: str, spectral: dict, ours: Mapping[str, dict] | None = None, *,
                  source: str = "spectral.json", model: str = "mlp") -> dict[str, tuple]:
    """``{key: (config, source entry, source file)}`` for DA and each IR form's chosen nu of
    ``group``, as ``spectral`` (``spectral.json``, or ``cnn.json``'s spectral section with
    ``source="cnn.json", model="cnn"``) and the results files of our forms in ``ours`` (file name ->
    its dict, e.g. ``{"centered.json": ...}``) recorded them
    (:func:`nets.experiments.spectral.spectral_config`)."""
    with reading(source, "`python -m nets scale`"):
        entries = [(k, m, source) for k, m in spectral["groups"][group]["models"].items()]
    for file, results in (ours or {}).items():
        if group in results.get("groups", {}):
            m = results["groups"][group]["model"]
            entries.append((f"IR-{m['regularizer']}", m, file))
    return {key: (spectral_config(profile, group, key, m, src, model=model), m, src) for key, m, src in entries}


def mlp_plan(profile: Profile, results_root=None) -> ScalePlan:
    """The MLP's models: DA and every IR form's chosen nu of ``spectral.json``, and those of our
    forms' ``centered.json`` and ``detached.json`` when the folder has them from the same profile.
    Raises :class:`nets.experiments.centered.MissingSpectralResults` without a usable ``spectral.json``."""
    sp = spectral_results(profile, results_root, "the chosen nu of each IR form", precision=None)
    ours, precision = {}, recorded_precision(sp.get("meta", {}))
    for name in BEYOND_FORMS:
        path = result_path(profile, name, results_root)
        r, why = examine_results(path) if path.exists() else (None, None)
        if why:  # measured without it, and left there for the command that recomputes it
            print(f"warning: {path} is damaged ({why}); scale measures without its models and leaves it where it is",
                  file=sys.stderr, flush=True)
        if r is not None and not profile_differences(r.get("meta", {}), profile, precision):
            ours[f"{name}.json"] = r  # of this sweep (its precision too) only
    return ScalePlan(profile, {g: model_configs(profile, g, sp, ours) for g in profile.groups},
                     {"spectral.json": sp, **ours}, None,
                     "DA and each IR form at the nu its experiment chose (spectral.json; centered.json and "
                     "detached.json when present), loaded from the checkpoints, never trained.")


def cnn_plan(profile: Profile, results_root=None) -> ScalePlan:
    """The CNN's models: DA and IR (logit form) at the nu ``cnn.json`` chose, on the CNN profile it
    records (:func:`nets.experiments.cnn.recorded_sizes`). Raises :class:`MissingCNNResults`
    (one line saying how to make it) when ``cnn.json`` is missing, unreadable as a CNN record, from
    another profile, or lacks one of ``profile``'s groups."""
    path = result_path(profile, "cnn", results_root)
    how = (f"run `python -m nets cnn --profile {profile.name}` first (with the --model of your own model, "
           f"if it is one; into the same --results folder)")
    if not path.exists():
        raise MissingCNNResults(f"{path} is missing: the CNN's chosen nu come from it; {how}")
    cnn = read_json(path)  # a damaged file: ResultsFileError naming it, left where it is (this trains nothing)
    if not isinstance(cnn, dict):
        raise MissingCNNResults(f"{path} holds a JSON {type(cnn).__name__}, not the CNN's results; {how}")
    recorded_model = ((cnn.get("meta") or {}).get("profile") or {}).get("model")  # python -m nets cnn --model
    if recorded_model:
        how = (f"run `python -m nets cnn --profile {profile.name} --model {recorded_model}` first "
               f"(into the same --results folder)")
    try:
        prof = cnn_profile(replace(profile, model=recorded_model), recorded_sizes(cnn))
    except ValueError as e:
        raise MissingCNNResults(f"{path}: {e}; {how}") from None
    try:
        own = cnn_model(prof)
    except ModelSpecError as e:  # your model's module is not importable here: the fix is yours, not a rerun
        raise ModelSpecError(f"{path} holds the results of your model, which cannot be built here ({e}); make its "
                             f"module importable (e.g. PYTHONPATH=DIR) and run this again") from None
    diff = profile_differences(cnn.get("meta", {}), prof)
    if diff:
        raise MissingCNNResults(f"{path} was computed with other settings ({', '.join(diff[:3])}); {how}")
    missing = [g for g in prof.groups if g not in cnn.get("spectral", {}).get("groups", {})]
    if missing:
        raise MissingCNNResults(f"{path} has no results for {', '.join(missing)}; {how} with --groups "
                                f"{' '.join(missing)}, or measure the others with --groups")
    configs = {g: model_configs(prof, g, cnn["spectral"], source="cnn.json", model=own.name) for g in prof.groups}
    return ScalePlan(prof, configs, {"cnn.json": cnn}, own.factory,
                     "the CNN's DA and IR (logit form) at the nu cnn.json chose, loaded from the checkpoints, "
                     "never trained.", own.name)


def _entry(cfg: TrainConfig, source_entry: dict, source: str, runs: list[TrainedRun], x: torch.Tensor,
           device) -> dict:
    recorded = {r["seed"]: r.get("sigma_max_centered") for r in source_entry.get("runs", [])}
    per_seed = []
    for r in runs:
        per_seed.append({"seed": r.seed, **scale_measures(r.model.to(device).eval(), x),
                         "sigma_max_centered_recorded": recorded.get(r.seed)})
    return {"method": cfg.method, "regularizer": cfg.regularizer if cfg.method == "IR" else None,
            "nu": cfg.nu if cfg.method == "IR" else None, "key": cfg.key(), "source": source,
            **{k: mean_std([p[k] for p in per_seed]) for k in MEASURES}, "runs": per_seed}


def _provenance(src: dict) -> dict:
    """Which run made a source file: its command, start and commit (and each group's sitting)."""
    out = {k: src.get("meta", {}).get(k) for k in ("command", "started_at", "git_commit")}
    return {**out, "group_provenance": src["group_provenance"]} if src.get("group_provenance") else out


def run_scale(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
              command: str | None = None, model: str = "mlp") -> dict:
    """Measure :data:`MEASURES` for DA and every IR form's chosen nu from the checkpoints of
    ``model``'s experiment (``"mlp"``: :func:`mlp_plan`; ``"cnn"``: :func:`cnn_plan`); write
    ``scale.json`` (``cnn_scale.json``) and its figure. Raises the plan's error for a missing
    source file and :class:`nets.results_io.WouldTrain` for a missing or unfinished checkpoint,
    before anything is written."""
    started = time.time()
    if model not in OUTPUTS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(OUTPUTS)}")
    plan = (cnn_plan if model == "cnn" else mlp_plan)(profile, results_root)
    dev = resolve_device(device)
    run_dir = checkpoint_dir(plan.profile, results_root)
    splits, _, x = sigma_inputs(plan.profile, dev)
    seeds = list(plan.profile.seeds)
    precision = trained_precision(plan.sources)
    runs = {g: {k: load_runs([cfg], seeds, splits, run_dir, dev, plan.model_fn, precision)
                for k, (cfg, _, _) in cfgs.items()}
            for g, cfgs in plan.configs.items()}  # every checkpoint loaded (or refused) before measuring
    groups = {}
    for g, cfgs in plan.configs.items():
        groups[g] = {"models": {k: _entry(cfg, m, source, runs[g][k], x, dev)
                                for k, (cfg, m, source) in cfgs.items()}}
        if progress:
            print(f"scale: {g} done ({time.time() - started:.0f} s)", flush=True)
    results = {
        "protocol": {
            "samples": f"the first {len(x)} test samples (as {next(iter(plan.sources))}); per seed, each measure "
                       "averaged over them.",
            "sigma_max_centered": "sigma_max of the input Jacobian of the centered logits c(f) = f - mean_c f_c.",
            "logit_scale": "||c(f(x))||, the norm of the centered logits.",
            "relative_sensitivity": "sigma_max_centered / logit_scale (per seed; unchanged by f -> a f).",
            "models": plan.models,
            "n_sigma_samples": len(x),
        },
        "sources": {name: _provenance(src) for name, src in plan.sources.items()},
        "groups": groups,
    }
    return finish(plan.profile, OUTPUTS[model], results, results_root, device=str(dev), started=started,
                  command=command, precision=precision)
