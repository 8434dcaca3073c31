"""Notebooks (``notebooks/*.py``, jupytext percent format) and their headless runner
``python -m nets.notebooks``: every notebook parses and reads its settings from the
environment; the runner names a failing cell; and, on the real data, every notebook
executes against ``smoke`` results and writes its figures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.formats import guess_format

from nets.notebook_helpers import NOTEBOOK_DIR, REPO_ROOT, load_results, load_scale, resolve
from nets.notebooks import kernel_environment, main, notebook_paths

REPO = Path(__file__).resolve().parents[1]

#: Every notebook and the figure stems it must write (PNG and PDF each).
EXPECTED = {
    "table1": ("table1", "nu_selection_table1"),
    "fig1_fig3_saliency": ("saliency_r4", "saliency_t3"),
    "fig2_tsne": ("tsne",),
    "fig4_drift": ("drift",),
    "fig5_spectral_decay": ("spectral", "nu_selection_spectral", "scale"),
    "prop31_spectral_flow": ("spectral_flow",),
    "cnn": ("cnn_table1", "cnn_nu_selection", "cnn_drift", "cnn_spectral", "cnn_val_curves", "cnn_scale"),
}
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))
VERSION_LINE = re.compile(r"^#\s+(format_version|jupytext_version):.*\n", re.MULTILINE)


def _cells(path: Path):
    return jupytext.read(path).cells


def _parameters_cell(path: Path):
    cells = [c for c in _cells(path) if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: needs exactly one code cell tagged 'parameters'"
    return cells[0]


# ---- the notebooks as files ------------------------------------------------------------
def test_every_expected_notebook_is_present():
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_percent_format_and_round_trips(path):
    text = path.read_text()
    assert guess_format(text, ".py")[0] == "percent"
    nb = jupytext.reads(text, fmt="py:percent")
    markers = sum(1 for line in text.splitlines() if line.startswith("# %%"))
    assert len(nb.cells) == markers  # every cell marker made a cell, and nothing else did
    # Writing back gives the file again, up to the version stamps jupytext adds to the header.
    assert VERSION_LINE.sub("", jupytext.writes(nb, fmt="py:percent")) == text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_explains_itself_in_markdown_and_its_code_compiles(path):
    cells = _cells(path)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            compile(cell.source, f"{path.name}, cell {i}", "exec")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_reads_profile_and_paths_from_the_environment(path, monkeypatch):
    source = _parameters_cell(path).source
    monkeypatch.delenv("GI_PROFILE", raising=False)
    monkeypatch.delenv("GI_RESULTS", raising=False)
    monkeypatch.delenv("GI_FIGURES", raising=False)
    ns: dict = {}
    exec(source, ns)
    assert (ns["PROFILE"], ns["RESULTS"], ns["FIGURES"]) == ("quick", "results", "build/notebooks/figures")
    monkeypatch.setenv("GI_PROFILE", "smoke")
    monkeypatch.setenv("GI_RESULTS", "/somewhere/results")
    monkeypatch.setenv("GI_FIGURES", "/somewhere/figures")
    ns = {}
    exec(source, ns)
    assert (ns["PROFILE"], ns["RESULTS"], ns["FIGURES"]) == ("smoke", "/somewhere/results", "/somewhere/figures")


def test_relative_paths_resolve_from_the_repository_root(tmp_path):
    assert resolve("results") == NOTEBOOK_DIR.parent / "results"
    assert resolve(tmp_path) == tmp_path


def _write_results(root: Path, profile: str, experiment: str, **profile_changes) -> None:
    from nets.experiments import get_profile

    recorded = {**json.loads(json.dumps(get_profile(profile).to_dict())), **profile_changes}
    path = root / profile / f"{experiment}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"meta": {"profile": recorded, "command": "made by hand"}, "groups": {},
                                "complete": False, "pending_groups": ["t3"]}))


def test_results_of_a_groups_run_are_reported_partial_not_stale(tmp_path, capsys):
    _write_results(tmp_path, "paper", "spectral", groups=["r4"])
    load_results("spectral", "paper", tmp_path)
    out = capsys.readouterr().out
    assert "WARNING" not in out
    assert "groups t3 still pending" in out and "--groups t3" in out


def test_results_made_with_other_profile_sizes_are_reported_stale(tmp_path, capsys):
    _write_results(tmp_path, "paper", "spectral", groups=["r4"], epochs=12)
    load_results("spectral", "paper", tmp_path)
    assert "WARNING: made with other 'paper' profile settings than the current ones (epochs)" in capsys.readouterr().out


@pytest.mark.parametrize("model, source", [("mlp", "spectral.json"), ("cnn", "cnn.json")])
def test_scale_without_its_checkpoints_says_what_to_run_instead_of_failing(tmp_path, capsys, model, source):
    # a fresh clone's quick results: the JSON the scale split reads its models from, no checkpoints
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / source).write_bytes((REPO / "results" / "quick" / source).read_bytes())
    assert load_scale("quick", tmp_path, model=model) is None
    out = capsys.readouterr().out
    assert "not measured: no checkpoint" in out
    assert f"python -m nets scale{' --model cnn' if model == 'cnn' else ''} --profile quick" in out
    assert not list((tmp_path / "quick").glob("*scale.json"))


def test_kernels_import_the_runners_checkout_first():
    env = kernel_environment("quick", "results", Path("/tmp/out"), threads=1, base={"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    assert env["GI_RESULTS"] == str(Path("results").resolve()) and env["OMP_NUM_THREADS"] == "1"


def test_only_selects_by_stem_and_rejects_unknown_names():
    assert [p.stem for p in notebook_paths(only=["fig4_drift", "table1.py"])] == ["fig4_drift", "table1"]
    with pytest.raises(ValueError, match="no notebook named nope"):
        notebook_paths(only=["nope"])
    assert main(["--only", "nope"]) == 2


# ---- the runner ---------------------------------------------------------------------------
def test_runner_fails_naming_the_failing_cell(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    (folder / "good.py").write_text('# %% [markdown]\n# fine\n\n# %%\nimport os\nPROFILE = os.environ["GI_PROFILE"]\n'
                                    'print(PROFILE)\n')
    (folder / "bad.py").write_text('# %%\nx = 1\n\n# %%\nraise KeyError("no such results")\n')
    code = main(["--notebooks", str(folder), "--out", str(tmp_path / "out"), "--profile", "smoke"])
    out, err = capsys.readouterr()
    assert code == 1
    assert re.search(r"^ok\s+good\b", out, re.MULTILINE)
    assert re.search(r"^FAILED\s+bad\b.*cell 2 raised KeyError", out, re.MULTILINE)
    assert 'raise KeyError("no such results")' in err and "\x1b[" not in err  # the cell, without colour codes
    good = nbformat.read(tmp_path / "out" / "good.ipynb", as_version=4)
    assert good.cells[1].outputs[0]["text"] == "smoke\n"  # the profile reached the kernel
    assert good.metadata.kernelspec.name == "python3"
    assert (tmp_path / "out" / "bad.ipynb").exists()  # kept for inspection, as far as it got


def test_runner_uses_this_interpreter_whatever_kernel_specs_are_installed(tmp_path, monkeypatch, capsys):
    # A user-level "python3" spec that cannot start: the runner must not pick it up.
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": ["false", "{connection_file}"], "display_name": "broken",
                                                  "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    folder = tmp_path / "nbs"
    folder.mkdir()
    (folder / "which.py").write_text("# %%\nimport sys\nprint(sys.executable)\n")
    assert main(["--notebooks", str(folder), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr()
    nb = nbformat.read(tmp_path / "out" / "which.ipynb", as_version=4)
    assert Path(nb.cells[0].outputs[0]["text"].strip()) == Path(sys.executable)


# ---- end to end on the real data ------------------------------------------------------------
def _real_data_available() -> bool:
    from nets.fetch_step import dataset_dir

    names = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")
    return all((dataset_dir(d) / n).exists() for d in ("mnist", "fmnist") for n in names)


needs_data = pytest.mark.skipif(
    not _real_data_available() and os.environ.get("CI", "").lower() != "true",
    reason="MNIST / Fashion-MNIST not fetched (python -m nets.data fetch); required on CI")


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """A results root holding every experiment of the ``smoke`` profile (run once)."""
    import torch

    from nets.__main__ import main as nets_main

    root = tmp_path_factory.mktemp("smoke-results")
    threads = torch.get_num_threads()
    try:  # one thread: much faster on a small machine shared with other work (as the CLI's help says)
        assert nets_main(["reproduce", "--profile", "smoke", "--results", str(root), "--no-progress",
                          "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    return root


def _errors(nb) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@needs_data
def test_every_notebook_executes_on_smoke_results_and_writes_its_figures(smoke_results, tmp_path, capsys):
    out = tmp_path / "build"
    code = main(["--profile", "smoke", "--results", str(smoke_results), "--out", str(out), "--jobs", "2",
                 "--threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for name, stems in EXPECTED.items():
        assert re.search(rf"^ok\s+{name}\b", printed, re.MULTILINE), printed
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert not _errors(nb)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code_cells), f"{name}: a cell did not run"
        shown = sum("image/png" in o.get("data", {}) for c in code_cells for o in c.outputs)
        assert shown == len(stems), f"{name}: {shown} figures shown, expected {len(stems)}"
        for stem in stems:
            for ext in (".png", ".pdf"):
                assert (out / "figures" / f"{stem}{ext}").stat().st_size > 1000, f"{name}: {stem}{ext}"
    # The notebooks read the results; they did not rerun anything.
    assert json.loads((smoke_results / "smoke" / "table1.json").read_text())["meta"]["command"].startswith(
        "python -m nets reproduce")


@needs_data
def test_notebook_runs_its_experiment_when_the_results_file_is_missing(smoke_results, tmp_path, capsys):
    # A copy without tsne.json, keeping the checkpoints: the notebook produces the file
    # with `python -m nets tsne`'s runner (no training: Table 1's models are reused).
    root = tmp_path / "results"
    shutil.copytree(smoke_results / "smoke", root / "smoke", ignore=shutil.ignore_patterns("tsne.json"))
    out = tmp_path / "build"
    code = main(["--profile", "smoke", "--results", str(root), "--out", str(out), "--only", "fig2_tsne",
                 "--threads", "1"])
    assert code == 0, capsys.readouterr()
    produced = json.loads((root / "smoke" / "tsne.json").read_text())
    assert produced["meta"]["command"] == f"python -m nets tsne --profile smoke --results {root}"
    assert (out / "figures" / "tsne.png").exists() and (out / "figures" / "tsne.pdf").exists()


# ---- the Jupyter path, without the project's runner ------------------------------------------
@needs_data
def test_a_notebook_executes_through_plain_jupyter_nbconvert(smoke_results, tmp_path):
    # What a Jupyter user runs (README): jupytext makes the .ipynb, nbconvert executes it in
    # the "python3" kernel. Settings reach the kernel through its environment, as in Jupyter.
    repo = NOTEBOOK_DIR.parent
    ipynb, executed = tmp_path / "table1.ipynb", tmp_path / "executed"
    env = dict(os.environ, GI_PROFILE="smoke", GI_RESULTS=str(smoke_results), GI_FIGURES=str(tmp_path / "figures"),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               # this checkout's `nets`, whichever checkout the environment was installed from
               PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    commands = {"jupytext --to notebook": ["jupytext", "--to", "notebook", str(NOTEBOOK_DIR / "table1.py"),
                                           "-o", str(ipynb)],
                "jupyter nbconvert --execute": ["jupyter", "nbconvert", "--to", "notebook", "--execute", str(ipynb),
                                                "--output-dir", str(executed), "--ExecutePreprocessor.timeout=600"]}
    for name, command in commands.items():
        done = subprocess.run([sys.executable, "-m", *command], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"
    nb = nbformat.read(executed / "table1.ipynb", as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert not _errors(nb)
    assert all(c.get("execution_count") for c in code_cells), "a cell did not run"
    assert sum("image/png" in o.get("data", {}) for c in code_cells for o in c.outputs) == len(EXPECTED["table1"])
    printed = "".join(o.get("text", "") for c in code_cells for o in c.outputs)
    assert str(smoke_results / "smoke" / "table1.json") in printed  # it read the smoke results, not the committed ones
