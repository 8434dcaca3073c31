"""A results file's seal: the SHA-256 of its content, written with it, so a later edit is detected.

Every JSON document with a ``meta`` record that :func:`~nets.results_io.files.write_json` writes
(the experiments' results files, ``own_data.json``, benchmark records) carries
``meta["content_sha256"]``: the hex SHA-256 of the document without that field, in
:func:`canonical` form (keys sorted, no whitespace, each number in one shortest form). Whitespace,
key order and the way a number is written may change (an editor's or jq's reformatting); a value
may not. A file whose content no longer matches its seal (a group or model row deleted, a per-seed
list shortened, a number changed, a group pasted in) would otherwise be read as a run wrote it, and
its verdicts would silently use what is left; :func:`~nets.results_io.files.read_json` refuses it
instead, in one line naming it.

A file without the field (written before seals, or by hand, as in tests) is read as it is, unless it
records a run started after seals existed (:data:`SEALED_SINCE`): its seal was removed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from typing import Any

__all__ = ["SEAL_FIELD", "SEALED_SINCE", "canonical", "content_digest", "sealed", "seal_damage"]

#: The ``meta`` field that holds the seal.
SEAL_FIELD = "content_sha256"


def _numbers(obj: Any) -> Any:
    """``obj`` with every finite whole float as the int of the same value: JSON has one number type,
    and tools that reformat a file (jq, JavaScript's ``JSON.stringify``) write ``3.0`` as ``3``."""
    if isinstance(obj, float):
        return int(obj) if math.isfinite(obj) and obj.is_integer() else obj
    if isinstance(obj, dict):
        return {k: _numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_numbers(v) for v in obj]
    return obj


def canonical(obj: Any) -> str:
    """``obj`` (parsed JSON) as one canonical string: keys sorted, no whitespace, ASCII only, a whole
    number without a fraction (``3.0`` as ``3``), other floats as ``repr`` writes them (the shortest
    text that reads back as the same double, as in JavaScript; so parsing a file and writing it again,
    here or with jq, gives the same string). NaN and infinities, which no file we write holds, are
    written as JSON extensions rather than refused, so a hand-edited file gets a mismatch, not a crash."""
    return json.dumps(_numbers(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def _unsealed(doc: dict) -> dict:
    return {**doc, "meta": {k: v for k, v in doc["meta"].items() if k != SEAL_FIELD}}


def content_digest(doc: dict) -> str:
    """The hex SHA-256 of :func:`canonical` ``doc`` with any seal left out of its ``meta``."""
    return hashlib.sha256(canonical(_unsealed(doc)).encode("ascii")).hexdigest()


def sealed(doc: Any) -> Any:
    """``doc`` (plain JSON types) with its seal as the last field of ``meta`` (an earlier seal
    replaced); a document that is not a dict with a ``meta`` dict is returned as it is."""
    if not (isinstance(doc, dict) and isinstance(doc.get("meta"), dict)):
        return doc
    out = _unsealed(doc)
    out["meta"][SEAL_FIELD] = content_digest(out)
    return out


#: From this time on (commit c20adb2) every results file a run wrote carries its seal: one that records a
#: later start (``meta.started_at``) and has none had it removed.
SEALED_SINCE = datetime.datetime(2026, 12, 6, 13, 0, 36, tzinfo=datetime.timezone.utc)


def _started(meta: dict) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(meta.get("started_at")), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def seal_damage(doc: Any) -> str | None:
    """Why ``doc``, parsed from a file, does not match its seal; ``None`` when it matches or has no
    seal (a document with no ``meta`` dict has none), unless its run started after
    :data:`SEALED_SINCE` (so it was written with one, which was removed: without that, deleting the
    seal would let any edit through)."""
    if not (isinstance(doc, dict) and isinstance(doc.get("meta"), dict)):
        return None
    if SEAL_FIELD not in doc["meta"]:
        started = _started(doc["meta"])
        if started is not None and started >= SEALED_SINCE:
            return (f"its meta.{SEAL_FIELD} is missing, though its run, started {doc['meta']['started_at']}, "
                    f"wrote one")
        return None
    seal = doc["meta"][SEAL_FIELD]
    if not isinstance(seal, str):
        return f"its meta.{SEAL_FIELD} is not a hex digest"
    if content_digest(doc) != seal:
        return f"its content no longer matches meta.{SEAL_FIELD}, the seal its run wrote"
    return None
