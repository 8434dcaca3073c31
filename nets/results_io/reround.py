"""Rewrite the rounded arrays of saliency.json and tsne.json files with the digits they were
rounded to: saliency maps and t-SNE coordinates at 3 decimals, images at 2.

Files written before :func:`nets.results_io.rounded` existed rounded these float32 arrays in
float32, so each value was written with the 17 digits of its float64 form (0.123 as
0.12300000339746475). This rewrites each such value as its rounded decimal, checking that it
was a float32 value and keeps it (it moves by less than half a float32 step);
nothing else in the file is touched. Files already in the new form are left
alone; ``--check`` only reports which files would change.

    python -m nets.results_io.reround $(git ls-files '*saliency.json' '*tsne.json') [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nets.results_io.files import read_json, write_json
from nets.results_io.json_form import dumps, rounded, to_jsonable

__all__ = ["ROUNDED_ARRAYS", "reround", "main"]

# experiment -> [(path inside each group, decimals)]; "*" is every key of a dict.
ROUNDED_ARRAYS = {
    "saliency": [(("images",), 2), (("methods", "*", "maps"), 3)],
    "tsne": [(("methods", "*", "coords"), 3)],
}


def _arrays(node, path, where):
    """(parent dict, key, dotted name) of every array at ``path`` below ``node``."""
    head, rest = path[0], path[1:]
    keys = list(node) if head == "*" else [head] if head in node else []
    for k in keys:
        if rest:
            yield from _arrays(node[k], rest, f"{where}.{k}")
        else:
            yield node, k, f"{where}.{k}"


def reround(result: dict) -> int:
    """Rewrite ``result``'s rounded arrays in place; the number of values whose text changes.
    Raises ``ValueError`` (naming the array) when a value is neither a float32 nor already rounded,
    or would change its float32 value; ``result`` may then be partly rewritten (the file is not)."""
    if not isinstance(result, dict):
        raise ValueError(f"it holds a JSON {type(result).__name__}, not an experiment results file")
    experiment = (result.get("meta") or {}).get("experiment")
    changed = 0
    for g, entry in result.get("groups", {}).items():
        for path, places in ROUNDED_ARRAYS.get(experiment, []):
            for parent, key, where in _arrays(entry, path, f"groups.{g}"):
                old = np.asarray(parent[key], dtype=np.float64)
                new = rounded(old, places)
                was_float32 = old.astype(np.float32).astype(np.float64) == old
                if not np.all(was_float32 | (new == old)):
                    raise ValueError(f"{where}: a value is neither a float32 nor rounded to {places} decimals")
                if not np.array_equal(old.astype(np.float32), new.astype(np.float32)):
                    raise ValueError(f"{where}: rounding to {places} decimals changes a float32 value")
                changed += int(np.count_nonzero(new != old))
                parent[key] = new.tolist()
    return changed


def main(argv=None) -> int:
    """Rewrite each file in place (atomically); 2 and a one-line error for a file it refuses,
    leaving that file and the ones after it as they were; with ``--check``, 1 when a file would change."""
    ap = argparse.ArgumentParser(prog="python -m nets.results_io.reround", description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="report which files would change; write nothing")
    args = ap.parse_args(argv)
    pending = 0
    for f in args.files:
        try:
            before = f.read_text()
            result = read_json(f)
            changed = reround(result)
        except (OSError, ValueError) as e:  # a value reround refuses, ResultsFileError, a missing file
            print(f"error: {f}: {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
        after = dumps(to_jsonable(result)) + "\n"
        if after == before:
            print(f"{f}: already rounded")
            continue
        pending += 1
        print(f"{f}: {changed} values, {len(before):,} -> {len(after):,} bytes" + (" (not written)" if args.check else ""))
        if not args.check:
            write_json(f, result)
    return 1 if args.check and pending else 0


if __name__ == "__main__":
    sys.exit(main())
