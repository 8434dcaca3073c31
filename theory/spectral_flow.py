"""Report on Proposition 3.1 (invariance-induced spectral decay): ``python -m theory.spectral_flow``.

Runs every named check (symbolic, numerical, extensions (a)-(j)), prints one line per check
with PASS/FAIL, the measured residual or bound and its tolerance, optionally writes the same
as JSON (``--json PATH``, atomically) and a figure of ``sigma_max(W(t))`` (``--plot PATH``),
and exits with status 1 if any check fails.

    python -m theory.spectral_flow --seed 0 --json results/spectral_flow.json --plot results/spectral_flow.png

The committed report, ``results/theory/spectral_flow.json`` (seed 0, the numbers docs/findings.md
cites), is one such file; a run that would write over a file the repository tracks is refused unless
``--overwrite`` is given.

Every random instance is drawn from ``numpy.random.default_rng`` seeded by ``(seed, instance
name)``, so a seed fixes every number in the report (timings aside). Which checks, in which order:
:mod:`theory.report_checks` (``default_checks`` and ``select_checks`` are re-exported here).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._blas import single_threaded_blas
from .checks import CheckResult
from .flow_figure import plot_flow
from .instances import Config, Instances, make_instances
from .report_checks import Check, default_checks, select_checks

__all__ = [
    "Config",
    "Instances",
    "make_instances",
    "default_checks",
    "select_checks",
    "run_checks",
    "format_report",
    "report_dict",
    "provenance",
    "write_json_atomic",
    "plot_flow",
    "main",
]


def run_checks(checks: dict[str, Check] | Sequence[Check], tolerance_scale: float = 1.0
               ) -> tuple[list[CheckResult], dict[str, float]]:
    """Run each check (a name -> check dict, or a sequence of checks); one that raises becomes
    a FAIL carrying the exception, under its name if it has one.

    Returns the results (tolerances multiplied by ``tolerance_scale`` and re-decided) and the
    seconds each took, by name.
    """
    named = list(checks.items()) if isinstance(checks, dict) else [
        (getattr(c, "__name__", f"check_{i}"), c) for i, c in enumerate(checks)]
    results: list[CheckResult] = []
    seconds: dict[str, float] = {}
    with single_threaded_blas():
        for name, check in named:
            results.append(_run_one(name, check, tolerance_scale, seconds))
    return results, seconds


def _run_one(name: str, check: Check, tolerance_scale: float, seconds: dict[str, float]
             ) -> CheckResult:
    t0 = time.perf_counter()
    try:
        res = check()
    except Exception as exc:  # a crashing check is a failing check, not a crashed report
        res = CheckResult(name, False, float("nan"), float("nan"), "residual",
                          f"raised {type(exc).__name__}: {exc}")
    if tolerance_scale != 1.0 and np.isfinite(res.tolerance):
        res = res.decide(res.tolerance * tolerance_scale)
    seconds[res.name] = time.perf_counter() - t0
    return res


def format_report(results: Sequence[CheckResult], seconds: float | None = None) -> str:
    """The printed report: one line per check, then a summary line."""
    lines = ["Proposition 3.1 (invariance-induced spectral decay): named checks", ""]
    lines += [r.line() for r in results]
    failed = [r.name for r in results if not r.passed]
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    lines += ["", f"{len(results) - len(failed)}/{len(results)} checks passed{took}"
              + (f"; FAILED: {', '.join(failed)}" if failed else "")]
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "sympy", "matplotlib", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def report_dict(cfg: Config, results: Sequence[CheckResult], seconds: dict[str, float],
                total_s: float, plot: str | None = None, provenance: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The JSON document: verdict, seed, config, versions, checks, timings, and where given
    ``provenance`` (:func:`provenance`: the command, the commit, the CPU)."""
    return {
        "report": "theory.spectral_flow",
        "claim": "Proposition 3.1: sigma_max(W(t)) <= sigma_max(W(0)) under the gradient flow "
                 "of the logit invariance error (Eqs. 2, 5-7), with extensions (a)-(j)",
        "passed": all(r.passed for r in results),
        "n_checks": len(results),
        "n_failed": sum(not r.passed for r in results),
        "seed": cfg.seed,
        "config": asdict(cfg),
        "versions": _versions(),
        "platform": platform.platform(),
        "checks": [r.to_dict() for r in results],
        "timing_s": {"total": total_s, "per_check": seconds},
        "plot": plot,
        **({"provenance": provenance} if provenance is not None else {}),
    }


def provenance(argv: Sequence[str]) -> dict[str, Any]:
    """How the report was made: the command (``python -m theory.spectral_flow`` and ``argv``), the git
    commit and whether ``theory/`` differed from it, and the CPU's model and flags."""
    from nets.results_io import cpu_info, folder_dirty, git_commit  # torch is imported only when a file is written

    return {"command": shlex.join(["python", "-m", "theory.spectral_flow", *argv]), "git_commit": git_commit(),
            "git_dirty": folder_dirty(Path(__file__).resolve().parent), "cpu": cpu_info()}


def write_json_atomic(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``doc`` as JSON to a temporary file beside ``path``, then ``os.replace`` it."""
    from nets.results_io import write_text

    write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m theory.spectral_flow", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=Config.seed, help="seed of every random instance")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON (atomically)")
    p.add_argument("--plot", metavar="PATH", help="write the sigma_max(W(t)) figure (.png or .pdf)")
    p.add_argument("--tolerance-scale", type=float, default=Config.tolerance_scale,
                   help="multiply every tolerance (e.g. 0 demands exact equality, so residuals fail)")
    p.add_argument("--only", action="append", metavar="SUBSTRING",
                   help="run only the checks whose name contains SUBSTRING (repeatable)")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    p.add_argument("--overwrite", action="store_true",
                   help="write over a --json or --plot file that the git repository tracks (the committed report)")
    return p


def _check_outputs(parser: argparse.ArgumentParser, paths: dict[str, str | None], overwrite: bool = False) -> None:
    """Refuse (``parser.error``, exit 2) an output file that cannot be written, or, unless ``overwrite``,
    one that the git repository holding it tracks (a committed report), before the checks run."""
    if not any(p is not None for p in paths.values()):
        return
    from nets.results_io import GitUnanswered, ResultsWriteError, check_file, committed_files  # torch: see provenance

    for flag, path in paths.items():
        if path is not None:
            try:
                check_file(path)
                if not overwrite and committed_files([path]):
                    parser.error(f"{flag} {path}: the repository tracks this file (a committed report); write "
                                 f"elsewhere, or add --overwrite to replace it")
            except (ResultsWriteError, GitUnanswered) as exc:
                parser.error(f"{flag} {path}: {exc}")


def main(argv: Sequence[str] | None = None,
         checks: dict[str, Check] | Sequence[Check] | None = None) -> int:
    """Run the report; returns the exit status (0 iff every check passed, 2 for a bad ``--only``).

    ``checks`` replaces the default checks (for tests and for reusing the report machinery).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    if not (math.isfinite(args.tolerance_scale) and args.tolerance_scale >= 0):
        parser.error(f"--tolerance-scale must be a finite number >= 0, got {args.tolerance_scale}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf"):
        parser.error(f"--plot {args.plot}: name the figure's file with .png or .pdf")
    _check_outputs(parser, {"--json": args.json, "--plot": args.plot}, args.overwrite)
    cfg = Config(seed=args.seed, tolerance_scale=args.tolerance_scale)
    t0 = time.perf_counter()
    with single_threaded_blas():
        inst = make_instances(cfg)
        if checks is None:
            try:
                checks = select_checks(default_checks(cfg, inst), args.only)
            except ValueError as exc:
                print(exc, file=sys.stderr)
                return 2
        results, seconds = run_checks(checks, cfg.tolerance_scale)
        try:
            if args.plot:
                plot_flow(cfg, inst, args.plot)
        except OSError as exc:  # the disk filled, or the folder went away, while the checks ran
            print(f"error: --plot {args.plot}: {exc}", file=sys.stderr)
            return 1
    total = time.perf_counter() - t0
    text = format_report(results, total)
    print(text.splitlines()[-1] if args.quiet else text)
    if args.json:
        try:
            write_json_atomic(report_dict(cfg, results, seconds, total, args.plot,
                                          provenance(sys.argv[1:] if argv is None else argv)), args.json)
        except OSError as exc:  # ResultsWriteError: one line naming the folder
            print(f"error: --json {args.json}: {exc}", file=sys.stderr)
            return 1
    return 0 if all(r.passed for r in results) else 1


def _main() -> int:
    """``python -m theory.spectral_flow``: :func:`main`, with Ctrl-C one line and exit status 130 (the
    report is written atomically at the end, so an interrupted run leaves none, or the earlier one)."""
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted: no report was written (run it again; it takes seconds)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(_main())
