"""Drop the per-epoch training histories from a committed ``table1.json`` to keep the tracked tree small.

Each run of ``table1.json`` records its training curves (``history``: loss, task loss, regularizer
loss and validation accuracy per epoch, about 8 KB a run at 300 epochs). No figure or report reads
them (the checkpoints hold them too), yet a many-seed folder is mostly histories: 12 seeds on two
groups make ``results/paper-s12/paper/table1.json`` 1.36 MB of the 16 MiB the tracked tree may use.

:func:`drop_histories` sets every run's ``history`` to ``None`` and records what was dropped in
``histories_dropped``: how many runs, the full file's SHA-256, size and git blob id (so
``git cat-file -p BLOB`` brings the full file back from the repository's history once it has been
committed), and the command. Every other number stays as it was, so REPORT.md renders the same.

    python -m nets.results_io.slim results/paper-s12/paper/table1.json

Only ``table1.json`` files are slimmed (``cnn.json``'s histories draw the CNN's validation curves);
anything else, or a file already slimmed, is a one-line error (exit 2).
"""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path
from typing import Sequence

from nets.results_io.files import read_json, write_json

__all__ = ["SlimError", "drop_histories", "git_blob_id", "main"]


class SlimError(ValueError):
    """A file that cannot be slimmed; one line."""


def git_blob_id(raw: bytes) -> str:
    """The id git gives a file of these bytes (SHA-1 of ``blob <size>\\0`` and the bytes)."""
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()


def drop_histories(data: dict, raw: bytes, command: str | None = None) -> dict:
    """``data`` (a ``table1.json`` read from the bytes ``raw``) with every run's ``history`` set to
    ``None`` and a ``histories_dropped`` record (module docstring). Raises :class:`SlimError` for
    another experiment's file or one already slimmed."""
    if not isinstance(data, dict):
        raise SlimError(f"it holds a JSON {type(data).__name__}, not an experiment results file")
    experiment = (data.get("meta") or {}).get("experiment")
    if experiment != "table1":
        raise SlimError(f"only table1.json's histories are dropped (nothing reads them); this file is "
                        f"{experiment or 'not an experiment results file'}'s")
    if "histories_dropped" in data:
        raise SlimError("its histories were already dropped")
    n = 0
    for entry in data.get("groups", {}).values():
        for method in entry.get("methods", {}).values():
            for run in method.get("runs", []):
                if run.get("history") is not None:
                    run["history"] = None
                    n += 1
    data["histories_dropped"] = {
        "runs": n,
        "what": "each run's per-epoch history (loss, task_loss, reg_loss, val_accuracy); every other number kept",
        "full_sha256": hashlib.sha256(raw).hexdigest(),
        "full_size": len(raw),
        "full_git_blob": git_blob_id(raw),
        "command": command,
    }
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nets.results_io.slim FILE...``: slim each file in place (atomically)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or any(a.startswith("-") for a in args):
        print("usage: python -m nets.results_io.slim TABLE1_JSON...", file=sys.stderr)
        return 2
    for name in args:
        path = Path(name)
        try:
            raw = path.read_bytes()
            data = drop_histories(read_json(path), raw,
                                  shlex.join(["python", "-m", "nets.results_io.slim", *args]))
        except (OSError, ValueError) as e:  # SlimError, ResultsFileError, a missing file
            print(f"error: {path}: {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
        write_json(path, data)
        record = data["histories_dropped"]
        print(f"{path}: dropped {record['runs']} histories ({record['full_size']:,} -> {path.stat().st_size:,} bytes; "
              f"the full file is git blob {record['full_git_blob']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
