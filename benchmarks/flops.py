"""The analytic FLOP model of the paper's MLP: per sample, per method and measure, and for the
whole paper protocol (what :mod:`benchmarks.bench` and :mod:`benchmarks.sweep_time` compare the
measured wall times with).

FLOP counts (analytic; multiply-add = 2 FLOPs; biases, activations, the loss and
the optimizer are not counted). Per sample, for the paper's MLP with layer
widths ``d_0 = H W = 1296, d_1..d_5 = 128, d_6 = C = 9``:

    F        = 2 sum_l d_l d_{l+1}                = 465,152    (MLP forward)
    F_first  = 2 d_0 d_1                          = 331,776    (first layer)
    F_tail   = F - F_first                        = 133,376
    F_WT     = |G| F_first + F_tail                             (WT forward: |G| first layers)

    training, per sample (forward + backward = 3 x forward):
        DA: 3 F
        IR: 3 |G| F      (the whole orbit of the augmented sample; its identity
                          copy gives the task loss)
        WT: 3 F_WT
      The images need no gradient, so the first layer's input gradient is never
      run: the FLOPs executed are F_first (DA) or |G| F_first (IR, WT) fewer per
      sample; "% of matmul (executed)" uses that count.
    validation, per sample: |G| F, forward over the full orbit; for WT F_WT,
      since every orbit member pools the same pre-activations (nets.train
      classifies each sample once; the reference, naively, |G| times)
    LI / DI, per sample:    |G| F                 (forward over the full orbit)
    SI, per sample:         3 |G| n_steps F       (IG: forward + input gradient per step)
    sigma_max(J), per sample: (1 + C) F           (one forward, C vector-Jacobian products)

The paper protocol's total FLOPs come from ``nets.experiments.profiles.PROFILES["paper"]``
(groups, seeds, epochs, split sizes, the nu grid of each regularizer form) and
the formulas above: per group, WT + DA + sum over regularizer forms of the grid
size (IR) configurations, each trained for every seed; per epoch, training on
``n_train`` samples plus validation on the ``n_val`` set's full orbit. The
lower-bound time is that count divided by the measured matmul rate.
"""

from __future__ import annotations

from nets.experiments.profiles import PROFILES
from nets.groups import get_group

__all__ = ["METHODS", "IN_SHAPE", "HIDDEN", "N_HIDDEN", "N_CLASSES", "widths", "first_layer_flops", "forward_flops",
           "train_flops", "validation_flops", "eval_flops", "paper_protocol"]

METHODS = ("DA", "IR", "WT")
IN_SHAPE, HIDDEN, N_HIDDEN, N_CLASSES = (36, 36), 128, 5, 9


def widths() -> list[int]:
    return [IN_SHAPE[0] * IN_SHAPE[1]] + [HIDDEN] * N_HIDDEN + [N_CLASSES]


def first_layer_flops() -> int:
    w = widths()
    return 2 * w[0] * w[1]


def forward_flops(G: int = 1, tied: bool = False) -> int:
    """Forward FLOPs per sample: ``F``, or ``F_WT = |G| F_first + F_tail`` when ``tied``."""
    w = widths()
    per_layer = [2 * a * b for a, b in zip(w[:-1], w[1:])]
    return (G if tied else 1) * per_layer[0] + sum(per_layer[1:])


def train_flops(method: str, G: int, executed: bool = False) -> int:
    """Training FLOPs per sample: 3 x forward (the stated rule), or with ``executed`` the
    FLOPs really run: no input gradient of the first layer (the images need none)."""
    if method not in METHODS:
        raise ValueError(method)
    fwd = {"DA": forward_flops(), "IR": G * forward_flops(), "WT": forward_flops(G, tied=True)}[method]
    first_layer_passes = 1 if method == "DA" else G
    return 3 * fwd - (first_layer_passes * first_layer_flops() if executed else 0)


def validation_flops(method: str, G: int) -> int:
    """Validation FLOPs per sample for the accuracy over its full orbit: ``|G| F``; for WT
    ``F_WT``, since every orbit member pools the same pre-activations (``nets.train``
    classifies each sample once; the reference does all ``|G|``, i.e. more work)."""
    return forward_flops(G, tied=True) if method == "WT" else G * forward_flops()


def eval_flops(item: str, G: int, n_steps: int = 50) -> int:
    F = forward_flops()
    return {"LI": G * F, "DI": G * F, "SI": 3 * G * n_steps * F, "sigma": (1 + N_CLASSES) * F}[item]


def paper_protocol(matmul_gflops: float) -> dict:
    """Total FLOPs of the paper protocol (training + per-epoch validation) and the
    lower-bound time at the given matmul rate (GFLOP/s)."""
    p = PROFILES["paper"]
    prof = dict(groups=list(p.groups), seeds=len(p.seeds), epochs=p.epochs, n_train=p.n_train, n_val=p.n_val,
                nu_grid_sizes={r: len(p.nu_grid(r)) for r in p.regularizers},
                source="nets.experiments.profiles.PROFILES['paper']")

    def run_flops(m: str, G: int) -> int:
        return prof["seeds"] * prof["epochs"] * (prof["n_train"] * train_flops(m, G)
                                                  + prof["n_val"] * validation_flops(m, G))

    total = best = 0
    per_group = {}
    for name in prof["groups"]:
        G = get_group(name).order
        configs = {"WT": 1, "DA": 1, "IR": sum(prof["nu_grid_sizes"].values())}
        flops = sum(n * run_flops(m, G) for m, n in configs.items())
        # the ascending nu search (CPU default) stops at the first nu reaching the SI target:
        # between one nu per regularizer form (best case) and the whole grid (none reaches it)
        flops_best = run_flops("WT", G) + run_flops("DA", G) + len(prof["nu_grid_sizes"]) * run_flops("IR", G)
        per_group[name] = {"order": G, "configs": configs, "gflop": flops / 1e9,
                           "gflop_ascending_best_case": flops_best / 1e9}
        total += flops
        best += flops_best
    return {**prof, "per_group": per_group, "total_gflop": total / 1e9,
            "lower_bound_s_at_matmul_rate": total / 1e9 / matmul_gflops,
            "total_gflop_ascending_best_case": best / 1e9,
            "lower_bound_s_ascending_best_case": best / 1e9 / matmul_gflops}
