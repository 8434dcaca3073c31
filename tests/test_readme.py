"""The README's commands and example do what it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


class MyCNN(nn.Module):
    """A stand-in for the reader's own classifier of (N, 1, 36, 36) images."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((-2, -1)))


def test_the_readme_is_at_most_120_lines():
    assert len(README.splitlines()) <= 120


def test_the_readme_example_runs_on_a_model_of_ones_own(capsys):
    block = re.search(r"## Your own model\s+```python\n(.*?)```", README, re.S).group(1)
    assert "x, y = ..." in block
    g = torch.Generator().manual_seed(0)
    code = block.replace("x, y = ...", "x, y = torch.rand(3, 1, 36, 36, generator=g), torch.tensor([0, 4, 8])")
    exec(compile(code, "README.md", "exec"), {"MyCNN": MyCNN, "torch": torch, "g": g})
    out = capsys.readouterr().out
    li, si = (float(re.fullmatch(r"tensor\((.*)\)", line).group(1)) for line in out.splitlines()[:2])
    assert li >= 0 and 0 <= si <= 1
    assert all(name in out for name in ("LI", "DI", "SI", "sigma_max", "accuracy"))  # the audit's table


def test_every_python_m_nets_subcommand_in_the_readme_exists():
    from nets.commands import subcommand_names

    known = set(subcommand_names())
    used = set(re.findall(r"python -m nets ([\w-]+)", README))
    assert used and used <= known, used - known


def _shown(text: str) -> tuple[float, float]:
    """A number as the README prints it and half a unit of its last digit: "94.6" -> (94.6, 0.05),
    "4.4e-11" -> (4.4e-11, 0.05e-11)."""
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.partition(".")[2])
    scale = 10.0 ** int(exponent) if exponent else 1.0
    return float(text), 0.5 * 10.0 ** -decimals * scale


def test_the_readmes_table1_is_the_committed_paper_run_and_the_papers_numbers():
    from nets.results_io.paper import PAPER_TABLE1

    results = json.loads((Path(__file__).resolve().parents[1] / "results" / "paper" / "table1.json").read_text())
    rows = re.findall(r"^\| (R²₄|T²₃) \| (WT|DA|IR)[^|]* \| (.*) \|$", README, re.M)
    assert len(rows) == 6
    for group, method, cells in rows:
        g = {"R²₄": "r4", "T²₃": "t3"}[group]
        entry = results["groups"][g]["methods"][method]
        if method == "IR":
            assert f"nu = {entry['nu']:g}" in next(line for line in README.splitlines()
                                                   if line.startswith(f"| {group} | IR"))
        for measure, cell, paper in zip(("accuracy", "LI", "DI", "SI"), cells.split(" | "), PAPER_TABLE1[g][method]):
            m = re.fullmatch(r"(\S+)(?: ± (\S+))? \[(\S+)\]", cell)
            assert m, cell
            scale = 100.0 if measure == "accuracy" else 1.0
            for shown, value in ((m.group(1), entry[measure]["mean"] * scale),
                                 (m.group(2), entry[measure]["std"] * scale), (m.group(3), paper)):
                if shown is not None:
                    number, half_unit = _shown(shown)
                    assert abs(number - value) <= half_unit * (1 + 1e-9), (group, method, measure, shown, value)
