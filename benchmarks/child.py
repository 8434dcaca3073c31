"""A benchmark's item run in a fresh subprocess, its result read back: the child prints one JSON
line (the last line starting with ``{``); a child that fails ends the benchmark with its stderr."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["json_child"]


def json_child(cmd: Sequence[str], what: str, cwd: Path, env: Mapping[str, str] | None = None) -> dict:
    """Run ``cmd`` and return the JSON object of its last ``{``-line; ``SystemExit`` naming ``what``
    with the end of its stderr when it fails or prints none."""
    res = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, env=None if env is None else dict(env))
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if res.returncode != 0 or not lines:
        raise SystemExit(f"error: {what} failed: {(res.stderr or res.stdout)[-1500:]}")
    return json.loads(lines[-1])
