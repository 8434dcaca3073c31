"""Where the wall time of a profile's sweep went, read back from what the sweep wrote.

Usage::

    python benchmarks/sweep_time.py results/paper --matmul-from benchmarks/results/cpu.json \\
        --out benchmarks/results/paper_sweep_cpu.json

A long sweep runs in several sittings (``python -m nets ... --groups``, resumed
from checkpoints), so no single process sees its whole wall time. Every
checkpoint keeps its run's training time (``wall_time_s``: a stacked run's
time divided among its seeds, summed over the sittings that trained it), and
every experiment's JSON keeps the wall time of the process that wrote it. This
script adds them up:

- **training**, per configuration (group, method, regularizer form, nu): epochs
  trained, time, and the FLOPs executed, counted with :mod:`benchmarks.flops`' model
  (``train_flops(..., executed=True)`` per training sample plus
  ``validation_flops`` per validation sample, every epoch; the regularizer forms
  differ only in elementwise work, which is not counted). Achieved GFLOP/s, and
  its share of the machine's matrix-product rate when ``--matmul-from`` names a
  ``bench.py`` result;
- **experiments**: each JSON's sittings (per group: command, wall time, commit,
  from ``group_provenance``; a file written in one sitting has one), their summed
  wall time, and the groups still pending.
  ``table1`` and ``spectral`` train what is missing, so their wall time includes
  that training; ``drift``, ``tsne`` and ``saliency`` only load checkpoints.

Nothing is timed here; the numbers are the sweep's own records. Every
checkpoint of the profile's protocol is counted, including the nu values the
search tried and did not choose. A checkpoint of another experiment that shares
the folder (a model other than the paper's MLP, as ``cnn`` / ``scale --model
cnn`` train; another epoch count; an IR form outside the profile's nu grids, as
``centered`` trains) is listed apart, under ``beyond_protocol``, and left out of
the totals; FLOPs are counted for the paper's MLP only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.flops import train_flops, validation_flops  # noqa: E402
from nets.experiments.common import (EXPERIMENTS, git_commit, provenance, result_sittings,  # noqa: E402
                                     read_json, versions, write_json)
from nets.experiments.profiles import Profile, get_profile  # noqa: E402
from nets.groups import get_group  # noqa: E402
from nets.train import PAPER_MODEL  # noqa: E402


def in_protocol(cfg: dict, profile: Profile) -> bool:
    """Whether a checkpoint's configuration is one the profile's protocol trains: the paper's
    MLP, the profile's epochs, and for IR a form the profile has a nu grid for."""
    return (cfg.get("model", PAPER_MODEL) == PAPER_MODEL and int(cfg["epochs"]) == profile.epochs
            and (cfg["method"] != "IR" or cfg.get("regularizer") in dict(profile.nu_grids)))


def config_label(cfg: dict, profile: Profile | None = None) -> str:
    """``r4 IR logit nu=10``, ``t3 DA``: one configuration of the sweep; another model than the
    paper's MLP is named first (``cnn r4 DA``), and epochs other than the profile's last
    (``... (6 epochs)``)."""
    label = f"{cfg['group']} IR {cfg['regularizer']} nu={cfg['nu']:g}" if cfg["method"] == "IR" \
        else f"{cfg['group']} {cfg['method']}"
    if cfg.get("model", PAPER_MODEL) != PAPER_MODEL:
        label = f"{cfg['model']} {label}"
    if profile is not None and int(cfg["epochs"]) != profile.epochs:
        label += f" ({cfg['epochs']} epochs)"
    return label


def config_order(cfg: dict) -> tuple:
    """Sort key: group, method (WT, DA, IR), regularizer form, nu as a number."""
    return (cfg["group"], ("WT", "DA", "IR").index(cfg["method"]) if cfg["method"] in ("WT", "DA", "IR") else 9,
            cfg.get("regularizer") or "", float(cfg.get("nu") or 0))


def checkpoint_runs(run_dir: Path, profile: Profile) -> list[dict]:
    """One record per checkpoint file: its configuration, epochs trained, time, FLOPs."""
    runs = []
    checkpoints = [(path, torch.load(path, map_location="cpu", weights_only=True))
                   for path in sorted(Path(run_dir).glob("*.pt"))]
    for path, ck in sorted(checkpoints, key=lambda pc: (config_order(pc[1]["config"]), pc[1]["seed"])):
        cfg = ck["config"]
        G = get_group(cfg["group"]).order
        epochs = int(ck["epoch"])
        mlp = cfg.get("model", PAPER_MODEL) == PAPER_MODEL  # the FLOP model is the MLP's
        per_epoch = profile.n_train * train_flops(cfg["method"], G, executed=True) \
            + profile.n_val * validation_flops(cfg["method"], G)
        runs.append({"file": path.name, "label": config_label(cfg, profile), "seed": int(ck["seed"]),
                     "epochs": epochs, "finished": bool(ck["finished"]), "wall_time_s": float(ck["wall_time_s"]),
                     "stack_size": int(ck.get("stack_size", 1)),
                     "gflop": epochs * per_epoch / 1e9 if mlp else None,
                     "in_protocol": in_protocol(cfg, profile)})
    return runs


def by_config(runs: list[dict], matmul_gflops: float | None) -> dict[str, dict]:
    """Runs summed per configuration (over seeds)."""
    out: dict[str, dict] = defaultdict(lambda: {"seeds": [], "epochs": 0, "finished": 0, "wall_time_s": 0.0,
                                                "gflop": 0.0})
    for r in runs:
        c = out[r["label"]]
        c["seeds"].append(r["seed"])
        c["epochs"] += r["epochs"]
        c["finished"] += r["finished"]
        c["wall_time_s"] += r["wall_time_s"]
        c["gflop"] = None if c["gflop"] is None or r["gflop"] is None else c["gflop"] + r["gflop"]
    for c in out.values():
        _rate(c, matmul_gflops)
    return dict(out)


def _rate(c: dict, matmul_gflops: float | None) -> None:
    c["gflop_per_s"] = c["gflop"] / c["wall_time_s"] if c["gflop"] is not None and c["wall_time_s"] > 0 else None
    c["pct_of_matmul"] = (100 * c["gflop_per_s"] / matmul_gflops
                          if matmul_gflops and c["gflop_per_s"] is not None else None)


def experiments(results_dir: Path) -> dict[str, dict]:
    out = {}
    for name in EXPERIMENTS:
        path = results_dir / f"{name}.json"
        if not path.exists():
            continue
        r = read_json(path)  # an edited results file: one line naming it, not its numbers
        m = r.get("meta", {})
        # a results file merged over several sittings (--groups) lists each; else its one meta
        runs = [{"groups": groups, **prov} for groups, prov in result_sittings(r)] or [
            {"groups": list(r.get("groups", {})), **provenance(m)}]
        out[name] = {"groups": list(r.get("groups", {})), "pending_groups": r.get("pending_groups", []),
                     "sittings": runs, "wall_time_s": sum(s.get("wall_time_s") or 0 for s in runs)}
    return out


def sweep_time(results_dir: Path, profile: Profile, matmul_gflops: float | None = None) -> dict:
    """Everything above as one JSON-able dict: the protocol's runs in ``training_total`` /
    ``training_by_config`` / ``runs``, the folder's other checkpoints in ``beyond_protocol``."""
    runs, others = [], []
    for r in checkpoint_runs(results_dir / "checkpoints", profile):
        (runs if r.pop("in_protocol") else others).append(r)
    total = {"runs": len(runs), "finished": sum(r["finished"] for r in runs),
             "wall_time_s": sum(r["wall_time_s"] for r in runs), "gflop": sum(r["gflop"] for r in runs)}
    _rate(total, matmul_gflops)
    return {"results_dir": str(results_dir), "profile": profile.name, "matmul_gflops": matmul_gflops,
            "training_total": total, "training_by_config": by_config(runs, matmul_gflops),
            "experiments": experiments(results_dir), "runs": runs,
            "beyond_protocol": {"training_by_config": by_config(others, matmul_gflops), "runs": others}}


def table(res: dict) -> str:
    rows = list(res["training_by_config"].items()) + [("total", res["training_total"])]
    others = res["beyond_protocol"]["training_by_config"]
    w = max([28] + [len(label) for label in [*dict(rows), *others]])
    lines = [f"{'configuration':<{w}} {'seeds':>5} {'epochs':>7} {'done':>4} {'time (min)':>10} "
             f"{'TFLOP':>7} {'GFLOP/s':>8} {'% matmul':>8}"]
    for label, c in rows:
        seeds = len(c["seeds"]) if "seeds" in c else c["runs"]
        pct = f"{c['pct_of_matmul']:.0f}" if c.get("pct_of_matmul") is not None else "-"
        rate = f"{c['gflop_per_s']:.1f}" if c.get("gflop_per_s") is not None else "-"
        tflop = f"{c['gflop'] / 1e3:.1f}" if c["gflop"] is not None else "-"
        lines.append(f"{label:<{w}} {seeds:>5} {c['epochs'] if 'epochs' in c else '':>7} {c['finished']:>4} "
                     f"{c['wall_time_s'] / 60:>10.1f} {tflop:>7} {rate:>8} {pct:>8}")
    if others:
        lines.append(f"\nbeyond the {res['profile']} protocol (other experiments' checkpoints in the folder; "
                     "not in the total):")
        lines += [f"{label:<{w}} {len(c['seeds']):>5} {c['epochs']:>7} {c['finished']:>4} "
                  f"{c['wall_time_s'] / 60:>10.1f}" for label, c in others.items()]
    lines.append("")
    for name, e in res["experiments"].items():
        pending = f" (pending: {', '.join(e['pending_groups'])})" if e["pending_groups"] else ""
        lines.append(f"{name}: {e['wall_time_s'] / 60:.1f} min in {len(e['sittings'])} sitting(s){pending}")
        for s in e["sittings"]:
            lines.append(f"    {', '.join(s['groups']):<7} {(s.get('wall_time_s') or 0) / 60:6.1f} min  `{s.get('command')}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", type=Path, help="a profile's results folder, e.g. results/paper")
    p.add_argument("--profile", default=None, help="profile name (default: the folder's name)")
    p.add_argument("--matmul-from", type=Path, default=None,
                   help="a bench.py JSON whose measured matrix-product rate the achieved rate is compared with")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = p.parse_args(argv)
    if not (args.results_dir / "checkpoints").is_dir():
        p.error(f"{args.results_dir}/checkpoints is not a folder: give a profile's results folder")
    profile = get_profile(args.profile or args.results_dir.name)
    matmul = None
    if args.matmul_from is not None:
        matmul = json.loads(args.matmul_from.read_text())["matmul"]["interleaved_median"]
    res = sweep_time(args.results_dir, profile, matmul)
    if args.matmul_from is not None:
        res["matmul_from"] = str(args.matmul_from)
    res["meta"] = {"command": shlex.join(["python", "benchmarks/sweep_time.py", *(argv if argv is not None
                                                                                  else sys.argv[1:])]),
                   "git_commit": git_commit(), "versions": versions(),
                   "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(table(res))
    if args.out is not None:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
