"""The helpers the notebooks in ``notebooks/`` share: their settings' defaults, paths from the
repository root, results loaded (or produced) as ``python -m nets`` would, and figures, Markdown and
verdicts shown inline in a notebook (printed elsewhere).

The notebooks read ``GI_PROFILE``, ``GI_RESULTS`` and ``GI_FIGURES`` from the environment (the
defaults below); :mod:`nets.notebooks` is the headless runner that sets them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from nets.markdown import markdown_table  # noqa: F401  (re-exported for the notebooks)
from nets.verdicts import verdicts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "REPO_ROOT",
    "NOTEBOOK_DIR",
    "DEFAULT_PROFILE",
    "DEFAULT_RESULTS",
    "DEFAULT_FIGURES",
    "base_folder",
    "resolve",
    "load_results",
    "load_scale",
    "show_figures",
    "show_files",
    "show_markdown",
    "markdown_table",
    "show_verdicts",
]

#: The repository this module was imported from (an editable install); notebooks live in ``notebooks/``.
REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
DEFAULT_PROFILE = "quick"
DEFAULT_RESULTS = "results"
DEFAULT_FIGURES = "build/notebooks/figures"


def base_folder() -> Path:
    """Where relative paths start: the repository root, or the working folder when
    this module is not inside a checkout (a non-editable install)."""
    return REPO_ROOT if NOTEBOOK_DIR.is_dir() else Path.cwd()


def resolve(path: str | os.PathLike) -> Path:
    """``path`` if absolute, else relative to the repository root (see :func:`base_folder`)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_folder() / p


def _stale_fields(meta: Mapping, profile_name: str) -> list[str]:
    """Profile fields where a results file's recorded profile differs from the current one
    (:func:`~nets.experiments.common.profile_differences`, so ``groups`` never counts), leaving
    out fields that one of the two does not have."""
    from nets.experiments.common import profile_differences
    from nets.experiments.profiles import get_profile

    profile = get_profile(profile_name)
    recorded, current = meta.get("profile") or {}, profile.to_dict()
    return [k for k in profile_differences(meta, profile) if k in recorded and k in current]


def load_results(experiment: str, profile: str, results_root: str | os.PathLike, *,
                 device: str = "auto", quiet: bool = False) -> dict:
    """The results dict of one experiment: ``<results_root>/<profile>/<experiment>.json``,
    produced first by running the experiment (as ``python -m nets EXPERIMENT --profile
    PROFILE --results ROOT`` would) when the file is missing.

    Prints where the results came from and warns when they were made with profile
    settings other than the current ones (a profile edited since the run)."""
    from nets.experiments import get_profile, read_json, result_path, runner

    prof = get_profile(profile)
    root = Path(results_root)
    path = result_path(prof, experiment, root)
    if not path.exists():
        command = f"python -m nets {experiment} --profile {profile} --results {root}"
        if not quiet:
            print(f"{path} is missing: running `{command}` "
                  f"(finished training runs in {root / profile / 'checkpoints'} are reused)")
        t0 = time.perf_counter()
        runner(experiment)(prof, root, device=device, progress=False, command=command)
        if not quiet:
            print(f"... finished in {time.perf_counter() - t0:.0f} s")
    results = read_json(path)
    if not quiet:
        _describe(experiment, path, results, profile)
    return results


def _describe(experiment: str, path: Path, results: Mapping, profile: str, *, check_profile: bool = True) -> None:
    """Print where ``results`` came from, and warn when they are partial or (``check_profile``:
    results recorded on the profile itself, not on a profile of their own such as the CNN's) stale."""
    meta = results.get("meta", {})
    print(f"{experiment}: {path}\n  made by `{meta.get('command')}` on {meta.get('started_at')} "
          f"(git {str(meta.get('git_commit'))[:10]}, {meta.get('wall_time_s')} s, device {meta.get('device')})")
    stale = _stale_fields(meta, profile) if check_profile else []
    if stale:
        print(f"  WARNING: made with other {profile!r} profile settings than the current ones "
              f"({', '.join(stale)}); rerun the experiment to refresh")
    pending = results.get("pending_groups") or []
    if pending:
        print(f"  partial: groups {', '.join(pending)} still pending "
              f"(`python -m nets {experiment} --profile {profile} --groups {' '.join(pending)}` adds them)")


def load_scale(profile: str, results_root: str | os.PathLike, *, model: str = "mlp",
               device: str = "auto") -> dict | None:
    """The results of ``python -m nets scale [--model cnn]`` (``scale.json`` or ``cnn_scale.json``),
    measured first from the checkpoints when the file is missing. ``scale`` evaluates and never
    trains, so where the checkpoints it needs are not there (a fresh clone's ``quick`` results,
    whose checkpoints are not in the repository) or the results it reads its models from are
    missing, this prints one line saying so and what to run, and returns ``None``."""
    from nets.experiments import get_profile, read_json, result_path
    from nets.experiments.centered import MissingSpectralResults
    from nets.experiments.scale import OUTPUTS, MissingCNNResults, run_scale
    from nets.results_io import WouldTrain

    root = Path(results_root)
    path = result_path(profile, OUTPUTS[model], root)
    command = f"python -m nets scale{' --model cnn' if model == 'cnn' else ''} --profile {profile} --results {root}"
    if not path.exists():
        print(f"{path} is missing: running `{command}` (evaluation only)")
        try:
            run_scale(get_profile(profile), root, device=device, model=model, progress=False, command=command)
        except (WouldTrain, MissingSpectralResults, MissingCNNResults) as e:
            print(f"  not measured: {e}. The scale split needs the trained models: train them with the "
                  f"experiment above (python -m nets {'cnn' if model == 'cnn' else 'spectral'} --profile {profile} "
                  f"--results {root}), "
                  f"then run `{command}`")
            return None
    results = read_json(path)
    _describe(OUTPUTS[model], path, results, profile, check_profile=model == "mlp")
    return results


def _display_png(path: Path) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python: nothing to show inline
        return
    if get_ipython() is not None:
        display(Image(filename=str(path)))


def show_files(paths: Sequence[Path]) -> list[Path]:
    """Show every PNG among ``paths`` inline (in a notebook; nothing elsewhere) and list
    every path; returns ``paths``. What is shown is the file written, byte for byte."""
    for p in paths:
        print(p)
    for p in paths:
        if Path(p).suffix == ".png":
            _display_png(Path(p))
    return list(paths)


def show_figures(figures: Mapping[str, "Figure"], folder: str | os.PathLike) -> list[Path]:
    """Save each figure as ``<folder>/<stem>.png`` and ``.pdf`` with
    :func:`nets.plot_style.save_figure` (what the CLI uses) and show the PNGs inline."""
    from nets.plot_style import save_figure

    paths: list[Path] = []
    for stem, fig in figures.items():
        paths += save_figure(fig, Path(folder) / stem)
    return show_files(paths)


def show_markdown(text: str) -> None:
    """Render Markdown in a notebook; print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def show_verdicts(results: Mapping[str, Mapping], claims: Sequence[str]) -> list:
    """Show the verdicts of :mod:`nets.verdicts` (the ones REPORT.md gives) for ``claims``
    (``"1"`` .. ``"5"``, ``"Fig. 2"``), computed from ``results`` (experiment name ->
    results dict) with the report's thresholds; returns the verdicts shown."""
    shown = [v for v in verdicts(results) if v.claim in claims]
    lines = []
    for v in shown:
        lines.append(f"**Claim {v.claim}: {v.statement}** Verdict: **{v.status}**\n")
        lines += [f"- {c.detail}" for c in v.checks]
        lines += [f"- *note:* {n}" for n in v.notes]
        lines.append("")
    show_markdown("\n".join(lines))
    return shown
