"""Figure 2 (Section 4.2): penultimate features of test samples under every group element.

Protocol. Table 1's models (WT, DA, IR with its chosen nu). The first
``profile.n_tsne_samples`` test samples, each under every group element, are
mapped to the penultimate layer (``model.features``, 128-d) and embedded in 2-d
with ``sklearn.manifold.TSNE`` (PCA init, ``random_state=profile.tsne_seed``),
for the first seed. The number the figure suggests is measured in feature
space (not t-SNE space), for every seed:

    ratio = mean_i mean_{g != h} ||phi(g x_i) - phi(h x_i)||
            / mean_{i != j, y_i = y_j} mean_{g, h} ||phi(g x_i) - phi(h x_j)||,

the mean distance between members of one orbit over the mean distance between
(any orientations of) different samples of the same class: 0 for an exactly
invariant model, about 1 when orientation moves a sample as far as changing it
for another sample of its class.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from nets.data import full_orbit
from nets.experiments.common import checkpoint_dir, finish, mean_std
from nets.experiments.profiles import Profile
from nets.experiments.table1 import chosen_nus, profile_splits, table1_models
from nets.groups import CyclicTranslations, Group, Mirror, Rotations, Translations2D, get_group
from nets.results_io import rounded
from nets.train import resolve_device

__all__ = ["run_tsne", "orbit_class_distance_ratio", "element_labels"]


def element_labels(group: Group, size: int = 36) -> list[str]:
    """Human-readable names of the group elements (for figures) on ``size x size`` images: angles,
    shifts (``+9 px``; ``+9 px y`` along y; ``(+9, +18) px`` along both), ``flip``; else the numbers."""
    n = group.order
    if isinstance(group, Rotations):
        return [f"{g * 360 // n}°" for g in group.elements]
    if isinstance(group, CyclicTranslations):
        return [f"+{g * size // n} px{'' if group.axis == 'x' else ' y'}" for g in group.elements]
    if isinstance(group, Translations2D):
        step = size // group.n
        return [f"(+{(g % group.n) * step}, +{(g // group.n) * step}) px" for g in group.elements]
    if isinstance(group, Mirror):
        return ["id", "flip" if group.axis == "x" else "flip y"]
    return [str(g) for g in group.elements]


def orbit_class_distance_ratio(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean within-orbit distance over mean same-class between-sample distance.

    features: ``(|G|, N, D)`` (element-major orbit features); labels: ``(N,)``.
    Euclidean distances in feature space; see the module docstring.
    """
    G, N, D = features.shape
    f = features.double()
    flat = f.reshape(G * N, D)
    dist = torch.cdist(flat, flat).view(G, N, G, N)
    sample = torch.arange(N)
    # within orbit: pairs (g x_i, h x_i) with g != h
    within = dist[:, sample, :, sample]  # (N, G, G)
    off_diag = ~torch.eye(G, dtype=torch.bool)
    orbit_mean = within[:, off_diag].mean()
    # same class, different samples, any elements
    same = (labels.view(-1, 1) == labels.view(1, -1)) & ~torch.eye(N, dtype=torch.bool)
    if not bool(same.any()):
        return float("nan")
    per_pair = dist.permute(1, 3, 0, 2).reshape(N, N, G * G).mean(-1)  # (N, N)
    class_mean = per_pair[same].mean()
    return float(orbit_mean / class_mean) if class_mean > 0 else float("nan")


@torch.no_grad()
def orbit_features(model, x: torch.Tensor, group: Group) -> torch.Tensor:
    """``(N, H, W) -> (|G|, N, D)``: penultimate features of every orbit member."""
    from nets.data import Split

    orbit = full_orbit(Split(x, torch.zeros(x.shape[0], dtype=torch.long, device=x.device)), group)
    return model.features(orbit.x).view(group.order, x.shape[0], -1)


def run_tsne(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
             command: str | None = None, precision: str = "fp32") -> dict:
    """Embed Table 1's models' orbit features; write ``tsne.json`` and Figure 2."""
    from sklearn.manifold import TSNE

    started = time.time()
    dev = resolve_device(device)
    nus = chosen_nus(profile, results_root, device=device, progress=progress, command=command, precision=precision)
    splits = profile_splits(profile)
    n = min(profile.n_tsne_samples, len(splits.test))
    data = splits.test.subset(n).to(dev)
    groups = {}
    for g in profile.groups:
        group = get_group(g)
        runs = table1_models(profile, g, nus[g], splits, device=dev, run_dir=checkpoint_dir(profile, results_root),
                             progress=progress, precision=precision)
        methods = {}
        for m, rs in runs.items():
            ratios, coords = [], None
            for i, r in enumerate(rs):
                feats = orbit_features(r.model.to(dev).eval(), data.x, group).cpu()
                ratios.append(orbit_class_distance_ratio(feats, data.y.cpu()))
                if i == 0:
                    flat = feats.reshape(-1, feats.shape[-1]).numpy().astype(np.float64)
                    perplexity = min(profile.tsne_perplexity, (flat.shape[0] - 1) / 3)
                    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                                  random_state=profile.tsne_seed).fit_transform(flat)
            methods[m] = {
                "seed": rs[0].seed,
                "nu": nus[g] if m == "IR" else None,
                "coords": rounded(coords, 3),
                "ratio": mean_std(ratios),
                "ratio_per_seed": ratios,
            }
        groups[g] = {"labels": data.y.cpu(), "element_labels": element_labels(group, data.x.shape[-1]),
                     "methods": methods}
    results = {
        "protocol": {
            "samples": f"The first {n} test samples, each under every group element; penultimate features "
                       f"(128-d); t-SNE (perplexity {profile.tsne_perplexity}, PCA init, random_state "
                       f"{profile.tsne_seed}) of the first seed's model.",
            "ratio": "Orbit / class distance: mean feature distance between members of one orbit over mean "
                     "distance between different samples of the same class (any elements), per seed.",
            "coords": "coords are element-major: row g * N + i is sample i under element g.",
            "n_samples": n,
        },
        "groups": groups,
    }
    return finish(profile, "tsne", results, results_root, device=str(dev), started=started, command=command,
                  precision=precision)
