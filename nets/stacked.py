"""Several independent MLPs (or weight-tied MLPs) evaluated as one batched model.

The trainer runs ``S`` members (seeds and regularizer weights ``nu`` of one
method/group/regularizer) at once: every ``nn.Linear`` of :class:`nets.models.MLP`
becomes a stacked weight ``(S, out, in)`` and bias ``(S, out)``, and each layer
is one ``torch.baddbmm`` over the members. Members never interact: the loss the
trainer differentiates is the *sum* of the member losses, so member ``s``
receives exactly the gradient of its own loss, and Adam is elementwise, so one
Adam over the stacked tensors is ``S`` independent Adams.

Member ``s`` converts to and from an ordinary :class:`~nets.models.MLP` /
:class:`~nets.models.InvariantMLP` state dict (keys ``layers.{l}.weight`` and
``layers.{l}.bias``) with :meth:`StackedMLP.member_state_dict` and
:meth:`StackedMLP.load_member_state_dict`.

Weight-tied members (``group`` given) compute the paper's WT first layer
``h(x) = pool_{g in G} relu(W P_g x + b)`` (Section 4.1, "Models"). Training
feeds them the input orbit (``|G|`` rows per sample, gathered from a
precomputed orbit table, so no per-pixel index is built per batch);
evaluation on a single copy of each input uses the column-permuted weights
``W P_g`` instead (:meth:`StackedMLP.forward_shared`).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import nn

from nets.groups import Group

__all__ = ["StackedMLP"]

Pool = Literal["max", "mean"]


class StackedMLP(nn.Module):
    """``S`` independent perceptrons with the layout of :class:`nets.models.MLP`.

    Args:
        n_members: ``S``.
        in_shape: image size ``(H, W)``; inputs are flattened to ``D = H W``.
        n_classes: number of logits ``C``.
        hidden: hidden width.
        n_hidden_layers: number of hidden layers (``n_hidden_layers + 1`` linear maps).
        group: if given, every member is the weight-tied :class:`~nets.models.InvariantMLP`
            for this group; otherwise a plain :class:`~nets.models.MLP`.
        pool: ``"max"`` or ``"mean"`` pooling over the group (weight-tied only).

    Parameters: ``weights[l]`` of shape ``(S, out_l, in_l)`` and ``biases[l]`` of
    shape ``(S, out_l)``. They are created as zeros; call :meth:`reset_parameters`.
    """

    def __init__(
        self,
        n_members: int,
        in_shape: Sequence[int] = (36, 36),
        n_classes: int = 9,
        hidden: int = 128,
        n_hidden_layers: int = 5,
        group: Group | None = None,
        pool: Pool = "max",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
        self.n_members = int(n_members)
        self.in_shape = (int(in_shape[0]), int(in_shape[1]))
        self.in_features = self.in_shape[0] * self.in_shape[1]
        self.n_classes = int(n_classes)
        self.hidden = int(hidden)
        self.n_hidden_layers = int(n_hidden_layers)
        self.group = group
        self.pool: Pool = pool
        if group is not None:
            group.check_shape(*self.in_shape)
        widths = [self.in_features] + [self.hidden] * self.n_hidden_layers + [self.n_classes]
        self.widths = widths
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(self.n_members, b, a, device=device, dtype=dtype))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(self.n_members, b, device=device, dtype=dtype)) for b in widths[1:]
        )

    @property
    def tied(self) -> bool:
        return self.group is not None

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    # ---- initialisation and conversion ------------------------------------
    @torch.no_grad()
    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """PyTorch's default ``nn.Linear`` initialisation, member ``s`` drawn from ``generators[s]``.

        ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (what ``kaiming_uniform_(a=sqrt(5))``
        reduces to). Drawn on the generators' device (the CPU for CPU generators) and
        then copied, so a seed gives the same initial weights on every device.
        """
        if len(generators) != self.n_members:
            raise ValueError(f"need {self.n_members} generators, got {len(generators)}")
        for s, gen in enumerate(generators):
            for W, b in zip(self.weights, self.biases):
                bound = 1.0 / math.sqrt(W.shape[-1])
                w = torch.rand(W.shape[1:], generator=gen, dtype=W.dtype, device=gen.device)
                bb = torch.rand(b.shape[1:], generator=gen, dtype=b.dtype, device=gen.device)
                W[s].copy_(w.mul_(2 * bound).sub_(bound))
                b[s].copy_(bb.mul_(2 * bound).sub_(bound))

    def member_state_dict(self, s: int) -> dict[str, torch.Tensor]:
        """State dict of member ``s`` in :class:`nets.models.MLP` layout (detached copies)."""
        out: dict[str, torch.Tensor] = {}
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            out[f"layers.{l}.weight"] = W[s].detach().clone()
            out[f"layers.{l}.bias"] = b[s].detach().clone()
        return out

    @torch.no_grad()
    def load_member_state_dict(self, s: int, state: dict[str, torch.Tensor]) -> None:
        """Copy an :class:`nets.models.MLP`-layout state dict into member ``s``."""
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            W[s].copy_(state[f"layers.{l}.weight"])
            b[s].copy_(state[f"layers.{l}.bias"])

    # ---- forward -----------------------------------------------------------
    def _pool(self, z: torch.Tensor, dim: int) -> torch.Tensor:
        """``pool_g relu(z_g)`` with the bias already in ``z``; for max, ``relu`` is monotone,
        so ``max_g relu(z_g) = relu(max_g z_g)`` (one relu on ``1/|G|`` of the values)."""
        if self.pool == "max":
            return torch.relu(z.amax(dim=dim))
        return torch.relu(z).mean(dim=dim)

    def _tail(self, h: torch.Tensor) -> torch.Tensor:
        """Layers ``1 .. L`` on first-layer activations ``h: (S, B, hidden)``; logits ``(S, B, C)``."""
        last = self.n_layers - 1
        for l in range(1, self.n_layers):
            h = torch.baddbmm(self.biases[l].unsqueeze(1), h, self.weights[l].transpose(1, 2))
            if l < last:
                h = torch.relu_(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every member on its own inputs.

        Plain members: ``x: (S, B, D)`` -> ``(S, B, C)``.
        Weight-tied members: ``x: (S, |G|, B, D)`` holding the input orbit of each
        sample (any order of the group elements; the pool is symmetric) -> ``(S, B, C)``.
        """
        W0, b0 = self.weights[0], self.biases[0]
        if not self.tied:
            h = torch.relu_(torch.baddbmm(b0.unsqueeze(1), x, W0.transpose(1, 2)))
            return self._tail(h)
        S, G, B, D = x.shape
        z = torch.baddbmm(b0.unsqueeze(1), x.reshape(S, G * B, D), W0.transpose(1, 2))
        h = self._pool(z.view(S, G, B, -1), dim=1)
        return self._tail(h)

    def forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every member on the same inputs ``x: (M, D)`` -> ``(S, M, C)``.

        The first layer is one matmul against all members' weights concatenated,
        ``(M, D) @ (D, S * out)``, instead of ``S`` copies of ``x``. Weight-tied
        members use the column-permuted weights ``W P_g`` for every ``g``
        (``W[:, s_g]`` over the group is the same set as ``{W P_g}``).
        """
        W0, b0 = self.weights[0], self.biases[0]
        S, out, D = W0.shape
        M = x.shape[0]
        if not self.tied:
            z = x @ W0.reshape(S * out, D).T  # (M, S*out)
            h = torch.relu_(z.view(M, S, out).transpose(0, 1) + b0.unsqueeze(1))
            return self._tail(h)
        idx = self.group.orbit_index(*self.in_shape, device=W0.device)  # (G, D)
        G = idx.shape[0]
        Wt = W0[:, :, idx]  # (S, out, G, D)
        z = x @ Wt.reshape(S * out * G, D).T  # (M, S*out*G)
        z = z.view(M, S, out, G).permute(1, 3, 0, 2) + b0.view(S, 1, 1, out)  # (S, G, M, out)
        return self._tail(self._pool(z, dim=1))

    def forward_shared_orbit(self, x_orbit: torch.Tensor) -> torch.Tensor:
        """Weight-tied members on the same inputs given with their orbits:
        ``x_orbit: (|G|, M, D)``, ``x_orbit[k, i] = vec(k x_i)`` -> logits ``(S, M, C)``.

        The first layer pools ``relu(W vec(k x_i) + b)`` over ``k``: the pre-activations
        of the whole orbit are one matmul, and the pooled set is the same for every
        ``g x_i`` of the orbit, so these are the logits of every orbit member.
        """
        if not self.tied:
            raise ValueError("forward_shared_orbit is for weight-tied members")
        W0, b0 = self.weights[0], self.biases[0]
        S, out, D = W0.shape
        G, M, _ = x_orbit.shape
        z = x_orbit.reshape(G * M, D) @ W0.reshape(S * out, D).T  # (G*M, S*out)
        z = z.view(G, M, S, out).permute(2, 0, 1, 3) + b0.view(S, 1, 1, out)  # (S, G, M, out)
        return self._tail(self._pool(z, dim=1))

    def extra_repr(self) -> str:
        kind = f"tied to {self.group.name}, pool={self.pool!r}" if self.tied else "plain"
        return f"members={self.n_members}, widths={self.widths}, {kind}"
