"""Audit the paper profile's committed R4 models with ``nets.audit``: seed 0 of WT, DA and IR (the
logit form at Table 1's chosen nu), on the first ``--n`` test images of Transforming-MNIST.

Writes ``results/paper/audit_r4.json`` (each model's ``AuditResult.to_dict()`` and the provenance)
and prints each model's table (measures and per-layer profile, 95% bootstrap intervals over samples;
the trained model is fixed). The checkpoints live in the repository's history:

    python -m nets checkpoints restore --profile paper
    python scripts/audit_paper_models.py [--n 1000] [--out results/paper/audit_r4.json]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from nets.audit_cli import audit_images, load_weights
from nets.auditing import audit
from nets.groups import R4
from nets.models import MLP, InvariantMLP
from nets.results_io import read_json, run_provenance, write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="test images (default %(default)s)")
    p.add_argument("--out", default=str(ROOT / "results" / "paper" / "audit_r4.json"))
    args = p.parse_args()
    started = time.time()
    nu = read_json(ROOT / "results" / "paper" / "table1.json")["groups"]["r4"]["methods"]["IR"]["nu"]
    models = {"WT": (InvariantMLP(R4), "r4-WT-seed0.pt"), "DA": (MLP(), "r4-DA-seed0.pt"),
              "IR": (MLP(), f"r4-IR-logit-nu{nu:g}-seed0.pt")}
    x, y = audit_images("mnist", args.n, channels=0)  # (N, 36, 36): the paper's MLPs
    records = {}
    for method, (model, file) in models.items():
        load_weights(model, str(ROOT / "results" / "paper" / "checkpoints" / file))
        result = audit(model.eval(), x, y, R4, name=f"paper {method} (R4, seed 0, {file})")
        print(result.to_markdown())
        records[method] = {"checkpoint": file, **result.to_dict()}
    meta = {**run_provenance(device="cpu", started=started, command=shlex.join(["python", *sys.argv])),
            "data": {"dataset": "mnist", "split": "test", "n": args.n, "layout": "(N, 36, 36)"}}
    print(f"wrote {write_json(args.out, {'models': records, 'meta': meta})}")


if __name__ == "__main__":
    main()
