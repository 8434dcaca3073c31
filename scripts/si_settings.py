"""SI of the Table 1 models under other saliency maps (nets.experiments.si_settings): writes
``<results>/<profile>/si_settings.json`` and prints the table. Evaluation only; the paper profile's
checkpoints live in the repository's history:

    python -m nets checkpoints restore --profile paper
    python scripts/si_settings.py --profile paper [--results results] [--threads 2]
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from nets.experiments.profiles import get_profile
from nets.experiments.si_settings import run_si_settings, table_rows
from nets.markdown import markdown_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--results", default="results")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = shlex.join(["python", "scripts/si_settings.py", *(sys.argv[1:] if argv is None else argv)])
    result = run_si_settings(get_profile(args.profile), args.results, device=args.device, command=command)
    print(markdown_table(["group", "setting", "WT", "DA", "IR", "IR - DA"], table_rows(result)))
    print("paper setting against table1.json: max |difference| per seed = "
          + ", ".join(f"{g} {e['paper_check']['max_abs_difference']:.2g}" for g, e in result["groups"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
