"""Report on Proposition 3.1 (invariance-induced spectral decay): ``python -m theory.spectral_flow``.

Runs every named check (symbolic, numerical, extensions (a)-(i)), prints one line per check
with PASS/FAIL, the measured residual or bound and its tolerance, optionally writes the same
as JSON (``--json PATH``, atomically) and a figure of ``sigma_max(W(t))`` (``--plot PATH``),
and exits with status 1 if any check fails.

    python -m theory.spectral_flow --seed 0 --json results/spectral_flow.json --plot results/spectral_flow.png

Every random instance is drawn from ``numpy.random.default_rng`` seeded by ``(seed, instance
name)``, so a seed fixes every number in the report (timings aside).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import linear_flow as lf
from . import numeric as nm
from . import symbolic as sy
from . import task_flow as tl
from . import tightness as tg
from . import two_layer as tw
from ._blas import single_threaded_blas
from .checks import CheckResult
from .flow_figure import plot_flow
from .instances import Config, Instances, data_times, make_instances, rank_one_times

__all__ = [
    "Config",
    "Instances",
    "make_instances",
    "default_checks",
    "select_checks",
    "run_checks",
    "format_report",
    "report_dict",
    "write_json_atomic",
    "plot_flow",
    "main",
]

Check = Callable[[], CheckResult]


def _image_checks(cfg: Config, inst: Instances) -> dict[str, Check]:
    """Extension (e) checks for every group in ``cfg.image_groups``, by name.

    ``nets.groups`` (and so torch) is imported only when one of them runs.
    """

    def group_of(gname: str):  # noqa: ANN202 - nets.groups.Group, imported lazily
        from nets.groups import get_group

        return get_group(gname)

    def eps_of(gname: str) -> np.ndarray:
        from .images import image_residuals

        return image_residuals(group_of(gname), inst.images[gname])

    def data_of(gname: str) -> tuple[np.ndarray, np.ndarray]:
        from .images import representation_matrices

        imgs = inst.images[gname]
        return imgs.reshape(len(imgs), -1), representation_matrices(group_of(gname), *imgs.shape[1:])

    def orbit_check(gname: str, name: str) -> CheckResult:
        from .images import check_representation_matches_orbit

        return check_representation_matches_orbit(group_of(gname), inst.images[gname], name=name)

    W0 = inst.W0_images
    checks: dict[str, Check] = {}
    for g in cfg.image_groups:
        pre = f"image_{g}"
        checks.update({
            f"{pre}_representation_matches_orbit":
                lambda g=g, pre=pre: orbit_check(g, f"{pre}_representation_matches_orbit"),
            f"{pre}_flow_expm_vs_ode": lambda g=g, pre=pre: nm.check_flow_expm_vs_ode(
                W0, lf.invariance_covariance(eps_of(g)), data_times(cfg, eps_of(g)),
                name=f"{pre}_flow_expm_vs_ode"),
            f"{pre}_sigma_max_bound": lambda g=g, pre=pre: nm.check_sigma_max_bound(
                W0, lf.invariance_covariance(eps_of(g)), data_times(cfg, eps_of(g)),
                name=f"{pre}_sigma_max_bound"),
            f"{pre}_all_singular_values_nonincreasing":
                lambda g=g, pre=pre: nm.check_singular_values_nonincreasing(
                    W0, lf.invariance_covariance(eps_of(g)), data_times(cfg, eps_of(g)),
                    name=f"{pre}_all_singular_values_nonincreasing"),
            f"{pre}_limit_is_projection": lambda g=g, pre=pre: nm.check_limit_is_projection(
                W0, eps_of(g), cfg.limit_decay, name=f"{pre}_limit_is_projection"),
            f"{pre}_limit_is_invariant": lambda g=g, pre=pre: nm.check_limit_is_invariant(
                W0, *data_of(g), name=f"{pre}_limit_is_invariant"),
        })
    return checks


def default_checks(cfg: Config, inst: Instances | None = None) -> dict[str, Check]:
    """Every check of the report, in report order: name -> zero-argument callable.

    Each name equals the ``name`` of the :class:`CheckResult` its callable returns.
    """
    inst = inst or make_instances(cfg)
    W0, eps, S_data = inst.W0, inst.eps, inst.Sigma_data
    Sigma = np.outer(eps, eps)
    ts1 = rank_one_times(cfg, eps)
    tsd = data_times(cfg, inst.eps_data)
    checks: dict[str, Check] = dict(sy.ALL_SYMBOLIC_CHECKS)
    checks.update({
        # Proposition 3.1 itself: one sample, one group element, rank-one Sigma.
        "gradient_vs_finite_differences": lambda: nm.check_gradient_finite_differences(
            W0, inst.x[None], inst.G[None], name="gradient_vs_finite_differences"),
        "closed_form_vs_expm": lambda: nm.check_closed_form_vs_expm(eps, ts1),
        "rank_one_exp_spectral_norm_is_one": lambda: nm.check_exp_spectral_norm_is_one(eps, ts1),
        "ode_vs_closed_form": lambda: nm.check_ode_vs_closed_form(W0, eps, ts1[: cfg.n_times]),
        "sigma_max_bound": lambda: nm.check_sigma_max_bound(W0, Sigma, ts1, name="sigma_max_bound"),
        "limit_is_projection": lambda: nm.check_limit_is_projection(
            W0, eps[None], cfg.limit_decay, name="limit_is_projection"),
        # (a) dataset and orbit.
        "dataset_gradient_vs_finite_differences": lambda: nm.check_gradient_finite_differences(
            W0, inst.X, inst.Gs, name="dataset_gradient_vs_finite_differences"),
        "dataset_sigma_is_orbit_sum": lambda: nm.check_orbit_covariance(inst.X, inst.Gs),
        "dataset_flow_expm_vs_ode": lambda: nm.check_flow_expm_vs_ode(W0, S_data, tsd),
        "dataset_sigma_max_bound": lambda: nm.check_sigma_max_bound(
            W0, S_data, tsd, name="dataset_sigma_max_bound"),
        "dataset_all_singular_values_nonincreasing":
            lambda: nm.check_singular_values_nonincreasing(W0, S_data, tsd),
        # (b) the limit.
        "dataset_limit_is_projection": lambda: nm.check_limit_is_projection(
            W0, inst.eps_data, cfg.limit_decay, name="dataset_limit_is_projection"),
        "dataset_limit_is_invariant": lambda: nm.check_limit_is_invariant(
            W0, inst.X, inst.Gs, name="dataset_limit_is_invariant"),
    })
    # (c) discrete gradient descent.
    for a in cfg.alpha_below:
        name = f"gd_below_step_bound_alpha{a:g}"
        checks[name] = lambda a=a, name=name: nm.check_gd_below_step_bound(
            W0, S_data, a, cfg.gd_steps, name=name)
    name = f"gd_above_step_bound_alpha{cfg.alpha_above:g}_counterexample"
    checks[name] = lambda name=name: nm.check_gd_above_step_bound_grows(
        S_data, cfg.m, cfg.alpha_above, name=name)
    # (d) a task loss.
    task = (W0, inst.x, inst.G, inst.y, cfg.task_nu)
    checks.update({
        "task_loss_flow_is_gradient_flow": lambda: tl.check_task_flow_is_gradient_flow(*task),
        "task_loss_flow_vs_exact": lambda: tl.check_task_flow_vs_exact(*task),
        "task_loss_counterexample": lambda: tl.check_task_loss_can_grow_sigma_max(*task),
    })
    # (e) R4 and T3 on images.
    checks.update(_image_checks(cfg, inst))
    # (f) how much decay: none at all for some W0, and a floor.
    checks.update({
        "sigma_max_can_stay_equal": lambda: tg.check_sigma_max_can_stay(W0, eps, ts1),
        "decay_floor": lambda: tg.check_decay_floor(W0, eps, name="decay_floor"),
        "dataset_decay_floor": lambda: tg.check_decay_floor(W0, inst.eps_data, name="dataset_decay_floor"),
    })
    # (g) Adam, the paper's optimizer, is not covered: a counterexample.
    checks["adam_can_grow_sigma_max"] = _adam_check
    # (h) SGD with momentum, at a step where gradient descent keeps the bound.
    checks["momentum_can_grow_sigma_max"] = lambda: _momentum_growth(S_data, cfg.m)
    checks["momentum_unsafe_steps"] = _momentum_steps
    # (i) two linear layers, h(x) = W2 W1 x: the flow of the invariance error alone can raise sigma_max.
    checks.update({
        "two_layer_flow_is_gradient_flow": tw.check_two_layer_flow_is_gradient_flow,
        "two_layer_flow_vs_limit": tw.check_two_layer_flow_vs_limit,
        "two_layer_can_grow_sigma_max": tw.check_two_layer_can_grow_sigma_max,
    })
    return checks


def _adam_check() -> CheckResult:
    """Extension (g)'s check; :mod:`theory.adam` (and so torch) is imported only when it runs."""
    from .adam import check_adam_can_grow_sigma_max

    return check_adam_can_grow_sigma_max()


def _momentum_growth(Sigma: np.ndarray, m: int) -> CheckResult:
    """Extension (h)'s counterexample; :mod:`theory.momentum` (and so torch) is imported only when it runs."""
    from .momentum import check_momentum_can_grow_sigma_max

    return check_momentum_can_grow_sigma_max(Sigma, m)


def _momentum_steps() -> CheckResult:
    """Extension (h)'s scan of the steps momentum breaks the bound at (imported as :func:`_momentum_growth`)."""
    from .momentum import check_momentum_unsafe_steps

    return check_momentum_unsafe_steps()


def select_checks(checks: dict[str, Check], only: Sequence[str] | None) -> dict[str, Check]:
    """The checks whose name contains one of the substrings in ``only`` (all if None/empty).

    Raises ValueError if a substring selects nothing (a typo should not pass silently).
    """
    if not only:
        return dict(checks)
    for pat in only:
        if not any(pat in name for name in checks):
            raise ValueError(f"--only {pat!r} matches no check; names: {', '.join(checks)}")
    return {k: v for k, v in checks.items() if any(p in k for p in only)}


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
                total_s: float, plot: str | None = None) -> dict[str, Any]:
    """The JSON document: verdict, seed, config, versions, checks, timings."""
    return {
        "report": "theory.spectral_flow",
        "claim": "Proposition 3.1: sigma_max(W(t)) <= sigma_max(W(0)) under the gradient flow "
                 "of the logit invariance error (Eqs. 2, 5-7), with extensions (a)-(i)",
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
    }


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
    return p


def _check_outputs(parser: argparse.ArgumentParser, paths: dict[str, str | None]) -> None:
    """Refuse (``parser.error``, exit 2) an output file that cannot be written, before the checks run."""
    if not any(p is not None for p in paths.values()):
        return
    from nets.results_io import ResultsWriteError, check_file  # torch is imported only when a file is written

    for flag, path in paths.items():
        if path is not None:
            try:
                check_file(path)
            except ResultsWriteError as exc:
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
    _check_outputs(parser, {"--json": args.json, "--plot": args.plot})
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
            write_json_atomic(report_dict(cfg, results, seconds, total, args.plot), args.json)
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
