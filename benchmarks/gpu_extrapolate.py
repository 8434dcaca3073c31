"""The whole protocol's time from the stages ``scripts/gpu_check.sh`` measured.

Usage::

    python benchmarks/gpu_extrapolate.py --stages OUT/stages.tsv --results RESULTS/PROFILE \\
        --profile PROFILE --out OUT/protocol_extrapolation.json

Inputs: ``stages.tsv`` (stage ``<experiment>_<group>[_<group>]``, wall seconds, status)
and the results JSON files those stages wrote. Method:

* Training, per run: every run in a results file records ``train_wall_time_s`` (its
  stack's time divided by the stack's members). Per group and kind (WT, DA, IR-<form>)
  the mean over the runs recorded is the measured time per run. A kind no results file
  records (a stage stopped at its time limit before writing its file) is read from the
  checkpoints its runs left in ``checkpoints/``: their ``wall_time_s`` per epoch trained,
  times the run's epochs (basis ``checkpoints``).
* A finished stage trained the runs ``nets.sweep_plan.plan`` lists for its experiment
  and groups that no earlier stage trained (the whole nu grids, as the experiment's
  search on the device does); its training time is their count times the time per run
  of their kind, and the rest of its wall time, less the start-up, is evaluation.
* Start-up: every stage is a new process that imports torch, loads the data and (on
  CUDA) initializes the device; the ``startup`` stage times exactly that. It is taken
  out of every stage's evaluation and counted once in the whole protocol, which
  ``reproduce`` runs in one process.
* The whole protocol (``reproduce``: every run of ``plan(profile, "reproduce")`` and
  every experiment for every group): training from the time per run of each run's kind
  and group; where a group's kind was not measured, the other group's, times the ratio
  of the group orders for WT and IR (their steps process the orbit) and 1 for DA; an IR
  form not measured takes the group's IR-logit time. Evaluation of an experiment for a
  group not measured: the measured group's, scaled by the ratio of group orders. Scaling
  by the group orders assumes the time is the arithmetic's: where a GPU's steps are bound
  by kernel launches instead, T3 (order 9 < 16) costs about what R4 costs and the scaled
  number is low by up to a quarter. Every number says its ``basis`` (``measured``,
  ``checkpoints``, ``scaled``, ``not measured``), and the total is a lower bound when
  anything was not measured; ``meets_target`` is then unknown (``null``) unless the
  lower bound already exceeds the target.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nets.sweep_plan import plan  # noqa: E402
from nets.experiments.common import write_json  # noqa: E402
from nets.experiments.profiles import get_profile  # noqa: E402
from nets.groups import get_group  # noqa: E402
from nets.results_io import ResultsFileError, peek_results, read_json, read_torch_file  # noqa: E402

#: The whole-paper-profile target of issue 18 on one H100/H200-class GPU.
TARGET_S = 300.0


def kind(config: dict) -> str:
    return f"IR-{config['regularizer']}" if config["method"] == "IR" else config["method"]


def recorded_runs(results: Path) -> dict[tuple[str, str], list[float]]:
    """``(group, kind) -> [train_wall_time_s, ...]`` over every run the results files record."""
    out: dict[tuple[str, str], list[float]] = {}
    for name, models_key in (("table1", "methods"), ("spectral", "models")):
        path = results / f"{name}.json"
        if not path.exists():
            continue
        for g, body in read_json(path).get("groups", {}).items():  # damaged: one-line ResultsFileError
            for m in body[models_key].values():
                cfg = m.get("config") or {"method": m["method"], "regularizer": m.get("regularizer")}
                for r in m["runs"]:
                    if r.get("train_wall_time_s") is not None:
                        out.setdefault((g, kind(cfg)), []).append(float(r["train_wall_time_s"]))
    return {k: v for k, v in out.items()}


def checkpoint_runs(results: Path) -> dict[tuple[str, str], list[float]]:
    """``(group, kind) -> [seconds per run, ...]`` from the paper MLP's checkpoints in
    ``results/checkpoints``: ``wall_time_s / epoch * epochs`` of each (a damaged one, one of no
    epoch, or one of another model is passed over)."""
    out: dict[tuple[str, str], list[float]] = {}
    for path in sorted((results / "checkpoints").glob("*.pt")):
        try:
            ck = read_torch_file(path)
            cfg, epoch = ck["config"], int(ck["epoch"])
            if cfg.get("model", "mlp") != "mlp":
                continue
            key, per_run = (cfg["group"], kind(cfg)), float(ck["wall_time_s"]) / epoch * int(cfg["epochs"])
        except (ResultsFileError, OSError, KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError):
            continue
        out.setdefault(key, []).append(per_run)
    return out


def per_run_time(rates: dict[tuple[str, str], float], group: str, k: str,
                 from_checkpoints: frozenset = frozenset()) -> tuple[float | None, str]:
    """Seconds per run of kind ``k`` in ``group``, and the basis of the number (``from_checkpoints``:
    the ``(group, kind)`` whose time :func:`checkpoint_runs` gave)."""
    if (group, k) in rates:
        return rates[(group, k)], "checkpoints" if (group, k) in from_checkpoints else "measured"
    order = get_group(group).order
    for (g, kk), t in rates.items():
        if kk == k and g != group:
            source = " (checkpoints)" if (g, kk) in from_checkpoints else ""
            return t * (1.0 if k == "DA" else order / get_group(g).order), f"scaled from {g}{source}"
    if k.startswith("IR-") and k != "IR-logit":
        t, basis = per_run_time(rates, group, "IR-logit", from_checkpoints)
        if t is not None:
            return t, f"IR-logit's ({basis})"
    return None, "not measured"


def runs_of(profile, experiment: str, device: str) -> list[tuple[str, str, str, int]]:
    """``(group, kind, key, seed)`` of every run ``plan`` lists."""
    return [(c.group, kind(c.to_dict()), c.key(), s) for j in plan(profile, experiment, device)
            for c in j.configs for s in j.seeds]


def extrapolate(stages: list[dict], results: Path, profile_name: str, device: str) -> dict:
    profile = get_profile(profile_name)
    recorded = recorded_runs(results)
    saved = {k: v for k, v in checkpoint_runs(results).items() if k not in recorded}
    rates = {k: sum(v) / len(v) for k, v in {**recorded, **saved}.items()}
    from_checkpoints = frozenset(saved)
    startup = next((float(st["seconds"]) for st in stages if st["stage"] == "startup" and st["status"] == "ok"), None)
    seen: set[tuple[str, int]] = set()
    evaluation: dict[tuple[str, str], float] = {}
    out_stages = []
    for st in stages:
        name, secs, status = st["stage"], float(st["seconds"]), st["status"]
        exp, _, groups = name.partition("_")
        row = {"stage": name, "seconds": secs, "status": status}
        if exp in ("table1", "spectral", "drift", "tsne", "saliency") and status == "ok":
            gs = groups.split("_")
            new = [r for r in runs_of(profile.with_groups(gs), exp, device) if (r[2], r[3]) not in seen]
            seen.update((r[2], r[3]) for r in new)
            train = [per_run_time(rates, g, k, from_checkpoints)[0] for g, k, _, _ in new]
            if all(t is not None for t in train):
                row.update(runs_trained=len(new), train_s=round(sum(train), 2),
                           eval_s=round(max(secs - sum(train) - (startup or 0.0), 0.0), 2))
                for g in gs:  # a stage over several groups: split its evaluation by group order
                    share = get_group(g).order / sum(get_group(h).order for h in gs)
                    evaluation[(exp, g)] = row["eval_s"] * share
        out_stages.append(row)

    train_total, train_parts, lower_bound = 0.0, {}, False
    for g, k, _, _ in runs_of(profile, "reproduce", device):
        t, basis = per_run_time(rates, g, k, from_checkpoints)
        part = train_parts.setdefault(f"{g} {k}", {"runs": 0, "s_per_run": t, "basis": basis})
        part["runs"] += 1
        if t is None:
            lower_bound = True
        else:
            train_total += t
    eval_total, eval_parts = 0.0, {}
    for exp in ("table1", "drift", "spectral", "tsne", "saliency"):
        for g in profile.groups:
            if (exp, g) in evaluation:
                t, basis = evaluation[(exp, g)], "measured"
            else:
                other = [(h, v) for (e, h), v in evaluation.items() if e == exp]
                if other:
                    h, v = other[0]
                    t, basis = v * get_group(g).order / get_group(h).order, f"scaled from {h}"
                else:
                    t, basis = None, "not measured"
            eval_parts[f"{exp} {g}"] = {"s": None if t is None else round(t, 2), "basis": basis}
            if t is None:
                lower_bound = True
            else:
                eval_total += t
    lower_bound = lower_bound or startup is None
    total = train_total + eval_total + (startup or 0.0)
    return {
        "profile": profile.name,
        "device": device,
        "method": __doc__.split("Method:")[1].strip(),
        "stages": out_stages,
        "train_s_per_run": {f"{g} {k}": round(v, 3) for (g, k), v in sorted(rates.items())},
        "protocol": {
            "training": {"s": round(train_total, 1), "parts": train_parts},
            "evaluation": {"s": round(eval_total, 1), "parts": eval_parts},
            "startup": {"s": None if startup is None else round(startup, 1),
                        "basis": "measured once" if startup is not None else "not measured"},
            "total_s": round(total, 1),
            "lower_bound": lower_bound,
        },
        "target_s": TARGET_S if profile.name == "paper" else None,
        "meets_target": (None if profile.name != "paper" else False if total > TARGET_S
                         else None if lower_bound else True),
    }


STAGE_COLUMNS = ("stage", "seconds", "status")


def read_stages(path: Path) -> list[dict]:
    """The rows of a stages file (tab-separated, columns :data:`STAGE_COLUMNS`, as
    scripts/gpu_check.sh writes it). Raises ValueError (one line) for a missing or empty file,
    a missing column, or a time that is not a finite number of seconds >= 0."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"--stages {path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    if not rows:
        raise ValueError(f"--stages {path}: no stages in it (a tab-separated file with columns "
                         f"{', '.join(STAGE_COLUMNS)}, as scripts/gpu_check.sh writes)")
    missing = [c for c in STAGE_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"--stages {path}: no column {', '.join(missing)} (found {', '.join(map(str, rows[0]))}); "
                         f"it needs {', '.join(STAGE_COLUMNS)}, tab-separated")
    for i, row in enumerate(rows, start=2):
        try:
            secs = float(row["seconds"])
        except (TypeError, ValueError):
            secs = float("nan")
        if not (math.isfinite(secs) and secs >= 0):
            raise ValueError(f"--stages {path}: line {i}: seconds {row['seconds']!r} is not a time >= 0")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True, help="the profile's results folder")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default=None, help="device of the stages (default: from the results files)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        get_profile(args.profile)
        if not args.results.is_dir():
            raise ValueError(f"--results {args.results} is not a folder")
        stages = read_stages(args.stages)
    except ValueError as e:
        ap.error(str(e))
    device = args.device
    if device is None:
        metas = [(peek_results(p) or {}).get("meta") or {} for p in sorted(args.results.glob("*.json"))]
        device = next((m["device"] for m in metas if m.get("device")), "cpu")
    try:
        res = extrapolate(stages, args.results, args.profile, device)
    except ResultsFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    write_json(args.out, res)
    p = res["protocol"]
    print(f"{args.profile} protocol on {device}: training {p['training']['s']} s + evaluation "
          f"{p['evaluation']['s']} s + start-up {p['startup']['s']} s = {p['total_s']} s{' (lower bound)' if p['lower_bound'] else ''}; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
