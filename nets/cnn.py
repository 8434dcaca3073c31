"""A small CNN for the paper's claims beyond MLPs (issue 17, part 3).

Four 3x3 convolutions with ReLU, global average pooling and a linear head, sized to the
paper MLP's parameter count (233,225, :class:`nets.models.MLP`):

===========  ==========================  =========  ==============
layer        shape                       stride     parameters
===========  ==========================  =========  ==============
``conv1``    1 -> 32, 3x3, pad 1         2          320
``conv2``    32 -> 64, 3x3, pad 1        2          18,496
``conv3``    64 -> 125, 3x3, pad 1       2          72,125
``conv4``    125 -> 125, 3x3, pad 1      2          140,750
``head``     125 -> 9                                1,134
===========  ==========================  =========  ==============

232,825 parameters in all (0.2% below the MLP's 233,225; 125 channels is the width that
comes nearest). Feature maps 36 -> 18 -> 9 -> 5 -> 3: the strides keep the cost per image
near 4.7 M multiply-adds (20 times the MLP's 0.23 M), so the protocol stays within reach of a CPU.

The model exposes :meth:`SmallCNN.first_layer` (``relu(conv1(x))``) and
:meth:`SmallCNN.after_first_layer`, so the trainer's weight tying (WT) pools the first layer
over the orbit, ``after_first_layer(max_g relu(conv1(g x)))``, the paper's WT (Section 4.1)
applied to a CNN (:mod:`nets.train.pooling`). It has no BatchNorm or dropout, so members
train stacked under ``vmap``.

Inputs: ``(N, 1, 36, 36)``, or ``(N, 36, 36)`` (the channel axis is added), so the
library's measures can take the data splits as stored. Output: logits ``(N, n_classes)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SmallCNN", "CNN_CHANNELS", "CNN_PARAMETERS"]

#: Output channels of the four convolutions.
CNN_CHANNELS: tuple[int, ...] = (32, 64, 125, 125)
#: Strides of the four convolutions.
CNN_STRIDES: tuple[int, ...] = (2, 2, 2, 2)
#: Parameters of ``SmallCNN()`` (1 input channel, 9 classes); ``tests/test_cnn.py`` counts them.
CNN_PARAMETERS = 232_825


class SmallCNN(nn.Module):
    """3x3 convolutions (ReLU), global average pooling, a linear head (module docstring).

    Args:
        n_classes: logits returned (9 for Transforming-MNIST).
        channels: output channels of each convolution.
        strides: stride of each convolution (same length as ``channels``).
        in_channels: input channels.
        image_size: height = width of the inputs (only recorded in ``input_shape``).

    Raises:
        ValueError: ``channels`` and ``strides`` differ in length or are empty, or a size is < 1.
    """

    def __init__(self, n_classes: int = 9, channels: Sequence[int] = CNN_CHANNELS,
                 strides: Sequence[int] = CNN_STRIDES, in_channels: int = 1, image_size: int = 36) -> None:
        super().__init__()
        channels, strides = tuple(int(c) for c in channels), tuple(int(s) for s in strides)
        if not channels or len(channels) != len(strides):
            raise ValueError(f"channels and strides must be non-empty and of equal length, got {channels}, {strides}")
        if min((*channels, *strides, n_classes, in_channels, image_size)) < 1:
            raise ValueError("channels, strides, n_classes, in_channels and image_size must be >= 1")
        self.input_shape = (in_channels, image_size, image_size)
        widths = (in_channels, *channels)
        self.convs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, stride=strides[i], padding=1)
                                   for i in range(len(channels)))
        self.head = nn.Linear(channels[-1], n_classes)

    def _as_images(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if x.dim() == 3 and len(self.input_shape) == 3 else x

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(conv1(x))``: ``(N, 1, 36, 36)`` or ``(N, 36, 36)`` -> ``(N, 32, 18, 18)``."""
        return F.relu(self.convs[0](self._as_images(x)))

    def after_first_layer(self, h: torch.Tensor) -> torch.Tensor:
        """The rest of the network: first-layer features ``(N, 32, 18, 18)`` -> logits ``(N, C)``."""
        for conv in self.convs[1:]:
            h = F.relu(conv(h))
        return self.head(h.mean(dim=(-2, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after_first_layer(self.first_layer(x))
