"""The paper's models (Section 4.1, "Models"): a plain perceptron and its
group-invariant weight-tied counterpart.

Both keep every parameter in ``self.layers`` (an ``nn.ModuleList`` of
``nn.Linear``), so the state-dict keys are ``layers.0.weight`` ... ``layers.L.bias``
for both models. The trainer trains the paper's runs as a :class:`nets.stacked.StackedMLP`,
whose members convert to and from this layout; its generic engine (any model) stacks
modules with ``torch.func.stack_module_state`` and runs them with
``vmap(functional_call)``, which these models also support: the forward passes contain
no data-dependent Python control flow. :meth:`MLP.first_layer` and
:meth:`MLP.after_first_layer` split the model at its first layer (the trainer's
first-layer group pooling, :mod:`nets.train.pooling`).

Inputs are images ``(N, H, W)`` or flattened images ``(N, H*W)``; the output is
logits ``(N, n_classes)``.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nets.groups import Group
from nets.pairwise import class_centered

__all__ = [
    "MLP",
    "InvariantMLP",
    "CenteredLogits",
    "TwoLogits",
    "check_invariance",
    "count_parameters",
]

Pool = Literal["max", "mean"]


class MLP(nn.Module):
    """Plain perceptron with ReLU non-linearities (the paper's DA and IR model).

    The paper says "5-layer perceptron with ReLU non-linearities and the hidden
    dimension of 128, resulting in total of 230k parameters". With 36x36 inputs
    and 9 classes, five *hidden* layers of width 128 give six ``nn.Linear`` maps

    ============  =============  ===========
    layer         shape          parameters
    ============  =============  ===========
    ``layers.0``  1296 -> 128    166,016
    ``layers.1``  128 -> 128     16,512
    ``layers.2``  128 -> 128     16,512
    ``layers.3``  128 -> 128     16,512
    ``layers.4``  128 -> 128     16,512
    ``layers.5``  128 -> 9       1,161
    ============  =============  ===========

    for 233,225 parameters in total, which matches "230k"; reading "5-layer" as
    five ``Linear`` maps (four hidden layers) would give 216,713. So the default
    is ``n_hidden_layers=5``.

    Args:
        in_shape: image size ``(H, W)``.
        n_classes: number of logits ``C``.
        hidden: width of every hidden layer.
        n_hidden_layers: number of hidden layers ``L >= 1`` (``L + 1`` Linear maps).

    Parameters use PyTorch's default ``nn.Linear`` initialisation.
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (36, 36),
        n_classes: int = 9,
        hidden: int = 128,
        n_hidden_layers: int = 5,
    ) -> None:
        super().__init__()
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 2 or min(in_shape) < 1:
            raise ValueError(f"in_shape must be (H, W) with positive sizes, got {in_shape}")
        for name, value in (("n_classes", n_classes), ("hidden", hidden), ("n_hidden_layers", n_hidden_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_shape: tuple[int, int] = in_shape  # type: ignore[assignment]
        self.in_features = in_shape[0] * in_shape[1]
        self.n_classes = int(n_classes)
        self.hidden = int(hidden)
        self.n_hidden_layers = int(n_hidden_layers)
        widths = [self.in_features] + [self.hidden] * self.n_hidden_layers + [self.n_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    # ---- input handling ----------------------------------------------------
    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, H, W)`` or ``(N, H*W)`` -> ``(N, H*W)``; anything else is a ValueError."""
        H, W = self.in_shape
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{type(self).__name__}: x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 3 and tuple(x.shape[1:]) == (H, W):
            return x.reshape(x.shape[0], H * W)
        if x.ndim == 2 and x.shape[1] == H * W:
            return x
        raise ValueError(
            f"{type(self).__name__}: expected images of shape (N, {H}, {W}) or flattened images "
            f"of shape (N, {H * W}), got {tuple(x.shape)}"
        )

    def _first_layer(self, x_flat: torch.Tensor) -> torch.Tensor:
        """First hidden layer, ``(N, H*W) -> (N, hidden)`` (after the ReLU)."""
        return F.relu(self.layers[0](x_flat))

    # ---- forward ----------------------------------------------------------
    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations after every hidden layer: a list of ``L`` tensors ``(N, hidden)``."""
        h = self._first_layer(self._flatten(x))
        out = [h]
        for layer in self.layers[1:-1]:
            h = F.relu(layer(h))
            out.append(h)
        return out

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """The first hidden layer with its ReLU, ``(N, H, W)`` or ``(N, H*W)`` -> ``(N, hidden)``
        (with :meth:`after_first_layer`, the :class:`nets.train.pooling.FirstLayerPooling` protocol)."""
        return self._first_layer(self._flatten(x))

    def after_first_layer(self, h: torch.Tensor) -> torch.Tensor:
        """Everything after the first hidden layer: ``(N, hidden)`` -> logits ``(N, n_classes)``."""
        for layer in self.layers[1:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (last hidden layer), ``(N, hidden)``."""
        h = self._first_layer(self._flatten(x))
        for layer in self.layers[1:-1]:
            h = F.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` for ``x`` of shape ``(N, H, W)`` or ``(N, H*W)``."""
        return self.layers[-1](self.features(x))


class InvariantMLP(MLP):
    """The weight-tied model [WT]: exactly ``G``-invariant for any weights.

    Only the first layer is tied (Section 4.1, "We only utilize group-invariant
    weight-tying for the first layer"). With ``P_g`` the permutation matrix of
    ``g`` (``vec(g x) = P_g vec(x)``), it computes

        h(x) = pool_{g in G} relu(W P_g x + b),     pool in {max, mean},

    and the remaining layers are those of :class:`MLP`. Replacing ``x`` by
    ``k x`` maps ``W P_g P_k x = W P_{gk} x``, and ``g -> gk`` is a bijection of
    ``G``, so the multiset ``{W P_g x}`` is only reordered and any symmetric pool
    gives the same ``h``: exact invariance for every ``W``, ``b`` (up to float
    round-off, because the dot products sum the same terms in a different order).

    Same parameter names and shapes as :class:`MLP` (``layers.0.weight`` is
    ``(hidden, H*W)``), so parameter-count and state-dict code is shared.

    Implementation. ``W P_g`` is a column gather of ``W``; the first layer
    gathers the ``|G|`` column-permuted copies of ``W`` into one
    ``(|G| hidden, H*W)`` matrix and does one matmul, instead of building the
    input orbit ``(N, |G|, H*W)`` and multiplying that by ``W`` (same FLOPs and
    time; it never materializes the orbit; the comparison and its timings are in
    ``benchmarks/first_layer.py``).

    Args:
        group: the group ``G`` acting on ``in_shape`` images (checked at construction).
        pool: ``"max"`` (default) or ``"mean"`` over the group.
        in_shape, n_classes, hidden, n_hidden_layers: as in :class:`MLP`.
    """

    def __init__(
        self,
        group: Group,
        in_shape: Sequence[int] = (36, 36),
        n_classes: int = 9,
        hidden: int = 128,
        n_hidden_layers: int = 5,
        pool: Pool = "max",
    ) -> None:
        super().__init__(in_shape, n_classes, hidden, n_hidden_layers)
        if not isinstance(group, Group):
            raise ValueError(f"group must be a nets.groups.Group, got {type(group).__name__}")
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
        group.check_shape(*self.in_shape)
        self.group = group
        self.pool: Pool = pool

    def _tied_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """Stack ``W P_{g^{-1}}`` for every ``g``: ``(hidden, HW) -> (|G| hidden, HW)``.

        ``W[:, s_g]`` (columns gathered with the source index of ``g``) equals
        ``W P_{g^{-1}}``; over the whole group this is the same set as ``{W P_g}``.
        """
        idx = self.group.orbit_index(*self.in_shape, device=weight.device)  # (|G|, HW)
        return weight[:, idx].transpose(0, 1).reshape(-1, weight.shape[-1])

    def _first_layer(self, x_flat: torch.Tensor) -> torch.Tensor:
        layer = self.layers[0]
        z = F.linear(x_flat, self._tied_weight(layer.weight))  # (N, |G| hidden)
        z = z.unflatten(-1, (self.group.order, self.hidden)) + layer.bias  # (N, |G|, hidden)
        if self.pool == "max":
            # relu is monotone, so max_g relu(z_g) = relu(max_g z_g).
            return F.relu(z.amax(dim=-2))
        return F.relu(z).mean(dim=-2)

    def extra_repr(self) -> str:
        return f"group={self.group.name}, pool={self.pool!r}"


class CenteredLogits(nn.Module):
    """``f(x) - mean_c f_c(x)``: the logits without their class-common part.

    The softmax (and with it the prediction, the cross-entropy and DI) ignores a shift
    of every logit by the same amount, so this is the part of ``f`` the task sees.
    Wraps ``model`` (no parameters of its own); ``(N, ...) -> (N, C)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def batch_expansion(self) -> int:
        """The wrapped model's inputs run per input (:func:`nets.measure_inputs.model_chunk`; 1 if it
        declares none), so a weight-tied model's centered logits are measured in its chunks."""
        return getattr(self.model, "batch_expansion", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.model(x)
        return class_centered(f)


class TwoLogits(nn.Module):
    """A binary classifier of one logit ``z`` as the two-class classifier the measures and the
    trainer take: logits ``[-z/2, z/2]``, ``(N, ...) -> (N, 2)``, class 1 where ``z > 0``.

    Its softmax is ``[1 - sigmoid(z), sigmoid(z)]``, so its cross-entropy is the binary one of
    ``z`` and its accuracy, DI (Eq. 1) and SI (Eq. 3: absolute saliency maps, compared by
    direction, for either class) are those of ``model``; LI (Eq. 2) is half of ``1/2 |z(x) - z(gx)|^2``
    and sigma_max of its input Jacobian is ``|grad z| / sqrt(2)``. Wraps ``model`` (no parameters
    of its own), whose output is ``(N, 1)`` or ``(N,)``; keeps its ``input_shape`` if it has one.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        if hasattr(model, "input_shape"):
            self.input_shape = model.input_shape

    @property
    def batch_expansion(self) -> int:
        """The wrapped model's (:attr:`CenteredLogits.batch_expansion`)."""
        return getattr(self.model, "batch_expansion", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        if not isinstance(z, torch.Tensor) or z.shape not in ((x.shape[0],), (x.shape[0], 1)):
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"TwoLogits wraps a model of one logit per image, ({x.shape[0]}, 1) or "
                             f"({x.shape[0]},); the model returned {got}")
        z = z.reshape(-1, 1) / 2
        return torch.cat([-z, z], dim=1)


@torch.no_grad()
def check_invariance(model: nn.Module, group: Group, x: torch.Tensor) -> float:
    """Largest absolute logit change over the orbit, ``max_{n, g, c} |f(g x_n) - f(x_n)|_c``.

    Like escnn's ``check_equivariance``: a weight-tied model gives float round-off.
    x: ``(N, H, W)``. Returns a Python float.
    """
    orbit = group.orbit(x)  # (|G|, N, H, W)
    G, N = orbit.shape[:2]
    logits = model(orbit.reshape(G * N, *x.shape[1:])).view(G, N, -1)
    return float((logits - logits[0]).abs().max())


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
