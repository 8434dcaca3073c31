"""Per-layer invariance of any model, read with forward hooks on its named submodules.

For the activations ``a_l`` that submodule ``l`` returns (flattened per sample) and the logits:

    r_l = sum_{i, g} ||a_l(x_i) - a_l(g x_i)||^2 / sum_{i, g} (||a_l(x_i)||^2 + ||a_l(g x_i)||^2) / 2,

the relative invariance error of :func:`layer_invariance_profile` (re-exported by :mod:`nets.metrics`), summed over
the samples ``i`` and the group elements ``g`` averaged over (the non-identity ones by
default). ``r_l = 0`` for a layer whose output is invariant; an equivariant layer (a
convolution before pooling) is not invariant and has ``r_l > 0``.

Which layers: :func:`default_layers` walks the module tree from the top and lists every
submodule that is not a plain container (``nn.Sequential``, ``nn.ModuleList``,
``nn.ModuleDict``), descending into containers only. For ``nn.Sequential`` this is each layer;
for a torchvision ResNet ``conv1, bn1, relu, maxpool, layer1.0, ..., layer4.1, avgpool, fc``
(each residual block as a whole); for the paper's MLP the ``nn.Linear`` maps (before the
ReLU that its forward applies as a function). A submodule called more than once per forward
contributes all its outputs, concatenated. Outputs that are not tensors, or whose first axis is
not the batch the model was given (a submodule run on something else, e.g. inside a wrapper that
averages over the orbit), are left out.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from nets.groups import Group, GroupLike, as_group
from nets.measure_inputs import DEFAULT_CHUNK, check_chunk_size, check_images, chunks, group_elements, model_chunk
from nets.model_checks import check_model, model_logits

__all__ = ["default_layers", "recorded_activations", "layer_invariance_terms", "layer_invariance_profile"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def default_layers(model: nn.Module) -> list[str]:
    """Names of the submodules a profile reads by default (module docstring), in registration order."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"a per-layer profile needs an nn.Module (to hook its submodules), got {type(model).__name__}")

    def walk(module: nn.Module, prefix: str) -> list[str]:
        out = []
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            out.extend(walk(child, full + ".") if isinstance(child, _CONTAINERS) else [full])
        return out

    return walk(model, "")


@contextmanager
def recorded_activations(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Forward hooks on the submodules named ``layers``; yields ``{name: [outputs of each call]}``,
    cleared by the caller between forwards. The hooks are removed on exit. Each output is stored as a
    copy: a later in-place operation (``nn.ReLU(inplace=True)``, a residual ``out += identity``)
    overwrites the tensor the submodule returned, and would give that submodule the next one's value."""
    modules = dict(model.named_modules())
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"{type(model).__name__} has no submodule named {missing[0]!r} "
                         f"(named submodules include {', '.join(default_layers(model)[:6])} ...)")
    store: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    handles = []

    def hook_for(name: str) -> Callable:
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                store[name].append(output.detach().clone())
        return hook

    try:
        for n in layers:
            handles.append(modules[n].register_forward_hook(hook_for(n)))
        yield store
    finally:
        for h in handles:
            h.remove()


def _orbit_terms(a: torch.Tensor, G: int, n: int, elems: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's activations of an orbit, ``(G n, ...)`` element-major, -> per-sample ``(num, den)``
    ``(n,)`` in float64: ``sum_g ||a(x) - a(g x)||^2`` and ``sum_g (||a(x)||^2 + ||a(g x)||^2) / 2``
    over ``g`` in ``elems`` (wide, so half-precision activations do not overflow)."""
    a = a.to(torch.float64).reshape(G, n, -1)
    ref, other = a[0], a[list(elems)]
    return (other - ref).pow(2).sum(-1).sum(0), 0.5 * (ref.pow(2).sum(-1) + other.pow(2).sum(-1)).sum(0)


@torch.no_grad()
def layer_invariance_terms(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
    elems: Sequence[int],
    *,
    layers: Optional[Sequence[str]] = None,
    chunk_size: int = 1024,
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Per-sample numerator and denominator of ``r_l`` (module docstring).

    x: ``(N, *C, H, W)`` images, already checked. Returns ``(names, num, den)``: the names of
    the layers that produced tensors, then ``"logits"``; ``num``, ``den``: ``(N, L)`` float64,
    ``num[i, l] = sum_g ||a_l(x_i) - a_l(g x_i)||^2``, ``den[i, l] = sum_g (||a_l(x_i)||^2 +
    ||a_l(g x_i)||^2) / 2`` over ``g`` in ``elems``. ``r_l = num[:, l].sum() / den[:, l].sum()``.
    ``layers``: submodule names, or one name as a string.
    """
    names = default_layers(model) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    chunk_size = model_chunk(model, chunk_size)
    nums, dens = [], []
    produced: Optional[list[str]] = None
    with recorded_activations(model, names) as store:
        for s in chunks(x.shape[0], chunk_size):
            xc = x[s : s + chunk_size]
            G, n = group.order, xc.shape[0]
            flat = group.orbit(xc).reshape(G * n, *xc.shape[1:])
            for v in store.values():
                v.clear()
            logits = model_logits(model, flat)
            acts = {k: torch.cat([a.reshape(G * n, -1) for a in v], dim=1)
                    for k, v in store.items() if v and all(a.shape[0] == G * n for a in v)}
            if produced is None:
                produced = [k for k in names if k in acts]
            acts["logits"] = logits
            terms = [_orbit_terms(acts[k], G, n, elems) for k in [*produced, "logits"]]
            nums.append(torch.stack([num for num, _ in terms], dim=1))
            dens.append(torch.stack([den for _, den in terms], dim=1))
    assert produced is not None
    return [*produced, "logits"], torch.cat(nums), torch.cat(dens)


@torch.no_grad()
def layer_invariance_profile(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    layers: Optional[Sequence[str]] = None,
) -> torch.Tensor:
    """Relative logit-invariance error of every hidden layer and of the logits.

    For the activations ``a_l`` after layer ``l`` (and the logits last):

        r_l = E_{x,g} ||a_l(x) - a_l(gx)||^2 / E_{x,g} (||a_l(x)||^2 + ||a_l(gx)||^2) / 2,

    averaged over the non-identity elements by default. ``r_l = 0`` for an
    invariant layer; two orthogonal activations of equal norm give 2 (the
    maximum for non-negative ReLU activations). Shows where invariance builds
    up: a weight-tied model is exactly invariant from layer 1 on.

    Which activations: with ``layers=None`` and a model that provides
    ``hidden_activations(x) -> list of (M, d_l)`` (as :class:`nets.models.MLP`
    does), those (after each ReLU). Otherwise the outputs of the named submodules
    ``layers`` read with forward hooks (default :func:`default_layers`; the names and
    the per-sample terms come from :func:`layer_invariance_terms`, summed here in
    float64). x: ``(N, *C, H, W)``. Returns ``(L + 1,)``, the logits last; NaN for a
    layer whose activations are all zero.
    """
    group = as_group(group)
    check_images(x, group)
    check_model(model, x)
    chunk_size = check_chunk_size(chunk_size)
    elems = group_elements(group, include_identity)
    if layers is not None or not callable(getattr(model, "hidden_activations", None)):
        _, num_i, den_i = layer_invariance_terms(model, x, group, elems, layers=layers, chunk_size=chunk_size)
        return (num_i.sum(0) / den_i.sum(0)).to(x.dtype)
    num: Optional[torch.Tensor] = None
    den: Optional[torch.Tensor] = None
    step = model_chunk(model, chunk_size)
    for s in chunks(x.shape[0], step):
        xc = x[s : s + step]
        orbit = group.orbit(xc)
        G, n = orbit.shape[:2]
        flat = orbit.reshape(G * n, *xc.shape[1:])
        acts = list(model.hidden_activations(flat)) + [model_logits(model, flat)]
        terms = [_orbit_terms(a, G, n, elems) for a in acts]
        nums, dens = torch.stack([t.sum() for t, _ in terms]), torch.stack([d.sum() for _, d in terms])
        num = nums if num is None else num + nums
        den = dens if den is None else den + dens
    assert num is not None and den is not None
    return (num / den).to(x.dtype)
