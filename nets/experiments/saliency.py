"""Figures 1 and 3 (Section 4.2): saliency maps over the orbit, realigned.

Protocol. Table 1's models (first seed). ``profile.n_saliency_samples`` test
samples of classes spread over 0..8 (the first test sample of each); for every
group element g, the saliency map m_f(g x) of the true class (``nets.metrics.
saliency_map``: |IG| with ``profile.ig_steps`` steps, thresholded at 0.9 of its
maximum, Gaussian-smoothed) is realigned as g^{-1} m_f(g x), so an exactly
invariant decision process gives identical columns. Each map is stored with its
cosine similarity to m_f(x) (the terms of SI, Eq. 3).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from nets.experiments.common import checkpoint_dir, finish
from nets.experiments.profiles import Profile
from nets.experiments.table1 import chosen_nus, profile_splits, table1_models
from nets.experiments.tsne import element_labels
from nets.groups import Group, get_group
from nets.metrics import cosine_similarity, saliency_map
from nets.results_io import rounded
from nets.train import resolve_device

__all__ = ["run_saliency", "pick_samples", "realigned_maps"]

#: Order of the columns in Figures 1 and 3 (the paper shows DA against IR; WT is the oracle).
METHOD_ORDER = ("DA", "IR", "WT")


def pick_samples(y: torch.Tensor, n: int) -> list[int]:
    """Indices of the first sample of ``n`` classes spread evenly over the labels present."""
    classes = sorted(int(c) for c in torch.unique(y))
    picks = np.unique(np.round(np.linspace(0, len(classes) - 1, min(n, len(classes)))).astype(int))
    return [int(torch.nonzero(y == classes[k])[0]) for k in picks]


def realigned_maps(model, x: torch.Tensor, y: torch.Tensor, group: Group, n_steps: int) -> torch.Tensor:
    """``(|G|, N, H, W)``: ``out[g] = g^{-1} m_f(g x)`` for the true classes ``y``."""
    out = []
    for g in group.elements:
        m = saliency_map(model, group.act(x, g), y, n_steps=n_steps)
        out.append(group.act(m, group.inverse(g)))
    return torch.stack(out).detach()


def run_saliency(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                 command: str | None = None, precision: str = "fp32") -> dict:
    """Saliency grids of Table 1's models; write ``saliency.json`` and Figures 1/3."""
    started = time.time()
    dev = resolve_device(device)
    nus = chosen_nus(profile, results_root, device=device, progress=progress, command=command, precision=precision)
    splits = profile_splits(profile)
    idx = pick_samples(splits.test.y, profile.n_saliency_samples)
    x, y = splits.test.x[idx].to(dev), splits.test.y[idx].to(dev)
    groups = {}
    for g in profile.groups:
        group = get_group(g)
        runs = table1_models(profile, g, nus[g], splits, device=dev, run_dir=checkpoint_dir(profile, results_root),
                             progress=progress, precision=precision)
        methods = {}
        for m in METHOD_ORDER:
            run = runs[m][0]
            model = run.model.to(dev).eval()
            maps = realigned_maps(model, x, y, group, profile.ig_steps)  # (|G|, N, H, W)
            with torch.no_grad():
                pred = model(x).argmax(-1)
            methods[m] = {
                "seed": run.seed,
                "nu": nus[g] if m == "IR" else None,
                "maps": rounded(maps, 3),
                "similarity": cosine_similarity(maps.flatten(-2), maps[:1].expand_as(maps).flatten(-2)).cpu(),
                "predicted": pred.cpu(),
            }
        groups[g] = {"sample_index": idx, "labels": y.cpu(), "images": rounded(x, 2),
                     "element_labels": element_labels(group, x.shape[-1]), "methods": methods}
    results = {
        "protocol": {
            "maps": f"Saliency maps of the true class (|IG|, {profile.ig_steps} steps, zero baseline, threshold 0.9 "
                    "of the maximum, 3x3 Gaussian sigma 1) of g x for every element g, realigned as "
                    "g^-1 m(g x); first seed's model; similarity = cosine with m(x).",
            "samples": f"Test samples {idx} (first sample of classes spread over the labels).",
        },
        "groups": groups,
    }
    return finish(profile, "saliency", results, results_root, device=str(dev), started=started, command=command,
                  precision=precision)
