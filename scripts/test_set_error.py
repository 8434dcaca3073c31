"""The test images' own sampling error of Table 1's accuracy differences, which the interval over seeds
leaves out (docs/statistics.md, "Two kinds of interval"): for WT - DA and WT - IR, each model's orbit
accuracy per test sample averaged over the seeds, bootstrapped over the test images with each sample
resampled for both models (:func:`nets.experiments.intervals.paired_difference`), beside the paired t
interval over seeds of the same difference (``table1.json``'s, as REPORT.md's claim 1b reads it).

Evaluation only, from the profile's finished checkpoints (the paper's live in the repository's history):

    python -m nets checkpoints restore --profile paper
    python scripts/test_set_error.py --profile paper --out results/paper/test_set_error.json

Writes ``build/test_set_error.json`` by default (git-ignored), with the provenance and, per group, the
per-seed accuracies recomputed here beside ``table1.json``'s (the same models measured).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import nets.evidence as ev
from nets.experiments.common import checkpoint_dir, result_path, trained_precision
from nets.experiments.intervals import BOOT_SEED, METHOD, N_RESAMPLES, load_runs, orbit_correct, paired_difference
from nets.experiments.profiles import PROFILES, get_profile
from nets.experiments.table1 import profile_splits, table1_configs
from nets.groups import get_group
from nets.results_io import metadata, read_json, reading, write_json
from nets.train import resolve_device

PAIRS = (("WT", "DA"), ("WT", "IR"))


def measure(profile, results_root, device: str = "auto") -> dict:
    """Per group of ``profile``: each pair's test-set interval (:func:`paired_difference`, points) and
    interval over seeds (paired t, points), and every model's per-seed accuracy, here and in table1.json."""
    dev = resolve_device(device)
    source = result_path(profile, "table1", results_root)
    t1 = read_json(source)
    precision = trained_precision({"table1.json": t1})
    splits = profile_splits(profile)
    test = splits.test.to(dev)
    seeds = [int(s) for s in profile.seeds]
    groups = {}
    for g in profile.groups:
        with reading(source, "scripts/test_set_error.py"):
            methods = t1["groups"][g]["methods"]
            nu = float(methods["IR"]["nu"])
        per = {}
        for m, cfg in table1_configs(profile, g, nu).items():
            runs = load_runs([cfg], seeds, splits, checkpoint_dir(profile, results_root), dev, precision=precision)
            per[m] = [orbit_correct(r.model.to(dev).eval(), test.x, test.y, get_group(g)) for r in runs]
        methods = {m: {**e, "runs": [r for r in e["runs"] if int(r["seed"]) in seeds]} for m, e in methods.items()}
        pairs = {}  # over the same seeds as the test-set interval, where --seeds takes some of table1.json's
        for a, b in PAIRS:
            over_seeds = ev.paired_methods(methods, a, b, ev.measure("accuracy", 100.0))
            pairs[f"{a} - {b}"] = {
                "test_set": paired_difference(per[a], per[b], scale=100.0),
                "over_seeds": None if over_seeds is None else {
                    "difference": over_seeds.interval.estimate, "low": over_seeds.interval.low,
                    "high": over_seeds.interval.high, "n_seeds": over_seeds.interval.n},
            }
        groups[g] = {"accuracy_points": pairs, "per_seed": {m: [float(v.mean()) for v in per[m]] for m in per},
                     "per_seed_json": {m: [r.get("accuracy") for r in methods[m]["runs"]] for m in per}}
    return {"groups": groups, "precision": precision, "device": str(dev)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="paper")
    p.add_argument("--results", default="results", help="the results root whose <profile>/ folder holds the runs")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="the seeds (default: the profile's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("build/test_set_error.json"))
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    if args.seeds is not None:
        profile = profile.with_seeds(args.seeds)
    started = time.time()
    found = measure(profile, args.results, args.device)
    command = shlex.join(["python", "scripts/test_set_error.py", *(sys.argv[1:] if argv is None else argv)])
    write_json(args.out, {
        "meta": metadata(profile, "test_set_error", device=found["device"], started=started, command=command,
                         precision=found["precision"]),
        "protocol": {
            "test_set": f"95% percentile bootstrap over the test images ({N_RESAMPLES} resamples, numpy seed "
                        f"{BOOT_SEED}, method {METHOD}) of mean(a) - mean(b), each sample's orbit accuracy "
                        "averaged over the seeds, samples paired across the two models; the models held fixed.",
            "over_seeds": "the paired t interval over seeds of table1.json's per-seed accuracies (REPORT.md's).",
        },
        "groups": found["groups"],
    })
    for g, entry in found["groups"].items():
        for pair, e in entry["accuracy_points"].items():
            t, s = e["test_set"], e["over_seeds"]
            seeds_text = "n/a" if s is None else f"{s['difference']:.3g} [{s['low']:.3g}, {s['high']:.3g}]"
            print(f"{g} {pair} accuracy (points): over {t['n_samples']} test images "
                  f"{t['difference']:.3g} [{t['low']:.3g}, {t['high']:.3g}]; over {t['n_seeds']} seeds {seeds_text}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
