"""Audit the paper profile's committed R4 models with ``nets.audit``: seed 0 of WT, DA and IR (the
logit form at Table 1's chosen nu), on the first ``--n`` test images of Transforming-MNIST.

Writes ``build/audit/audit_r4.json`` (git-ignored; ``--out results/paper/audit_r4.json`` for the
committed one: each model's ``AuditResult.to_dict()`` and the provenance)
and prints each model's table (measures and per-layer profile, 95% bootstrap intervals over samples;
the trained model is fixed). The checkpoints live in the repository's history:

    python -m nets checkpoints restore --profile paper
    python scripts/audit_paper_models.py [--n 1000] [--out results/paper/audit_r4.json]

With ``--compare`` it writes ``build/audit/compare_r4.json`` (or ``--out``) instead: WT and IR each against DA
on the same images (:func:`nets.audit_compare.compare_samples`, paired bootstrap intervals over
the samples), and prints the two tables:

    python scripts/audit_paper_models.py --compare [--out results/paper/compare_r4.json]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from nets.cli_types import positive_int
from nets.audit_compare import compare_samples
from nets.audit_inputs import audit_images
from nets.auditing import audit, sample_measures
from nets.groups import R4
from nets.model_spec import load_weights
from nets.models import MLP, InvariantMLP
from nets.results_io import read_json, run_provenance, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=positive_int, default=1000, help="test images (default %(default)s)")
    p.add_argument("--compare", action="store_true", help="WT and IR against DA (compare_r4.json) instead")
    p.add_argument("--out", default=None, help="default build/audit/audit_r4.json, with --compare compare_r4.json (git-ignored: "
                   "the committed results/paper/ files are written only when named here)")
    args = p.parse_args()
    out = args.out or str(ROOT / "build" / "audit" / ("compare_r4.json" if args.compare else "audit_r4.json"))
    started = time.time()
    nu = read_json(ROOT / "results" / "paper" / "table1.json")["groups"]["r4"]["methods"]["IR"]["nu"]
    models = {"WT": (InvariantMLP(R4), "r4-WT-seed0.pt"), "DA": (MLP(), "r4-DA-seed0.pt"),
              "IR": (MLP(), f"r4-IR-logit-nu{nu:g}-seed0.pt")}
    x, y, _ = audit_images("mnist", args.n, channels=0)  # (N, 36, 36): the paper's MLPs
    for model, file in models.values():
        load_weights(model, str(ROOT / "results" / "paper" / "checkpoints" / file))
        model.eval()
    if args.compare:
        values = {m: sample_measures(model, x, y, R4) for m, (model, _) in models.items()}
        records = {}
        for method in ("WT", "IR"):
            c = compare_samples(values["DA"], values[method], R4, names=("DA", method), input_shape=tuple(x.shape),
                                settings={"n_steps": 50, "include_identity": False})
            print(c.to_markdown())
            records[f"{method}_vs_DA"] = {"checkpoints": {"a": models["DA"][1], "b": models[method][1]}, **c.to_dict()}
        print(f"wrote {write_json(out, {'comparisons': records, 'meta': _meta(args, started)})}")
        return
    records = {}
    for method, (model, file) in models.items():
        result = audit(model, x, y, R4, name=f"paper {method} (R4, seed 0, {file})")
        print(result.to_markdown())
        records[method] = {"checkpoint": file, **result.to_dict()}
    print(f"wrote {write_json(out, {'models': records, 'meta': _meta(args, started)})}")


def _meta(args: argparse.Namespace, started: float) -> dict:
    """Provenance (taken when the work is done, so its wall time covers it) and the data used."""
    return {**run_provenance(device="cpu", started=started, command=shlex.join(["python", *sys.argv])),
            "data": {"dataset": "mnist", "split": "test", "n": args.n, "layout": "(N, 36, 36)"}}


if __name__ == "__main__":
    main()
