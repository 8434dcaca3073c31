"""A straightforward PyTorch implementation of the paper's training and metrics.

This is what a typical user writes, and the baseline that ``benchmarks/bench.py``
times our fast path against. It does the same mathematics as ``nets.train`` and
``nets.metrics`` but in the ordinary way:

* data through ``torch.utils.data.DataLoader`` over a ``TensorDataset``
  (shuffled, batch 512, last partial batch kept), one seed at a time;
* the group action with ``torch.rot90`` / ``torch.roll`` / ``torch.flip``
  (``Group._act_reference``), applied per batch by looping over the group
  elements and transforming the samples that drew each element;
* a plain ``nn.Sequential`` MLP (``Flatten, Linear, ReLU, ..., Linear``);
* ``torch.optim.Adam`` with PyTorch's defaults (no ``fused``: on CPU that is
  the per-parameter loop, on CUDA ``foreach``);
* IR builds the orbit by looping over the group elements; WT computes the
  tied first layer by transforming the input once per group element.

Losses (shapes: ``x`` a batch ``(B, H, W)``, ``f`` the logits ``(B, C)``):

* task loss ``CE = mean_n cross_entropy(f(x_aug_n), y_n)`` on the augmented batch;
* logit regularizer (paper Eq. 2 per sample, averaged over the batch and the
  non-identity group elements, as ``nets.train``):
  ``LI = mean_n mean_{g != e} 1/2 ||f(x_aug_n) - f(g x_aug_n)||^2``;
* IR loss ``CE + nu * LI``; DA and WT losses ``CE``.

An epoch ends, as in ``nets.train``, with the accuracy over the full orbit of
the validation set.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nets.groups import Group

__all__ = [
    "reference_mlp",
    "ReferenceInvariantMLP",
    "reference_from",
    "act",
    "augment",
    "orbit",
    "task_loss",
    "logit_regularizer",
    "reference_loss",
    "reference_loader",
    "reference_train_epoch",
    "reference_orbit_accuracy",
    "reference_logit_invariance",
    "reference_distribution_invariance",
    "reference_saliency_invariance",
    "reference_jacobian_spectral_norm",
]


# ---- models ------------------------------------------------------------------
def _widths(in_features: int, hidden: int, n_hidden_layers: int, n_classes: int) -> list[int]:
    return [in_features] + [hidden] * n_hidden_layers + [n_classes]


def reference_mlp(
    in_shape: Sequence[int] = (36, 36), n_classes: int = 9, hidden: int = 128, n_hidden_layers: int = 5
) -> nn.Sequential:
    """``nn.Sequential(Flatten, Linear, ReLU, ..., Linear)``: the paper's MLP, 233,225 parameters."""
    widths = _widths(in_shape[0] * in_shape[1], hidden, n_hidden_layers, n_classes)
    mods: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class ReferenceInvariantMLP(nn.Module):
    """Weight-tied MLP the plain way: ``h(x) = relu(max_g (W (g x) + b))``, then the MLP.

    The first layer is applied to each transformed input in a Python loop over
    the group (``torch.rot90`` / ``torch.roll``), the results stacked and max-pooled.
    """

    def __init__(
        self,
        group: Group,
        in_shape: Sequence[int] = (36, 36),
        n_classes: int = 9,
        hidden: int = 128,
        n_hidden_layers: int = 5,
    ) -> None:
        super().__init__()
        self.group = group
        self.first = nn.Linear(in_shape[0] * in_shape[1], hidden)
        rest = reference_mlp(in_shape, n_classes, hidden, n_hidden_layers)
        self.rest = nn.Sequential(*list(rest.children())[3:])  # drop Flatten, Linear, ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.stack([self.first(act(x, self.group, g).flatten(1)) for g in self.group.elements])
        return self.rest(F.relu(z.amax(dim=0)))


def reference_from(model: nn.Module) -> nn.Module:
    """A reference model with the weights of our ``nets.models.MLP`` / ``InvariantMLP``.

    Our models keep every ``nn.Linear`` in ``model.layers``; the reference keeps
    them in an ``nn.Sequential`` (and, for WT, the first one apart).
    """
    from nets.models import InvariantMLP  # local: the reference itself does not need nets.models

    kwargs = dict(in_shape=model.in_shape, n_classes=model.n_classes, hidden=model.hidden,
                  n_hidden_layers=model.n_hidden_layers)
    if isinstance(model, InvariantMLP):
        if model.pool != "max":
            raise ValueError("the reference weight-tied model max-pools over the group")
        ref: nn.Module = ReferenceInvariantMLP(model.group, **kwargs)
        linears = [ref.first] + [m for m in ref.rest if isinstance(m, nn.Linear)]
    else:
        ref = reference_mlp(**kwargs)
        linears = [m for m in ref if isinstance(m, nn.Linear)]
    ours = list(model.layers)
    assert len(linears) == len(ours)
    with torch.no_grad():
        for dst, src in zip(linears, ours):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    p = next(model.parameters())
    return ref.to(device=p.device, dtype=p.dtype)


# ---- group action ------------------------------------------------------------
def act(x: torch.Tensor, group: Group, g: int) -> torch.Tensor:
    """``g x`` for one element and a batch ``(..., H, W)``, via ``torch.rot90`` / ``roll`` / ``flip``."""
    return group._act_reference(x, int(g))


def augment(x: torch.Tensor, group: Group, elements: torch.Tensor) -> torch.Tensor:
    """Per-sample augmentation ``out[n] = elements[n] x[n]``: loop over the group elements."""
    out = torch.empty_like(x)
    for g in group.elements:
        mask = elements == g
        if bool(mask.any()):
            out[mask] = act(x[mask], group, g)
    return out


def orbit(x: torch.Tensor, group: Group) -> torch.Tensor:
    """``(B, H, W) -> (|G|, B, H, W)`` by a loop over the group elements."""
    return torch.stack([act(x, group, g) for g in group.elements])


# ---- losses ------------------------------------------------------------------
def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy."""
    return F.cross_entropy(logits, y)


def logit_regularizer(orbit_logits: torch.Tensor) -> torch.Tensor:
    """``mean_n mean_{g != e} 1/2 ||f(x_n) - f(g x_n)||^2`` from orbit logits ``(|G|, B, C)``
    (element 0 = identity)."""
    diff = orbit_logits[1:] - orbit_logits[0]
    return 0.5 * diff.pow(2).sum(-1).mean()


def reference_loss(
    model: nn.Module, x_aug: torch.Tensor, y: torch.Tensor, method: str, group: Group, nu: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, task, regularizer)`` for one augmented batch ``x_aug (B, H, W)``.

    DA/WT: ``loss = CE(f(x_aug), y)``, regularizer 0. IR: one forward over the
    orbit of ``x_aug`` (built by a loop over the group), ``CE`` on the identity
    copy, ``loss = CE + nu * LI``.
    """
    if method == "IR":
        orb = orbit(x_aug, group)  # (|G|, B, H, W)
        G, B = orb.shape[:2]
        logits = model(orb.reshape(G * B, *orb.shape[2:])).view(G, B, -1)
        task = task_loss(logits[0], y)
        reg = logit_regularizer(logits)
        return task + nu * reg, task, reg
    if method in ("DA", "WT"):
        task = task_loss(model(x_aug), y)
        return task, task, torch.zeros((), device=task.device)
    raise ValueError(f"unknown method {method!r}")


# ---- training ------------------------------------------------------------------
def reference_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int = 512, seed: int = 0) -> DataLoader:
    """Shuffled ``DataLoader`` over a ``TensorDataset`` (main process, last batch kept)."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=gen)


def reference_train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable,
    method: str,
    group: Group,
    nu: float = 0.0,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> float:
    """One epoch: for every batch, move to ``device``, draw one group element per
    sample, augment, compute the loss, step Adam; then, if ``val = (x, y)`` is
    given, the accuracy over its full orbit. Returns that accuracy (or the last
    batch loss without ``val``)."""
    loss = torch.zeros(())
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        elements = torch.randint(0, group.order, (xb.shape[0],), generator=generator).to(device)
        x_aug = augment(xb, group, elements)
        loss, _, _ = reference_loss(model, x_aug, yb, method, group, nu)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if val is not None:
        return reference_orbit_accuracy(model, val[0], val[1], group, device=device)
    return float(loss.detach())


@torch.no_grad()
def reference_orbit_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, group: Group, batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> float:
    """Accuracy over the full orbit: fraction of ``(x_i, g)`` with ``argmax f(g x_i) = y_i``."""
    correct = 0
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=batch_size):
        xb, yb = xb.to(device), yb.to(device)
        for g in group.elements:
            correct += int((model(act(xb, group, g)).argmax(-1) == yb).sum())
    return correct / (x.shape[0] * group.order)


# ---- evaluation ----------------------------------------------------------------
# Group averages skip the identity, as nets.metrics does (its module docstring says why).
def _non_identity(group: Group) -> list[int]:
    return [g for g in group.elements if g != group.identity]


@torch.no_grad()
def reference_logit_invariance(
    model: nn.Module, x: torch.Tensor, group: Group, batch_size: int = 1000, device: torch.device | str = "cpu"
) -> float:
    """LI (paper Eq. 2): mean over samples and non-identity ``g`` of ``1/2 ||f(x) - f(g x)||^2``."""
    total = 0.0
    for (xb,) in DataLoader(TensorDataset(x), batch_size=batch_size):
        xb = xb.to(device)
        f0 = model(xb)
        for g in _non_identity(group):
            total += float(0.5 * (f0 - model(act(xb, group, g))).pow(2).sum())
    return total / (x.shape[0] * (group.order - 1))


@torch.no_grad()
def reference_distribution_invariance(
    model: nn.Module, x: torch.Tensor, group: Group, batch_size: int = 1000, device: torch.device | str = "cpu"
) -> float:
    """DI (paper Eq. 1): mean over samples and non-identity ``g`` of ``KL(softmax f(x) || softmax f(g x))``."""
    total = 0.0
    for (xb,) in DataLoader(TensorDataset(x), batch_size=batch_size):
        xb = xb.to(device)
        logp0 = F.log_softmax(model(xb), -1)
        for g in _non_identity(group):
            logq = F.log_softmax(model(act(xb, group, g)), -1)
            total += float(F.kl_div(logq, logp0, log_target=True, reduction="sum"))
    return total / (x.shape[0] * (group.order - 1))


def captum_missing() -> str | None:
    """Why :func:`reference_saliency_invariance` cannot run here, or ``None`` when it can: captum
    is a test extra, absent on a bare GPU machine (``scripts/gpu_check.sh``)."""
    try:
        import captum.attr  # noqa: F401  (an optional extra: probed, not required)
    except ImportError as e:
        return f"captum cannot be imported ({e}); the SI reference needs it"
    return None


def reference_saliency_invariance(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, group: Group, n_steps: int = 50,
    batch_size: int = 64, device: torch.device | str = "cpu",
) -> float:
    """SI (paper Eq. 3) with captum: per batch and group element, ``|IG|`` of the label
    logit (zero baseline, Gauss-Legendre, ``n_steps``), threshold at 0.9 of each map's
    maximum, 3x3 Gaussian (sigma 1), rotate back with ``g^{-1}``; mean cosine similarity
    to the identity's map over non-identity ``g``."""
    from captum.attr import IntegratedGradients

    from nets.metrics import gaussian_smooth

    ig = IntegratedGradients(model)

    def saliency(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        a = ig.attribute(xb, target=yb, n_steps=n_steps).abs()
        a = torch.where(a >= 0.9 * a.amax(dim=(-2, -1), keepdim=True), a, torch.zeros_like(a))
        return gaussian_smooth(a).flatten(1)

    total = 0.0
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=batch_size):
        xb, yb = xb.to(device), yb.to(device)
        m0 = saliency(xb, yb)
        for g in _non_identity(group):
            mg = act(saliency(act(xb, group, g), yb).view_as(xb), group, group.inverse(g)).flatten(1)
            total += float(F.cosine_similarity(m0, mg, dim=1, eps=1e-30).sum())
    return total / (x.shape[0] * (group.order - 1))


def reference_jacobian_spectral_norm(model: nn.Module, x: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """``sigma_max(d f(x) / d x)`` per sample: ``torch.autograd.functional.jacobian`` one
    sample at a time, then ``torch.linalg.matrix_norm(ord=2)``. Returns ``(N,)``."""
    out = []
    for xi in x:
        J = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), xi.to(device))
        out.append(torch.linalg.matrix_norm(J.reshape(J.shape[0], -1), ord=2))
    return torch.stack(out)
