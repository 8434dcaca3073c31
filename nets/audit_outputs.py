"""What ``python -m nets audit`` writes into ``--out``: ``audit.json``, ``audit.png`` / ``.pdf``
(:meth:`nets.auditing.AuditResult.figure`) and, with ``--baseline``, ``compare.json``; every file
written atomically, and nothing lost: an earlier audit of another setup (another model, weights
file, images, group or sizes) is moved aside to ``audit.json.earlier`` with its ``compare.json``,
and an earlier ``compare.json`` that a run without ``--baseline`` would leave beside the new audit
is moved aside too, so the folder's files all describe one run.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from nets.results_io import move_aside, palette_png, write_bytes

__all__ = ["write_audit", "audit_setup", "another_audit"]


def audit_setup(record: dict) -> dict:
    """What an ``audit.json`` record audited: everything but its numbers and how it was run (device,
    chunk size, provenance); the weights and images files by their SHA-256, not their paths."""
    settings = {k: v for k, v in record.get("settings", {}).items() if k not in ("provenance", "chunk_size")}
    source = {k: v for k, v in settings.pop("source", {}).items() if k not in ("device", "weights", "images")}
    return {"model": record.get("model"), "group": record.get("group"), "input_shape": record.get("input_shape"),
            "n_samples": record.get("n_samples"), "settings": settings, "source": source}


def another_audit(path: Path, record: dict) -> str | None:
    """Where ``path`` holds an audit of another setup than ``record``'s (another model, weights, images,
    group or sizes), what it audited (``"MODEL under GROUP"``); else ``None`` (none, a damaged file, or
    the same audit run again, which the new one replaces)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or audit_setup(old) == audit_setup(json.loads(json.dumps(record))):
        return None
    return f"{old.get('model')} under {old.get('group')}"


def write_audit(out: Path, result: Any, comparison: Any = None) -> list[Path]:
    """Write ``result`` (an :class:`~nets.auditing.AuditResult`) and ``comparison`` (a
    :class:`~nets.audit_compare.Comparison`, or ``None``) into ``out`` (module docstring), saying on
    stdout what it moves aside; returns the paths written. Raises ``ResultsWriteError`` / ``OSError``."""
    import matplotlib.pyplot as plt

    fig = result.figure()
    blobs = {"audit.json": (json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n").encode()}
    if comparison is not None:
        blobs["compare.json"] = (json.dumps(comparison.to_dict(), indent=1, allow_nan=False) + "\n").encode()
    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150)
        blobs[f"audit.{fmt}"] = palette_png(buf.getvalue()) if fmt == "png" else buf.getvalue()
    plt.close(fig)
    earlier = another_audit(out / "audit.json", result.to_dict())
    for name in ("audit.json", "compare.json") if earlier else ():  # its record and its comparison, kept
        if (out / name).exists():
            print(f"moved {out / name}, from an audit of {earlier}, aside to "
                  f"{move_aside(out / name, suffix='earlier').name}")
    if comparison is None and (out / "compare.json").exists():  # an earlier audit's, of another run
        print(f"moved {out / 'compare.json'}, an earlier audit's comparison, aside to "
              f"{move_aside(out / 'compare.json', suffix='earlier').name}")
    for name, data in blobs.items():
        write_bytes(out / name, data)
    return [out / name for name in blobs]
