"""A worked example of ``python -m nets own-data``: MNIST as it comes (28 x 28, all ten digits, no
padding), which the paper does not use: it drops the digit 9, whose quarter-turns look like 6s; or
Fashion-MNIST as it comes (``--dataset fmnist``, all ten classes), whose clothes are nearly
mirror-symmetric, for the left-right mirror ``f2``.

    python scripts/own_data_example.py --out build/mnist10.pt     # the data file (from the verified cache)
    PYTHONPATH=scripts python -m nets own-data --model own_data_example:make_cnn --data build/mnist10.pt \\
        --groups r4 --out results/own-data-mnist10 --epochs 100 --nu-grid 10 100 --threads 1 --no-progress
    python scripts/own_data_example.py --dataset fmnist --out build/fmnist10.pt
    PYTHONPATH=scripts python -m nets own-data --model own_data_example:make_cnn --data build/fmnist10.pt \\
        --groups f2 --out results/own-data-fmnist-f2 --epochs 100 --nu-grid 10 100 --threads 1 --no-progress

The data file holds ``x_train`` (the first ``--n-train`` MNIST training images), ``x_val`` (the next
``--n-val``), ``x_test`` (the first ``--n-test`` test images), each ``(N, 1, 28, 28)`` float32 scaled to
[0, 1] and standardized with the training images' mean and std, and the labels ``y_*`` 0-9. The IDX
files come through :func:`nets.data.load_raw` (the checksum-verified fetch). ``make_cnn`` is the
model: :class:`nets.cnn.SmallCNN` for 28 x 28 images and ten classes, three convolutions (16, 32, 64
channels, stride 2), so WT ties its first layer as the paper's WT does.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nets.cli_types import positive_int  # noqa: E402
from nets.cnn import SmallCNN  # noqa: E402
from nets.data.splits import load_raw  # noqa: E402
from nets.results_io import write_bytes  # noqa: E402


def make_cnn() -> SmallCNN:
    """The example's model: ten logits of a (N, 1, 28, 28) image."""
    return SmallCNN(n_classes=10, channels=(16, 32, 64), strides=(2, 2, 2), image_size=28)


def mnist10(n_train: int, n_val: int, n_test: int, dataset: str = "mnist") -> dict[str, torch.Tensor]:
    """The splits of ``dataset`` (``mnist`` or ``fmnist``; module docstring)."""
    x, y, _ = load_raw(dataset, progress=False)  # 60,000 training images, then the 10,000 test images
    if n_train + n_val > 60_000 or n_test > 10_000 or min(n_train, n_val, n_test) < 1:
        raise SystemExit("error: need n_train + n_val <= 60000, n_test <= 10000, each >= 1")
    parts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(60_000, 60_000 + n_test)}
    unit = x.float().div_(255.0).unsqueeze(1)
    mean, std = unit[parts["train"]].mean(), unit[parts["train"]].std()
    out = {}
    for name, rows in parts.items():
        out[f"x_{name}"] = ((unit[rows] - mean) / std).contiguous()
        out[f"y_{name}"] = y[rows].clone()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("mnist", "fmnist"), default="mnist")
    p.add_argument("--out", type=Path, default=Path("build/mnist10.pt"))
    p.add_argument("--n-train", type=positive_int, default=5_000)
    p.add_argument("--n-val", type=positive_int, default=1_000)
    p.add_argument("--n-test", type=positive_int, default=2_000)
    args = p.parse_args(argv)
    buf = io.BytesIO()
    torch.save(mnist10(args.n_train, args.n_val, args.n_test, args.dataset), buf)
    write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
