"""The trainer's data path on images with channel axes ``(N, *C, H, W)``: every row it gathers
is the flattened transformed image, the group acting on the last two axes of every channel
alike (oracle: ``Group.act``), from the orbit table and from the per-pixel fallback."""

from __future__ import annotations

import pytest
import torch

import nets.train.batches as batches
from nets.data import Split
from nets.groups import D4, R4, T3
from nets.train import OrbitData


@pytest.mark.parametrize("table", [True, False], ids=["orbit_table", "pixel_gather"])
@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
@pytest.mark.parametrize("sample_shape", [(6, 6), (1, 6, 6), (3, 6, 6), (2, 3, 6, 6)], ids=str)
def test_rows_are_the_transformed_images_for_any_channel_axes(monkeypatch, group, sample_shape, table):
    if not table:
        monkeypatch.setattr(batches, "MAX_ORBIT_TABLE_BYTES", 0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, *sample_shape, generator=gen)
    data = OrbitData(Split(x, torch.zeros(10, dtype=torch.long)), group, torch.device("cpu"))
    assert (data.table is not None) == table
    idx = torch.randint(0, 10, (2, 7), generator=gen)
    elem = torch.randint(0, group.order, (2, 7), generator=gen)
    rows = data.rows(elem, idx)  # (2, 7, D)
    for s in range(2):
        for j in range(7):
            want = group.act(x[idx[s, j]], int(elem[s, j])).reshape(-1)
            assert torch.equal(rows[s, j], want)
