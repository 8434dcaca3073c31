"""Beyond the paper: is Figure 5's drop in sigma_max(J) a smaller logit scale or a smoother function?

Why. Every IR form lowers sigma_max(J) of the centered logits below DA's except our centered
normalized form on R4 (``centered.json``). Our reading there (docs/centered.md) was that a
scale-free form (``verify/test_regularizer_scaling.py``) makes the function invariant in shape
while nothing pulls the logit scale down. This experiment tests that reading by splitting
sigma_max into scale times sensitivity per unit of scale.

Measured (evaluation only: every model comes from the folder's checkpoints, and one that would
need training is an error, as for ``intervals``) for DA and the chosen nu of each IR form in
``spectral.json``, and of the centered form in ``centered.json`` when the folder has one from the
same profile; per seed on the first ``profile.n_sigma_samples`` test samples ``x_i``:

- ``sigma_max_centered``: mean_i sigma_max(d c(f(x_i)) / dx), ``c(v) = v - mean_c v_c``, the
  centered logits the softmax sees (the same number as ``spectral.json``'s, recomputed);
- ``logit_scale``: mean_i ||c(f(x_i))|| (:func:`nets.sensitivity.centered_logit_norm`);
- ``relative_sensitivity``: sigma_max_centered / logit_scale, unchanged by ``f -> a f``.

So per seed sigma = scale x relative exactly, and each IR model's log-ratio to DA's (paired over
seeds) is the sum of a scale part and a relative part; the report decides each against 1 on the
95% t interval of the paired log-ratio (``nets.scale_report``).

``python -m nets scale --profile P`` writes ``<results>/<P>/scale.json`` and ``figures/scale``.
"""

from __future__ import annotations

import time

import torch

from nets.experiments.centered import CENTERED_FORM, spectral_results
from nets.experiments.common import checkpoint_dir, finish, mean_std, profile_differences, read_results, result_path
from nets.experiments.intervals import load_runs
from nets.experiments.profiles import Profile
from nets.experiments.spectral import sigma_inputs, spectral_config
from nets.models import CenteredLogits
from nets.sensitivity import centered_logit_norm, jacobian_spectral_norm
from nets.train import TrainConfig, TrainedRun, resolve_device

__all__ = ["MEASURES", "scale_measures", "model_configs", "run_scale"]

#: Per seed and model, in this order: sigma_max_centered = logit_scale x relative_sensitivity.
MEASURES = ("sigma_max_centered", "logit_scale", "relative_sensitivity")


def scale_measures(model, x: torch.Tensor) -> dict[str, float]:
    """The three :data:`MEASURES` of one model on ``x: (N, *S)`` (any classifier of ``x`` that
    does not mix samples; see :func:`nets.sensitivity.jacobian_spectral_norm`)."""
    centered = CenteredLogits(model)
    sigma = float(jacobian_spectral_norm(centered, x).double().mean())
    with torch.no_grad():
        scale = float(centered_logit_norm(model(x)).mean())
    return {"sigma_max_centered": sigma, "logit_scale": scale,
            "relative_sensitivity": sigma / scale if scale > 0 else float("nan")}


def model_configs(profile: Profile, group: str, spectral: dict, centered: dict | None) -> dict[str, tuple]:
    """``{key: (config, source entry, source file)}`` for DA and each IR form's chosen nu of
    ``group``, as ``spectral.json`` (and ``centered.json``, when given) recorded them
    (:func:`nets.experiments.spectral.spectral_config`)."""
    entries = [(k, m, "spectral.json") for k, m in spectral["groups"][group]["models"].items()]
    if centered is not None and group in centered.get("groups", {}):
        entries.append((f"IR-{CENTERED_FORM}", centered["groups"][group]["model"], "centered.json"))
    return {key: (spectral_config(profile, group, key, m, source), m, source) for key, m, source in entries}


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


def _centered(profile: Profile, results_root) -> dict | None:
    """The folder's ``centered.json`` when it is from this profile, else ``None``."""
    c = read_results(result_path(profile, "centered", results_root))
    return c if c is not None and not profile_differences(c.get("meta", {}), profile) else None


def run_scale(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
              command: str | None = None) -> dict:
    """Measure :data:`MEASURES` for DA and every IR form's chosen nu from the checkpoints; write
    ``scale.json`` and its figure. Raises :class:`nets.experiments.centered.MissingSpectralResults`
    without ``spectral.json`` and :class:`nets.results_io.WouldTrain` for a missing or
    unfinished checkpoint, before anything is written."""
    started = time.time()
    sp = spectral_results(profile, results_root, "the chosen nu of each IR form")
    centered = _centered(profile, results_root)
    dev = resolve_device(device)
    run_dir = checkpoint_dir(profile, results_root)
    splits, _, x = sigma_inputs(profile, dev)
    seeds = list(profile.seeds)
    configs = {g: model_configs(profile, g, sp, centered) for g in profile.groups}
    runs = {g: {k: load_runs([cfg], seeds, splits, run_dir, dev) for k, (cfg, _, _) in cfgs.items()}
            for g, cfgs in configs.items()}  # every checkpoint loaded (or refused) before measuring
    groups = {}
    for g, cfgs in configs.items():
        groups[g] = {"models": {k: _entry(cfg, m, source, runs[g][k], x, dev)
                                for k, (cfg, m, source) in cfgs.items()}}
        if progress:
            print(f"scale: {g} done ({time.time() - started:.0f} s)", flush=True)
    results = {
        "protocol": {
            "samples": f"the first {len(x)} test samples (as spectral.json); per seed, each measure averaged "
                       "over them.",
            "sigma_max_centered": "sigma_max of the input Jacobian of the centered logits c(f) = f - mean_c f_c.",
            "logit_scale": "||c(f(x))||, the norm of the centered logits.",
            "relative_sensitivity": "sigma_max_centered / logit_scale (per seed; unchanged by f -> a f).",
            "models": "DA and each IR form at the nu its experiment chose (spectral.json; centered.json when "
                      "present), loaded from the checkpoints, never trained.",
            "n_sigma_samples": len(x),
        },
        "sources": {name: {k: src.get("meta", {}).get(k) for k in ("command", "started_at", "git_commit")}
                    for name, src in (("spectral.json", sp), ("centered.json", centered)) if src is not None},
        "groups": groups,
    }
    return finish(profile, "scale", results, results_root, device=str(dev), started=started, command=command)
