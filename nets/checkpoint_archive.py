"""Checkpoints kept in the repository's history instead of its tracked tree.

A profile's trained models (``results/<profile>/checkpoints/*.pt``, 128 MB for the
paper profile) are too large for the tree a user clones or ships to a GPU machine,
yet a sweep that took hours must never need retraining. So the files live in one
past commit, and the tracked tree holds only a manifest,
``results/<profile>/checkpoints.manifest.json``::

    {"format": 1, "profile": "paper", "commit": "<40 hex>", "directory": "results/paper/checkpoints",
     "files": [{"name": "r4-DA-seed0.pt", "sha256": "...", "size": 123456, "blob": "<git blob id>"}, ...]}

A file archived later, from another commit, names it in its own entry (``"commit": "<40 hex>"``;
:func:`write_manifest` with ``add``); the top-level ``commit`` holds every other file. Runs on a
dataset other than the paper's keep their checkpoints in ``checkpoints/<dataset>/``
(:func:`nets.results_io.checkpoints_in`); their manifest records ``"dataset": "<name>"`` and
restores into that folder.

:func:`restore` reads each file back from that commit (``git cat-file``), checks its
size and SHA-256, and writes it atomically into the checkpoint folder; files already
there with the right hash are left alone. It needs the commit in the local history:
a shallow clone is told to ``git fetch --unshallow``. :func:`write_manifest` builds
the manifest from the files as committed at ``HEAD`` (so the recorded commit really
holds them). Nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from nets.results_io.atomic import folder_lock, make_folder, write_bytes, write_text
from nets.results_io.files import checkpoints_in, move_aside, sha256_file
from nets.results_io.paper import PAPER_DATASET

__all__ = [
    "MANIFEST_FORMAT",
    "ArchiveError",
    "RestoreReport",
    "manifest_path",
    "read_manifest",
    "archived_hint",
    "write_manifest",
    "restore",
    "sha256_file",
]

MANIFEST_FORMAT = 1


class ArchiveError(RuntimeError):
    """A restore or manifest step that cannot go on; the message is one line naming the fix."""


@dataclass
class RestoreReport:
    """What :func:`restore` did: files written, files already present and verified, the folder,
    and the local copies that differed from the manifest, kept under a new name (``moved_aside``)."""

    restored: list[str]
    verified: list[str]
    directory: Path
    moved_aside: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kept = (f"; {len(self.moved_aside)} local cop{'y' if len(self.moved_aside) == 1 else 'ies'} that differed "
                f"kept as {', '.join(self.moved_aside[:3])}{', ...' if len(self.moved_aside) > 3 else ''}"
                if self.moved_aside else "")
        return (f"{len(self.restored)} checkpoint(s) restored, {len(self.verified)} already present and verified, "
                f"in {self.directory}{kept}")


def manifest_path(results_dir: str | os.PathLike) -> Path:
    """``<results_dir>/checkpoints.manifest.json`` (``results_dir`` is ``results/<profile>``)."""
    return Path(results_dir) / "checkpoints.manifest.json"


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary, timeout=120)
    except FileNotFoundError as e:
        raise ArchiveError("git is not installed; restoring checkpoints from the repository's history needs it") \
            from e


def _repo_root(start: Path) -> Path:
    """The top of the git clone holding ``start``, else the one holding this package;
    an :class:`ArchiveError` when neither is a clone."""
    start = start.resolve()
    for probe in (start, Path(__file__).resolve().parent):
        while not probe.exists():
            probe = probe.parent
        out = _git(probe, "rev-parse", "--show-toplevel")
        if out.returncode == 0:
            return Path(out.stdout.strip())
    raise ArchiveError(f"{start} is not inside a git clone; the checkpoints live in the repository's history: "
                       "clone the repository with git (not a source archive) and run this again")


def archived_hint(path: str | os.PathLike) -> str | None:
    """For a checkpoint ``path`` that does not exist but that its results folder's manifest lists
    (``<results>/<profile>/checkpoints/NAME.pt``), the command that restores it, as a clause to add
    to a "does not exist" error; else ``None`` (an unreadable manifest included)."""
    path = Path(path)
    if path.exists() or path.parent.name != "checkpoints":
        return None
    folder = path.parent.parent
    try:
        manifest = read_manifest(folder)
    except ArchiveError:
        return None
    if manifest is None or path.name not in {e["name"] for e in manifest["files"]}:
        return None
    return (f"it is archived in the repository's history: python -m nets checkpoints restore --profile "
            f"{manifest.get('profile', folder.name)} --results {folder.parent}")


def read_manifest(results_dir: str | os.PathLike) -> dict | None:
    """The manifest of ``results_dir`` (``None`` when it has none); an :class:`ArchiveError`
    when it cannot be read or is not a manifest of this format."""
    path = manifest_path(results_dir)
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ArchiveError(f"cannot read the checkpoint manifest {path}: {e}") from e
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT or not isinstance(m.get("files"), list):
        raise ArchiveError(f"{path} is not a checkpoint manifest of format {MANIFEST_FORMAT}")
    for e in m["files"]:  # a name is a plain file name: restore writes it into the checkpoints folder only
        name = e.get("name") if isinstance(e, dict) else None
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "\\" in name:
            raise ArchiveError(f"{path} lists a file named {name!r}, not a plain file name")
    names = [e["name"] for e in m["files"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # restore would write one name twice, the second entry's blob over the first's
        raise ArchiveError(f"{path} lists {twice[0]!r} more than once; a manifest names each file once "
                           f"(rewrite it with python -m nets checkpoints manifest)")
    return m


def write_manifest(results_dir: str | os.PathLike, profile: str, *, commit: str = "HEAD",
                   add: Sequence[str] | None = None, dataset: str = PAPER_DATASET) -> Path:
    """Write the manifest for the ``*.pt`` files of ``<results_dir>/checkpoints`` (on ``dataset``
    other than the paper's: ``<results_dir>/checkpoints/<dataset>``, recorded) as they are
    committed at ``commit`` (resolved to its full id and recorded). Every file in the folder
    must be committed there with the same bytes, else an :class:`ArchiveError` says which is not.

    ``add``: instead, keep the existing manifest and append these files of the folder, each
    entry naming ``commit`` as the one that holds it (a file already listed is an error); in a
    folder without a manifest, start one that holds these files only (the others stay local);
    adding files on another dataset than the manifest's is an error."""
    results_dir = Path(results_dir)
    ckdir = checkpoints_in(results_dir, dataset)
    old = read_manifest(results_dir) if add is not None else None
    if old is not None and old.get("dataset", PAPER_DATASET) != dataset:
        raise ArchiveError(f"the manifest {manifest_path(results_dir)} holds checkpoints on "
                           f"{old.get('dataset', PAPER_DATASET)}, not on {dataset}")
    if add is not None:
        listed = sorted(set(add) & {e["name"] for e in (old or {}).get("files", [])})
        if listed:
            raise ArchiveError(f"already in the manifest {manifest_path(results_dir)}: {', '.join(listed)}")
        missing = sorted(n for n in add if not (ckdir / n).is_file())
        if missing:
            raise ArchiveError(f"not in {ckdir}: {', '.join(missing)}")
    names = sorted(add) if add is not None else sorted(p.name for p in ckdir.glob("*.pt"))
    if not names:
        raise ArchiveError(f"no *.pt checkpoints in {ckdir} to put in a manifest")
    repo = _repo_root(ckdir)
    rev = _git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}")
    if rev.returncode != 0:
        raise ArchiveError(f"{commit!r} is not a commit of {repo}")
    full = rev.stdout.strip()
    if not ckdir.resolve().is_relative_to(repo):
        raise ArchiveError(f"{ckdir} is not inside a git clone: a manifest lists checkpoints committed to the "
                           "repository that holds them; commit them in a clone and run this there")
    rel = ckdir.resolve().relative_to(repo).as_posix()
    files = []
    for name in names:
        blob = _git(repo, "rev-parse", f"{full}:{rel}/{name}")
        if blob.returncode != 0:
            raise ArchiveError(f"{rel}/{name} is not committed at {full[:12]}; commit the checkpoints first")
        local = ckdir / name
        digest = sha256_file(local)
        committed = _git(repo, "cat-file", "blob", blob.stdout.strip(), binary=True).stdout
        if hashlib.sha256(committed).hexdigest() != digest:
            raise ArchiveError(f"{local} differs from the copy committed at {full[:12]}")
        files.append({"name": name, "sha256": digest, "size": local.stat().st_size, "blob": blob.stdout.strip(),
                      **({"commit": full} if old is not None else {})})
    if old is not None:
        manifest = {**old, "files": [*old["files"], *files]}
    else:
        manifest = {"format": MANIFEST_FORMAT, "profile": profile, "commit": full, "directory": rel,
                    **({"dataset": dataset} if dataset != PAPER_DATASET else {}), "files": files}
    path = manifest_path(results_dir)
    write_text(path, json.dumps(manifest, indent=1) + "\n")
    return path


def _missing_commit_error(repo: Path, commit: str) -> ArchiveError:
    shallow = _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    if shallow:
        return ArchiveError(f"this is a shallow clone without commit {commit[:12]}, which holds the checkpoints: "
                            "run `git fetch --unshallow` and try again")
    return ArchiveError(f"commit {commit[:12]}, which holds the checkpoints, is not in this clone's history: "
                        "run `git fetch origin` (or clone the full repository) and try again")


def restore(results_dir: str | os.PathLike, *, names: Sequence[str] | None = None) -> RestoreReport:
    """Restore the checkpoints listed in ``<results_dir>``'s manifest into ``<results_dir>/checkpoints``
    (``checkpoints/<dataset>`` for a manifest that records a dataset other than the paper's).

    ``names``: only these files of the manifest (default: all). A file already present with
    the manifest's SHA-256 is kept; any other copy there (a damaged one, or a run retrained
    here) is first renamed to ``<name>.corrupt`` (:func:`~nets.results_io.move_aside`), so nothing is
    lost. Every written file is checked (size and SHA-256) before it is moved into place.
    Restores into one folder take turns (:func:`~nets.results_io.folder_lock` on ``results_dir``,
    the lock its results files are written under), so two runs of other ``--groups`` started
    together restore once, and a file that matches the manifest by the time it would be replaced
    (another process restored it; a lock the file system ignores) is kept, never moved aside.

    Raises:
        ArchiveError: no manifest; not a git clone; the commit is missing (shallow clone:
            ``git fetch --unshallow``); a committed file whose hash differs from the manifest's.
    """
    results_dir = Path(results_dir)
    m = read_manifest(results_dir)
    if m is None:
        raise ArchiveError(f"{manifest_path(results_dir)} does not exist: this results folder keeps no "
                           "checkpoints in the repository's history")
    entries = m["files"]
    if names is not None:
        wanted = set(names)
        unknown = wanted - {e["name"] for e in entries}
        if unknown:
            raise ArchiveError(f"not in the manifest {manifest_path(results_dir)}: {', '.join(sorted(unknown))}")
        entries = [e for e in entries if e["name"] in wanted]
    ckdir = checkpoints_in(results_dir, m.get("dataset", PAPER_DATASET))
    make_folder(ckdir)
    with folder_lock(results_dir):
        return _restore_entries(results_dir, m, entries, ckdir)


def _matches(local: Path, entry: dict) -> bool:
    """Whether ``local`` exists with the manifest entry's size and SHA-256."""
    return local.exists() and local.stat().st_size == entry["size"] and sha256_file(local) == entry["sha256"]


def _restore_entries(results_dir: Path, m: dict, entries: list[dict], ckdir: Path) -> RestoreReport:
    """:func:`restore`'s work, with the folder's lock held."""
    restored, verified, moved = [], [], []
    todo = []
    for e in entries:
        if _matches(ckdir / e["name"], e):
            verified.append(e["name"])
        else:
            todo.append(e)
    if todo:
        repo = _repo_root(ckdir)
        for commit in dict.fromkeys(e.get("commit", m["commit"]) for e in todo):
            if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
                raise _missing_commit_error(repo, commit)
        for e in todo:
            commit = e.get("commit", m["commit"])
            spec = e.get("blob") or f"{commit}:{m['directory']}/{e['name']}"
            out = _git(repo, "cat-file", "blob", spec, binary=True)
            if out.returncode != 0:
                raise ArchiveError(f"{m['directory']}/{e['name']} cannot be read from commit {commit[:12]}: "
                                   f"{out.stderr.decode(errors='replace').strip()}")
            data = out.stdout
            if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise ArchiveError(f"{e['name']} from commit {commit[:12]} does not match the manifest's SHA-256; "
                                   "the manifest or the history was changed: check out a matching manifest")
            if _matches(ckdir / e["name"], e):  # restored meanwhile (by another process)
                verified.append(e["name"])
                continue
            if (ckdir / e["name"]).exists():
                moved.append(move_aside(ckdir / e["name"]).name)
            write_bytes(ckdir / e["name"], data)
            restored.append(e["name"])
    return RestoreReport(restored=restored, verified=verified, directory=ckdir, moved_aside=moved)
