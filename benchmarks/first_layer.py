"""Timing the weight-tied first layer of :class:`nets.models.InvariantMLP` two ways.

The model gathers ``|G|`` column-permuted copies of ``W`` and does one matmul
(:meth:`~nets.models.MLP.first_layer`); :func:`first_layer_input_orbit` instead builds the input
orbit ``(N, |G|, H*W)`` and multiplies it by ``W`` (the reference). Same FLOPs. Measured on this
project's shared 2-core CPU (R4, 36x36, hidden 128, float32, load average 4-5): forward N=1000
96 ms vs 105 ms; forward+backward N=512 224 ms vs 192 ms; a second run 200 vs 204 ms and 529 vs
488 ms, i.e. the same within the noise. The weight gather is kept because it never materializes
the orbit: at N=512 it gathers 2.7 MB of weights instead of 10.6 MB of inputs, and backward saves
``x`` rather than its orbit. Used by ``benchmarks/measures_random_init.py``.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from nets.models import InvariantMLP

__all__ = ["first_layer_input_orbit", "compare_first_layer_implementations"]


def first_layer_input_orbit(model: InvariantMLP, x: torch.Tensor) -> torch.Tensor:
    """The tied first layer through the input orbit: ``pool_g relu(W vec(g x) + b)``.
    x: ``(N, H, W)`` or ``(N, H*W)``; returns ``(N, hidden)``."""
    x_flat = x.reshape(x.shape[0], -1)
    idx = model.group.orbit_index(*model.in_shape, device=x_flat.device)
    z = model.layers[0](x_flat[:, idx])  # (N, |G|, hidden); orbit[:, g] = vec(g x)
    if model.pool == "max":
        return F.relu(z.amax(dim=-2))
    return F.relu(z).mean(dim=-2)


def compare_first_layer_implementations(
    model: InvariantMLP, x: torch.Tensor, repeats: int = 20, backward: bool = False
) -> dict[str, float]:
    """Median seconds of the tied first layer by weight gather vs input orbit.

    The two implementations alternate within each repeat, so a machine shared with other jobs
    slows both alike. x: ``(N, H, W)`` or ``(N, H*W)``. Returns ``{"weight_gather": s,
    "input_orbit": s, "max_abs_diff": d}`` (``d``: largest difference between the two outputs).
    """
    impls = {"weight_gather": model.first_layer, "input_orbit": lambda xx: first_layer_input_orbit(model, xx)}
    times: dict[str, list[float]] = {k: [] for k in impls}
    outs: dict[str, torch.Tensor] = {}
    for r in range(repeats + 1):
        order = list(impls) if r % 2 == 0 else list(impls)[::-1]
        for name in order:
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            with torch.set_grad_enabled(backward):
                out = impls[name](x)
                if backward:
                    out.sum().backward()
            if r > 0:  # the first round warms up
                times[name].append(time.perf_counter() - t0)
            outs[name] = out.detach()
    model.zero_grad(set_to_none=True)
    results = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    results["max_abs_diff"] = float((outs["weight_gather"] - outs["input_orbit"]).abs().max())
    return results
