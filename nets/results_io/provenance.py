"""Provenance of a results file: versions, the git commit, the command line, the CPU.

Nothing here runs at import: ``git`` is asked the first time :func:`code_version` is called
(the CLI calls it when a run starts, so a sweep that runs for hours records the code it
imported), and every other function reads only the running process and ``/proc``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from nets.results_io.files import result_groups
from nets.results_io.numerics import cuda_float32

__all__ = [
    "versions",
    "cpu_info",
    "command_line",
    "git_commit",
    "folder_dirty",
    "code_version",
    "committed_files",
    "GitUnanswered",
    "metadata",
    "run_provenance",
    "trained_elsewhere",
    "PROVENANCE_FIELDS",
    "provenance",
    "result_sittings",
    "without_sitting",
    "profile_differences",
    "mixed_settings",
    "recorded_precision",
]

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding nets/


def versions() -> dict[str, str]:
    """Python, torch, numpy, scikit-learn and matplotlib versions, the platform, torch's threads."""
    import matplotlib
    import numpy as np
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
        "torch_threads": str(torch.get_num_threads()),
    }


#: The CPU flags that decide which vector kernels torch uses (and so, in the last digits, the numbers).
_SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
               "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "sve")


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """The CPU model, its vector-instruction flags (the subset in ``_SIMD_FLAGS``) and the
    number of logical CPUs, from ``/proc/cpuinfo`` where it exists (no subprocess)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [f for f in _SIMD_FLAGS if f in flags], "logical_cpus": os.cpu_count()}


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user would type it again (``python -m nets ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(os.path.join("nets", "__main__.py")):
        argv = ["python", "-m", "nets", *argv[1:]]
    return shlex.join(argv)


def _git(*args: str, cwd: str | os.PathLike = _PACKAGE_ROOT) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    """The commit checked out where this code lives (``None`` outside a git clone)."""
    out = _git("rev-parse", "HEAD")
    return (out.stdout.strip() or None) if out is not None and out.returncode == 0 else None


def folder_dirty(folder: str | os.PathLike) -> bool | None:
    """Whether the code under ``folder`` (``nets/``, ``theory/``) differs from the commit checked out in
    the repository holding it: a tracked file edited, staged or removed, or a file git neither tracks nor
    ignores (a new module the run may have imported; ignored files, ``__pycache__`` among them, do not
    count). ``None`` where there is no commit to differ from (a copy of the tree without ``.git``, as a
    lent machine gets) or git does not answer."""
    folder = Path(folder)
    head = _git("rev-parse", "--verify", "-q", "HEAD", cwd=folder)
    if head is None or head.returncode != 0:
        return None
    edited = _git("diff", "--quiet", "HEAD", "--", ".", cwd=folder)
    if edited is None or edited.returncode not in (0, 1):
        return None
    if edited.returncode == 1:
        return True
    new = _git("ls-files", "--others", "--exclude-standard", "-z", "--", ".", cwd=folder)
    return None if new is None or new.returncode != 0 else bool(new.stdout)


def _git_dirty() -> bool | None:
    """Whether the library code (``nets/``) differs from the recorded commit (:func:`folder_dirty`)."""
    return folder_dirty(_PACKAGE_ROOT / "nets")


class GitUnanswered(RuntimeError):
    """git could not list what the repository holding a results folder tracks (git missing, a
    ``detected dubious ownership`` refusal, a damaged ``.git``): whether a run would replace
    committed results is then unknown, and :func:`committed_files` says so instead of guessing."""


def _repository_above(folder: Path) -> Path | None:
    """The nearest of ``folder`` and its parents holding a ``.git`` entry (a folder, or the file
    a worktree or submodule has), ``None`` if there is none."""
    folder = Path(folder).resolve()
    return next((d for d in (folder, *folder.parents) if (d / ".git").exists()), None)


def committed_files(paths) -> list[Path]:
    """Those of ``paths`` (existing files) that the git repository holding them tracks: results
    committed as a repository's reference, which a run must not silently replace. ``[]`` where no
    repository holds them. Raises :class:`GitUnanswered` (one line, naming the fix) where a
    repository holds them but git cannot answer: the guard never turns itself off silently."""
    by_folder: dict[Path, list[Path]] = {}
    for p in map(Path, paths):
        if p.is_file():
            by_folder.setdefault(p.parent, []).append(p)
    out = []
    for folder, files in by_folder.items():  # one git call per folder: it lists the tracked ones
        r = _git("ls-files", "--", *(p.name for p in files), cwd=folder)
        if r is None or r.returncode != 0:
            top = _repository_above(folder)
            if top is None:
                continue
            why = "git is not installed" if r is None else (r.stderr.strip().splitlines() or ["git failed"])[0]
            fix = (f"git config --global --add safe.directory {top}" if "dubious ownership" in why
                   else "a git that can read the repository")
            raise GitUnanswered(f"cannot tell whether {folder}/ holds results committed to the repository at "
                                f"{top}: {why.removeprefix('fatal: ')}; the fix: {fix}")
        tracked = set(r.stdout.splitlines())
        out += [p for p in files if p.name in tracked]
    return out


@functools.lru_cache(maxsize=1)
def code_version() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the code this process runs, asked of git once (the first call)."""
    return git_commit(), _git_dirty()


#: Where this sitting's models were trained, when not in this process (:func:`trained_elsewhere`).
_TRAINED_ELSEWHERE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("trained_elsewhere", default=None)


@contextlib.contextmanager
def trained_elsewhere(record: dict):
    """Within the block, every :func:`run_provenance` records ``record`` as ``ray_training``: where
    the models it measures were trained (``--executor ray``: the wall time of the training on Ray,
    the threads of each task and the machines, :mod:`nets.node_provenance`), while the CPU,
    versions and threads it records are this process's."""
    token = _TRAINED_ELSEWHERE.set(record)
    try:
        yield
    finally:
        _TRAINED_ELSEWHERE.reset(token)


def run_provenance(*, device: str, started: float, command: str | None = None, precision: str = "fp32") -> dict:
    """How and where a run was made: ``device``, ``precision`` (the training precision,
    ``nets.precision``), package versions, the CPU's model and the flags that matter (the bf16 ones
    included), the git commit and whether ``nets/`` differed from it, ``command`` (default: this
    process's), start time and wall time so far (``started``: a ``time.time()``); on a CUDA device
    ``cuda_float32``, how float32 ran there (:func:`~nets.results_io.numerics.cuda_float32`); and within
    :func:`trained_elsewhere`, ``ray_training``: where the models were trained."""
    commit, dirty = code_version()
    elsewhere = _TRAINED_ELSEWHERE.get()
    return {
        "device": device,
        "precision": precision,
        "versions": versions(),
        "cpu": cpu_info(),
        "git_commit": commit,
        "git_dirty": dirty,
        "command": command if command is not None else command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_time_s": round(time.time() - started, 2),
        **({"cuda_float32": cuda_float32()} if str(device).startswith("cuda") else {}),
        **({} if elsewhere is None else {"ray_training": elsewhere}),
    }


def metadata(profile: Any, experiment: str, *, device: str, started: float,
             command: str | None = None, precision: str = "fp32") -> dict:
    """The provenance block every experiment's results JSON carries (``profile``: a ``Profile``):
    the experiment, the profile, its seeds and epochs, then :func:`run_provenance`."""
    return {
        "experiment": experiment,
        "profile": profile.to_dict(),
        "seeds": list(profile.seeds),
        "epochs": profile.epochs,
        **run_provenance(device=device, started=started, command=command, precision=precision),
    }


#: The fields of ``meta`` that say which sitting computed a group's results.
PROVENANCE_FIELDS = ("command", "started_at", "wall_time_s", "git_commit", "git_dirty", "device")


def provenance(meta: dict) -> dict:
    """The sitting-specific part of a ``meta`` block (see :data:`PROVENANCE_FIELDS`)."""
    return {k: meta.get(k) for k in PROVENANCE_FIELDS}


def without_sitting(result: Any) -> Any:
    """A results dict (or any part of one) less what describes the sitting that computed it rather
    than its numbers: ``meta``, ``group_provenance``, ``ray_training`` (where a Ray sweep trained) and
    every ``*wall_time*`` field, at any depth.
    The tests compare a serial run with a Ray run, a killed and resumed run with an uninterrupted one,
    and ``--groups`` runs with one run this way, number for number."""
    if isinstance(result, dict):
        return {k: without_sitting(v) for k, v in result.items()
                if k not in ("meta", "group_provenance", "ray_training") and "wall_time" not in k}
    if isinstance(result, list):
        return [without_sitting(v) for v in result]
    return result


def result_sittings(result: dict) -> list[tuple[list[str], dict]]:
    """The sittings that computed an experiment's groups, in the groups' order:
    ``[(groups, provenance), ...]``, one entry per distinct provenance."""
    prov = result.get("group_provenance") or {}
    out: list[tuple[list[str], dict]] = []
    for g in result_groups(result):
        p = prov.get(g)
        if p is None:
            continue
        for groups, q in out:
            if q == p:
                groups.append(g)
                break
        else:
            out.append(([g], p))
    return out


def recorded_precision(meta: dict) -> str:
    """The training precision a results file's ``meta`` records; ``"fp32"`` for a file written
    before precision was recorded (every run was float32 then)."""
    return str(meta.get("precision") or "fp32")


def mixed_settings(results: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """Of the results files of one folder (name -> results dict), the first one and each other whose
    recorded profile (its ``groups`` aside: ``--groups`` runs record the part they ran) or training
    precision differs from the first's, as ``"drift.json (seeds [0], not [1])"``: files made with
    other settings, which a report must not present as one sweep's."""
    first: tuple[str, dict] | None = None
    out = []
    for name, r in results.items():
        meta = r.get("meta") if isinstance(r, Mapping) else None
        if not isinstance(meta, Mapping):
            continue
        prof = {k: v for k, v in (meta.get("profile") or {}).items() if k != "groups"}
        prof["precision"] = recorded_precision(meta)
        if first is None:
            first = (name, prof)
            continue
        diff = sorted(k for k in first[1].keys() | prof.keys() if first[1].get(k) != prof.get(k))
        if diff:
            shown = ", ".join(f"{k} {json.dumps(prof.get(k))}, not {json.dumps(first[1].get(k))}" for k in diff[:3])
            out.append(f"{name}.json ({shown}{' ...' if len(diff) > 3 else ''})")
    return (None if first is None else first[0]), out


def profile_differences(meta: dict, profile: Any, precision: str = "fp32") -> list[str]:
    """The profile fields, other than ``groups``, in which the profile recorded in a results
    file's ``meta`` differs from ``profile`` (a field present on one side only counts), and
    ``"precision"`` when the file's training precision (:func:`recorded_precision`) is not
    ``precision``.

    ``groups`` never counts: a ``--groups`` run records the subset it ran, and the file says
    which of the profile's groups are still missing in ``pending_groups``."""
    old = meta.get("profile") or {}
    new = json.loads(json.dumps(profile.to_dict()))
    missing = object()
    diff = [k for k in old.keys() | new.keys() if k != "groups" and old.get(k, missing) != new.get(k, missing)]
    if recorded_precision(meta) != precision:
        diff.append("precision")
    return sorted(diff)
