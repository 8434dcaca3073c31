"""Fidelity of bf16 training: every Table 1 number of a bf16 run against the float32 run.

Usage::

    python benchmarks/bf16_fidelity.py [--fp32 results/quick/table1.json]
        [--bf16 results/bf16/quick/table1.json] [--spread results/paper/table1.json]
        [--k 2] [--mode auto|spread|paired] [--out build/bench/bf16_fidelity_quick.json]

For every group, method (WT, DA, IR) and measure (accuracy, LI, DI, SI), and IR's chosen
nu: the float32 and bf16 values (means over the runs' seeds), their difference, and
whether it is beyond the float32 run's seed spread. A group the bf16 file does not hold
yet (a run stopped early) is listed in ``groups_pending``, not compared.

The spread. The quick profile trains one seed, so its own files have no seed spread;
the spread used is the per-number seed standard deviation (population, 4 seeds) of the
``--spread`` file (the paper profile's float32 Table 1). For accuracy and SI (bounded, on
the same scale in both profiles) it is used as is; LI and DI grow with training length
(DA's LI is about 5.6 after the quick profile's 25 epochs, 72 after the paper's 300), so
for them it is scaled by |fp32 quick value| / |paper mean| (the paper's coefficient of
variation applied to the quick value). A number "moved" when
``|bf16 - fp32| > k * spread`` (default k = 2). Where the spread is 0 (WT's LI and DI,
exactly 0 by construction; its SI, exactly 1), any difference moves it, except for an accuracy:
seeds whose accuracies agree exactly (they move in steps of one test image) may do so by chance, so
such a number is not judged (``moved`` false, a note says why) and not counted among those with a
spread. The two runs are
each one seed, so their difference has a seed noise of sqrt(2) sigma, sigma a run's seed std.
The spread is a population std of n seeds (n = 4), an estimate of sigma that falls short of
it on average, so the rule is a sensitive test: if the difference is seed noise alone,
|d| / (sqrt(2) sigma) over spread / sigma is a |t| with n - 1 degrees of freedom scaled by
sqrt((n - 1) / (2 n)), and a number moves by chance with probability
2 P(t_{n-1} > k sqrt((n - 1) / (2 n))) (``chance_rate``: 0.31 for k = 2, n = 4, where
``expected_by_chance`` numbers of the tested ones would move). ``z`` (difference over
spread) is recorded too. Both runs' provenance (precision, command, CPU flags) is copied
into the output.

Paired by seed. Where both runs trained the same seeds, two or more (``table1 --seeds 0 1 2 3``
in each precision), no borrowed spread is needed (:func:`compare_paired`): a seed fixes the
initialisation and the data order, so bf16 - fp32 per seed isolates the precision, and its
95% paired t interval over seeds (:func:`nets.stats.paired_t`) says whether a number moved (the
interval excludes 0; a non-zero difference of accuracies the same on every seed, which accuracies
moving in steps of one test image may show by chance, has no spread for a t-test and is decided by the
exact sign test, :func:`sign_test`, which needs 6 seeds to reach p < 0.05; a continuous measure the same
on every seed is exact, p = 0, as the reports' tie rule has it). With 24 numbers about one such
interval excludes 0 by chance, so the
Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``) are given too and
``moved_fdr`` lists the numbers with q < 0.05. The family is the question "did bf16 move a number
of the same model": a number below ``1e-6`` in every run of both (WT's LI and DI: zero up to
round-off) or equal on every seed (WT's SI, exactly 1) is not tested, and where IR's two runs
chose different nu its rows compare different models: they get their interval and p-value, said
in the row, but no q-value and stay out of the family. IR's nu is compared as before.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy.stats import false_discovery_control  # noqa: E402
from scipy.stats import t as student_t  # noqa: E402

from nets.results_io import read_json, recorded_precision, write_json  # noqa: E402
from nets.stats import paired_t, sign_test  # noqa: E402

MEASURES = ("accuracy", "LI", "DI", "SI")
SCALED = ("LI", "DI")  # measures whose spread is scaled by the quick/paper ratio of means


def spread(measure: str, fp32_value: float, ref: dict) -> float:
    """The seed spread of one number (see the module docstring); ``ref``: ``{"mean", "std"}``."""
    std = float(ref["std"])
    if measure in SCALED:
        mean = abs(float(ref["mean"]))
        return std * abs(fp32_value) / mean if mean > 0 else std
    return std


def compare(fp32: dict, bf16: dict, ref: dict, k: float = 2.0) -> dict:
    """Every Table 1 number of ``bf16`` against ``fp32`` (results dicts of ``table1.json``),
    with the spread from ``ref`` (another table1.json with several seeds)."""
    rows, moved = [], []
    pending = [g for g in fp32["groups"] if g not in bf16["groups"]]
    for g, gv in fp32["groups"].items():
        if g in pending:  # a bf16 run stopped before this group: nothing to compare
            continue
        for m, mv in gv["methods"].items():
            bv, rv = bf16["groups"][g]["methods"][m], ref["groups"][g]["methods"][m]
            for meas in MEASURES:
                a, b = float(mv[meas]["mean"]), float(bv[meas]["mean"])
                s = spread(meas, a, rv[meas])
                d = b - a
                tied = meas == "accuracy" and s == 0  # seeds agreeing exactly: chance, not no spread
                beyond = not tied and abs(d) > k * s
                row = {"group": g, "method": m, "measure": meas, "fp32": a, "bf16": b, "diff": d,
                       "rel_diff": d / abs(a) if a else None, "spread": s,
                       "z": d / s if s > 0 else (0.0 if d == 0 else None), "moved": beyond,
                       **({"note": "the spread file's seeds agree exactly: accuracies move in steps of one "
                                   "test image, so this can be chance; not judged"} if tied else {})}
                rows.append(row)
                if beyond:
                    moved.append(f"{g} {m} {meas}")
        nu32 = gv["methods"]["IR"]["nu"]
        nu16 = bf16["groups"][g]["methods"]["IR"]["nu"]
        rows.append({"group": g, "method": "IR", "measure": "nu", "fp32": nu32, "bf16": nu16,
                     "diff": None if nu32 is None or nu16 is None else nu16 - nu32, "moved": nu32 != nu16})
        if nu32 != nu16:
            moved.append(f"{g} IR nu")
    n_ref = {len(mv["runs"]) for gv in ref["groups"].values() for mv in gv["methods"].values()}
    n = n_ref.pop() if len(n_ref) == 1 else None
    rate = chance_rate(k, n) if n else None
    n_numbers = sum(1 for r in rows if r["measure"] != "nu")
    n_spread = sum(1 for r in rows if r["measure"] != "nu" and r["spread"] > 0)
    return {"k": k, "rows": rows, "moved": moved, "groups_compared": [g for g in fp32["groups"] if g not in pending],
            "groups_pending": pending, "n_numbers": n_numbers, "n_moved": len(moved),
            "spread_seeds": n, "chance_rate": rate,
            "expected_by_chance": None if rate is None else rate * n_spread, "n_with_spread": n_spread}


def chance_rate(k: float, n: int) -> float:
    """The probability that seed noise alone moves a number under ``|d| > k * spread`` (module
    docstring): ``2 P(t_{n-1} > k sqrt((n - 1) / (2 n)))``, the spread a population std of ``n`` seeds."""
    return float(2 * student_t.sf(k * np.sqrt((n - 1) / (2 * n)), n - 1))


#: Below this in every run of both precisions a number is round-off (WT's LI, DI): not tested.
ROUND_OFF = 1e-6


def seeds_of(table1: dict) -> list[int]:
    """The seeds every method of every group of a ``table1.json`` trained (sorted; [] if they differ)."""
    found = {tuple(sorted(r["seed"] for r in mv["runs"])) for gv in table1["groups"].values()
             for mv in gv["methods"].values()}
    return list(found.pop()) if len(found) == 1 else []


def compare_paired(fp32: dict, bf16: dict) -> dict:
    """Every Table 1 number of ``bf16`` against ``fp32``, paired by seed (module docstring):
    per number the mean per-seed difference bf16 - fp32 with its 95% paired t interval, the
    two-sided p-value (for a non-zero difference of accuracies the same on every seed, the exact sign
    test's, :func:`sign_test`, which also decides ``moved`` there; for another measure, 0: exact), the
    Benjamini-Hochberg q-value over the family of tested numbers of the same model, and the fp32
    seed std. Raises
    ``ValueError`` unless both files trained the same two or more seeds and the same methods."""
    seeds = seeds_of(fp32)
    if len(seeds) < 2 or seeds_of(bf16) != seeds:
        raise ValueError(f"paired comparison needs the same two or more seeds in both files; fp32 {seeds}, "
                         f"bf16 {seeds_of(bf16)}")
    rows = []
    pending = [g for g in fp32["groups"] if g not in bf16["groups"]]
    for g, gv in fp32["groups"].items():
        if g in pending:
            continue
        nu32, nu16 = gv["methods"]["IR"]["nu"], bf16["groups"][g]["methods"]["IR"]["nu"]
        if set(gv["methods"]) != set(bf16["groups"][g]["methods"]):
            raise ValueError(f"{g}: the fp32 file has the methods {sorted(gv['methods'])}, the bf16 file "
                             f"{sorted(bf16['groups'][g]['methods'])}")
        for m, mv in gv["methods"].items():
            runs32 = sorted(mv["runs"], key=lambda r: r["seed"])
            runs16 = sorted(bf16["groups"][g]["methods"][m]["runs"], key=lambda r: r["seed"])
            for meas in MEASURES:
                a = np.array([r[meas] for r in runs16], dtype=float)
                b = np.array([r[meas] for r in runs32], dtype=float)
                row = {"group": g, "method": m, "measure": meas, "fp32": float(b.mean()), "bf16": float(a.mean()),
                       "diff": float((a - b).mean()), "fp32_seed_std": float(b.std(ddof=1)),
                       "bf16_seed_std": float(a.std(ddof=1))}
                notes = [f"IR at nu {nu32:g} (fp32) and {nu16:g} (bf16): different models"] \
                    if m == "IR" and nu32 != nu16 else []
                if max(np.abs(a).max(), np.abs(b).max()) < ROUND_OFF:
                    notes.append("round-off in both (below 1e-6)")
                    row.update(tested=False, moved=False)
                elif np.array_equal(a, b):
                    notes.append("equal on every seed")
                    row.update(tested=False, moved=False)
                else:
                    test = paired_t(a, b)
                    iv, p_value = test.interval, test.p_value
                    moved = bool(iv.defined and (iv.low > 0 or iv.high < 0))
                    if np.isnan(p_value) and meas == "accuracy":  # the same lead of whole images on every seed
                        p_value = sign_test(a - b)
                        moved = p_value < 0.05  # its interval of no width would exclude 0 at any n
                        notes.append("the same difference on every seed: the exact sign test's p")
                    elif np.isnan(p_value):  # a continuous measure the same on every seed: exact, as the tie rule
                        p_value = 0.0
                        notes.append("the same difference on every seed")
                    row.update(tested=True, low=iv.low, high=iv.high, p_value=p_value, moved=moved,
                               same_model=not (m == "IR" and nu32 != nu16))
                if notes:
                    row["note"] = "; ".join(notes)
                rows.append(row)
        rows.append({"group": g, "method": "IR", "measure": "nu", "fp32": nu32, "bf16": nu16,
                     "diff": None if nu32 is None or nu16 is None else nu16 - nu32, "tested": False,
                     "moved": nu32 != nu16})
    family = [r for r in rows if r.get("tested") and r["same_model"]]
    for r, q in zip(family, false_discovery_control([r["p_value"] for r in family]) if family else []):
        r["q_value"] = float(q)
    name = lambda r: f"{r['group']} {r['method']} {r['measure']}"  # noqa: E731
    return {"rule": "paired", "seeds": seeds, "rows": rows, "moved": [name(r) for r in rows if r["moved"]],
            "moved_fdr": [name(r) for r in rows if r.get("q_value", 1.0) < 0.05],
            "groups_compared": [g for g in fp32["groups"] if g not in pending], "groups_pending": pending,
            "n_numbers": sum(1 for r in rows if r["measure"] != "nu"),
            "n_tested": sum(1 for r in rows if r.get("tested")), "n_fdr_family": len(family),
            "n_moved": sum(1 for r in rows if r["moved"] and r["measure"] != "nu"),
            "nu_differs": [r["group"] for r in rows if r["measure"] == "nu" and r["moved"]]}


def _source(path: Path, t: dict) -> dict:
    meta = t.get("meta", {})
    return {"file": str(path), "precision": recorded_precision(meta), "command": meta.get("command"),
            "seeds": meta.get("seeds"), "epochs": meta.get("epochs"), "git_commit": meta.get("git_commit"),
            "cpu": meta.get("cpu"), "torch_threads": (meta.get("versions") or {}).get("torch_threads"),
            "wall_time_s": meta.get("wall_time_s")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp32", type=Path, default=ROOT / "results" / "quick" / "table1.json")
    ap.add_argument("--bf16", type=Path, default=ROOT / "results" / "bf16" / "quick" / "table1.json")
    ap.add_argument("--spread", type=Path, default=ROOT / "results" / "paper" / "table1.json")
    ap.add_argument("--k", type=float, default=2.0)
    ap.add_argument("--mode", choices=("auto", "spread", "paired"), default="auto",
                    help="auto: paired by seed where both files trained the same 2+ seeds, else the borrowed spread")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "bf16_fidelity_quick.json",
                    help="JSON output (git-ignored by default: name benchmarks/results/... to replace the committed one)")
    args = ap.parse_args(argv)
    fp32, bf16 = read_json(args.fp32), read_json(args.bf16)
    if recorded_precision(fp32["meta"]) != "fp32" or recorded_precision(bf16["meta"]) != "bf16":
        print(f"error: {args.fp32} must be an fp32 run and {args.bf16} a bf16 run", file=sys.stderr)
        return 2
    out = {"command": " ".join(["python", *sys.argv]), "fp32": _source(args.fp32, fp32), "bf16": _source(args.bf16, bf16)}
    g4 = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    paired = args.mode == "paired" or (args.mode == "auto" and len(seeds_of(fp32)) >= 2
                                       and seeds_of(fp32) == seeds_of(bf16))
    if paired:
        try:
            out.update(paired_rule=_paragraph("Paired by seed."), **compare_paired(fp32, bf16))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for r in out["rows"]:
            iv = f"[{g4(r['low'])}, {g4(r['high'])}] q {g4(r.get('q_value'))}" if r.get("tested") else r.get("note", "")
            print(f"{r['group']} {r['method']:<3} {r['measure']:<8} fp32 {g4(r['fp32']):>10} bf16 {g4(r['bf16']):>10} "
                  f"diff {g4(r['diff']):>10} {iv} {'MOVED' if r['moved'] else ''}")
        print(f"{out['n_moved']} of {out['n_tested']} tested numbers moved (95% paired t interval excludes 0); "
              f"q < 0.05: {', '.join(out['moved_fdr']) or 'none'}; IR's nu differs in: "
              f"{', '.join(out['nu_differs']) or 'none'}; wrote {args.out}")
    else:
        ref = read_json(args.spread)
        out.update(spread_rule=_paragraph("The spread."), spread_source=_source(args.spread, ref),
                   **compare(fp32, bf16, ref, args.k))
        for r in out["rows"]:
            print(f"{r['group']} {r['method']:<3} {r['measure']:<8} fp32 {g4(r['fp32']):>10} bf16 {g4(r['bf16']):>10} "
                  f"z {g4(r.get('z')):>7} {'MOVED' if r['moved'] else ''}")
        chance = "" if out["expected_by_chance"] is None else \
            f" (seed noise alone would move about {out['expected_by_chance']:.1f} of the {out['n_with_spread']} with a spread)"
        print(f"{out['n_moved']} of {out['n_numbers']} numbers (+ nu) moved beyond {args.k} x spread{chance}: "
              f"{', '.join(out['moved']) or 'none'}; wrote {args.out}")
    write_json(args.out, out)
    return 0


def _paragraph(start: str) -> str:
    """The module docstring's paragraph that begins with ``start``, on one line."""
    return next(p for p in __doc__.split("\n\n") if p.startswith(start)).replace("\n", " ")


if __name__ == "__main__":
    raise SystemExit(main())
