"""Check that the measures give bitwise the same numbers as another revision's ``nets/metrics.py``.

Loads committed paper checkpoints (results/paper/checkpoints), the first test samples of
Transforming-MNIST, and compares every measure of the working tree's ``nets.metrics`` with the
one in ``git show REV:nets/metrics.py`` (imported from a temporary file as a separate module),
with ``torch.equal`` (same bits). Exit status 1 if any differs.

    python -m nets checkpoints restore --profile paper   # once: the checkpoints live in the history
    python scripts/compare_measures.py [--rev main] [--n 200] [--n-si 24]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from nets.cli_types import positive_int
from nets import metrics as new
from nets.data import load_splits
from nets.groups import get_group
from nets.models import InvariantMLP, MLP

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ["r4-DA-seed0", "r4-WT-seed0", "r4-IR-logit-nu10-seed0", "t3-DA-seed0", "t3-IR-kl-nu100-seed0"]


def load_reference(rev: str):
    src = subprocess.run(["git", "show", f"{rev}:nets/metrics.py"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    path = Path(tempfile.mkdtemp()) / "metrics_reference.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("metrics_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_model(name: str) -> tuple[torch.nn.Module, str]:
    ckpt = torch.load(ROOT / "results/paper/checkpoints" / f"{name}.pt", map_location="cpu", weights_only=True)
    c = ckpt["config"]
    kw = dict(in_shape=(36, 36), n_classes=c["n_classes"], hidden=c["hidden"], n_hidden_layers=c["n_hidden_layers"])
    model = InvariantMLP(get_group(c["group"]), pool=c["pool"], **kw) if c["method"] == "WT" else MLP(**kw)
    model.load_state_dict(ckpt["best_state"])
    return model.eval(), c["group"]


def measures(m, model, group, x, y, xs, ys):
    return {
        "orbit_measures": lambda: torch.tensor(list(m.orbit_measures(model, x, y, group).values()),
                                               dtype=torch.float64),
        "LI": lambda: m.logit_invariance(model, x, group),
        "LI_none_with_identity": lambda: m.logit_invariance(model, x, group, reduction="none", include_identity=True),
        "DI": lambda: m.distribution_invariance(model, x, group, reduction="none"),
        "OCI": lambda: m.orbit_centroid_invariance(model, x, group, reduction="none"),
        "layer_profile": lambda: m.layer_invariance_profile(model, x, group),
        "IG": lambda: m.integrated_gradients(model, xs, ys, n_steps=20),
        "saliency_map": lambda: m.saliency_map(model, xs, ys, n_steps=20),
        "SI_label": lambda: m.saliency_invariance(model, xs, ys, group, n_steps=20, reduction="none"),
        "SI_predicted": lambda: m.saliency_invariance(model, xs, None, group, target="predicted", n_steps=20),
        "sigma_jacrev": lambda: m.jacobian_spectral_norm(model, x[:64]),
        "sigma_power": lambda: m.jacobian_spectral_norm(model, x[:16], method="power", n_iter=30),
        "common_share": lambda: m.class_common_logit_share(model(x)),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="main")
    p.add_argument("--n", type=positive_int, default=200)
    p.add_argument("--n-si", type=positive_int, default=24)
    args = p.parse_args(argv)
    old = load_reference(args.rev)
    test = load_splits("mnist", progress=False).test
    x, y = test.x[: args.n], test.y[: args.n]
    xs, ys = x[: args.n_si], y[: args.n_si]
    differ = 0
    for name in CHECKPOINTS:
        model, g = load_model(name)
        group = get_group(g)
        ours, theirs = measures(new, model, group, x, y, xs, ys), measures(old, model, group, x, y, xs, ys)
        for k in ours:
            a, b = ours[k](), theirs[k]()
            same = a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
            differ += not same
            print(f"{name:24s} {k:22s} {'bitwise equal' if same else 'DIFFERENT'}  {tuple(a.shape)}")
    print("all bitwise equal" if not differ else f"{differ} measures differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
