"""SI of the Table 1 models under other saliency maps: the same as ``python -m nets si-settings``
(:mod:`nets.experiments.si_settings`), with ``--profile paper`` by default; kept because
``results/paper/si_settings.json`` records this command. Writes ``<results>/<profile>/si_settings.json``.
Evaluation only; the paper profile's checkpoints live in the repository's history and are restored
first:

    python scripts/si_settings.py --profile paper [--results results] [--threads 2]
"""

from __future__ import annotations

import sys

from nets.__main__ import main as nets_main


def main(argv: list[str] | None = None) -> int:
    return nets_main(["si-settings", "--profile", "paper", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
