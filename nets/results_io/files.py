"""Where results live, and reading and writing them: paths, JSON, and damaged files moved aside.

Layout: ``<results_root>/<profile>/<experiment>.json``, figures in ``.../figures/``, training
checkpoints in ``.../checkpoints/``. Every write is atomic (:mod:`nets.results_io.atomic`).

A file that exists but cannot be read (truncated, empty, garbage) is never deleted: the
functions that recover from it (:func:`read_results`, and
:func:`nets.results_io.torch_files.load_torch_file` for checkpoints) move it aside to
``<name>.corrupt`` (kept for inspection), print one line naming it, and return ``None`` so the
caller recomputes; :func:`read_json` instead raises :class:`ResultsFileError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from nets.results_io.atomic import atomic_write
from nets.results_io.json_form import dumps, to_jsonable
from nets.results_io.paper import PAPER_DATASET
from nets.results_io.seal import seal_damage, sealed

__all__ = [
    "RESULTS_ROOT",
    "WouldTrain",
    "group_sections",
    "result_groups",
    "EXPERIMENTS",
    "REPORT_EXPERIMENTS",
    "out_dir",
    "checkpoint_dir",
    "precision_dir",
    "saved_checkpoints_text",
    "figure_dir",
    "drawing_marker",
    "result_path",
    "write_json",
    "read_json",
    "read_results",
    "load_results",
    "ResultsFileError",
    "move_aside",
    "peek_results",
    "results_damage",
    "examine_results",
    "sha256_file",
]

RESULTS_ROOT = Path("results")
#: Experiments in the order ``reproduce`` runs them (drift reuses table1's models).
EXPERIMENTS = ("table1", "drift", "spectral", "tsne", "saliency")
#: The results files REPORT.md's MLP part reads (``cnn.json`` is read by its own section).
REPORT_EXPERIMENTS = (*EXPERIMENTS, "intervals", "centered", "detached", "scale", "si_settings", "per_class", "between",
                      "train_size")
#: Results files that hold their numbers per group under ``"groups"``: one without that object is damaged.
GROUPED_RESULTS = (*REPORT_EXPERIMENTS, "cnn_scale")


class ResultsFileError(ValueError):
    """A results file exists but is not valid JSON, or not as its run wrote it; ``str(e)`` is one
    line naming it, ``why`` (when given) the reason alone."""

    def __init__(self, message: str, why: str | None = None):
        super().__init__(message)
        self.why = why


class WouldTrain(RuntimeError):
    """An evaluation-only command (``intervals``, ``scale``) found a checkpoint it needs missing or
    unfinished; ``str(e)`` is one line naming it."""


def _name(profile: Any) -> str:
    return profile if isinstance(profile, str) else profile.name


def out_dir(profile: Any, results_root: str | os.PathLike | None = None) -> Path:
    """``<results_root>/<profile name>/`` (``profile``: a ``Profile`` or its name)."""
    return Path(results_root if results_root is not None else RESULTS_ROOT) / _name(profile)


def checkpoint_dir(profile: Any, results_root=None) -> Path:
    """Where the trainer keeps the checkpoints of ``profile``'s runs: ``<out_dir>/checkpoints/`` on
    the paper's dataset, ``<out_dir>/checkpoints/<dataset>/`` on another (a profile whose
    ``dataset`` is not :data:`~nets.results_io.paper.PAPER_DATASET`), so a checkpoint trained on one
    dataset is never loaded as a finished run on the other (a checkpoint's name is its config key
    and seed only)."""
    return checkpoints_in(out_dir(profile, results_root), getattr(profile, "dataset", PAPER_DATASET))


def checkpoints_in(folder: str | os.PathLike, dataset: str = PAPER_DATASET) -> Path:
    """The checkpoint folder of the results folder ``folder`` (``<results_root>/<profile>/``) for
    runs on ``dataset``: ``folder/checkpoints/``, or ``folder/checkpoints/<dataset>/`` on a dataset
    other than the paper's (:func:`checkpoint_dir`'s rule, given the folder itself)."""
    base = Path(folder) / "checkpoints"
    return base if dataset == PAPER_DATASET else base / dataset


def saved_checkpoints_text(folder: str | os.PathLike) -> str:
    """What an interrupted run has saved in the checkpoint folder ``folder``, for its one-line
    message: how many checkpoint files the folder and its subfolders hold (a finished run's final
    one, a run in progress's latest, saved every few epochs; other precisions', datasets' and
    experiments' such as ``train_size/`` included), so the same command resumes from them; or that
    there is none yet, so it starts over."""
    n = sum(1 for _ in Path(folder).rglob("*.pt")) if Path(folder).is_dir() else 0
    if n == 0:
        return (f"no training run had saved a checkpoint yet in {folder}/ (one is saved every few epochs and at "
                "the end): run the same command again to start over")
    return (f"{n} checkpoint file{'s' if n > 1 else ''} in {folder}/ and below (a finished run's final one, a run "
            "in progress's latest, saved every few epochs): run the same command again to resume")


def precision_dir(run_dir: str | os.PathLike, precision: str = "fp32") -> Path:
    """Where the checkpoints of runs trained at ``precision`` live in the checkpoint folder
    ``run_dir``: the folder itself for float32, ``run_dir / precision`` (``bf16/``) otherwise,
    apart from the float32 ones."""
    return Path(run_dir) if precision == "fp32" else Path(run_dir) / precision


def figure_dir(profile: Any, results_root=None) -> Path:
    return out_dir(profile, results_root) / "figures"


def drawing_marker(fig_dir: str | os.PathLike, experiment: str) -> Path:
    """``<fig_dir>/.<experiment>.drawing``: written before an experiment's results file and removed once
    its figures are drawn, so that a run stopped in between leaves word that its figures are missing
    or stale (``reproduce`` and ``report`` then draw them from the results file)."""
    return Path(fig_dir) / f".{experiment}.drawing"


def result_path(profile: Any, experiment: str, results_root=None) -> Path:
    return out_dir(profile, results_root) / f"{experiment}.json"


def group_sections(result: Mapping[str, Any]) -> dict[str | None, dict]:
    """The parts of a results dict keyed by group, by name: ``{None: result}`` when it has a
    top-level ``groups`` (``table1.json``, ``drift.json``, ...), else each top-level section that
    has one (``cnn.json``'s ``table1``, ``drift`` and ``spectral``), in the file's order; ``{}``
    when none has. The values are the dicts themselves, not copies."""
    if "groups" in result:
        return {None: result}  # type: ignore[dict-item]
    return {k: v for k, v in result.items() if isinstance(v, dict) and "groups" in v}


def result_groups(result: Mapping[str, Any]) -> list[str]:
    """The groups a results dict covers, in its order (the union over :func:`group_sections`)."""
    return list(dict.fromkeys(g for section in group_sections(result).values() for g in section["groups"]))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` (made JSON-ready by :func:`to_jsonable`) as JSON, atomically; a dict with a
    ``meta`` dict (a results file) is sealed (:mod:`nets.results_io.seal`), ``data`` left as it is."""
    text = dumps(sealed(to_jsonable(data))) + "\n"
    return atomic_write(path, lambda f: f.write(text))


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``. Raises :class:`ResultsFileError` (one line naming the file) when
    it is empty or not valid JSON, or sealed and changed since (:func:`~nets.results_io.seal.seal_damage`;
    the reason given is :func:`results_damage`'s, which names a deleted or pasted-in group first),
    ``FileNotFoundError`` when it does not exist."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        if not raw.strip():
            raise ValueError("the file is empty")
        data = json.loads(raw.decode("utf-8"))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ResultsFileError(f"{path} is not a valid results file ({why}); move it away or "
                               f"recompute it (the experiment's command with --overwrite)") from None
    if seal_damage(data):
        raise _edited(path, data)
    return data


def _edited(path: Path, data: dict) -> ResultsFileError:
    """The one-line error for a sealed ``data`` read from ``path`` that no longer matches its seal: why
    (:func:`results_damage`), and how to restore it or recompute it, with the command(s) that wrote it."""
    why = results_damage(path, data)
    command, made = data["meta"].get("command"), data.get("group_provenance")
    sittings = {str(p.get("command")) for p in made.values() if isinstance(p, dict)} if isinstance(made, dict) else ()
    again = ("the commands its group_provenance records, one per group" if len(sittings) > 1 else
             f"`{command}`" if isinstance(command, str) and command else "the command that wrote it")
    return ResultsFileError(f"{path} is not as its run wrote it ({why}); restore it (`git checkout -- {path}` where it "
                            f"is committed, or a copy) or recompute it ({again}; with --overwrite where the folder "
                            f"holds committed results)", why)


def load_results(results_dir: str | os.PathLike,
                 experiments: Sequence[str] = REPORT_EXPERIMENTS) -> dict[str, Any]:
    """The JSON of every experiment of ``experiments`` whose ``<name>.json`` is in ``results_dir``,
    by name (an absent file is left out; a damaged one, or JSON that is not an object with the
    ``meta`` record every experiment writes, raises :class:`ResultsFileError` naming it)."""
    out = {}
    for name in experiments:
        p = Path(results_dir) / f"{name}.json"
        if p.exists():
            data = read_json(p)
            what = results_damage(p, data)
            if what:
                raise ResultsFileError(f"{p} is not a valid results file ({what}); move it away or recompute it "
                                       f"(the experiment's command with --overwrite)")
            out[name] = data
    return out


def results_damage(path: str | os.PathLike, data: Any) -> str | None:
    """What makes ``data``, read from the results file ``path``, not a results file (``None`` when
    nothing): not a JSON object, no ``meta`` record, or, for a file of :data:`GROUPED_RESULTS`, no
    ``groups`` object, or groups other than those its ``group_provenance`` says were computed (a group
    deleted or pasted in by hand: the verdicts would silently use the rest), or, checked last, content
    that no longer matches its seal (:func:`~nets.results_io.seal.seal_damage`)."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}"
    if not isinstance(data.get("meta"), dict):
        return "no meta record"
    if Path(path).stem in GROUPED_RESULTS and not isinstance(data.get("groups"), dict):
        return "no groups object"
    made = data.get("group_provenance")
    if Path(path).stem in GROUPED_RESULTS and isinstance(made, dict) and set(made) != set(data["groups"]):
        lost, unmade = sorted(set(made) - set(data["groups"])), sorted(set(data["groups"]) - set(made))
        return "its groups and group_provenance disagree: " + "; ".join(
            [*([f"no results for {', '.join(lost)}, which group_provenance says were computed"] if lost else []),
             *([f"results for {', '.join(unmade)}, which no run computed"] if unmade else [])])
    return seal_damage(data)


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes as stored (hex), read in 1 MiB blocks: a checkpoint's in the
    archive manifest, an images file's in ``audit.json`` / ``own_data.json``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def move_aside(path: str | os.PathLike, suffix: str = "corrupt") -> Path:
    """Rename ``path`` to ``<path>.<suffix>`` (``.<suffix>.1``, ... if taken), so nothing is lost: a
    damaged file (``corrupt``), or one that no longer belongs with the files beside it; returns the
    new path."""
    path = Path(path)
    target = path.with_name(f"{path.name}.{suffix}")
    k = 0
    while target.exists():
        k += 1
        target = path.with_name(f"{path.name}.{suffix}.{k}")
    os.replace(path, target)
    return target


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def examine_results(path: str | os.PathLike) -> tuple[dict | None, str | None]:
    """The results dict in an existing ``path`` and ``None``, or ``None`` and what damages the file
    (read once; nothing moved)."""
    path = Path(path)
    try:
        data = read_json(path)
    except ResultsFileError as e:
        return None, e.why or "not valid JSON"
    why = results_damage(path, data)
    return (None, why) if why else (data, None)


def peek_results(path: str | os.PathLike) -> dict | None:
    """The results dict in ``path``; ``None`` when the file does not exist or is damaged (not a JSON
    object). A damaged file is left where it is: a command that only looks at it (a settings check,
    an evaluation-only command's precision) must not move aside a file it will not recompute."""
    path = Path(path)
    return examine_results(path)[0] if path.exists() else None


def read_results(path: str | os.PathLike) -> dict | None:
    """The results dict in ``path``; ``None`` when the file does not exist, or when it is
    damaged: then it is moved aside (:func:`move_aside`) with one line saying so, and the
    caller recomputes it (call this only where it does)."""
    path = Path(path)
    if not path.exists():
        return None
    data, why = examine_results(path)
    if why:
        aside = move_aside(path)
        _warn(f"warning: {path} is damaged ({why}); moved it to {aside.name} and recomputing it")
    return data
