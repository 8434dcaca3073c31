"""Choosing IR's regularizer weight ``nu`` (Section 4.1): the smallest grid value whose
validation saliency invariance reaches the target."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from nets import metrics
from nets.data import Splits
from nets.groups import get_group
from nets.precision import exact_float32
from nets.train.config import TrainConfig, TrainedRun, resolve_device
from nets.train.runs import train_runs
from nets.train.factory import input_shape_of, model_dtype

#: How ``tune_nu(search=None)`` walks the nu grid, per device type. ``"ascending"``
#: trains one nu at a time (its seeds stacked), smallest first, and stops at the first
#: nu that reaches the SI target: the choice is the same as training the whole grid
#: (every smaller nu was trained and missed), at a fraction of the cost when the target
#: is reached early. ``"full"`` trains the whole grid as one stack: on a GPU, where the
#: small models are launch-bound, a 20-model stack costs about what a 4-model one does.
AUTO_NU_SEARCH: dict[str, str] = {"cpu": "ascending", "cuda": "full"}

NuSearch = Literal["ascending", "full"]


@dataclass
class NuSelection:
    """Outcome of :func:`tune_nu`: per grid value (in the order given) the mean
    validation saliency invariance ``si`` and the mean best validation accuracy
    ``accuracy`` over seeds (``None`` for a value the ascending search never
    trained because a smaller one had reached the target), the chosen ``nu``
    (``None`` if no value reached ``target``), the target and the ``search`` used;
    ``si_per_seed``: per grid value the seeds' SI (seed order; ``None`` where not trained),
    from which a report tells whether the choice rests on more than seed noise."""

    grid: list[float]
    si: list[float | None]
    accuracy: list[float | None]
    chosen: float | None
    target: float
    search: str = "full"
    si_per_seed: list[list[float] | None] = field(default_factory=list)

    @property
    def trained(self) -> list[float]:
        """The grid values that were trained (in grid order)."""
        return [nu for nu, si in zip(self.grid, self.si) if si is not None]

    def to_dict(self) -> dict:
        return {"grid": list(self.grid), "si": list(self.si), "accuracy": list(self.accuracy),
                "chosen": self.chosen, "target": self.target, "search": self.search,
                "si_per_seed": [None if v is None else list(v) for v in self.si_per_seed]}


def select_nu(grid: Sequence[float], si_values: Sequence[float | None], target: float = 0.95) -> float | None:
    """The smallest ``nu`` in ``grid`` whose saliency invariance reaches ``target``
    (``si >= target``, Section 4.1: "such that ... SI_f >= 0.95"); ``None`` if none does.

    ``grid`` need not be sorted; NaN or ``None`` (not trained) SI never passes.
    """
    grid, si_values = list(grid), list(si_values)
    if len(grid) != len(si_values):
        raise ValueError(f"grid and si_values differ in length: {len(grid)} vs {len(si_values)}")
    passing = [float(nu) for nu, si in zip(grid, si_values) if si is not None and float(si) >= target]
    return min(passing) if passing else None


def tune_nu(
    base: TrainConfig,
    grid: Sequence[float],
    seeds: Sequence[int],
    splits: Splits,
    *,
    si_target: float = 0.95,
    n_si_samples: int = 500,
    device: str | torch.device | None = "auto",
    run_dir: Path | str | None = None,
    progress: bool = True,
    stack: bool | None = None,
    search: NuSearch | None = None,
    model_fn: Any = None,
    precision: str = "fp32",
    **si_kwargs: Any,
) -> tuple[NuSelection, dict[float, list[TrainedRun]]]:
    """Train ``base`` with the ``nu`` of ``grid`` and every seed, and pick ``nu``.

    For each trained ``nu``: the saliency invariance (:func:`nets.metrics.saliency_invariance`,
    Eq. 3) of each seed's best-validation model on the first ``n_si_samples``
    validation samples (a number the paper does not give), averaged over seeds,
    and the mean best validation accuracy. The choice is :func:`select_nu`
    (smallest ``nu`` with SI >= ``si_target``), ``None`` when no value reaches it;
    callers report that rather than picking anyway.

    ``search``: ``"full"`` trains every grid value (stacked together);
    ``"ascending"`` trains them smallest first, one value (all seeds) at a time,
    and stops once one reaches the target, so it picks the same ``nu`` as
    ``"full"`` with fewer runs; ``None``: :data:`AUTO_NU_SEARCH` for the device.
    Both resume from ``run_dir``.

    ``model_fn``: as in :func:`~nets.train.train_runs`, for a ``base`` whose model is not the
    paper MLP. ``precision``: the training precision (:func:`~nets.train.train_runs`); the SI
    that selects nu is measured in float32 either way.

    Returns the selection and the trained runs per ``nu`` (seed order).
    ``si_kwargs`` go to ``saliency_invariance``.
    """
    if base.method != "IR":
        raise ValueError(f"tune_nu tunes IR's regularizer weight; got method {base.method}")
    grid = [float(v) for v in grid]
    if not grid:
        raise ValueError("tune_nu needs a non-empty grid")
    if len(set(grid)) != len(grid):
        raise ValueError(f"tune_nu's grid has repeated values: {grid}")
    seeds = [int(s) for s in seeds]
    dev = resolve_device(device)
    if search is None:
        search = AUTO_NU_SEARCH.get(dev.type, "full")  # type: ignore[assignment]
    if search not in ("ascending", "full"):
        raise ValueError(f"search must be 'ascending' or 'full', got {search!r}")
    group = get_group(base.group)
    n = min(int(n_si_samples), len(splits.val))
    x, y = splits.val.x[:n].to(dev), splits.val.y[:n].to(dev)

    def images_for(model: torch.nn.Module) -> torch.Tensor:  # x in the dtype and layout the model trained on
        return x.to(model_dtype(model, base.key())).reshape(n, *input_shape_of(model, tuple(x.shape[1:])))

    def measure(runs: list[TrainedRun]) -> tuple[float, float, list[float]]:
        with exact_float32(dev):
            per_seed = [float(metrics.saliency_invariance(r.model, images_for(r.model), y, group, **si_kwargs))
                        for r in runs]
        return float(np.mean(per_seed)), float(np.mean([r.best_val_accuracy for r in runs])), per_seed

    k = len(seeds)
    by_nu: dict[float, list[TrainedRun]] = {}
    scores: dict[float, tuple[float, float]] = {}
    if search == "full":
        runs = train_runs([replace(base, nu=v) for v in grid], seeds, splits, device=dev, run_dir=run_dir,
                          progress=progress, stack=stack, model_fn=model_fn, precision=precision)
        for j, v in enumerate(grid):
            by_nu[v] = runs[j * k:(j + 1) * k]
            scores[v] = measure(by_nu[v])
    else:
        for v in sorted(grid):
            by_nu[v] = train_runs([replace(base, nu=v)], seeds, splits, device=dev, run_dir=run_dir,
                                  progress=progress, stack=stack, model_fn=model_fn, precision=precision)
            scores[v] = measure(by_nu[v])
            if scores[v][0] >= si_target:
                break
    si = [scores[v][0] if v in scores else None for v in grid]
    acc = [scores[v][1] if v in scores else None for v in grid]
    sel = NuSelection(grid=grid, si=si, accuracy=acc, chosen=select_nu(grid, si, si_target),
                      target=float(si_target), search=str(search),
                      si_per_seed=[scores[v][2] if v in scores else None for v in grid])
    return sel, by_nu
