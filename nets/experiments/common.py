"""What every experiment shares: where results go, run metadata, atomic JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nets.experiments.profiles import Profile

__all__ = [
    "RESULTS_ROOT",
    "EXPERIMENTS",
    "out_dir",
    "checkpoint_dir",
    "figure_dir",
    "result_path",
    "write_json",
    "read_json",
    "dumps",
    "versions",
    "command_line",
    "metadata",
    "mean_std",
    "to_jsonable",
    "draw",
    "finish",
]

RESULTS_ROOT = Path("results")
#: Experiments in the order ``reproduce`` runs them (drift reuses table1's models).
EXPERIMENTS = ("table1", "drift", "spectral", "tsne", "saliency")


def out_dir(profile: Profile, results_root: str | os.PathLike | None = None) -> Path:
    """``<results_root>/<profile name>/``."""
    return Path(results_root if results_root is not None else RESULTS_ROOT) / profile.name


def checkpoint_dir(profile: Profile, results_root=None) -> Path:
    return out_dir(profile, results_root) / "checkpoints"


def figure_dir(profile: Profile, results_root=None) -> Path:
    return out_dir(profile, results_root) / "figures"


def result_path(profile: Profile, experiment: str, results_root=None) -> Path:
    return out_dir(profile, results_root) / f"{experiment}.json"


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, numpy and torch scalars/arrays -> plain JSON types.
    Non-finite floats become ``None`` (JSON has no NaN)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def dumps(obj: Any, indent: int = 1, _level: int = 0) -> str:
    """JSON with dicts (and lists of dicts) indented, but every list of numbers or
    strings, however nested, on one line: readable, and small for maps and coordinates."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        return "[\n" + ",\n".join(inner + dumps(v, indent, _level + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as JSON atomically: a temporary file in the same folder,
    then ``os.replace``, so a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps(to_jsonable(data)))
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_json(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return json.load(f)


def versions() -> dict[str, str]:
    import matplotlib
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


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user would type it again (``python -m nets ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(os.path.join("nets", "__main__.py")):
        argv = ["python", "-m", "nets", *argv[1:]]
    return shlex.join(argv)


def _git(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    """The commit checked out where this code lives (``None`` outside a git clone)."""
    out = _git("rev-parse", "HEAD")
    return (out.stdout.strip() or None) if out is not None and out.returncode == 0 else None


def _git_dirty() -> bool | None:
    """Whether the library code (``nets/``) differs from the recorded commit."""
    out = _git("diff", "--quiet", "HEAD", "--", str(Path(__file__).resolve().parents[1]))
    return None if out is None or out.returncode not in (0, 1) else out.returncode == 1


# The code a process runs is the code it imported: a sweep that runs for hours records the
# commit (and whether nets/ had uncommitted changes) as they were when it started.
_CODE_AT_START = (git_commit(), _git_dirty())


def metadata(profile: Profile, experiment: str, *, device: str, started: float,
             command: str | None = None) -> dict:
    """The provenance block every results JSON carries."""
    return {
        "experiment": experiment,
        "profile": profile.to_dict(),
        "seeds": list(profile.seeds),
        "epochs": profile.epochs,
        "device": device,
        "versions": versions(),
        "git_commit": _CODE_AT_START[0],
        "git_dirty": _CODE_AT_START[1],
        "command": command if command is not None else command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_time_s": round(time.time() - started, 2),
    }


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and population standard deviation (ddof=0: 0 for one seed) over seeds."""
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=0))}


def draw(experiment: str, results: dict, fig_dir: str | os.PathLike) -> list[Path]:
    """Draw and save (PNG + PDF) every figure of one experiment from its results dict."""
    from nets.plots import figures_for, save_figure

    paths: list[Path] = []
    for stem, fig in figures_for(experiment, results).items():
        paths += save_figure(fig, Path(fig_dir) / stem)
    return paths


def finish(profile: Profile, experiment: str, body: dict, results_root=None, *, device: str, started: float,
           command: str | None = None) -> dict:
    """Close an experiment: draw its figures from the JSON form of its results (so
    figures never depend on anything the JSON lacks), then write ``<experiment>.json``
    with the provenance block (wall time including the figures). Returns the dict."""
    results = json.loads(dumps(to_jsonable(body)))
    path = result_path(profile, experiment, results_root)
    if "groups" in results:
        results = _merge_groups(profile, results, path)
    draw(experiment, results, figure_dir(profile, results_root))
    meta = metadata(profile, experiment, device=device, started=started, command=command)
    if "groups" in results:  # which sitting computed each group (kept groups keep theirs)
        kept = results.pop("group_provenance", {})
        results["group_provenance"] = {g: kept.get(g) or provenance(meta) for g in results["groups"]}
    results = {"meta": meta, **results}
    write_json(path, results)
    return results


#: The fields of ``meta`` that say which sitting computed a group's results.
PROVENANCE_FIELDS = ("command", "started_at", "wall_time_s", "git_commit", "git_dirty", "device")


def provenance(meta: dict) -> dict:
    """The sitting-specific part of a ``meta`` block (see :data:`PROVENANCE_FIELDS`)."""
    return {k: meta.get(k) for k in PROVENANCE_FIELDS}


def finished_groups(profile: Profile, experiment: str, results_root=None) -> tuple[str, ...]:
    """The groups of ``profile`` whose results ``<experiment>.json`` already holds from
    this same sweep (same profile, sizes and seeds; see :func:`_same_sweep`), in the
    profile's order; ``()`` when the file is missing, unreadable or from another sweep."""
    old = _sweep_results(result_path(profile, experiment, results_root), profile)
    return tuple(g for g in profile.groups if g in ((old or {}).get("groups") or {}))


def _sweep_results(path: Path, profile: Profile) -> dict | None:
    """The results file at ``path`` if it exists, reads, and comes from this same sweep
    as ``profile`` (:func:`_same_sweep`); else ``None``."""
    if not path.exists():
        return None
    try:
        old = read_json(path)
    except (OSError, ValueError):
        return None
    return old if _same_sweep(old.get("meta", {}), profile) else None


def result_sittings(result: dict) -> list[tuple[list[str], dict]]:
    """The sittings that computed an experiment's groups, in the groups' order:
    ``[(groups, provenance), ...]``, one entry per distinct provenance."""
    prov = result.get("group_provenance") or {}
    out: list[tuple[list[str], dict]] = []
    for g in result.get("groups", {}):
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


def profile_differences(meta: dict, profile: Profile) -> list[str]:
    """The profile fields, other than ``groups``, in which the profile recorded in a results
    file's ``meta`` differs from ``profile`` (a field present on one side only counts).

    ``groups`` never counts: a ``--groups`` run records the subset it ran, and the file says
    which of the profile's groups are still missing in ``pending_groups``."""
    old = meta.get("profile") or {}
    new = json.loads(json.dumps(profile.to_dict()))
    missing = object()
    return sorted(k for k in old.keys() | new.keys()
                  if k != "groups" and old.get(k, missing) != new.get(k, missing))


def _same_sweep(meta: dict, profile: Profile) -> bool:
    """Whether results with provenance ``meta`` come from ``profile`` but for the groups."""
    return not profile_differences(meta, profile)


def _merge_groups(profile: Profile, results: dict, path: Path) -> dict:
    """Keep the groups of an existing ``path`` that this run did not compute (when
    that file is from the same profile, sizes and seeds), and say which of the
    profile's groups are still missing: ``complete`` and ``pending_groups``."""
    from nets.experiments.profiles import PROFILES

    groups = dict(results["groups"])
    old = _sweep_results(path, profile)
    if old is not None:
        kept = {g: v for g, v in old.get("groups", {}).items() if g not in groups}
        groups = {**kept, **groups}
        old_prov = old.get("group_provenance") or {}
        results = {**results, "group_provenance": {g: old_prov.get(g) or provenance(old.get("meta", {}))
                                                   for g in kept}}
    full = PROFILES[profile.name].groups if profile.name in PROFILES else profile.groups
    order = [g for g in full if g in groups] + [g for g in groups if g not in full]
    pending = [g for g in full if g not in groups]
    return {**results, "complete": not pending, "pending_groups": pending, "groups": {g: groups[g] for g in order}}
