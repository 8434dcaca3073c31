"""The folder of an ``own-data`` run (:mod:`nets.experiments.own_data`): ``source.json``, which ties its
checkpoints to one data file and model; a refused run leaving the folder as it was; the other
groups' results an earlier ``own_data.json`` keeps; and what a run that replaces that file says.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator, Sequence

from nets.results_io import ResultsFileError, move_aside, read_json, write_json

__all__ = ["OwnDataError", "CHECKPOINT_SOURCE", "claim_source", "withdrawn_if_refused", "kept_groups",
           "say_replaced", "sitting"]


class OwnDataError(ValueError):
    """A folder, file or setting the experiment cannot use; one line."""


#: What ``source.json`` must keep for the checkpoints in the folder to be this run's (the rest of a
#: checkpoint's identity is in its file name).
CHECKPOINT_SOURCE = ("data_sha256", "model")


def claim_source(out: Path, source: dict) -> None:
    """Write ``out/source.json`` (``source`` in its JSON form); where ``out/checkpoints/`` already holds
    checkpoints, first check that the ``source.json`` there names the same data (SHA-256) and model
    (:data:`CHECKPOINT_SOURCE`)."""
    path = out / "source.json"
    if path.exists() and any((out / "checkpoints").glob("*.pt")):
        old = json.loads(path.read_text())
        changed = [k for k in CHECKPOINT_SOURCE if old.get(k) != source[k]]
        if changed:
            was = {"data_sha256": f"data (SHA-256 {str(old.get('data_sha256'))[:12]}..., "
                                  f"{source['data_sha256'][:12]}... now)",
                   "model": f"model ({old.get('model')}, {source['model']} now)"}
            raise OwnDataError(f"--out {out} holds checkpoints trained on other {' and '.join(was[k] for k in changed)} "
                               "(source.json); they would be loaded as this run's: give another --out")
    write_json(path, source)


@contextlib.contextmanager
def withdrawn_if_refused(out: Path, fresh: Sequence[Path]) -> Iterator[None]:
    """Run the ``with`` block; where it raises ValueError (a refusal the checks before training could
    not see: WT's first-layer pooling, a factory's shared modules, a batch norm's lone last sample)
    before any checkpoint exists, remove what this run added to ``out`` (``fresh``: its
    ``source.json``, then the folders it created, if empty), then re-raise."""
    try:
        yield
    except ValueError:
        if not any((out / "checkpoints").glob("**/*.pt")):
            for path in fresh:
                with contextlib.suppress(OSError):
                    path.unlink() if path.name == "source.json" else path.rmdir()  # a folder: only when empty
        raise


def kept_groups(out: Path, source: dict, groups: Sequence[str], progress: bool) -> dict:
    """The other groups' sections of an earlier ``own_data.json`` in ``out`` made from the same data,
    model and settings (``source`` in its JSON form): ``{"table1": {g: ...}, "spectral": ...,
    "per_class": ..., "group_provenance": {g: how that group was made}, "order": the file's groups
    in its order}`` (empty where there is none); an earlier file made otherwise has its other groups
    dropped, said on stdout. An earlier file that is damaged, or was changed after its run wrote it
    (:mod:`nets.results_io.seal`), keeps nothing: it is moved aside (``own_data.json.corrupt``), said in
    one line, so that an edit is neither lost nor carried into the new file under a new seal."""
    path = out / "own_data.json"
    try:
        old = read_json(path) if path.exists() else None
    except OSError:
        old = None
    except ResultsFileError as e:
        aside = move_aside(path)
        print(f"own-data: {path} is damaged ({e.why or 'not valid JSON'}); moved it to {aside.name}, and none of "
              f"its groups are kept (add them to --groups to measure them again from their checkpoints)", flush=True)
        return {}
    if old is None:
        return {}
    order = list(old.get("table1", {}).get("groups", {}))  # a rerun group keeps its place, kept or not
    others = [g for g in order if g not in groups]
    if not others:
        return {"order": order}
    same = all(old.get("source", {}).get(k) == source[k] for k in (*CHECKPOINT_SOURCE, "settings"))
    if not same:
        print(f"own-data: {path} holds {', '.join(others)} from other settings; not kept (add them to --groups to "
              f"rerun them with these)", flush=True)
        return {"order": order}
    if progress:
        print(f"own-data: keeping {', '.join(others)} from {path} (same data, model and settings)", flush=True)
    made = old.get("group_provenance") or {}  # a file from before per-group provenance: its meta for each
    return {**{k: {g: old[k]["groups"][g] for g in others if g in old.get(k, {}).get("groups", {})}
               for k in ("table1", "spectral", "per_class")},
            "group_provenance": {g: made.get(g) or sitting(old.get("meta", {})) for g in others}, "order": order}


def say_replaced(path: Path, settings: dict) -> None:
    """Say so on stdout where ``path`` holds results made with other settings than ``settings`` (in
    their JSON form): this run replaces it, and its checkpoints, all kept, bring it back."""
    try:
        old = json.loads(path.read_text()).get("source", {}).get("settings", {}) if path.exists() else {}
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(old, dict):
        return
    changed = [k for k in settings if k in old and old[k] != settings[k]]
    if changed:
        what = "; ".join(f"{k} {old[k]} there, {settings[k]} here" for k in changed[:3])
        print(f"own-data: replacing {path}, made with other settings ({what}); its checkpoints are kept, so "
              "that command run again writes it back without training", flush=True)


def sitting(meta: dict) -> dict:
    """What ``group_provenance`` keeps of one sitting's ``meta``: its command, start and wall time."""
    return {k: meta.get(k) for k in ("command", "started_at", "wall_time_s")}
