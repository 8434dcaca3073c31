"""The README's commands and example do what it says."""

from __future__ import annotations

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
