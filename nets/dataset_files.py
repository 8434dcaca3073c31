"""The MNIST and Fashion-MNIST IDX files: their names, SHA-256 checksums and cache folders, and
the verified, atomic install of one candidate copy (:func:`install_verified`).

Every file is verified by the SHA-256 of its *uncompressed* content and stored uncompressed in
the cache under its usual name (``train-images-idx3-ubyte``, ...), one folder per dataset
(``mnist/``, ``fashion-mnist/``), so other tools can read the cache too. Where copies come from
is :mod:`nets.fetch_sources`; the fetch step that tries the sources in turn is :mod:`nets.fetch_step`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from tqdm.auto import tqdm

from nets.idx import is_gzip, open_maybe_gzip
from nets.results_io.atomic import atomic_write

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "DATASETS",
    "CLASS_NAMES",
    "ENV_FROM",
    "ENV_CACHE",
    "FOLDERS",
    "FOLDER_HINTS",
    "CHUNK_BYTES",
    "FileSpec",
    "MANIFEST",
    "FileReport",
    "FetchError",
    "ChecksumMismatch",
    "SourceUnavailable",
    "canonical_name",
    "cache_root",
    "dataset_dir",
    "idx_variants",
    "sha256_file",
    "install_verified",
]

DATASETS = ("mnist", "fmnist")

#: Class names per dataset where a class number alone does not say what it is (Fashion-MNIST's, in
#: label order, from its README); MNIST's classes are their own digits.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fmnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"),
}
ENV_FROM = "GENUINE_INVARIANCE_DATA_FROM"
ENV_CACHE = "GENUINE_INVARIANCE_CACHE"

#: Cache folder per dataset (the names other tools use).
FOLDERS = {"mnist": "mnist", "fmnist": "fashion-mnist"}
_ALIASES = {
    "mnist": "mnist",
    "fmnist": "fmnist",
    "fashion-mnist": "fmnist",
    "fashion_mnist": "fmnist",
    "fashionmnist": "fmnist",
    "f-mnist": "fmnist",
}
#: Lower-cased folder-name hints that order the candidates found under ``--from``.
FOLDER_HINTS = {"mnist": ("mnist",), "fmnist": ("fashion", "fmnist", "f-mnist")}

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileSpec:
    """One IDX file: its usual name and the SHA-256 of its uncompressed content."""

    filename: str  # e.g. "train-images-idx3-ubyte"
    sha256: str

    @property
    def kind(self) -> str:
        """``train-images``, ``train-labels``, ``t10k-images`` or ``t10k-labels``."""
        return self.filename.split("-idx")[0]


def _specs(**hashes: str) -> tuple[FileSpec, ...]:
    names = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "t10k_images": "t10k-images-idx3-ubyte",
        "t10k_labels": "t10k-labels-idx1-ubyte",
    }
    return tuple(FileSpec(names[k], v) for k, v in hashes.items())


#: The files of each dataset with the SHA-256 of their uncompressed content.
MANIFEST: dict[str, tuple[FileSpec, ...]] = {
    "mnist": _specs(
        train_images="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        train_labels="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        t10k_images="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        t10k_labels="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    "fmnist": _specs(
        train_images="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        train_labels="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        t10k_images="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        t10k_labels="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}


@dataclass(frozen=True)
class FileReport:
    """How one file was obtained: the source that served it and where it now lies."""

    dataset: str
    filename: str
    source: str
    path: Path
    sha256: str
    verified: bool
    seconds: float
    tried: tuple[str, ...] = ()  # "source: why it failed" for the sources tried before


class FetchError(RuntimeError):
    """No source could supply a verified copy of some file (the message lists why)."""


class ChecksumMismatch(ValueError):
    """A candidate file's SHA-256 is not the expected one."""

    def __init__(self, path: PathLike, filename: str, expected: str, actual: str, removed: bool = False):
        self.path, self.filename, self.expected, self.actual = Path(path), filename, expected, actual
        super().__init__(
            f"checksum mismatch for {filename} ({path}): expected sha256 {expected}, got {actual}"
            + (" (removed from the cache)" if removed else "")
        )


class SourceUnavailable(RuntimeError):
    """A source cannot serve a dataset at all (network down, tool missing, ...)."""


def canonical_name(name: str) -> str:
    """``"mnist"`` or ``"fmnist"`` for a dataset name or alias (``fashion-mnist``, ...)."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return _ALIASES[key]


def cache_root(cache_dir: PathLike | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$GENUINE_INVARIANCE_CACHE``, else
    ``$XDG_CACHE_HOME/genuine-invariance``, else ``~/.cache/genuine-invariance``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "genuine-invariance"


def dataset_dir(name: str, cache_dir: PathLike | None = None) -> Path:
    """The cache folder of one dataset, e.g. ``~/.cache/genuine-invariance/fashion-mnist``."""
    return cache_root(cache_dir) / FOLDERS[canonical_name(name)]


def sha256_file(path: PathLike) -> str:
    """SHA-256 of a file's *uncompressed* content (gzip detected from the content)."""
    h = hashlib.sha256()
    with open_maybe_gzip(path) as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def idx_variants(filename: str) -> tuple[str, ...]:
    """Names a file is commonly found under: ``train-images-idx3-ubyte``, the
    ``train-images.idx3-ubyte`` spelling, each with or without ``.gz``."""
    dotted = filename.replace("-idx", ".idx")
    return tuple(n + ext for n in (filename, dotted) for ext in ("", ".gz"))


def install_verified(candidate: Path, dest: Path, spec: FileSpec, progress: bool = False) -> str:
    """Make ``dest`` a verified, uncompressed copy of ``candidate``; return its SHA-256.

    The content is decompressed (if gzipped) into a temporary file next to
    ``dest`` while hashed, and moved over ``dest`` only if the hash is
    ``spec.sha256``; otherwise the temporary file is removed and
    ``ChecksumMismatch`` raised. If ``candidate`` is ``dest`` it is only hashed.
    """
    if candidate.resolve() == dest.resolve():
        actual = sha256_file(candidate)
        if actual != spec.sha256:
            # A corrupt file must not keep a usable name in the cache.
            candidate.unlink(missing_ok=True)
            raise ChecksumMismatch(candidate, spec.filename, spec.sha256, actual, removed=True)
        return actual
    h = hashlib.sha256()

    def copy_verified(out) -> None:  # written to a temporary file that replaces dest only on success
        gz = is_gzip(candidate)
        with open(candidate, "rb") as raw, tqdm(
            total=candidate.stat().st_size, unit="B", unit_scale=True, leave=False,
            desc=f"verify {spec.filename}", disable=not progress,
        ) as bar:
            src = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            pos = 0
            for chunk in iter(lambda: src.read(CHUNK_BYTES), b""):
                h.update(chunk)
                out.write(chunk)
                bar.update(raw.tell() - pos)
                pos = raw.tell()
        if h.hexdigest() != spec.sha256:
            raise ChecksumMismatch(candidate, spec.filename, spec.sha256, h.hexdigest())

    atomic_write(dest, copy_verified, binary=True)
    return h.hexdigest()
