"""The data on the device: a split's orbit table and the inputs of one batch of every member."""

from __future__ import annotations

import math

import torch

from nets.data import Split
from nets.groups import Group
from nets.train.config import Method

#: Largest orbit table (bytes) built for a split; beyond it, batches are gathered per pixel.
MAX_ORBIT_TABLE_BYTES = 4 * 2**30


def orbit_index_nd(group: Group, sample_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Source index ``(|G|, D)`` of the group acting on the last two axes of a flattened sample of
    shape ``(*C, H, W)`` (``D = prod(C) H W``): ``vec(g x) = vec(x)[idx[g]]``, every channel
    transformed alike. With no channel axes it is :meth:`Group.orbit_index` itself."""
    H, W = sample_shape[-2:]
    idx = group.orbit_index(H, W, device)
    n_channels = math.prod(sample_shape[:-2])
    if n_channels == 1:
        return idx
    offsets = torch.arange(n_channels, device=device).view(1, -1, 1) * (H * W)
    return (offsets + idx.unsqueeze(1)).reshape(idx.shape[0], n_channels * H * W)


class OrbitData:
    """A split's images ``(N, *C, H, W)`` and labels on the device, with the orbit table when it fits.

    The group acts on the last two axes; a sample is kept flat as ``D = prod(C) H W`` values
    (``sample_shape`` is ``(*C, H, W)``). ``rows(elem, idx)`` returns ``vec(elem * x_idx)`` for
    index tensors of any shape ``(...)``, as ``(..., D)``: one row gather from the table
    ``(|G| N, D)`` (row ``g N + i`` is ``vec(g x_i)``), or, for tables over
    ``MAX_ORBIT_TABLE_BYTES``, a row gather and a pixel gather.
    """

    def __init__(self, split: Split, group: Group, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        x = split.x.to(device=device, dtype=dtype)
        if x.ndim < 3:
            raise ValueError(f"expected images (N, *C, H, W), got {tuple(x.shape)}")
        self.N = x.shape[0]
        self.sample_shape: tuple[int, ...] = tuple(int(d) for d in x.shape[1:])
        self.H, self.W = self.sample_shape[-2:]
        self.D = math.prod(self.sample_shape)
        self.G = group.order
        self.group = group
        self.y = split.y.to(device=device, dtype=torch.long)
        self.flat = x.reshape(self.N, self.D)
        if self.G * self.N * self.D * x.element_size() <= MAX_ORBIT_TABLE_BYTES:
            # One pixel gather per element straight into the table (no (N, |G|, D) temporary).
            idx = orbit_index_nd(group, self.sample_shape, device)
            table = torch.empty(self.G, self.N, self.D, device=device, dtype=dtype)
            for g in range(self.G):
                torch.gather(self.flat, 1, idx[g].expand(self.N, -1), out=table[g])
            self.table: torch.Tensor | None = table.view(self.G * self.N, self.D)
        else:
            self.table = None
            self.oi = orbit_index_nd(group, self.sample_shape, device)

    def rows(self, elem: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.table is not None:
            return self.table.index_select(0, (elem * self.N + idx).reshape(-1)).view(*idx.shape, self.D)
        x = self.flat.index_select(0, idx.reshape(-1))
        return torch.gather(x, 1, self.oi.index_select(0, elem.reshape(-1))).view(*idx.shape, self.D)

    def orbit_chunks(self, chunk_rows: int):
        """Yield ``(x (M, D), y (M,))`` covering every sample under every element."""
        if self.table is not None:
            yr = self.y.repeat(self.G)
            for a in range(0, self.G * self.N, chunk_rows):
                yield self.table[a:a + chunk_rows], yr[a:a + chunk_rows]
            return
        n = max(1, chunk_rows // self.G)
        ar = torch.arange(self.G, device=self.y.device).view(self.G, 1)
        for a in range(0, self.N, n):
            idx = torch.arange(a, min(a + n, self.N), device=self.y.device).expand(self.G, -1)
            yield self.rows(ar.expand_as(idx), idx).reshape(-1, self.D), self.y[idx].reshape(-1)


def orbit_cayley(group: Group, device: torch.device) -> torch.Tensor:
    """``t[g, h] = h g`` as a ``(|G|, |G|)`` long tensor: row ``g`` lists the orbit of
    ``g x`` in the order ``h = e, 1, 2, ...`` (so column 0 is ``g`` itself)."""
    return torch.as_tensor(group.cayley_table().T.copy(), dtype=torch.long, device=device)


def batch_inputs(data: OrbitData, method: Method, elem: torch.Tensor, idx: torch.Tensor,
                  cayley_t: torch.Tensor) -> torch.Tensor:
    """The network inputs of one batch of every member.

    elem, idx: ``(S, n)``, sample ``idx[s, j]`` augmented by element ``elem[s, j]``.
    DA: ``(S, n, D)``, the augmented samples ``vec(g x)``. WT and IR: ``(S, |G|, n, D)``,
    the orbit ``vec(h g x)`` of each augmented sample, ``h = e`` first.
    """
    if method == "DA":
        return data.rows(elem, idx)
    S, n = idx.shape
    orbit_elem = cayley_t[elem].permute(0, 2, 1)  # (S, |G|, n)
    return data.rows(orbit_elem, idx.unsqueeze(1).expand(S, data.G, n))

