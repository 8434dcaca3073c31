"""Table 1 (Section 4.2): accuracy, LI, DI and SI of WT, DA and IR for R4 and T3.

Protocol. Models: WT (``InvariantMLP``), DA (``MLP`` with augmentation) and IR
(``MLP`` with augmentation and the logit regularizer, Eq. 4), each trained for
``profile.epochs`` epochs per seed and selected on validation accuracy. IR's
nu is the one ``tune_nu`` picks on validation for SI >= ``profile.si_target``
(the largest-SI nu when none reaches it, recorded as ``reached_target: false``).
Measures on the test split: accuracy over the full test orbit (every sample
under every group element), LI and DI over the whole test split, SI on the first
``profile.n_si_samples`` test samples (the split is a seeded permutation of the
pooled data, so these are a random sample); the LI/DI/SI averages run over the
non-identity elements (``nets.metrics``).
"""

from __future__ import annotations

import time
from dataclasses import replace

from nets.data import Splits, load_splits
from nets.experiments.common import (checkpoint_dir, finish, mean_std, read_json, read_results,
                                     recorded_precision, result_path)
from nets.experiments.profiles import Profile
from nets.groups import get_group
from nets.metrics import orbit_measures, saliency_invariance
from nets.train import TrainConfig, TrainedRun, resolve_device, train_runs, tune_nu

__all__ = ["run_table1", "profile_splits", "table1_configs", "table1_models", "chosen_nus", "tune", "evaluate",
           "summarize", "table1_protocol"]

def profile_splits(profile: Profile) -> Splits:
    """The dataset's splits cut to the profile's sizes (first n of each split)."""
    s = load_splits(profile.dataset, profile.split_seed)
    return replace(s, train=s.train.subset(min(profile.n_train, len(s.train))),
                   val=s.val.subset(min(profile.n_val, len(s.val))),
                   test=s.test.subset(min(profile.n_test, len(s.test))))


def table1_configs(profile: Profile, group: str, nu: float | None = None, model: str = "mlp") -> dict[str, TrainConfig]:
    """WT, DA and IR configs of one group (IR with ``nu``; ``None``: the base config to tune), for
    ``model`` (``TrainConfig.model``: ``"mlp"``, the paper's, or a factory's name)."""
    base = dict(group=group, epochs=profile.epochs, model=model)
    return {
        "WT": TrainConfig(method="WT", **base),
        "DA": TrainConfig(method="DA", **base),
        "IR": TrainConfig(method="IR", regularizer="logit", nu=0.0 if nu is None else float(nu), **base),
    }


SELECTION_RULE = ("the smallest nu whose mean validation SI reaches the target; if none does, the nu with "
                  "the largest validation SI (reached_target: false)")


def tune(base: TrainConfig, profile: Profile, splits: Splits, *, device, run_dir,
         progress: bool = True, model_fn=None, precision: str = "fp32") -> tuple[dict, list[TrainedRun]]:
    """Tune IR's nu over the profile's grid for ``base.regularizer``; returns the
    selection record (JSON-ready) and the chosen nu's runs (seed order).

    ``tune_nu`` picks the smallest nu with validation SI >= target, or none; then
    the largest-SI nu is used instead and the record says ``reached_target: false``.
    On CPU the grid is searched smallest nu first and stops at the first that
    reaches the target (``nets.train.AUTO_NU_SEARCH``); the record's ``search`` says
    which, and grid values never trained have SI and accuracy ``null``. ``model_fn``: the
    factory of a ``base`` whose model is not the paper MLP (:func:`~nets.train.train_runs`)."""
    grid = list(profile.nu_grid(base.regularizer))
    sel, by_nu = tune_nu(base, grid, list(profile.seeds), splits, si_target=profile.si_target,
                        n_si_samples=profile.n_si_samples, device=device, run_dir=run_dir, progress=progress,
                        n_steps=profile.ig_steps, model_fn=model_fn, precision=precision)
    record = dict(sel.to_dict())
    reached = sel.chosen is not None
    si = [float("-inf") if v is None or v != v else float(v) for v in sel.si]
    chosen = float(sel.chosen) if reached else float(grid[max(range(len(grid)), key=si.__getitem__)])
    record.update(regularizer=base.regularizer, chosen=chosen, reached_target=reached, rule=SELECTION_RULE,
                  n_si_samples=min(profile.n_si_samples, len(splits.val)))
    return record, by_nu[chosen]


def table1_models(profile: Profile, group: str, nu: float, splits: Splits, *, device, run_dir,
                  progress: bool = True, precision: str = "fp32") -> dict[str, list[TrainedRun]]:
    """The trained WT / DA / IR(nu) runs of one group (loaded from ``run_dir``
    when finished there, trained otherwise), per method in seed order."""
    cfgs = table1_configs(profile, group, nu)
    runs = train_runs(list(cfgs.values()), list(profile.seeds), splits, device=device, run_dir=run_dir,
                      progress=progress, precision=precision)
    k = len(profile.seeds)
    return {m: runs[i * k:(i + 1) * k] for i, m in enumerate(cfgs)}


def chosen_nus(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
               command: str | None = None, precision: str = "fp32") -> dict[str, float]:
    """IR's nu per group from ``table1.json`` (running ``table1`` first if missing, or if it
    was computed with other seeds or another precision)."""
    path = result_path(profile, "table1", results_root)
    t1 = read_results(path)  # a damaged table1.json is moved aside and recomputed
    if t1 is None:
        run_table1(profile, results_root, device=device, progress=progress, command=command, precision=precision)
        t1 = read_json(path)
    missing = [g for g in profile.groups if g not in t1["groups"]]  # a partial table1 resumes
    if missing or list(t1["meta"]["seeds"]) != list(profile.seeds) or recorded_precision(t1["meta"]) != precision:
        run_table1(profile, results_root, device=device, progress=progress, command=command, precision=precision)
        t1 = read_json(path)
    return {g: float(t1["groups"][g]["methods"]["IR"]["nu"]) for g in profile.groups}


def evaluate(run: TrainedRun, splits: Splits, group_name: str, profile: Profile, device) -> dict:
    """Table 1's four measures of one trained run on the test split."""
    group = get_group(group_name)
    model = run.model.to(device).eval()
    test = splits.test.to(device)
    si = splits.test.subset(min(profile.n_si_samples, len(splits.test))).to(device)
    measured = orbit_measures(model, test.x, test.y, group)  # accuracy, LI, DI from one pass over the orbit
    return {
        "seed": run.seed,
        "accuracy": measured["accuracy"],
        "LI": measured["LI"],
        "DI": measured["DI"],
        "SI": float(saliency_invariance(model, si.x, si.y, group, n_steps=profile.ig_steps)),
        "best_epoch": run.best_epoch,
        "best_val_accuracy": run.best_val_accuracy,
        "train_wall_time_s": run.wall_time_s,
        "history": run.history,
    }


def summarize(config: TrainConfig, per_seed: list[dict]) -> dict:
    out = {"config": config.to_dict(), "key": config.key(), "nu": config.nu if config.method == "IR" else None,
           "runs": per_seed}
    for measure in ("accuracy", "LI", "DI", "SI"):
        out[measure] = mean_std([r[measure] for r in per_seed])
    return out


def run_table1(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
               command: str | None = None, precision: str = "fp32") -> dict:
    """Train (or load) every Table 1 model, measure, write ``table1.json`` and figures.

    ``precision``: the training precision (``nets.precision``; measures are float32 either way)."""
    started = time.time()
    dev = resolve_device(device)
    run_dir = checkpoint_dir(profile, results_root)
    splits = profile_splits(profile)
    on_device = replace(splits, test=splits.test.to(dev))  # the test images moved once, not once per run
    groups = {}
    for g in profile.groups:
        base = table1_configs(profile, g)
        fixed = train_runs([base["WT"], base["DA"]], list(profile.seeds), splits, device=dev, run_dir=run_dir,
                           progress=progress, precision=precision)
        k = len(profile.seeds)
        selection, ir_runs = tune(base["IR"], profile, splits, device=dev, run_dir=run_dir, progress=progress,
                                  precision=precision)
        runs = {"WT": fixed[:k], "DA": fixed[k:], "IR": ir_runs}
        methods = {m: summarize(rs[0].config, [evaluate(r, on_device, g, profile, dev) for r in rs])
                   for m, rs in runs.items()}
        groups[g] = {"methods": methods, "nu_selection": selection}
        # written after every group, so a sweep stopped later keeps what finished
        out = finish(profile, "table1", _body(profile, splits, groups), results_root, device=str(dev),
                     started=started, command=command, precision=precision)
    return out


def table1_protocol(profile: Profile, splits: Splits) -> dict:
    """How Table 1's numbers are measured on ``splits`` with ``profile``'s sizes (the ``protocol``
    block of ``table1.json``, and of the CNN's Table 1)."""
    return {
        "accuracy": "Accuracy over the full test orbit (every test sample under every group element).",
        "LI": f"LI and DI over all {len(splits.test)} test samples, mean over the non-identity elements.",
        "SI": f"SI on the first {min(profile.n_si_samples, len(splits.test))} test samples, "
              f"integrated gradients with {profile.ig_steps} steps, mean over the non-identity elements.",
        "nu": f"IR's nu tuned on validation SI (target {profile.si_target}) over its nu grid: "
              + SELECTION_RULE + ".",
        "n_test": len(splits.test),
        "n_si_samples": min(profile.n_si_samples, len(splits.test)),
    }


def _body(profile: Profile, splits: Splits, groups: dict) -> dict:
    return {"protocol": table1_protocol(profile, splits), "groups": groups}
