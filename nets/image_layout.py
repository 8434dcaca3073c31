"""A model of your own that takes its images as either layout: as stored, or as it declares.

The trainer feeds a model ``(M, *model.input_shape)`` when it declares ``input_shape`` (docs/trainer.md),
while the experiments' measures hand it the images as stored, ``(N, H, W)``. The SmallCNN accepts both
(:class:`nets.cnn.SmallCNN`); :func:`image_layout` gives a model of your own the same behaviour, so
``python -m nets cnn --model`` trains and measures it as it does the SmallCNN: every input ``(N, *s)``
with as many values per sample is reshaped to ``(N, *input_shape)`` before the model sees it, which
changes no value and keeps the last two axes, on which the group acts.
"""

from __future__ import annotations

import torch
from torch import nn

from nets.train import FirstLayerPooling, declared_input_shape

__all__ = ["ImageLayout", "SplitImageLayout", "image_layout"]


class ImageLayout(nn.Module):
    """``inner`` (which declares ``input_shape``) given inputs ``(N, *s)`` of any layout with
    ``prod(s) == prod(input_shape)``; its parameters are under ``inner.`` (:data:`nets.model_spec.WRAPPED`,
    which ``python -m nets audit --weights`` takes off a checkpoint)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.input_shape = declared_input_shape(inner)

    def shaped(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, *s)`` as ``(N, *input_shape)``."""
        return x.reshape(x.shape[0], *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.shaped(x))


class SplitImageLayout(ImageLayout):
    """:class:`ImageLayout` of a model split at its first layer (:class:`nets.train.FirstLayerPooling`),
    so that WT still pools that layer."""

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.first_layer(self.shaped(x))

    def after_first_layer(self, h: torch.Tensor) -> torch.Tensor:
        return self.inner.after_first_layer(h)


def image_layout(model: nn.Module) -> nn.Module:
    """``model`` itself when it declares no ``input_shape`` (it takes the images as stored), else
    wrapped in :class:`SplitImageLayout` (it has ``first_layer`` / ``after_first_layer``) or
    :class:`ImageLayout`."""
    if getattr(model, "input_shape", None) is None:
        return model
    return SplitImageLayout(model) if isinstance(model, FirstLayerPooling) else ImageLayout(model)
