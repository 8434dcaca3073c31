"""Weight tying (WT) for any model: group pooling, exactly ``G``-invariant for any weights.

Two places to pool, chosen automatically from the model (and recorded in the run as
:attr:`~nets.train.TrainedRun.wt_pooling`):

* ``"first_layer-max"`` / ``"first_layer-mean"``, the paper's (Section 4.1, "Models"): a model
  that exposes its first layer through the :class:`FirstLayerPooling` protocol, two methods

  - ``first_layer(x: (M, *in)) -> h (M, ...)``: the first layer *with* its non-linearity;
  - ``after_first_layer(h) -> logits (M, C)``: everything after it,

  so that ``model(x) == model.after_first_layer(model.first_layer(x))``, is evaluated as
  ``after_first_layer(pool_{g in G} first_layer(g x))``; ``pool`` is the config's ``"max"`` or
  ``"mean"``. For :class:`nets.models.MLP` this is the paper's weight-tied first layer
  ``pool_g relu(W P_g x + b)``.
* ``"logits-mean"``, any other model: the mean of the logits over the orbit,
  ``1/|G| sum_g f(g x)``.

Both are exactly invariant: replacing ``x`` by ``k x`` only reorders the orbit ``{g k x}``, and a
max or a mean over a set does not depend on its order (up to float round-off in a mean's sum).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn

from nets.groups import GroupLike, as_group, group_record

__all__ = ["FirstLayerPooling", "GroupPooled", "wt_pooling_of"]


@runtime_checkable
class FirstLayerPooling(Protocol):
    """A model split at its first layer (see the module docstring)."""

    def first_layer(self, x: torch.Tensor) -> torch.Tensor: ...

    def after_first_layer(self, h: torch.Tensor) -> torch.Tensor: ...


def wt_pooling_of(model: nn.Module, pool: Literal["max", "mean"]) -> str:
    """Where WT pools for ``model``: ``"first_layer-<pool>"`` if it follows
    :class:`FirstLayerPooling`, else ``"logits-mean"``."""
    return f"first_layer-{pool}" if isinstance(model, FirstLayerPooling) else "logits-mean"


class GroupPooled(nn.Module):
    """The weight-tied (WT) version of ``model``: exactly invariant to ``group``.

    Args:
        model: maps ``(M, *in)`` to logits ``(M, C)``; the group acts on the last two axes of ``in``.
        group: the group, or its name (:func:`nets.groups.as_group`).
        pool: ``"max"`` or ``"mean"`` over the group at the first layer (first-layer pooling only;
            the logits are always averaged).

    Attributes: ``pooling``, as :func:`wt_pooling_of`; ``input_shape``, the model's, if it has one.
    The parameters are the model's, under ``model.``. Forward: ``(M, *in) -> (M, C)``.
    """

    def __init__(self, model: nn.Module, group: GroupLike, pool: Literal["max", "mean"] = "max") -> None:
        super().__init__()
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
        self.model = model
        self.group = as_group(group)  # a name ("r4") too; an unknown one: ValueError, one line
        self.group_record = group_record(group)  # how records name it: a custom group's spec, as given
        self.pool = pool
        self.pooling = wt_pooling_of(model, pool)
        if hasattr(model, "input_shape"):
            self.input_shape = tuple(model.input_shape)

    @property
    def batch_expansion(self) -> int:
        """Inputs run per input (the orbit, ``|G|``): the measures divide their chunks by it
        (:func:`nets.measure_inputs.model_chunk`)."""
        return self.group.order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, M = self.group.order, x.shape[0]
        orbit = self.group.orbit(x).reshape(G * M, *x.shape[1:])  # orbit[g * M + i] = g x_i
        if self.pooling == "logits-mean":
            return self.model(orbit).view(G, M, -1).mean(0)
        h = self.model.first_layer(orbit)
        h = h.view(G, M, *h.shape[1:])
        h = h.amax(0) if self.pool == "max" else h.mean(0)
        return self.model.after_first_layer(h)

    def extra_repr(self) -> str:
        return f"group={self.group.name}, pooling={self.pooling!r}"
