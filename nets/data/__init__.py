"""Transforming-MNIST and Transforming-FMNIST (paper Section 4.1), and the drift of Section 4.3.

Construction, as in the paper:

1. pool the official train and test sets (70k images of 28x28, uint8);
2. drop MNIST digit 9 (confused with a rotated 6) and the last Fashion-MNIST
   class (9, ankle boot), leaving 9 classes with labels 0..8;
3. zero-pad to 36x36, centered (4 pixels each side), so that rotations by 90
   degrees and cyclic x-translations by 12 pixels act exactly on the grid;
4. split into 10k train / 50k test / 2k validation, disjoint, from one
   ``torch.randperm`` seeded by ``split_seed`` (slices in that order);
5. normalize to zero mean and unit std with ONE scalar mean and std computed on
   the padded training images (pixel values in [0, 1]). A scalar affine map
   commutes with every pixel permutation, so normalization commutes with the
   group action, ``norm(g x) = g norm(x)``; a per-pixel statistic would not.

Group transformations are applied on the fly (:func:`augment`), with fixed
seeded elements for evaluation (:func:`transformed`), or over the whole orbit
(:func:`full_orbit`).

The raw files come through the verified fetch step (:mod:`nets.fetch_step`): see
``python -m nets.data fetch --help``. CLI: ``python -m nets.data
{fetch,info,show}`` (:mod:`nets.data.cli`).

Modules: :mod:`nets.data.containers` (Split, Splits, RawSplits), :mod:`nets.data.splits` (construction, loading),
:mod:`nets.data.orbits` (a split under a group), :mod:`nets.data.drifting` (Section 4.3),
:mod:`nets.data.synthetic` (small data for tests); every public name is re-exported here.
"""

# Each submodule's public names (its __all__), re-exported: one list per name, in its module.
from nets.data import containers, drifting, orbits, splits, synthetic
from nets.data.containers import *  # noqa: F403
from nets.data.drifting import *  # noqa: F403
from nets.data.orbits import *  # noqa: F403
from nets.data.splits import *  # noqa: F403
from nets.data.synthetic import *  # noqa: F403

__all__ = [*containers.__all__, *splits.__all__, *orbits.__all__, *drifting.__all__, *synthetic.__all__]
