"""Figure 5 (Section 4.4): invariance-induced spectral decay for every regularizer form.

Protocol. DA, and IR with each regularizer form of ``profile.regularizers``
(``logit``: 1/2 ||f(x) - f(gx)||^2, the paper's IR; ``kl``: KL(u_x || q_gx);
``normalized_logit``: ||f(x) - f(gx)||^2 / ||f(x)||^2), each form's nu tuned
separately by ``tune_nu`` on validation for SI >= ``profile.si_target``. Measured
on the test split: sigma_max of the input Jacobian of the logits, per sample on
the first ``profile.n_sigma_samples`` test samples, averaged, for the logits and
for the logits less their class-common part (what the softmax sees), and the
share of the logits' norm along that class-common direction; accuracy over the
full test orbit. Mean +- std over seeds.
"""

from __future__ import annotations

import time

import torch

from nets.experiments.common import checkpoint_dir, finish, mean_std
from nets.experiments.profiles import Profile
from nets.experiments.table1 import profile_splits, table1_configs, tune
from nets.groups import get_group
from nets.metrics import class_common_logit_share, jacobian_spectral_norm
from nets.models import CenteredLogits
from nets.train import TrainConfig, orbit_accuracy, resolve_device, train_runs

__all__ = ["run_spectral", "spectral_entry", "spectral_config", "sigma_inputs"]


def sigma_inputs(profile: Profile, device: torch.device) -> tuple:
    """Figure 5's inputs for ``profile``: ``(splits, test, x_sigma)``, the profile's splits, its test
    split on ``device`` and the first ``profile.n_sigma_samples`` test images (at most all of them),
    on which sigma_max(J) is measured."""
    splits = profile_splits(profile)
    test = splits.test.to(device)
    return splits, test, test.x[:min(profile.n_sigma_samples, len(test))]


def spectral_config(profile: Profile, group: str, name: str, entry: dict,
                    source: str = "spectral.json", model: str = "mlp") -> TrainConfig:
    """The training config of one model ``entry`` of ``source`` (``spectral.json``'s,
    ``centered.json``'s, or ``cnn.json``'s spectral section with ``model="cnn"``) named ``name``:
    DA's Table 1 config, or IR with the entry's form and nu, of ``model`` (``TrainConfig.model``).
    A ``ValueError`` when its key differs from the recorded one (code and results disagree)."""
    cfg = (table1_configs(profile, group, model=model)["DA"] if entry["method"] == "DA" else
           TrainConfig(method="IR", group=group, regularizer=entry["regularizer"], nu=entry["nu"],
                       epochs=profile.epochs, model=model))
    if cfg.key() != entry["key"]:
        raise ValueError(f"{source} model {name}: key {entry['key']!r}, rebuilt as {cfg.key()!r}")
    return cfg


def spectral_entry(runs: list, x_sigma: torch.Tensor, test, group, device) -> dict:
    """Figure 5's numbers for the runs of one model (one per seed, all of one config): per seed
    sigma_max(J) and sigma_max of the centered logits (per sample on ``x_sigma``, averaged), the
    class-common share of the logits on ``x_sigma``, accuracy over the full orbit of ``test``
    under ``group``; and their mean +- std over seeds, with the config's method, form, nu, key."""
    per_seed = []
    for r in runs:
        model = r.model.to(device).eval()
        with torch.no_grad():
            common = class_common_logit_share(model(x_sigma))
        per_seed.append({
            "seed": r.seed,
            "sigma_max": float(jacobian_spectral_norm(model, x_sigma).mean()),
            "sigma_max_centered": float(jacobian_spectral_norm(CenteredLogits(model), x_sigma).mean()),
            "common_logit_share": float(common.mean()),
            "accuracy": float(orbit_accuracy(model, test, group)),
            "best_epoch": r.best_epoch,
            "train_wall_time_s": r.wall_time_s,
        })
    cfg = runs[0].config
    return {
        "method": cfg.method,
        "regularizer": cfg.regularizer if cfg.method == "IR" else None,
        "nu": cfg.nu if cfg.method == "IR" else None,
        "key": cfg.key(),
        **{k: mean_std([p[k] for p in per_seed])
           for k in ("sigma_max", "sigma_max_centered", "common_logit_share", "accuracy")},
        "runs": per_seed,
    }


def run_spectral(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                 command: str | None = None, precision: str = "fp32") -> dict:
    """Train (or load) DA and every IR form, measure sigma_max(J) and accuracy; write
    ``spectral.json`` and Figure 5."""
    started = time.time()
    dev = resolve_device(device)
    run_dir = checkpoint_dir(profile, results_root)
    splits, test, x_sigma = sigma_inputs(profile, dev)
    n_sigma = len(x_sigma)
    groups = {}
    for g in profile.groups:
        group = get_group(g)
        da_cfg = table1_configs(profile, g)["DA"]
        runs = {"DA": train_runs([da_cfg], list(profile.seeds), splits, device=dev, run_dir=run_dir,
                                 progress=progress, precision=precision)}
        selections = {}
        for reg in profile.regularizers:
            base = TrainConfig(method="IR", group=g, regularizer=reg, epochs=profile.epochs)
            selections[reg], runs[f"IR-{reg}"] = tune(base, profile, splits, device=dev, run_dir=run_dir,
                                                      progress=progress, precision=precision)
        models = {key: spectral_entry(rs, x_sigma, test, group, dev) for key, rs in runs.items()}
        groups[g] = {"models": models, "nu_selections": selections}
    results = {
        "protocol": {
            "sigma_max": f"sigma_max(J): largest singular value of the (classes x pixels) input Jacobian of the "
                         f"logits, per sample on the first {n_sigma} test samples, averaged.",
            "sigma_max_centered": "sigma_max_centered: the same for the logits less their class-common part "
                                  "(f - mean_c f_c, what the softmax sees).",
            "common_logit_share": "common_logit_share: share of the logit vector's norm along the all-ones "
                                  "direction, |mean_c f_c| sqrt(C) / ||f||, on the same samples, averaged.",
            "accuracy": "Accuracy: over the full test orbit.",
            "nu": (f"Each IR form's nu tuned separately on validation SI (>= {profile.si_target})."
                   if profile.regularizers else "No IR form trained: DA alone (--regularizers with none)."),
            "n_sigma_samples": n_sigma,
        },
        "groups": groups,
    }
    return finish(profile, "spectral", results, results_root, device=str(dev), started=started, command=command,
                  precision=precision)
