"""Figure 4 (Section 4.3): invariance and accuracy under MNIST -> FMNIST drift.

Protocol. The models are Table 1's (WT, DA, IR with the nu chosen there), loaded
from the checkpoints. For each drift degree beta, D(beta) = (1 - beta) MNIST +
beta FMNIST is the pixel interpolation of paired test images keeping the MNIST
label (``nets.data.drift_split``, mode ``profile.drift_mode``; a profile on
``fmnist``, ``--dataset fmnist``, drifts the other way, FMNIST -> MNIST, and
``drift.json`` names both in ``datasets``), first
``profile.n_drift_samples`` samples. Measured on D(beta): DI (mean over the
non-identity elements) and accuracy over the FULL orbit of every sample; the
accuracy ratio is Acc(D(beta)) / Acc(D(0)) per seed, then mean +- std over seeds.
"""

from __future__ import annotations

import time

import numpy as np

from nets.data import drift_split, drift_target
from nets.experiments.common import checkpoint_dir, finish
from nets.experiments.profiles import Profile
from nets.experiments.table1 import chosen_nus, profile_splits, table1_models
from nets.groups import get_group
from nets.metrics import orbit_measures
from nets.train import resolve_device

__all__ = ["run_drift", "drift_results"]


def _curve(per_seed: list[list[float]]) -> dict[str, list[float]]:
    a = np.asarray(per_seed, dtype=np.float64)  # (seeds, betas)
    return {"mean": a.mean(0).tolist(), "std": a.std(0, ddof=0).tolist()}


def drift_results(models: dict[str, dict[str, list]], nus: dict[str, float], profile: Profile, dev) -> dict:
    """Figure 4's measures of trained models: ``models[group][method]`` is a list of
    :class:`~nets.train.TrainedRun` (seed order), ``nus[group]`` IR's nu (recorded only).
    Returns ``{"protocol", "betas", "groups"}`` as in ``drift.json`` (module docstring), on the
    profile's ``betas``, ``drift_mode``, ``split_seed`` and ``n_drift_samples``."""
    betas = [float(b) for b in profile.betas]
    source, target = profile.dataset, drift_target(profile.dataset)
    # acc[g][method][seed_index][beta_index]
    acc = {g: {m: [[0.0] * len(betas) for _ in runs] for m, runs in ms.items()} for g, ms in models.items()}
    di = {g: {m: [[0.0] * len(betas) for _ in runs] for m, runs in ms.items()} for g, ms in models.items()}
    n_samples = None
    for b, beta in enumerate(betas):
        data = drift_split(beta, profile.split_seed, mode=profile.drift_mode, split="test", source=source)
        data = data.subset(min(profile.n_drift_samples, len(data))).to(dev)
        n_samples = len(data)
        for g, ms in models.items():
            group = get_group(g)
            for m, runs in ms.items():
                for s, run in enumerate(runs):
                    model = run.model.to(dev).eval()
                    measured = orbit_measures(model, data.x, data.y, group)  # one pass over the orbit
                    acc[g][m][s][b] = measured["accuracy"]
                    di[g][m][s][b] = measured["DI"]
    groups = {}
    for g, ms in models.items():
        groups[g] = {}
        for m, runs in ms.items():
            ratio = [[a / row[0] if row[0] > 0 else float("nan") for a in row] for row in acc[g][m]]
            groups[g][m] = {
                "nu": nus[g] if m == "IR" else None,
                "DI": _curve(di[g][m]),
                "accuracy": _curve(acc[g][m]),
                "accuracy_ratio": _curve(ratio),
                "runs": [{"seed": r.seed, "DI": di[g][m][s], "accuracy": acc[g][m][s], "accuracy_ratio": ratio[s]}
                         for s, r in enumerate(runs)],
            }
    results = {
        "protocol": {
            "data": f"D(beta) = (1 - beta) {source.upper()} + beta {target.upper()}: pixel interpolation "
                    f"({profile.drift_mode}) of paired test images, {source.upper()} labels, first {n_samples} test "
                    "samples per beta.",
            "accuracy": "Accuracy over the full orbit of every sample (every group element); "
                        "ratio Acc(D(beta)) / Acc(D(0)) per seed.",
            "DI": "DI on D(beta), mean over the non-identity elements. Models: Table 1's (IR with its chosen nu).",
            "n_samples": n_samples,
        },
        "datasets": [source, target],
        "betas": betas,
        "groups": groups,
    }
    return results


def run_drift(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
              command: str | None = None, precision: str = "fp32") -> dict:
    """Measure DI and accuracy of Table 1's models on D(beta); write ``drift.json`` and Figure 4."""
    started = time.time()
    dev = resolve_device(device)
    nus = chosen_nus(profile, results_root, device=device, progress=progress, command=command, precision=precision)
    splits = profile_splits(profile)
    models = {g: table1_models(profile, g, nus[g], splits, device=dev, run_dir=checkpoint_dir(profile, results_root),
                               progress=progress, precision=precision) for g in profile.groups}
    results = drift_results(models, nus, profile, dev)
    return finish(profile, "drift", results, results_root, device=str(dev), started=started, command=command,
                  precision=precision)
