"""Invariance measures and their cost for randomly initialised models.

For ``MLP()`` and ``InvariantMLP(R4)`` (default PyTorch init after
``torch.manual_seed(seed)``) on ``n`` random 36x36 images (standard normal,
like normalized pixels), measure LI (Eq. 2), DI (Eq. 1), SI (Eq. 3; with random
labels and with each input's predicted class), the orbit-centroid error, the
per-layer invariance profile, and the wall time of each; the time of
``jacobian_spectral_norm`` (both methods) and of integrated gradients with 50
steps per ``n`` samples; and the two implementations of the weight-tied first
layer. Prints a table and writes JSON to ``--out``.

    .venv/bin/python benchmarks/measures_random_init.py --out results/measures_random_init.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.first_layer import compare_first_layer_implementations  # noqa: E402
from nets.cli_types import group_arg, nonnegative_int, positive_int  # noqa: E402
from nets.groups import get_group  # noqa: E402
from nets.metrics import (  # noqa: E402
    distribution_invariance,
    integrated_gradients,
    jacobian_spectral_norm,
    layer_invariance_profile,
    logit_invariance,
    orbit_centroid_invariance,
    saliency_invariance,
)
from nets.models import InvariantMLP, MLP, count_parameters  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def to_py(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.tolist()
    return v


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--n", type=positive_int, default=1000, help="number of random images")
    parser.add_argument("--group", type=group_arg, default="r4")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--n-steps", type=positive_int, default=50, help="integrated-gradients steps")
    parser.add_argument("--repeats", type=positive_int, default=20, help="repeats of the first-layer timing")
    parser.add_argument("--skip-power", action="store_true", help="skip the (slow) power-iteration timing")
    parser.add_argument("--images", choices=("random", "test"), default="random",
                        help="random standard-normal images, or the first n real Transforming-MNIST "
                             "test images with their labels (fetched through nets.data)")
    args = parser.parse_args(argv)

    group = get_group(args.group)
    torch.manual_seed(args.seed)
    models = {"MLP": MLP(), f"InvariantMLP({group.name})": InvariantMLP(group)}
    if args.images == "test":
        from nets.data import load_splits

        test = load_splits("mnist").test.subset(args.n)
        x, y = test.x, test.y
    else:
        x = torch.randn(args.n, 36, 36)
        y = torch.randint(0, 9, (args.n,))

    results: dict[str, Any] = {
        "setup": {
            "n": args.n, "images": args.images, "group": group.name, "seed": args.seed, "n_steps": args.n_steps,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "loadavg_start": os.getloadavg(),
            "note": "wall times on a shared machine; loadavg shows contention from other jobs",
        },
        "models": {},
    }
    for name, model in models.items():
        r: dict[str, Any] = {"parameters": count_parameters(model)}
        measures = {
            "LI": lambda: logit_invariance(model, x, group),
            "DI": lambda: distribution_invariance(model, x, group),
            "SI_label": lambda: saliency_invariance(model, x, y, group, n_steps=args.n_steps),
            "SI_predicted": lambda: saliency_invariance(model, x, None, group, target="predicted",
                                                        n_steps=args.n_steps),
            "orbit_centroid": lambda: orbit_centroid_invariance(model, x, group),
            "layer_profile": lambda: layer_invariance_profile(model, x, group),
            "IG": lambda: integrated_gradients(model, x, y, n_steps=args.n_steps, return_convergence_delta=True)[1]
            .abs().mean(),
            "sigma_max_jacrev": lambda: jacobian_spectral_norm(model, x, method="jacrev").mean(),
        }
        if not args.skip_power:
            measures["sigma_max_power"] = lambda: jacobian_spectral_norm(model, x, method="power").mean()
        for key, fn in measures.items():
            value, seconds = timed(fn)
            r[key] = {"value": to_py(value), "seconds": seconds}
            print(f"{name:>20s}  {key:<18s} {str(to_py(value))[:60]:<62s} {seconds:8.2f} s", flush=True)
        results["models"][name] = r

    tied = models[f"InvariantMLP({group.name})"]
    results["first_layer"] = {
        "forward_n1000": compare_first_layer_implementations(tied, x, repeats=args.repeats),
        "forward_backward_n512": compare_first_layer_implementations(tied, x[:512], repeats=args.repeats,
                                                                     backward=True),
    }
    results["setup"]["loadavg_end"] = os.getloadavg()

    print("\nweight-tied first layer (median seconds)")
    for k, v in results["first_layer"].items():
        print(f"  {k:<24s} weight_gather {v['weight_gather'] * 1e3:8.2f} ms   input_orbit "
              f"{v['input_orbit'] * 1e3:8.2f} ms   max |diff| {v['max_abs_diff']:.1e}")
    print(f"\nload average start {results['setup']['loadavg_start']} end {results['setup']['loadavg_end']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
