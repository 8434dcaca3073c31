"""Bootstrap intervals over test samples for Table 1 and Figure 5, from the
committed checkpoints (evaluation only: a run that would need training is an error).

The results JSON of ``table1`` and ``spectral`` hold one number per seed, enough for
the t intervals over seeds (``nets.stats``) but not for an interval over the test
samples. This experiment loads the same models, recomputes each measure per test
sample (accuracy over the sample's orbit, LI, DI, SI, sigma_max(J), sigma_max of the
centered logits, class-common logit share), averages each sample's value over the
seeds, and bootstraps the mean over samples: an interval for the test-set sampling
error with the trained models held fixed (the t interval over seeds holds the test
set fixed and varies the training). For each IR form it also bootstraps the ratio
of mean sigma_max to DA's over the same samples (paired by sample). The per-seed
means recomputed here are stored beside the JSON's (``per_seed`` / ``per_seed_json``)
as a check that the same models were measured.

``python -m nets intervals --profile P`` writes ``<results>/<P>/intervals.json``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy import stats

from nets.experiments.common import checkpoint_dir, metadata, read_json, result_path, trained_precision, write_json
from nets.experiments.profiles import Profile
from nets.experiments.spectral import spectral_config
from nets.experiments.table1 import profile_splits, table1_configs
from nets.groups import Group, get_group
from nets.metrics import (
    class_common_logit_share,
    distribution_invariance,
    jacobian_spectral_norm,
    logit_invariance,
    orbit_terms,
    saliency_invariance,
)
from nets.models import CenteredLogits
from nets.results_io import ResultsFileError, WouldTrain, precision_dir, reading
from nets.sample_bootstrap import share_difference, share_mean
from nets.stats import CONFIDENCE, bootstrap_interval
from nets.train import TrainConfig, TrainedRun, resolve_device, train_runs

__all__ = ["run_intervals", "load_runs", "orbit_correct", "sample_summary", "paired_difference", "sigma_ratio",
           "WouldTrain", "N_RESAMPLES", "METHOD"]

N_RESAMPLES = 1999
METHOD = "percentile"  # BCa's jackknife over 50,000 samples is too costly on 2 cores
BOOT_SEED = 0


def load_runs(configs: list[TrainConfig], seeds: list[int], splits, run_dir, device,
              model_fn=None, precision: str = "fp32") -> list[TrainedRun]:
    """The finished runs of ``configs`` x ``seeds`` from ``run_dir`` (``model_fn``: the factory of a
    model other than the paper's MLP, as :func:`nets.train.train_runs` takes it; ``precision``: the
    precision they were trained at, whose checkpoints live in
    :func:`~nets.results_io.precision_dir`; loading and every measure are float32, so a bf16 run
    loads on any CPU); raises :class:`WouldTrain` naming the run when a checkpoint is missing,
    damaged (left where it is) or would need any further training."""
    return train_runs(configs, seeds, splits, device=device, run_dir=precision_dir(run_dir, precision),
                      progress=False, model_fn=model_fn, finished_only=True)


def orbit_correct(model, x: torch.Tensor, y: torch.Tensor, group: Group, chunk: int = 5000) -> np.ndarray:
    """Per sample, the share of its orbit (every group element) classified as ``y``: ``(N,)``, the
    correct count of :func:`nets.metrics.orbit_terms` (behind every orbit accuracy) over ``|G|``."""
    correct = orbit_terms(model, x, y, group, chunk_size=chunk, terms=("correct",))["correct"]
    return (correct.double() / group.order).cpu().numpy()


def sample_summary(per_seed_samples: list[np.ndarray], json_per_seed: list[float] | None,
                   shares: bool = False) -> dict:
    """The bootstrap interval over samples of the seed-averaged per-sample values; for ``shares`` (an
    orbit accuracy) :func:`~nets.sample_bootstrap.share_mean`'s, the same percentile bootstrap except
    where every sample has the same share (all right, say), where it is the exact bound of
    :func:`~nets.sample_bootstrap.constant_share_bound`, not [1, 1]."""
    values = np.mean(np.stack(per_seed_samples), axis=0)
    if shares:
        e = share_mean(values, confidence=CONFIDENCE, n_resamples=N_RESAMPLES, seed=BOOT_SEED)
        mean, low, high = e.value, e.low, e.high
    else:
        iv = bootstrap_interval(values, np.mean, n_resamples=N_RESAMPLES, seed=BOOT_SEED, method=METHOD)
        mean, low, high = iv.estimate, iv.low, iv.high
    return {"mean": mean, "low": low, "high": high, "n_samples": int(values.size),
            "per_seed": [float(v.mean()) for v in per_seed_samples], "per_seed_json": json_per_seed}


def sigma_ratio(ir: list[np.ndarray], da: list[np.ndarray]) -> dict:
    """Bootstrap over samples (paired: one sample is resampled for both models) of
    mean sigma_IR / mean sigma_DA, both averaged over seeds."""
    a, b = np.mean(np.stack(ir), 0), np.mean(np.stack(da), 0)
    res = stats.bootstrap((a, b), lambda u, v: np.mean(u) / np.mean(v), paired=True, vectorized=False,
                          n_resamples=N_RESAMPLES, method=METHOD, confidence_level=CONFIDENCE,
                          rng=np.random.default_rng(BOOT_SEED))
    ci = res.confidence_interval
    return {"ratio": float(a.mean() / b.mean()), "low": float(ci.low), "high": float(ci.high),
            "n_samples": int(a.size)}


def paired_difference(a: list[np.ndarray], b: list[np.ndarray], scale: float = 1.0) -> dict:
    """The test-set interval of a seed-averaged paired difference of orbit accuracies: each sample's share
    (:func:`orbit_correct`) averaged over the seeds for model ``a`` and for ``b`` (``(N,)`` arrays per
    seed, the same samples and seeds in the same order), then the percentile bootstrap over samples
    (paired: one sample is resampled for both models) of ``mean(a) - mean(b)``, times ``scale`` (100:
    accuracy in points); where the two agree on every sample, the exact bound of that agreement
    (:func:`~nets.sample_bootstrap.share_difference`). With the models held fixed, what the interval over
    seeds leaves out: the test images' own sampling error of the difference."""
    u, v = np.mean(np.stack(a), 0), np.mean(np.stack(b), 0)
    est = share_difference(v, u, confidence=CONFIDENCE, n_resamples=N_RESAMPLES, seed=BOOT_SEED)  # u - v
    return {"difference": scale * est.value, "low": scale * est.low, "high": scale * est.high,
            "n_samples": int(u.size), "n_seeds": len(a)}


def _json_seeds(entry: dict | None, key: str, seeds: list[int]) -> list[float] | None:
    runs = {r["seed"]: r.get(key) for r in (entry or {}).get("runs", [])}
    return [runs.get(s) for s in seeds] if runs else None


def run_intervals(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                  command: str | None = None) -> dict:
    """Bootstrap intervals over test samples for every Table 1 and Figure 5 number
    of ``profile``, from its checkpoints and its ``table1.json`` / ``spectral.json``
    (for IR's chosen nu per form); writes ``intervals.json``. Trains nothing."""
    started = time.time()
    dev = resolve_device(device)
    run_dir = checkpoint_dir(profile, results_root)
    sources = {name: result_path(profile, name, results_root) for name in ("table1", "spectral")}
    for name, path in sources.items():
        if not path.exists():
            raise ResultsFileError(f"no {path}: intervals measures the models of Table 1 and Figure 5; run "
                                   f"`python -m nets {name} --profile {profile.name}` first (this command trains nothing)")
    t1, sp = read_json(sources["table1"]), read_json(sources["spectral"])
    precision = trained_precision({"table1.json": t1, "spectral.json": sp})
    splits = profile_splits(profile)
    test = splits.test.to(dev)
    n_si = min(profile.n_si_samples, len(splits.test))
    n_sigma = min(profile.n_sigma_samples, len(splits.test))
    seeds = list(profile.seeds)
    groups = {}
    for g in profile.groups:
        group = get_group(g)
        with reading(sources["table1"], "`python -m nets intervals`"):
            nu = float(t1["groups"][g]["methods"]["IR"]["nu"])
        cfgs = table1_configs(profile, g, nu)
        table, spectral, sigma = {}, {}, {}
        for m, cfg in cfgs.items():
            runs = load_runs([cfg], seeds, splits, run_dir, dev, precision=precision)
            per = {"accuracy": [], "LI": [], "DI": [], "SI": []}
            for r in runs:
                model = r.model.to(dev).eval()
                per["accuracy"].append(orbit_correct(model, test.x, test.y, group))
                per["LI"].append(logit_invariance(model, test.x, group, reduction="none").double().cpu().numpy())
                per["DI"].append(distribution_invariance(model, test.x, group, reduction="none")
                                 .double().cpu().numpy())
                per["SI"].append(saliency_invariance(model, test.x[:n_si], test.y[:n_si], group,
                                                     n_steps=profile.ig_steps, reduction="none")
                                 .double().cpu().numpy())
            entry = t1["groups"][g]["methods"].get(m)
            table[m] = {k: sample_summary(v, _json_seeds(entry, k, seeds), shares=k == "accuracy")
                        for k, v in per.items()}
        for key, m in sp["groups"][g]["models"].items():
            cfg = spectral_config(profile, g, key, m)
            per = {"sigma_max": [], "sigma_max_centered": [], "common_logit_share": []}
            for r in load_runs([cfg], seeds, splits, run_dir, dev, precision=precision):
                model = r.model.to(dev).eval()
                xs = test.x[:n_sigma]
                per["sigma_max"].append(jacobian_spectral_norm(model, xs).double().cpu().numpy())
                per["sigma_max_centered"].append(jacobian_spectral_norm(CenteredLogits(model), xs)
                                                 .double().cpu().numpy())
                with torch.no_grad():
                    per["common_logit_share"].append(class_common_logit_share(model(xs)).double().cpu().numpy())
            sigma[key] = per["sigma_max"]
            spectral[key] = {k: sample_summary(v, _json_seeds(m, k, seeds)) for k, v in per.items()}
        for key in spectral:
            if key != "DA" and "DA" in sigma:
                spectral[key]["sigma_max_ratio_to_DA"] = sigma_ratio(sigma[key], sigma["DA"])
        groups[g] = {"table1": table, "spectral": spectral}
        if progress:
            print(f"intervals: {g} done ({time.time() - started:.0f} s)", flush=True)
    body = {
        "meta": metadata(profile, "intervals", device=str(dev), started=started, command=command,
                         precision=precision),
        "protocol": {
            "interval": f"{CONFIDENCE:.0%} bootstrap interval over test samples ({METHOD}, {N_RESAMPLES} "
                        f"resamples, numpy seed {BOOT_SEED}) of the mean of each sample's value averaged over "
                        "the seeds; the trained models are held fixed (test-set sampling error only).",
            "samples": f"accuracy (share of the sample's orbit classified correctly), LI, DI: all "
                       f"{len(splits.test)} test samples; SI: the first {n_si}; sigma_max, centered sigma_max, "
                       f"class-common share: the first {n_sigma} (as table1 and spectral).",
            "ratio": "sigma_max_ratio_to_DA: mean sigma_IR / mean sigma_DA over the same samples, bootstrapped "
                     "with samples paired across the two models.",
            "check": "per_seed: the per-seed means recomputed here; per_seed_json: those of table1.json / "
                     "spectral.json.",
        },
        "groups": groups,
    }
    write_json(result_path(profile, "intervals", results_root), body)
    return body
