"""The package's import graph has no cycle, counting the imports inside functions too: a cycle
dodged by a function-level import is still a cycle (two modules that each need the other).

Edges are read from the source (``ast``), so the test sees every ``import`` statement whether or
not it has run. ``from nets.a import b`` is an edge to ``nets.a.b`` when that is a module, else to
``nets.a``. A submodule's implicit import of its parent package is not an edge of its own; a
package's ``__init__`` importing its own submodules is an ordinary edge."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    out = {}
    for p in (ROOT / "nets").rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imported(node: ast.AST, modules: dict[str, Path]) -> set[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                 for a in node.names]
    return {n for n in names if n in modules}


def import_graph() -> dict[str, set[str]]:
    """``nets`` module -> the ``nets`` modules it imports anywhere in its source."""
    modules = _modules()
    return {name: set().union(*(_imported(n, modules) for n in ast.walk(ast.parse(path.read_text())))) - {name}
            for name, path in modules.items()}


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "nets.metrics" in graph["nets.train.nu"]  # tune_nu measures SI
    assert "nets.cnn_report" in graph["nets.report"]


def test_no_nets_module_imports_itself_back_through_others():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None


def test_the_measures_and_the_pairwise_formulas_sit_below_the_trainer():
    graph = import_graph()
    below = {"nets.metrics", "nets.pairwise", "nets.measure_inputs", "nets.model_checks", "nets.attribution",
             "nets.sensitivity", "nets.layer_profile", "nets.layer_names", "nets.groups", "nets.builtin_groups",
             "nets.models"}
    for m in below:
        assert not any(d == "nets.train" or d.startswith("nets.train.") for d in graph[m]), m


def test_results_io_imports_nothing_of_ours_but_itself():
    graph = import_graph()
    for m, deps in graph.items():
        if m.startswith("nets.results_io"):
            assert all(d.startswith("nets.results_io") for d in deps), m


def test_the_file_manifest_sits_below_the_sources_and_the_sources_below_the_fetch_step():
    graph = import_graph()
    assert "nets.fetch_step" not in graph["nets.fetch_sources"] | graph["nets.dataset_files"]
    assert "nets.fetch_sources" not in graph["nets.dataset_files"]
    assert {"nets.dataset_files", "nets.fetch_sources"} <= graph["nets.fetch_step"]
