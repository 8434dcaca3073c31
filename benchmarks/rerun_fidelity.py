"""How far Table 1 moves when the same protocol is trained again elsewhere: two ``table1.json`` of
one profile, dataset and seeds (another machine, another commit with the same training code),
every number side by side.

Usage::

    python benchmarks/rerun_fidelity.py --a results/fmnist/paper/table1.json
        --b results/fmnist-wide-nu/paper/table1.json [--groups t3]
        [--out benchmarks/results/rerun_fidelity_fmnist_t3.json]

For every group both files hold, every method both trained alike (WT, DA; IR only where both chose
the same nu) and every measure (accuracy, LI, DI, SI): the two means over seeds, the paired
difference ``b - a`` over the common seeds with its 95% t interval (:func:`nets.evidence.paired`),
``a``'s seed standard deviation and ``z`` = |difference| / that std. For the nu search, every nu
both files tried: the two mean validation SI and accuracy. Each file's provenance (commit, CPU,
versions, command) is copied into the output. Runs are deterministic on one machine
(``tests/test_train.py``); this measures what another machine's floating point does to them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nets.cli_types import group_arg  # noqa: E402
import nets.evidence as ev  # noqa: E402
from nets.results_io import read_json, write_json  # noqa: E402

MEASURES = ("accuracy", "LI", "DI", "SI")
PROVENANCE = ("git_commit", "git_dirty", "command", "started_at", "device", "precision", "cpu", "versions")


#: Profile fields two reruns may differ in: the nu grid searched and the groups run.
MAY_DIFFER = ("nu_grids", "groups")


def _same_protocol(a: dict, b: dict) -> None:
    pa, pb = a["meta"]["profile"], b["meta"]["profile"]
    diff = sorted(k for k in pa.keys() | pb.keys() if k not in MAY_DIFFER and pa.get(k) != pb.get(k))
    if diff:
        raise ValueError(f"the two runs differ in {', '.join(diff)}: not reruns of one protocol")


def compare(a: dict, b: dict, groups: list[str] | None = None) -> dict:
    """Every Table 1 number of ``b`` against ``a`` (results dicts of ``table1.json``). Raises
    ValueError when the two differ in anything but the nu grid and the groups run."""
    _same_protocol(a, b)
    rows, nus = [], []
    for g in groups or [g for g in a["groups"] if g in b["groups"]]:
        ma, mb = a["groups"][g]["methods"], b["groups"][g]["methods"]
        for method in ma:
            if method not in mb or ma[method].get("nu") != mb[method].get("nu"):
                continue  # IR at another nu is another model, not a rerun
            for measure in MEASURES:
                test = ev.paired(ev.per_seed(mb[method]["runs"], ev.measure(measure)),
                                 ev.per_seed(ma[method]["runs"], ev.measure(measure)))
                if test is None:
                    raise ValueError(f"{g} {method} {measure}: the two runs share no seed")
                std = float(ma[method][measure]["std"])
                diff = test.interval.estimate
                rows.append({"group": g, "method": method, "nu": ma[method].get("nu"), "measure": measure,
                             "a": float(ma[method][measure]["mean"]), "b": float(mb[method][measure]["mean"]),
                             "b_minus_a": diff, "low": test.interval.low, "high": test.interval.high,
                             "p_value": test.p_value, "n": test.n, "a_seed_std": std,
                             "z": abs(diff) / std if std > 0 else None})
        sel_a, sel_b = a["groups"][g].get("nu_selection") or {}, b["groups"][g].get("nu_selection") or {}
        for i, nu in enumerate(sel_a.get("grid", [])):
            if nu in sel_b.get("grid", []):
                j = sel_b["grid"].index(nu)
                nus.append({"group": g, "nu": nu, "val_si": [sel_a["si"][i], sel_b["si"][j]],
                            "val_accuracy": [sel_a["accuracy"][i], sel_b["accuracy"][j]]})
    return {"rows": rows, "nu_search": nus,
            "provenance": {k: {p: run["meta"].get(p) for p in PROVENANCE} for k, run in (("a", a), ("b", b))}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", type=Path, required=True, help="the first run's table1.json")
    ap.add_argument("--b", type=Path, required=True, help="the rerun's table1.json")
    ap.add_argument("--groups", nargs="+", type=group_arg, default=None, help="compare these groups only (default: both files')")
    ap.add_argument("--out", type=Path, default=None, help="write the comparison here (JSON)")
    args = ap.parse_args(argv)
    try:
        out = compare(read_json(args.a), read_json(args.b), args.groups)
    except (ValueError, KeyError) as e:
        print(f"rerun_fidelity: error: {e}", file=sys.stderr)
        return 2
    out["command"] = " ".join(["python", "benchmarks/rerun_fidelity.py", *(argv or sys.argv[1:])])
    for r in out["rows"]:
        z = "" if r["z"] is None else f", {r['z']:.2f} seed std"
        print(f"{r['group']} {r['method']:<3} {r['measure']:<8} a {r['a']:.4g}  b {r['b']:.4g}  "
              f"b - a {r['b_minus_a']:+.3g} [{r['low']:.3g}, {r['high']:.3g}]{z}")
    for r in out["nu_search"]:
        print(f"{r['group']} nu {r['nu']:g}: validation SI {r['val_si'][0]:.4f} / {r['val_si'][1]:.4f}, "
              f"accuracy {r['val_accuracy'][0]:.4f} / {r['val_accuracy'][1]:.4f}")
    if args.out:
        write_json(args.out, out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
