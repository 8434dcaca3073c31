"""The headless runner of the notebooks in ``notebooks/`` (the helpers they share are
:mod:`nets.notebook_helpers`).

``python -m nets.notebooks [--profile smoke] [--results DIR] [--out build/notebooks] [--only NAME] [--jobs N]``

Each notebook is a jupytext percent-format ``.py`` file (``# %%`` cells). The runner
converts each with jupytext, executes it with nbclient in a kernel running *this*
interpreter (so the virtual environment's packages, whatever kernel specs the machine
has installed), writes the executed ``<out>/<name>.ipynb`` and the figures (PNG and
PDF) to ``<out>/figures/``, prints one line per notebook (ok/FAILED, seconds) and
exits with status 1 if any notebook failed, naming the failing cell.

The notebooks read their settings from the environment, which is how the runner
passes them on: ``GI_PROFILE`` (default ``quick``), ``GI_RESULTS`` (the results root,
default ``results``) and ``GI_FIGURES`` (default ``build/notebooks/figures``); relative
paths are taken from the repository root, so a notebook opened in Jupyter (whose
kernel starts in ``notebooks/``) finds the same files as ``python -m nets``. Results
come from ``<GI_RESULTS>/<GI_PROFILE>/<experiment>.json``; a missing file is produced
by running the experiment (:func:`load_results`), and figures are drawn by the shared
helpers of :mod:`nets.plots`, so the CLI's figures and the notebooks' are the same code.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from nets.cli_types import positive_int
from nets.notebook_helpers import DEFAULT_PROFILE, DEFAULT_RESULTS, NOTEBOOK_DIR, REPO_ROOT, base_folder
from nets.results_io import ResultsWriteError, check_folder

__all__ = [
    "notebook_paths",
    "NotebookRun",
    "run_notebook",
    "kernel_environment",
    "run_notebooks",
    "main",
]

DEFAULT_OUT = "build/notebooks"
#: Seconds a kernel may take to start (importing torch on a busy machine takes a while).
STARTUP_TIMEOUT = 120
#: ipykernel's native kernel name: what the executed ``.ipynb`` files record.
KERNEL_NAME = "python3"


# ---- the runner ----------------------------------------------------------------------
def notebook_paths(folder: str | os.PathLike = NOTEBOOK_DIR, only: Sequence[str] | None = None) -> list[Path]:
    """The notebooks (``*.py``) in ``folder``, sorted; ``only`` picks by stem (``table1``)
    or file name, and a name that matches nothing raises ValueError."""
    paths = sorted(p for p in Path(folder).glob("*.py") if not p.name.startswith("_"))
    if not only:
        return paths
    wanted = {Path(n).stem for n in only}
    unknown = wanted - {p.stem for p in paths}
    if unknown:
        raise ValueError(f"no notebook named {', '.join(sorted(unknown))} in {folder}; "
                         f"known: {', '.join(p.stem for p in paths)}")
    return [p for p in paths if p.stem in wanted]


def _kernel_manager(private: Path):
    """A KernelManager that starts ipykernel in the current interpreter.

    The kernel spec is written to the folder ``private`` and looked up there only, so
    neither a missing spec (a fresh virtual environment) nor a ``python3`` spec of another
    Python installed for the user can change which interpreter runs the notebooks. The
    kernel talks over Unix sockets in the same folder (TCP on Windows): no ports to race
    for when notebooks run side by side, and no warning about unencrypted TCP."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = private / "kernels"
    write_kernel_spec(path=str(kernels / KERNEL_NAME))  # argv: [sys.executable, -m, ipykernel_launcher, ...]
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    if os.name == "nt":
        return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm, transport="ipc", ip=str(private / "ipc"))


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    ok: bool
    seconds: float
    output: Path
    figures: list[Path]
    error: str | None = None  # failing cell, exception and traceback

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        figs = f"{len(self.figures)} figure files" if self.ok else (self.error or "").splitlines()[0]
        return f"{status:6s} {self.name:24s} {self.seconds:7.1f} s  {figs}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours of IPython tracebacks


def _failing_cell(nb) -> tuple[int, str] | None:
    """(index among code cells, 1-based; source) of the first cell with an error output."""
    k = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        k += 1
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return k, cell.source
    return None


def _reported_figures(nb, folder: Path) -> list[Path]:
    """The figure files in ``folder`` that the notebook's printed output names (one path
    a line, as :func:`show_files` prints them) and that exist: robust to other
    notebooks writing into the same folder at the same time."""
    found = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.get("output_type") != "stream":
                continue
            for line in o.get("text", "").splitlines():
                p = Path(line.strip())
                if p.suffix in (".png", ".pdf") and p.parent == folder and p.is_file():
                    found.append(p)
    return sorted(set(found))


def run_notebook(path: str | os.PathLike, out: str | os.PathLike, env: Mapping[str, str], *,
                 timeout: int | None = None, cwd: str | os.PathLike | None = None) -> NotebookRun:
    """Execute one percent-format notebook; write ``<out>/<stem>.ipynb`` (executed, or
    as far as it got) and return the outcome. ``env`` is the kernel's environment; the
    figures are the files in ``env["GI_FIGURES"]`` the notebook reports writing."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    path, out = Path(path), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (ipykernel)", "language": "python"}
    fig_dir = Path(env.get("GI_FIGURES", out / "figures"))
    t0 = time.perf_counter()
    error = None
    # A short folder name: Unix socket paths are limited to about 100 characters.
    with tempfile.TemporaryDirectory(prefix="gi-kernel-") as private:
        km = _kernel_manager(Path(private))
        client = NotebookClient(nb, km=km, kernel_name=KERNEL_NAME, timeout=timeout,
                                startup_timeout=STARTUP_TIMEOUT, resources={"metadata": {"path": str(cwd or base_folder())}})
        try:
            client.execute(env=dict(env), cleanup_kc=True)  # shut the kernel down (we own it)
        except (CellExecutionError, CellTimeoutError) as exc:
            where = _failing_cell(nb)
            head = f"cell {where[0]}" if where else "a cell"
            if isinstance(exc, CellTimeoutError):
                head += f" timed out after {timeout} s"
            else:
                head += f" raised {exc.ename}: {exc.evalue}"
            error = f"{head}\n{_ANSI.sub('', str(exc))}"
        except Exception as exc:  # the kernel did not start, died, ...
            error = f"{type(exc).__name__}: {exc}"
        finally:
            # nbclient cleans up only after a started kernel client; whatever happened, stop
            # the kernel and drop nbclient's exit hook (it fails once the manager is gone).
            atexit.unregister(client._cleanup_kernel)
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    seconds = time.perf_counter() - t0
    target = out / f"{path.stem}.ipynb"
    nbformat.write(nb, target)
    figures = _reported_figures(nb, fig_dir)
    return NotebookRun(path.stem, error is None, seconds, target, figures, error)


def run_notebooks(paths: Sequence[Path], out: Path, env: Mapping[str, str], *, jobs: int = 1,
                  timeout: int | None = None, cwd: str | os.PathLike | None = None,
                  on_done: Callable[[NotebookRun], None] | None = None) -> list[NotebookRun]:
    """Execute ``paths`` (``jobs`` at a time, each in its own kernel); returns the runs in
    the order of ``paths``, calling ``on_done`` as each finishes."""
    def one(path: Path) -> NotebookRun:
        run = run_notebook(path, out, env, timeout=timeout, cwd=cwd)
        if on_done is not None:
            on_done(run)
        return run

    if jobs <= 1 or len(paths) <= 1:
        return [one(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    # Threads suffice: the work happens in the kernels, which are separate processes.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, paths))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nets.notebooks",
                                description="Execute every notebook in notebooks/ headless (jupytext + nbclient).")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="profile whose results the notebooks read (default: %(default)s)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help="results root, as for python -m nets (default: %(default)s); a missing results file "
                        "is produced by running its experiment")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="build folder: executed .ipynb files, figures in OUT/figures (default: %(default)s)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this notebook (file stem, e.g. fig4_drift; repeatable)")
    p.add_argument("--notebooks", default=str(NOTEBOOK_DIR), help="folder of the notebooks (default: %(default)s)")
    p.add_argument("--jobs", "-j", type=positive_int, default=1,
                   help="notebooks executed at the same time, each in its own kernel (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of each kernel (OMP_NUM_THREADS, MKL_NUM_THREADS; default: the libraries' "
                        "choice; 1 is much faster on a machine shared with other CPU-heavy processes)")
    p.add_argument("--timeout", type=positive_int, default=None,
                   help="seconds one cell may run (default: no limit; a missing results file means training)")
    return p


def kernel_environment(profile: str, results: str | os.PathLike, out: Path, *, threads: int | None = None,
                       base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The notebooks' kernel environment: ``base`` (default ``os.environ``) with their settings
    (``GI_PROFILE``, ``GI_RESULTS`` absolute, ``GI_FIGURES`` under ``out``), the thread counts,
    and, in a checkout, this checkout's root first on ``PYTHONPATH``: a kernel imports the code
    the runner runs, never another checkout that the virtual environment was installed from."""
    base = os.environ if base is None else base
    env = dict(base, GI_PROFILE=profile, GI_RESULTS=str(Path(results).resolve()), GI_FIGURES=str(out / "figures"))
    if NOTEBOOK_DIR.is_dir():
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [base.get("PYTHONPATH")])])
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from nets.experiments import get_profile

    try:
        get_profile(args.profile)
        paths = notebook_paths(args.notebooks, args.only)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not paths:
        print(f"no notebooks in {args.notebooks}", file=sys.stderr)
        return 2
    # Command-line paths are relative to where the command runs, as for python -m nets.
    out = Path(args.out).resolve()
    try:
        check_folder(out)  # a file there, or a folder it cannot write: before any notebook runs
    except ResultsWriteError as exc:
        print(f"error: --out {args.out}: {exc}", file=sys.stderr)
        return 1
    env = kernel_environment(args.profile, args.results, out, threads=args.threads)
    print(f"notebooks: {len(paths)} from {args.notebooks}; profile {args.profile}; results {env['GI_RESULTS']}; "
          f"output {out}", flush=True)
    t0 = time.perf_counter()
    runs = run_notebooks(paths, out, env, jobs=args.jobs, timeout=args.timeout, cwd=Path.cwd(),
                         on_done=lambda r: print(r.line(), flush=True))
    failed = [r for r in runs if not r.ok]
    for r in failed:
        print(f"\n---- {r.name} FAILED ({r.output}) ----\n{r.error}", file=sys.stderr)
    print(f"{len(runs) - len(failed)}/{len(runs)} notebooks ok in {time.perf_counter() - t0:.1f} s"
          + (f"; FAILED: {', '.join(r.name for r in failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
