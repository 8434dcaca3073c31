"""Properties of the dataset construction (nets.data) on synthetic and tiny data:
sizes, disjoint seeded splits, no class 9, centered padding, scalar normalization
that commutes with every group action, augmentation, orbits, and the drift."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nets.data import (
    N_CLASSES,
    PADDED_SIZE,
    SPLIT_SIZES,
    Split,
    augment,
    build_raw_splits,
    drift,
    drop_class,
    fixed_elements,
    full_orbit,
    load_raw,
    load_splits,
    normalize,
    normalize_splits,
    pad_center,
    pixel_statistics,
    plot_orbits,
    split_indices,
    synthetic_splits,
    transformed,
)
from nets.data.cli import main
from nets.fetch_step import ENV_CACHE, ENV_FROM, FileSpec
from nets.groups import get_group
from nets.idx import IdxError, write_idx

GROUPS = ("r4", "t3", "d4")
SMALL = {"train": 30, "test": 50, "val": 10}


def _pooled(n: int = 120, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw 28x28 images whose first two pixels encode the sample's index (an ID to
    trace samples through the construction), labels 0..9 cycling."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    ids = torch.arange(n)
    x[:, 0, 0] = (ids % 256).to(torch.uint8)
    x[:, 0, 1] = (ids // 256).to(torch.uint8)
    y = (ids * 7) % 10
    return x, y


def _ids(split: Split) -> torch.Tensor:
    """Recover the pooled index of every sample of a raw padded split."""
    return split.x[:, 4, 4].long() + 256 * split.x[:, 4, 5].long()


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    """Max-abs comparison (torch.testing's first call costs seconds of imports)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = (actual.double() - expected.double()).abs().max().item()
    assert err <= atol, f"max abs error {err:.3g} > {atol}"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FROM, raising=False)
    monkeypatch.delenv(ENV_CACHE, raising=False)


# ---------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------
def test_splits_have_the_requested_sizes_and_padded_shape():
    x, y = _pooled()
    raw = build_raw_splits(x, y, split_seed=0, sizes=SMALL)
    for name, size in SMALL.items():
        split = getattr(raw, name)
        assert split.x.shape == (size, PADDED_SIZE, PADDED_SIZE) and split.x.dtype == torch.uint8
        assert split.y.shape == (size,) and split.y.dtype == torch.int64


def test_paper_split_sizes_are_10k_train_50k_test_2k_val():
    assert dict(SPLIT_SIZES) == {"train": 10_000, "test": 50_000, "val": 2_000}


def test_class_9_is_dropped_and_labels_stay_0_to_8():
    x, y = _pooled()
    raw = build_raw_splits(x, y, split_seed=0, sizes={"train": 40, "test": 60, "val": 8})  # all 108 kept
    labels = torch.cat([raw.train.y, raw.test.y, raw.val.y])
    assert 9 not in labels.tolist()
    assert set(labels.tolist()) == set(range(9))


def test_splits_are_disjoint_and_each_image_keeps_its_own_label():
    x, y = _pooled()
    raw = build_raw_splits(x, y, split_seed=3, sizes=SMALL)
    ids = {k: _ids(getattr(raw, k)) for k in SMALL}
    all_ids = torch.cat(list(ids.values()))
    assert len(set(all_ids.tolist())) == len(all_ids)  # disjoint
    for k in SMALL:
        split = getattr(raw, k)
        assert torch.equal(split.y, y[ids[k]])  # label follows its image
        assert torch.equal(split.x[:, 4:32, 4:32], x[ids[k]])  # the image itself, unchanged
    assert bool((y[all_ids] != 9).all())


def test_split_seed_determines_the_split():
    x, y = _pooled()
    a, b = build_raw_splits(x, y, 5, sizes=SMALL), build_raw_splits(x, y, 5, sizes=SMALL)
    c = build_raw_splits(x, y, 6, sizes=SMALL)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(_ids(a.train), _ids(c.train))


def test_split_indices_partition_a_seeded_permutation():
    idx = split_indices(100, 0, {"a": 10, "b": 30, "c": 5})
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([idx["a"], idx["b"], idx["c"]]), perm[:45])
    with pytest.raises(ValueError, match="need 120 samples, only 100 available"):
        split_indices(100, 0, {"a": 120})


def test_drop_class_removes_exactly_that_class():
    x, y = _pooled(50)
    xd, yd = drop_class(x, y, 9)
    assert len(yd) == int((y != 9).sum()) and 9 not in yd.tolist()
    assert torch.equal(xd, x[y != 9])


@pytest.mark.parametrize("group", ["r4", "d4"])
def test_padding_is_centered_so_it_commutes_with_rotations_and_flips(group: str):
    G = get_group(group)
    x, _ = _pooled(6)
    for g in G.elements:
        assert torch.equal(G.act(pad_center(x), g), pad_center(G.act(x, g)))


def test_padding_adds_a_zero_border_of_4_pixels():
    x = torch.full((2, 28, 28), 200, dtype=torch.uint8)
    xp = pad_center(x)
    assert xp.shape == (2, 36, 36)
    inner = torch.zeros(36, 36, dtype=torch.bool)
    inner[4:32, 4:32] = True
    assert bool((xp[:, inner] == 200).all()) and bool((xp[:, ~inner] == 0).all())


# ---------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------
def test_normalization_uses_one_scalar_mean_and_std_of_the_training_split():
    x, y = _pooled()
    raw = build_raw_splits(x, y, 1, sizes=SMALL)
    splits = normalize_splits(raw)
    train01 = raw.train.x.numpy().astype(np.float64) / 255.0
    assert splits.mean == pytest.approx(train01.mean(), rel=1e-12)
    assert splits.std == pytest.approx(train01.std(), rel=1e-12)
    for k in ("train", "val", "test"):
        expected = (getattr(raw, k).x.double() / 255.0 - splits.mean) / splits.std
        _assert_close(splits[k].x.double(), expected, atol=1e-5)
    assert abs(splits.train.x.double().mean().item()) < 1e-6
    assert splits.train.x.double().std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(pixels=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=300)))
def test_pixel_statistics_match_numpy(pixels: np.ndarray):
    mean, std = pixel_statistics(torch.from_numpy(pixels).view(1, 1, -1))
    v = pixels.astype(np.float64) / 255.0
    assert mean == pytest.approx(v.mean(), abs=1e-12)
    assert std == pytest.approx(v.std(), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    side=st.sampled_from([6, 12, 36]),
    n=st.integers(1, 3),
    mean=st.floats(0.0, 1.0),
    std=st.floats(0.05, 2.0),
)
def test_normalization_commutes_with_every_group_action(data, side: int, n: int, mean: float, std: float):
    x = torch.from_numpy(data.draw(hnp.arrays(np.uint8, (n, side, side))))
    for name in GROUPS:
        G = get_group(name)
        for g in G.elements:
            assert torch.equal(normalize(G.act(x, g), mean, std), G.act(normalize(x, mean, std), g))


def test_per_pixel_normalization_would_not_commute_with_rotation():
    # Why the statistic is a scalar: per-pixel statistics make the map depend on
    # position, and the same check as above fails for it.
    x, y = _pooled()
    xp = pad_center(x).double() / 255.0
    mu, sd = xp.mean(0), xp.std(0) + 1e-3
    G = get_group("r4")
    per_pixel = lambda z: (z - mu) / sd  # noqa: E731
    assert not torch.allclose(per_pixel(G.act(xp, 1)), G.act(per_pixel(xp), 1))


def test_normalize_rejects_non_positive_std():
    with pytest.raises(ValueError, match="std must be positive"):
        normalize(torch.zeros(1, 2, 2, dtype=torch.uint8), 0.5, 0.0)


# ---------------------------------------------------------------------------
# Group transformations of data
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("group", GROUPS)
def test_augment_returns_g_x_for_the_returned_g(group: str):
    G = get_group(group)
    x = synthetic_splits(n_train=20, seed=1).train.x
    gx, g = augment(x, G, torch.Generator().manual_seed(0))
    assert g.shape == (20,) and g.dtype == torch.long and g.device == x.device
    assert int(g.min()) >= 0 and int(g.max()) < G.order
    assert len(set(g.tolist())) > 1  # not one element for all
    for i in range(len(g)):
        assert torch.equal(gx[i], G.act(x[i], int(g[i])))


def test_augment_acts_on_channel_dimension_images_and_is_seeded():
    x = synthetic_splits(n_train=8).train.x.unsqueeze(1)  # (N, 1, 36, 36)
    a, ga = augment(x, "r4", torch.Generator().manual_seed(4))
    b, gb = augment(x, "r4", torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.equal(a, b) and torch.equal(ga, gb)
    assert torch.equal(a[:, 0], get_group("r4").act(x[:, 0], ga))


def test_fixed_elements_are_seeded_and_in_the_group():
    a, b, c = fixed_elements(500, "d4", 0), fixed_elements(500, "d4", 0), fixed_elements(500, "d4", 1)
    assert a.shape == (500,) and torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.tolist()) == set(range(8))


@pytest.mark.parametrize("group", GROUPS)
def test_transformed_applies_each_samples_fixed_element(group: str):
    G = get_group(group)
    split = synthetic_splits(n_test=24).test
    out = transformed(split, G, seed=2)
    g = fixed_elements(len(split), G, seed=2)
    for i in range(len(split)):
        assert torch.equal(out.x[i], G.act(split.x[i], int(g[i])))
    assert torch.equal(out.y, split.y)


@pytest.mark.parametrize("group", GROUPS)
def test_full_orbit_is_element_major(group: str):
    G = get_group(group)
    split = synthetic_splits(n_val=5).val
    N = len(split)
    out = full_orbit(split, G)
    assert out.x.shape == (G.order * N, 36, 36) and out.y.shape == (G.order * N,)
    for g in G.elements:
        for i in range(N):
            assert torch.equal(out.x[g * N + i], G.act(split.x[i], g))
            assert out.y[g * N + i] == split.y[i]


# ---------------------------------------------------------------------------
# Drift (Section 4.3)
# ---------------------------------------------------------------------------
def _pair(n: int = 40) -> tuple[Split, Split]:
    x, y = _pooled(2 * n, seed=9)
    xs = pad_center(x)
    return Split(xs[:n], y[:n] % 9), Split(xs[n:], (y[n:] + 1) % 9)


def test_interpolation_drift_at_0_is_the_source_and_at_1_the_target_with_source_statistics():
    s, t = _pair()
    mean, std = 0.13, 0.31
    d0 = drift(s, t, 0.0, mean, std)
    d1 = drift(s, t, 1.0, mean, std)
    assert torch.equal(d0.x, normalize(s.x, mean, std))
    assert torch.equal(d1.x, normalize(t.x, mean, std))
    assert torch.equal(d0.y, s.y) and torch.equal(d1.y, s.y)  # the source label throughout


def test_interpolation_drift_mixes_raw_pixels_linearly():
    s, t = _pair()
    mean, std = 0.2, 0.3
    beta = 0.3
    d = drift(s, t, beta, mean, std)
    expected = (((1 - beta) * s.x.double() + beta * t.x.double()) / 255.0 - mean) / std
    _assert_close(d.x.double(), expected, atol=1e-5)


def test_mixture_drift_replaces_a_nested_beta_fraction_with_target_samples_and_labels():
    s, t = _pair(40)
    mean, std = 0.1, 0.3
    prev: set[int] = set()
    for beta in (0.0, 0.25, 0.5, 1.0):
        d = drift(s, t, beta, mean, std, mode="mixture", seed=0)
        from_target = torch.nonzero((d.x == normalize(t.x, mean, std)).flatten(1).all(1)).flatten()
        chosen = set(from_target.tolist())
        assert len(chosen) == round(beta * 40)
        assert prev <= chosen  # nested as beta grows
        mask = torch.zeros(40, dtype=torch.bool)
        mask[from_target] = True
        assert torch.equal(d.y[mask], t.y[mask]) and torch.equal(d.y[~mask], s.y[~mask])
        assert torch.equal(d.x[~mask], normalize(s.x, mean, std)[~mask])
        prev = chosen


def test_mixture_drift_rounds_a_fraction_that_floats_hold_just_below_a_whole_sample():
    """0.29 x 100 is 28.999999999999996 in floating point: 29 samples are replaced, not 28."""
    s, t = _pair(100)
    assert bool((s.x != t.x).flatten(1).any(1).all())  # every pair tells its target from its source
    d = drift(s, t, 0.29, 0.1, 0.3, mode="mixture", seed=0)
    assert int((d.x == normalize(t.x, 0.1, 0.3)).flatten(1).all(1).sum()) == 29


def test_drift_rejects_bad_beta_and_mode():
    s, t = _pair(4)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\]"):
        drift(s, t, 1.5, 0.1, 0.3)
    with pytest.raises(ValueError, match="unknown drift mode 'blend'"):
        drift(s, t, 0.5, 0.1, 0.3, mode="blend")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Synthetic data, containers, reading files, CLI
# ---------------------------------------------------------------------------
def test_synthetic_splits_have_the_requested_shapes_and_every_class():
    s = synthetic_splits(n_train=45, n_val=9, n_test=18, seed=3)
    assert s.train.x.shape == (45, 36, 36) and s.train.x.dtype == torch.float32
    assert (len(s.train), len(s.val), len(s.test)) == (45, 9, 18)
    assert set(s.train.y.tolist()) == set(range(N_CLASSES))
    assert abs(s.train.x.mean().item()) < 1e-5 and s.train.x.std(unbiased=False).item() == pytest.approx(1, abs=1e-4)


def test_synthetic_classes_are_separable_by_nearest_class_mean():
    s = synthetic_splits(n_train=90, n_test=90, seed=0)
    means = torch.stack([s.train.x[s.train.y == c].mean(0) for c in range(N_CLASSES)])
    pred = torch.cdist(s.test.x.flatten(1), means.flatten(1)).argmin(1)
    assert (pred == s.test.y).float().mean().item() > 0.9


def test_synthetic_splits_are_deterministic_in_the_seed():
    a, b, c = synthetic_splits(seed=1), synthetic_splits(seed=1), synthetic_splits(seed=2)
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.x, c.train.x)


def test_split_subset_and_to_keep_pairs():
    s = synthetic_splits(n_train=10).train
    sub = s.subset(4)
    assert len(sub) == 4 and torch.equal(sub.x, s.x[:4]) and torch.equal(sub.y, s.y[:4])
    moved = s.to("cpu")
    assert torch.equal(moved.x, s.x)
    with pytest.raises(ValueError, match=r"subset size must be in \[0, 10\]"):
        s.subset(11)
    with pytest.raises(ValueError, match="Split needs x of shape"):
        Split(torch.zeros(3, 36, 36), torch.zeros(4))


def _tiny_files(folder: Path, n_train: int = 5, n_test: int = 3, labels_short: bool = False) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train - labels_short, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    manifest = {}
    for name, a in arrays.items():
        path = write_idx(folder / (name + ".gz"), a)
        manifest[name] = hashlib.sha256(write_idx(folder / "plain", a, compress=False).read_bytes()).hexdigest()
        assert path.exists()
    (folder / "plain").unlink()
    return {"arrays": arrays, "manifest": {"mnist": tuple(FileSpec(n, h) for n, h in manifest.items())}}


def test_load_raw_pools_train_then_test_from_verified_files(tmp_path: Path):
    tiny = _tiny_files(tmp_path / "src")
    x, y, files = load_raw("mnist", tmp_path / "cache", from_dir=tmp_path / "src", sources=[], progress=False,
                           manifest=tiny["manifest"])
    a = tiny["arrays"]
    assert torch.equal(x, torch.from_numpy(np.concatenate([a["train-images-idx3-ubyte"], a["t10k-images-idx3-ubyte"]])))
    assert torch.equal(y, torch.from_numpy(np.concatenate([a["train-labels-idx1-ubyte"], a["t10k-labels-idx1-ubyte"]]).astype(np.int64)))
    assert files == {s.filename: s.sha256 for s in tiny["manifest"]["mnist"]}


def test_images_and_labels_of_different_lengths_are_an_error_naming_the_file(tmp_path: Path):
    tiny = _tiny_files(tmp_path / "src", labels_short=True)
    with pytest.raises(IdxError, match=r"train-images-idx3-ubyte: 5 images but 4 labels"):
        load_raw("mnist", tmp_path / "cache", from_dir=tmp_path / "src", sources=[], progress=False,
                 manifest=tiny["manifest"])


def test_unknown_dataset_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; known: mnist, fmnist"):
        load_splits("svhn", data_dir=tmp_path)


@pytest.mark.parametrize("argv", [["fetch", "--dataset", "svhn", "--quiet"], ["info", "--dataset", "svhn"],
                                  ["show", "--dataset", "svhn", "--out", "x.png"]])
def test_cli_reports_unknown_dataset_in_one_line_and_exits_2(capsys: pytest.CaptureFixture, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'svhn'; known: mnist, fmnist" in err and len(err.strip().splitlines()) == 1


def test_cli_reports_unknown_group_in_one_line_and_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path):
    assert main(["show", "--group", "r5", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "unknown group 'r5'; known: r4" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_cli_show_refuses_an_out_file_without_a_figure_suffix_in_one_line(capsys: pytest.CaptureFixture, tmp_path):
    assert main(["show", "--out", str(tmp_path / "orbits")]) == 2
    err = capsys.readouterr().err
    assert "name the figure's file with .png, .pdf or .svg" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_cli_fetch_from_a_folder_that_does_not_exist_is_one_line(capsys: pytest.CaptureFixture, tmp_path):
    assert main(["fetch", "--from", str(tmp_path / "nowhere"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--from {tmp_path / 'nowhere'} is not a folder" in err and len(err.strip().splitlines()) == 1


def test_cli_fetch_offline_tries_only_the_folder_and_the_cache(capsys: pytest.CaptureFixture, tmp_path):
    (tmp_path / "empty").mkdir()
    argv = ["fetch", "--from", str(tmp_path / "empty"), "--offline", "--quiet", "--dataset", "mnist",
            "--cache", str(tmp_path / "cache")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    tried = [line.strip() for line in err.splitlines() if line.startswith("    - ")]
    assert tried and all(t.startswith(("- folder ", "- cache: ")) for t in tried)  # no remote source tried


def test_plot_orbits_writes_a_grid_of_samples_by_elements(tmp_path: Path):
    import matplotlib.image as mpimg

    out = plot_orbits(synthetic_splits().test, "d4", n=2, out=tmp_path / "orbits.png")
    img = mpimg.imread(out)
    assert img.shape[1] > 2 * img.shape[0]  # 8 columns, 2 rows


def test_plot_orbits_wraps_a_large_group_into_rows_of_at_most_max_columns(tmp_path: Path):
    import matplotlib.image as mpimg

    out = plot_orbits(synthetic_splits().test, "t6xy", n=1, out=tmp_path / "orbits.png", max_columns=12)
    img = mpimg.imread(out)
    assert img.shape[1] < 4 * img.shape[0]  # 36 elements as 3 rows of 12, not one row of 36


def test_plot_orbits_refuses_a_non_positive_column_count(tmp_path: Path):
    with pytest.raises(ValueError, match="max_columns"):
        plot_orbits(synthetic_splits().test, "r4", n=1, out=tmp_path / "o.png", max_columns=0)
