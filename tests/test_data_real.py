"""The real Transforming-MNIST / -FMNIST data (paper Section 4.1), through the verified fetch step.

Skipped only when the files are not fetched and env CI is not set; on CI
(``scripts/test.sh`` fetches first) missing or corrupt data is a failure. These
tests never download: they read the cache (and ``GENUINE_INVARIANCE_DATA_FROM``).
"""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from nets.data import (
    DATASETS,
    clear_memory_cache,
    drift_split,
    load_raw,
    load_splits,
)
from nets.data.cli import main
from nets.fetch_step import ENV_FROM, FOLDERS, MANIFEST, FetchError, cache_root, fetch


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _files_present() -> bool:
    root = cache_root()
    cached = all((root / FOLDERS[d] / s.filename).is_file() for d in DATASETS for s in MANIFEST[d])
    return cached or bool(os.environ.get(ENV_FROM))


pytestmark = pytest.mark.skipif(
    not _files_present() and not _ci(),
    reason="real MNIST/Fashion-MNIST not fetched (run `python -m nets.data fetch`); CI is not set",
)

# The published SHA-256 of the uncompressed IDX files (spelled out here, not read from nets.fetch_step).
PUBLISHED = {
    "mnist/train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "mnist/train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "mnist/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "mnist/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "fashion-mnist/train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "fashion-mnist/train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "fashion-mnist/t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "fashion-mnist/t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


@pytest.fixture(scope="module")
def report() -> dict:
    """The verified fetch step, restricted to local sources (never downloads)."""
    try:
        return fetch(DATASETS, sources=[], progress=False)
    except FetchError as e:
        pytest.fail(f"real data missing or corrupt (scripts/test.sh runs `python -m nets.data fetch` first):\n{e}")


@pytest.fixture(scope="module")
def mnist(report):
    return load_splits("mnist", 0, progress=False)


@pytest.fixture(scope="module")
def fmnist(report):
    return load_splits("fmnist", 0, progress=False)


def test_fetched_files_have_the_published_checksums(report):
    seen = {}
    for dataset, files in report.items():
        for filename, r in files.items():
            assert r.verified
            seen[f"{FOLDERS[dataset]}/{filename}"] = hashlib.sha256(r.path.read_bytes()).hexdigest()
    assert seen == PUBLISHED


@pytest.mark.parametrize("name, dropped, kept", [("mnist", 6958, 63042), ("fmnist", 7000, 63000)])
def test_pooled_data_has_70k_images_and_dropping_class_9_leaves_the_rest(report, name, dropped, kept):
    x, y, _ = load_raw(name, sources=[], progress=False)
    assert x.shape == (70_000, 28, 28) and x.dtype == torch.uint8
    assert int((y == 9).sum()) == dropped
    assert int((y != 9).sum()) == kept
    assert set(y.tolist()) == set(range(10))


@pytest.mark.parametrize("which", ["mnist", "fmnist"])
def test_paper_splits_have_10k_2k_50k_padded_images_of_9_classes(which, request):
    s = request.getfixturevalue(which)
    assert (len(s.train), len(s.val), len(s.test)) == (10_000, 2_000, 50_000)
    for split in (s.train, s.val, s.test):
        assert split.x.shape[1:] == (36, 36) and split.x.dtype == torch.float32
        assert split.y.dtype == torch.int64
        assert set(split.y.tolist()) == set(range(9))
    pad_value = (0.0 - s.mean) / s.std
    border = torch.ones(36, 36, dtype=torch.bool)
    border[4:32, 4:32] = False
    assert bool((s.test.x[:, border] == torch.tensor(pad_value, dtype=torch.float32)).all())


@pytest.mark.parametrize("which, known_mean", [("mnist", 0.1307), ("fmnist", 0.2860)])
def test_training_split_is_normalized_by_scalar_statistics_close_to_the_known_ones(which, known_mean, request):
    s = request.getfixturevalue(which)
    # The well-known 28x28 mean, diluted by the zero padding to 36x36.
    assert s.mean == pytest.approx(known_mean * 28**2 / 36**2, rel=0.03)
    assert abs(s.train.x.double().mean().item()) < 1e-5
    assert s.train.x.double().std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)


def test_fmnist_splits_name_their_classes_and_mnist_digits_need_no_names(mnist, fmnist):
    assert mnist.class_names is None
    assert len(fmnist.class_names) == 10 and fmnist.class_names[6] == "Shirt" and fmnist.class_names[9] == "Ankle boot"


def test_same_split_seed_rebuilds_the_same_splits_and_another_seed_differs(mnist):
    clear_memory_cache()
    again = load_splits("mnist", 0, progress=False)
    assert torch.equal(again.train.x, mnist.train.x) and torch.equal(again.test.y, mnist.test.y)
    other = load_splits("mnist", 1, progress=False)
    assert not torch.equal(other.train.y, mnist.train.y)


def test_load_splits_returns_fresh_tensors(mnist):
    first = load_splits("mnist", 0, progress=False)
    first.train.x.zero_()
    assert torch.equal(load_splits("mnist", 0, progress=False).train.x, mnist.train.x)


def test_drift_interpolates_from_mnist_to_fmnist_with_mnist_statistics(mnist, fmnist):
    d0 = drift_split(0.0)
    assert torch.equal(d0.x, mnist.test.x) and torch.equal(d0.y, mnist.test.y)
    d1 = drift_split(1.0)
    fm_pixels = fmnist.test.x * fmnist.std + fmnist.mean  # back to [0, 1]
    expected = (fm_pixels - mnist.mean) / mnist.std
    assert (d1.x - expected).abs().max().item() < 1e-4
    assert torch.equal(d1.y, mnist.test.y)


def test_mixture_drift_takes_the_fmnist_label_for_replaced_samples(mnist, fmnist):
    d = drift_split(0.5, mode="mixture")
    replaced = (d.x != mnist.test.x).flatten(1).any(1)
    assert int(replaced.sum()) == 25_000
    assert torch.equal(d.y[~replaced], mnist.test.y[~replaced])
    assert torch.equal(d.y[replaced], fmnist.test.y[replaced])


def test_cli_info_prints_counts_statistics_and_checksums(report, capsys):
    assert main(["info", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "after dropping class 9: 63042 images" in out and "after dropping class 9: 63000 images" in out
    assert "train 10000 / val 2000 / test 50000" in out
    assert PUBLISHED["fashion-mnist/t10k-images-idx3-ubyte"] in out
    assert out.count("  classes ") == 1 and "  classes 0 T-shirt/top, 1 Trouser," in out  # FMNIST's; MNIST's are digits
