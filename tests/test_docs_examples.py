"""Every Python example in the docs runs as written: each ```python block of docs/ is executed,
with only the names it leaves to the reader filled in (``x``, ``y``, ``model``, ...) and its sizes
cut (fewer images, 1 epoch) where the block says how many. A block that is a fragment of the
reader's own code (``torch.save`` of arrays the reader has) is listed in FRAGMENTS, with why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import nets.data
from nets.data import Splits

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: (doc, block number from 1) -> why it is not run: it saves the reader's own arrays.
FRAGMENTS = {
    ("audit.md", 2): "torch.save of the reader's CIFAR test tensors",
    ("own_data.md", 1): "torch.save / numpy.savez of the reader's own splits (docs/own_data.md's tests build such files)",
}


def python_blocks(doc: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (DOCS / doc).read_text(), re.S | re.M)


def all_blocks() -> list[tuple[str, int]]:
    return [(p.name, i) for p in sorted(DOCS.glob("*.md")) for i in range(1, len(python_blocks(p.name)) + 1)]


class ReaderCNN(nn.Module):
    """A stand-in for the reader's own classifier of (N, 1, 36, 36) images, 9 classes."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((-2, -1)))


def reader_names() -> dict:
    """The names the blocks leave to the reader: images (N, 1, 36, 36) for ``model`` (the api.md
    block that feeds the paper MLP takes their channel off), labels."""
    g = torch.Generator().manual_seed(0)
    return {"torch": torch, "model": ReaderCNN(0).eval(), "baseline": ReaderCNN(1), "my_cnn": ReaderCNN,
            "x": torch.rand(6, 1, 36, 36, generator=g), "y": torch.arange(6) % 9}


def small_splits(name: str = "mnist", **kwargs) -> Splits:
    """The real splits, cut to a few hundred images, so the trainer's example runs in seconds."""
    full = REAL_LOAD_SPLITS(name, **kwargs)
    return Splits(full.name, full.train.subset(96), full.val.subset(48), full.test.subset(48),
                  full.mean, full.std, full.split_seed)


REAL_LOAD_SPLITS = nets.data.load_splits


def run_block(doc: str, number: int, code: str, names: dict) -> dict:
    exec(compile(code, f"docs/{doc} block {number}", "exec"), names)
    return names


def test_every_python_block_in_the_docs_is_run_here_or_listed_as_a_fragment():
    covered = set(FRAGMENTS) | set(RUNS)
    assert set(all_blocks()) == covered, set(all_blocks()) ^ covered


def run_api_groups(code, **_):
    names = run_block("api.md", 1, code, {"x": torch.rand(6, 6)})
    assert names["orbit"].shape == (4, 6, 6)
    assert torch.equal(names["P"] @ names["x"].double().flatten(), names["gx"].double().flatten())  # P: float64


def run_api_custom_group(code, **_):
    klein = run_block("api.md", 2, code, {})["Klein"]()
    x = torch.arange(36.0).reshape(6, 6)
    assert klein.orbit(x).shape == (4, 6, 6)
    assert torch.equal(klein.act(x, 3), torch.flip(torch.rot90(x, 2), dims=(-1,)))


def run_api_measures(code, **_):
    names = reader_names()
    names.update(x=names["x"][:, 0], y=names["y"])  # the paper MLP takes (N, 36, 36)
    run_block("api.md", 3, code, names)


def run_api_between(code, **_):
    run_block("api.md", 4, code, {**reader_names(), "splits": small_splits()})


def run_audit(code, tmp_path, **_):
    code = code.replace("test.x[:1000]", "test.x[:48]").replace("test.y[:1000]", "test.y[:48]")
    code = code.replace('savefig("audit.png")', f'savefig({str(tmp_path / "audit.png")!r})')
    names = run_block("audit.md", 1, code, reader_names())
    assert names["result"].to_dict() and (tmp_path / "audit.png").exists()


def run_audit_compare(code, **_):
    names = run_block("audit.md", 3, code, reader_names())
    assert names["c"].effects["LI"].direction in ("B < A", "B > A", "undecided", "B = A", "undefined",
                                                  "too few samples")


def run_data(code, **_):
    names = run_block("data.md", 1, code, {})
    assert names["splits"].train.x.shape[1:] == (36, 36)
    assert names["d"].x.shape == names["splits"].test.x.shape


def run_trainer(code, tmp_path, monkeypatch, **_):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(nets.data, "load_splits", small_splits)
    assert "epochs=20" in code and "seeds=[0, 1, 2]" in code
    code = code.replace("epochs=20", "epochs=1").replace("seeds=[0, 1, 2]", "seeds=[0]")
    names = run_block("trainer.md", 1, code, {})
    assert [r.config.method for r in names["runs"]] == ["DA", "WT", "IR"]
    assert len(list((tmp_path / "runs" / "cnn").glob("*.pt"))) == 3


def run_trainer_own_images(code, tmp_path, monkeypatch, **_):
    monkeypatch.chdir(tmp_path)
    assert "epochs=20" in code and "seeds=[0, 1, 2]" in code
    code = code.replace("epochs=20", "epochs=1").replace("seeds=[0, 1, 2]", "seeds=[0]")
    g = torch.Generator().manual_seed(0)

    def part(n):
        return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 4, (n,), generator=g)

    class ReaderRGB(nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, n_classes)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean((-2, -1)))

    (xt, yt), (xv, yv), (xs, ys) = part(64), part(32), part(32)
    names = run_block("trainer.md", 2, code, {"x_train": xt, "y_train": yt, "x_val": xv, "y_val": yv,
                                              "x_test": xs, "y_test": ys, "my_cnn": ReaderRGB})
    assert [r.config.method for r in names["runs"]] == ["DA", "WT", "IR"]
    assert len(list((tmp_path / "runs" / "mine").glob("mycnn-r4-*.pt"))) == 3


RUNS = {
    ("api.md", 1): run_api_groups,
    ("api.md", 2): run_api_custom_group,
    ("api.md", 3): run_api_measures,
    ("api.md", 4): run_api_between,
    ("audit.md", 1): run_audit,
    ("audit.md", 3): run_audit_compare,
    ("data.md", 1): run_data,
    ("trainer.md", 1): run_trainer,
    ("trainer.md", 2): run_trainer_own_images,
}


@pytest.mark.parametrize("doc,number", sorted(RUNS), ids=lambda v: str(v))
def test_the_docs_python_example_runs_as_written(doc, number, tmp_path, monkeypatch):
    RUNS[(doc, number)](python_blocks(doc)[number - 1], tmp_path=tmp_path, monkeypatch=monkeypatch)
