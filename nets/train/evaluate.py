"""Accuracy over the full orbit: of every stacked member on the device (the trainer's model
selection) and of one ordinary model on a split."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nets.data import Split
from nets.groups import Group
from nets.metrics import orbit_terms
from nets.stacked import StackedMLP
from nets.train.batches import OrbitData
from nets.groups import as_group


@torch.no_grad()
def shared_orbit_accuracy(forward_shared: Callable[[torch.Tensor], torch.Tensor], data: OrbitData,
                          n_members: int, chunk_rows: int) -> torch.Tensor:
    """Accuracy of ``n_members`` stacked members over the full orbit of ``data``, ``(S,)`` float64
    on the device: every orbit input ``vec(g x_i)`` classified by every member.

    forward_shared: ``(M, D) -> (S, M, C)``, the members' logits on the same inputs;
    ``chunk_rows`` orbit inputs per call."""
    correct = torch.zeros(n_members, dtype=torch.long, device=data.y.device)
    for x, y in data.orbit_chunks(chunk_rows):
        correct += (forward_shared(x).argmax(-1) == y).sum(1)
    return correct.to(torch.float64) / (data.G * data.N)


@torch.no_grad()
def stacked_orbit_accuracy(model: StackedMLP, data: OrbitData) -> torch.Tensor:
    """Accuracy of every member over the full orbit of ``data``: ``(S,)`` on the device.

    Plain members classify all ``|G| N`` orbit inputs. Weight-tied members pool the
    first layer over the orbit of their input, and the orbit of ``g x_i`` is the
    orbit of ``x_i``: built from the orbit table, the pooled pre-activations are the
    same numbers for every ``g``, so each sample is classified once from its orbit
    rows and counted ``|G|`` times (``1/|G|`` of the work, same result).
    """
    S = model.n_members
    chunk = int(min(8192, max(256, 2**24 // (S * model.hidden))))
    if not (model.tied and data.table is not None):
        return shared_orbit_accuracy(model.forward_shared, data, S, max(256, chunk // data.G) if model.tied else chunk)
    correct = torch.zeros(S, dtype=torch.long, device=data.y.device)
    orbit = data.table.view(data.G, data.N, data.D)
    n = max(1, chunk // data.G)
    for a in range(0, data.N, n):
        pred = model.forward_shared_orbit(orbit[:, a:a + n]).argmax(-1)
        correct += data.G * (pred == data.y[a:a + n]).sum(1)
    return correct.to(torch.float64) / (data.G * data.N)


@torch.no_grad()
def orbit_accuracy(model: nn.Module, split: Split, group: Group | str, chunk_size: int = 2048) -> float:
    """Accuracy of ``model`` over the full orbit of ``split``: the fraction of pairs
    ``(x_i, g)`` with ``argmax f(g x_i) = y_i``, over all samples and all ``g`` in ``G``
    (the count is :func:`nets.metrics.orbit_terms`'s ``"correct"``).

    model maps ``(M, *in)`` to logits ``(M, C)``, ``in`` being ``model.input_shape`` when it
    has one (as in training), else the split's sample shape; split: ``x (N, *C, H, W)`` (the
    group acts on the last two axes), ``y (N,)``, moved to the model's device. ``chunk_size``
    samples (``|G|`` times as many inputs) per forward. The model's train/eval mode is left as it is.
    ``ValueError`` for an empty split, labels out of range, or logits that are not ``(M, C)`` or not finite.
    """
    group = as_group(group)
    p = next(iter(model.parameters()), None)
    device = p.device if p is not None else split.x.device
    x, y = split.x.to(device), split.y.to(device)
    if len(y) == 0:
        raise ValueError("orbit_accuracy needs a non-empty split")
    shape = getattr(model, "input_shape", None)
    forward = model if shape is None else (lambda t: model(t.reshape(t.shape[0], *shape)))
    correct = orbit_terms(forward, x, y, group, chunk_size=chunk_size, terms=("correct",))["correct"]
    return int(correct.sum()) / (group.order * len(y))
