"""Per-layer invariance of any model, read with forward hooks on its named submodules.

For the activations ``a_l`` that submodule ``l`` returns (flattened per sample) and the logits:

    r_l = sum_{i, g} ||a_l(x_i) - a_l(g x_i)||^2 / sum_{i, g} (||a_l(x_i)||^2 + ||a_l(g x_i)||^2) / 2,

the relative invariance error of :func:`layer_invariance_profile` (re-exported by :mod:`nets.metrics`), summed over
the samples ``i`` and the group elements ``g`` averaged over (the non-identity ones by
default). ``r_l = 0`` for a layer whose output is invariant; an equivariant layer (a
convolution before pooling) is not invariant and has ``r_l > 0``.

Which layers: :func:`default_layers` (:mod:`nets.layer_names`, re-exported here) lists the submodules
read by default, and why a model or a layer can have none. A submodule called more than once per forward
contributes all its outputs, concatenated. Outputs that are not tensors, or whose first axis is not the
batch the model was given (a submodule run on something else, e.g. inside a wrapper that averages over
the orbit), are left out.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from nets.groups import Group, GroupLike, as_group
from nets.measure_inputs import DEFAULT_CHUNK, check_chunk_size, check_images, chunks, group_elements, model_chunk
from nets.caller_warning import warn_at_caller
from nets.layer_names import SCRIPTED, default_layers, graph_modules, scripted, unhookable
from nets.model_checks import check_model, model_logits
from nets.model_hooks import hooks_firing

__all__ = ["graph_modules", "unhookable", "SCRIPTED", "scripted", "default_layers",  # nets.layer_names'
           "recorded_activations", "batch_layers", "layer_invariance_terms", "left_out_text", "layer_invariance_profile"]


@contextmanager
def recorded_activations(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Forward hooks on the submodules named ``layers``; yields ``{name: [outputs of each call]}``
    (an output that is not a tensor, a tuple, as the name of its type), cleared by the caller between
    forwards. The hooks are removed on exit. Each output is stored as a copy: a later in-place operation
    (``nn.ReLU(inplace=True)``, a residual ``out += identity``) overwrites the tensor the submodule
    returned, and would give that submodule the next one's value. Within the block a compiled model runs
    eagerly (:func:`~nets.model_hooks.hooks_firing`), so the hooks fire."""
    why = unhookable(model)
    if why is not None:
        raise ValueError(f"no per-layer profile: {why}")
    modules = dict(model.named_modules())
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"{type(model).__name__} has no submodule named {missing[0]!r} "
                         f"(named submodules include {', '.join(default_layers(model)[:6])} ...)")
    store: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    handles = []

    def hook_for(name: str) -> Callable:
        def hook(_module, _inputs, output):  # an output that is not a tensor is kept as its type's name
            store[name].append(output.detach().clone() if isinstance(output, torch.Tensor) else type(output).__name__)
        return hook

    try:
        for n in layers:
            if not scripted(model, n):  # left out by the profile, with why (SCRIPTED)
                handles.append(modules[n].register_forward_hook(hook_for(n)))
        with hooks_firing(model):
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


def _kind(outputs: list) -> str | None:
    """Why a layer's outputs of one forward cannot be read whatever their shape (None: tensors of one axis or more)."""
    if not outputs:
        return "not called in the forward"
    kinds = sorted({o for o in outputs if isinstance(o, str)})
    if kinds:
        return f"returns a {kinds[0]}, not a tensor"
    return "returns a 0-d tensor" if any(o.dim() == 0 for o in outputs) else None


def _off_batch(outputs: list, batch: int) -> int | None:
    """The first axis of the first of ``outputs`` (tensors) whose first axis is not ``batch``; None if none."""
    return next((int(o.shape[0]) for o in outputs if o.shape[0] != batch), None)


def _why_left_out(outputs: list, batch: int) -> str | None:
    """Why a layer's outputs of one forward on ``batch`` inputs are not read (None: they are)."""
    kind = _kind(outputs)
    if kind is not None:
        return kind
    return None if _off_batch(outputs, batch) is None else "its output's first axis is not the batch"


def batch_layers(model: nn.Module, store: dict[str, list], flat: torch.Tensor) -> dict[str, str | None]:
    """Per layer of ``store`` (:func:`recorded_activations`, holding one forward on ``flat``), why it is
    left out of a profile, or None where it is read: its outputs must be tensors whose first axis is the
    batch on ``flat`` and on a probe of another size too (a forward on 2 of its inputs, 3 where it has 2,
    run here: one more forward, which hooks and counters see), so a layer whose first axis only happens
    to equal the batch (a sequence-first transformer layer, ``(S, N, d)`` with S tokens = G n) is left
    out rather than read along the tokens. Empties ``store``. A ``ValueError`` (one line) where the model
    refuses the probe."""
    B = flat.shape[0]
    main = {k: _kind(v) or _off_batch(v, B) for k, v in store.items()}  # a reason, the first axis, or None
    for v in store.values():
        v.clear()
    probe = flat[:2] if B != 2 else torch.cat([flat, flat[:1]])
    P = probe.shape[0]
    try:
        model_logits(model, probe)
    except ValueError as e:
        raise ValueError(f"the per-layer profile's probe on {P} inputs, which decides which layers have the batch on "
                         f"their first axis: {e}") from None
    why: dict[str, str | None] = {}
    for k, m in main.items():
        p = _kind(store[k]) or _off_batch(store[k], P)
        if isinstance(m, str) or (m is None and p is None):
            why[k] = m
        elif isinstance(p, str):
            why[k] = f"on a {P}-input probe, {p}"
        elif m is not None and p is not None and m % B == 0 and p % P == 0 and m // B == p // P:
            why[k] = f"its output's first axis holds {m // B} inputs per input (inside an orbit-averaging wrapper?)"
        else:
            why[k] = "its output's first axis is not the batch" + (f" (on a {P}-input probe)" if m is None else "")
    for v in store.values():
        v.clear()
    return why


@torch.no_grad()
def layer_invariance_terms(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
    elems: Sequence[int],
    *,
    layers: Optional[Sequence[str]] = None,
    chunk_size: int = 1024,
) -> tuple[list[str], torch.Tensor, torch.Tensor, dict[str, str]]:
    """Per-sample numerator and denominator of ``r_l`` (module docstring).

    x: ``(N, *C, H, W)`` images, already checked. Returns ``(names, num, den, left_out)``: the names
    of the layers read (:func:`batch_layers`, decided on the first chunk), then ``"logits"``; ``num``,
    ``den``: ``(N, L)`` float64, ``num[i, l] = sum_g ||a_l(x_i) - a_l(g x_i)||^2``, ``den[i, l] =
    sum_g (||a_l(x_i)||^2 + ||a_l(g x_i)||^2) / 2`` over ``g`` in ``elems``, ``r_l = num[:, l].sum() /
    den[:, l].sum()``; ``left_out``: each layer not read, with why. ``layers``: submodule names, or one
    name as a string. A ``ValueError`` (one line) where a layer read on the first chunk has no output
    with the batch on its first axis in a later one.
    """
    names = default_layers(model) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    chunk_size = model_chunk(model, chunk_size)
    nums, dens = [], []
    why: Optional[dict[str, str | None]] = None
    produced: list[str] = []  # the layers read, decided on the first chunk
    with recorded_activations(model, names) as store:
        for s in chunks(x.shape[0], chunk_size):
            xc = x[s : s + chunk_size]
            G, n = group.order, xc.shape[0]
            flat = group.orbit(xc).reshape(G * n, *xc.shape[1:])
            for v in store.values():
                v.clear()
            logits = model_logits(model, flat)
            late = {k: _why_left_out(store[k], G * n) for k in (names if why is None else produced)}
            acts = {k: torch.cat([a.reshape(G * n, -1) for a in store[k]], dim=1) for k, w in late.items() if w is None}
            if why is None:
                why = {**batch_layers(model, store, flat), **{k: SCRIPTED for k in names if scripted(model, k)}}
                produced = [k for k in names if why[k] is None]
            lost = [k for k in produced if k not in acts]
            if lost:
                raise ValueError(f"layer {lost[0]!r} of the per-layer profile: on {n} samples (an orbit batch of "
                                 f"{G * n}) {late[lost[0]]}, though it was on the first chunk; leave it out of the "
                                 f"layers (layers=), or give a chunk size that covers every sample at once "
                                 f"(chunk_size, --chunk-size; a model with batch_expansion needs that many times more)")
            acts["logits"] = logits
            terms = [_orbit_terms(acts[k], G, n, elems) for k in [*produced, "logits"]]
            nums.append(torch.stack([num for num, _ in terms], dim=1))
            dens.append(torch.stack([den for _, den in terms], dim=1))
    assert why is not None
    return [*produced, "logits"], torch.cat(nums), torch.cat(dens), {k: w for k, w in why.items() if w is not None}


def left_out_text(left_out: dict[str, str]) -> str:
    """``attn (returns a tuple, not a tensor), enc (its output's first axis is not the batch)``."""
    return ", ".join(f"{k} ({w})" for k, w in left_out.items())


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
        _, num_i, den_i, left_out = layer_invariance_terms(model, x, group, elems, layers=layers, chunk_size=chunk_size)
        if left_out:
            warn_at_caller(f"layer_invariance_profile: left out (no entry in the result) {left_out_text(left_out)}; "
                           "nets.layer_profile.layer_invariance_terms gives the names of the layers read",
                           UserWarning)
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
