"""A split under a group (paper Section 4.1): random elements for augmentation, fixed seeded
elements for evaluation, the whole orbit, and a figure of a few orbits."""

from __future__ import annotations

from pathlib import Path
import torch

from nets.data.splits import PathLike, Split
from nets.groups import GroupLike, as_group
from nets.results_io.atomic import save_figure_file

__all__ = ["GroupLike", "augment", "fixed_elements", "transformed", "full_orbit", "plot_orbits"]


def augment(
    x: torch.Tensor, group: GroupLike, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a uniformly random element to each sample (data augmentation).

    x: ``(N, ..., H, W)`` on any device. Returns ``(g x, g)`` with ``g`` of shape
    ``(N,)`` (long, on ``x.device``) and ``(g x)[i] = act(x[i], g[i])``. The
    elements are drawn with ``generator`` on its own device (CPU by default).
    """
    group = as_group(group)
    n = x.shape[0]
    if generator is None or generator.device.type == "cpu":
        g = group.random_elements(n, generator=generator)
    else:
        g = torch.randint(0, group.order, (n,), generator=generator, device=generator.device)
    g = g.to(x.device)
    return group.act(x, g), g


def fixed_elements(n: int, group: GroupLike, seed: int = 0) -> torch.Tensor:
    """``n`` group elements drawn uniformly from a CPU generator seeded by ``seed``:
    the same ``(n,)`` long tensor on every call, for evaluation."""
    return as_group(group).random_elements(n, generator=torch.Generator().manual_seed(int(seed)))


def transformed(split: Split, group: GroupLike, seed: int = 0) -> Split:
    """Each sample under its fixed seeded element: ``x_i -> g_i x_i`` with
    ``g = fixed_elements(len(split), group, seed)``; labels unchanged."""
    group = as_group(group)
    g = fixed_elements(len(split), group, seed).to(split.x.device)
    return Split(group.act(split.x, g), split.y.clone())


def full_orbit(split: Split, group: GroupLike) -> Split:
    """Every sample under every element, element-major: ``x`` of shape
    ``(|G| N, ..., H, W)`` with ``out.x[g N + i] = g x_i`` and ``out.y[g N + i] = y_i``."""
    group = as_group(group)
    orbit = group.orbit(split.x)  # (|G|, N, ..., H, W)
    return Split(orbit.reshape(-1, *split.x.shape[1:]), split.y.repeat(group.order))


def plot_orbits(split: Split, group: GroupLike, n: int = 4, out: PathLike = "orbits.png", title: str = "") -> Path:
    """Save a grid of the first ``n`` samples (rows) under every group element (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = as_group(group)
    sub = split.subset(min(n, len(split)))
    orbit = group.orbit(sub.x.cpu()).numpy()  # (|G|, n, H, W)
    rows, cols = orbit.shape[1], orbit.shape[0]
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.4 * rows + 0.5), squeeze=False)
    vmin, vmax = float(orbit.min()), float(orbit.max())
    for i in range(rows):
        for g in range(cols):
            ax = axes[i][g]
            ax.imshow(orbit[g, i], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"g={g}", fontsize=9)
            if g == 0:
                ax.set_ylabel(f"y={int(sub.y[i])}", fontsize=9)
    fig.suptitle(title or f"{group.name} orbits", fontsize=10)
    fig.tight_layout()
    try:
        return save_figure_file(fig, out, dpi=100)
    finally:
        plt.close(fig)
