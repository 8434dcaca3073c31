"""Which layers a per-layer profile (:mod:`nets.layer_profile`) reads by default.

:func:`default_layers` walks the module tree from the top and lists every submodule that is not a plain
container (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``), descending into containers only.
For ``nn.Sequential`` this is each layer; for a torchvision ResNet ``conv1, bn1, relu, maxpool,
layer1.0, ..., layer4.1, avgpool, fc`` (each residual block as a whole); for the paper's MLP the
``nn.Linear`` maps (before the ReLU that its forward applies as a function). A weight-tied model pooled
at its first layer (``nets.train.GroupPooled`` with ``pooling`` ``"first_layer-..."``, a checkpoint's WT
run) calls its inner ``model``'s ``first_layer`` and ``after_first_layer``, never the inner forward: the
walk descends into ``model``, whose layers after the pooling are read (invariant there: ``r_l = 0``
after max pooling, round-off after mean pooling). A model whose only child is a network of its own (a
wrapper that resizes or normalizes its input, ``nets.TwoLogits``, ``torch.compile``'s
``OptimizedModule``) is read as that network. A TorchScript submodule takes no forward hooks: it is one
layer, left out with why (:data:`SCRIPTED`); a model that cannot be hooked at all says why
(:func:`unhookable`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from nets.model_hooks import original_module

__all__ = ["graph_modules", "unhookable", "SCRIPTED", "scripted", "default_layers"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def graph_modules(model: torch.fx.GraphModule) -> list[str]:
    """The submodules a ``torch.fx`` graph calls (``call_module`` nodes), in the graph's order, each once;
    torch.export's input check ``_guards_fn`` left out."""
    called = [str(n.target) for n in model.graph.nodes if n.op == "call_module" and n.target != "_guards_fn"]
    return list(dict.fromkeys(called))


def unhookable(model: object) -> Optional[str]:
    """Why ``model`` can have no per-layer profile, or ``None`` where its submodules can be hooked: a
    plain callable has none, a TorchScript module's take no forward hooks, and torch.export's module runs one
    flattened graph that calls none of them."""
    if not isinstance(model, nn.Module):
        return ("the model is not an nn.Module (a plain callable has no submodules to hook); wrap it in one for "
                "the profile")
    if isinstance(model, torch.fx.GraphModule) and not graph_modules(model) and any(True for _ in model.parameters()):
        return ("the model is a torch.fx graph that calls none of its submodules (torch.export's .module() flattens "
                "them into one graph); give the nn.Module before torch.export for the profile")
    if isinstance(model, torch.jit.ScriptModule):
        return ("the model is a TorchScript module, whose submodules take no forward hooks; give the nn.Module "
                "before torch.jit.script / trace for the profile")
    if _wraps(model) and isinstance(next(model.children()), torch.jit.ScriptModule):
        return ("the model wraps a TorchScript module, whose submodules take no forward hooks; wrap the nn.Module "
                "before torch.jit.script / trace for the profile")
    return None


#: Why a profile leaves out a layer that is (or is inside) a TorchScript module.
SCRIPTED = "a TorchScript module, which takes no forward hooks"


def scripted(model: nn.Module, name: str) -> bool:
    """Whether the submodule ``name`` of ``model`` is, or is inside, a TorchScript module (no forward hooks)."""
    parts = name.split(".")
    return any(isinstance(model.get_submodule(".".join(parts[:i])), torch.jit.ScriptModule)
               for i in range(1, len(parts) + 1))


def _wraps(module: nn.Module) -> bool:
    """Whether ``module`` wraps one network: its only child has children of its own, and it is not a
    weight-tied model (``pooling``: its network runs on the whole orbit, read at the pooling instead)."""
    children = list(module.children())
    return len(children) == 1 and any(True for _ in children[0].children()) and not hasattr(module, "pooling")


def default_layers(model: nn.Module) -> list[str]:
    """Names of the submodules a profile reads by default (module docstring), in registration order; a
    ``torch.compile``'d module's are its original module's (``_orig_mod.*``), and a model that wraps one
    network (resizing or normalizing its input, ``nets.TwoLogits``) that network's, and a ``torch.fx`` graph's
    those its graph calls (:func:`graph_modules`). Raises ``ValueError`` for
    a model that cannot be hooked (:func:`unhookable`)."""
    why = unhookable(model)
    if why is not None:
        raise ValueError(f"no per-layer profile: {why}")
    if isinstance(model, torch.fx.GraphModule):  # symbolic_trace makes its containers plain modules: read the graph
        return graph_modules(model)
    inner = original_module(model)
    if inner is not None:  # torch.compile(module): read as the module it compiled
        return [f"_orig_mod.{n}" for n in default_layers(inner)]

    def walk(module: nn.Module, prefix: str) -> list[str]:
        out = []
        pooled_first = str(getattr(module, "pooling", "")).startswith("first_layer")  # WT: model's forward unused
        wrapper = not prefix and _wraps(module)  # the model is a wrapper around one network: read its layers
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            compiled = child is original_module(module)  # a compiled submodule
            inside = isinstance(child, _CONTAINERS) or (pooled_first and name == "model") or compiled or wrapper
            inside = inside and not isinstance(child, torch.jit.ScriptModule)  # one layer, left out (SCRIPTED)
            out.extend(walk(child, full + ".") if inside else [full])
        return out

    return walk(model, "")
