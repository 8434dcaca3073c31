"""The JSON form of results: plain JSON types, decimals kept as rounded, and the layout files are written in.

:func:`to_jsonable` turns what experiments hold (dataclasses, numpy and torch arrays and scalars,
tuples, paths) into plain JSON types; :func:`rounded` fixes the digits a file keeps; :func:`dumps`
lays the result out, every list of numbers on one line. :func:`~nets.results_io.files.write_json`
writes what these give, sealed (:mod:`nets.results_io.seal`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_jsonable", "rounded", "dumps"]


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
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy array or scalar
        return to_jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def rounded(values: Any, places: int) -> np.ndarray:
    """``values`` (an array, a tensor or nested lists) rounded to ``places`` decimals in float64,
    so that a results file holds exactly those digits. Rounding a float32 array keeps it float32,
    and :func:`to_jsonable` writes a float32 value with the 17 digits of its float64 form
    (0.123 as 0.12300000339746475): three times the text for the same numbers."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch tensor
        values = values.detach().cpu().numpy()
    return np.round(np.asarray(values, dtype=np.float64), places)


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
