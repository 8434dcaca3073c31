"""A split under a group (paper Section 4.1): random elements for augmentation, fixed seeded
elements for evaluation, the whole orbit, and a figure of a few orbits."""

from __future__ import annotations

from pathlib import Path
import torch

from nets.data.splits import PathLike, Split
from nets.groups import GroupLike, as_group
from nets.results_io.atomic import save_figure_file

__all__ = ["GroupLike", "augment", "fixed_elements", "transformed", "full_orbit", "plot_orbits", "MAX_SAMPLES"]


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


#: The most samples :func:`plot_orbits` draws: each is a row of the figure.
MAX_SAMPLES = 32


def plot_orbits(split: Split, group: GroupLike, n: int = 4, out: PathLike = "orbits.png", title: str = "",
                max_columns: int = 12) -> Path:
    """Save a grid of the first ``n`` samples under every group element (columns ``g=0, 1, ...``).

    A group of more than ``max_columns`` elements wraps: each sample then takes
    ``ceil(|G| / max_columns)`` rows of ``max_columns`` panels (t6xy's 36 elements: 3 rows of 12),
    so the figure stays readable whatever the group's order. Raises ValueError for ``n`` outside
    ``[1, MAX_SAMPLES]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if max_columns < 1:
        raise ValueError(f"max_columns must be >= 1, got {max_columns}")
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be in [1, {MAX_SAMPLES}] (one figure row per sample), got {n}")
    group = as_group(group)
    sub = split.subset(min(n, len(split)))
    orbit = group.orbit(sub.x.cpu()).numpy()  # (|G|, n, H, W)
    order, samples = orbit.shape[0], orbit.shape[1]
    cols = min(order, max_columns)
    bands = -(-order // cols)  # rows per sample
    rows = samples * bands
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.4 * rows + 0.5), squeeze=False)
    vmin, vmax = float(orbit.min()), float(orbit.max())
    for i in range(samples):
        for g in range(order):
            ax = axes[i * bands + g // cols][g % cols]
            ax.imshow(orbit[g, i], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or bands > 1:
                ax.set_title(f"g={g}", fontsize=9)
            if g % cols == 0:
                ax.set_ylabel(f"y={int(sub.y[i])}", fontsize=9)
    for ax in axes.flat:  # the last band's panels past |G| stay blank
        if not ax.images:
            ax.set_axis_off()
    fig.suptitle(title or f"{group.name} orbits", fontsize=10)
    fig.tight_layout()
    try:
        return save_figure_file(fig, out, dpi=100)
    finally:
        plt.close(fig)
