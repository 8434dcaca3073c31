"""``python -m nets.results_io.add_seals FILE...``: seal results files written before seals.

A results file written by this version carries ``meta.content_sha256`` (:mod:`nets.results_io.seal`);
one written before it has none and is read as it is, so an edit to it goes unnoticed. This rewrites
each file in place (atomically) with its seal, changing no value: only the one ``meta`` line is added
(the file is written as :func:`~nets.results_io.files.write_json` writes it). A file that is sealed
already is left as it is; one whose seal no longer matches is refused (2 and a one-line error, that
file and the ones after it left as they were): this tool seals files as they are, it does not
re-seal an edited one. So is a file that writing would change beyond the seal: one holding NaN or an
infinity (``write_json`` writes ``null``) or a key twice (JSON readers keep one). ``--check``: say
which files lack a seal (1 when one does), write nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from nets.results_io.files import read_json, write_json
from nets.results_io.seal import SEAL_FIELD

__all__ = ["main"]


def _once(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"it holds the key {twice[0]!r} twice in one object; sealing would keep one")
    return dict(pairs)


def _finite(constant: str) -> float:
    raise ValueError(f"it holds {constant}, which sealing would write as null")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nets.results_io.add_seals", description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="say which files lack a seal; write nothing")
    args = ap.parse_args(argv)
    unsealed = 0
    for f in args.files:
        try:
            data = read_json(f)  # a sealed file that no longer matches: ResultsFileError, naming f
            json.loads(f.read_text(), object_pairs_hook=_once, parse_constant=_finite)
        except (OSError, ValueError) as e:
            text = str(e).splitlines()[0]
            print(f"error: {text}" if text.startswith(str(f)) else f"error: {f}: {text}", file=sys.stderr)
            return 2
        if not (isinstance(data, dict) and isinstance(data.get("meta"), dict)):
            print(f"error: {f}: not a results file (no meta record to hold a seal)", file=sys.stderr)
            return 2
        if SEAL_FIELD in data["meta"]:
            print(f"{f}: sealed already")
            continue
        unsealed += 1
        if args.check:
            print(f"{f}: no seal (not written)")
            continue
        write_json(f, data)
        print(f"{f}: sealed ({read_json(f)['meta'][SEAL_FIELD][:12]}...)")
    return 1 if args.check and unsealed else 0


if __name__ == "__main__":
    sys.exit(main())
