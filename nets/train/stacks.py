"""The members of one stack: ``S`` runs that differ only in seed and ``nu``, trained together.

A stack holds every member's state as stacked tensors ``(S, ...)`` (one Adam over them is ``S``
independent Adams, and the loss differentiated is the sum of the member losses, so member ``s``
gets exactly the gradient of its own loss) and offers what the epoch loop needs:
``names`` (one member's state-dict keys, parameters first), ``params`` (Adam's tensors),
``tensors`` (parameters then buffers, in ``names`` order; a factory model's parameters with
``requires_grad=False`` come after the trained ones, are not Adam's and stay as the factory made them), a training forward
``stack(x: (S, M, D)) -> (S, M, C)``, ``orbit_accuracy(data) -> (S,)``, ``load_member``,
``train()`` / ``eval()``, and ``batch_method`` (what :func:`~nets.train.batches.batch_inputs`
builds for it). Three engines (recorded in the run as ``engine``):

* ``"stacked_mlp"``: the paper's MLP as one :class:`~nets.stacked.StackedMLP` (``torch.baddbmm``
  over the members), initialised by ``StackedMLP.reset_parameters``.
* ``"vmap"``: any model from a factory ``model_fn(config) -> nn.Module``, members stacked with
  ``torch.func.stack_module_state`` and run with ``vmap(functional_call)``.
* ``"one_at_a_time"``: a model that cannot be stacked, one member per stack
  (``functional_call`` on views of the ``(1, ...)`` tensors, so buffers such as BatchNorm's
  running statistics are updated in place).

A model can be stacked when a training-mode forward changes none of its buffers (no BatchNorm
running statistics or other state) and runs under ``vmap`` (no random layers such as dropout);
:func:`~nets.train.factory.can_stack` tries both on a copy, so the choice is automatic.

Initial weights of a factory model come from the factory called inside a forked global RNG
seeded from the run's seed (:func:`~nets.train.factory.init_model`): they depend on the seed only. The model receives
batches of ``model.input_shape`` per sample when it has that attribute (e.g. ``(1, 36, 36)`` for a
CNN on ``(N, 36, 36)`` images), else the data's own sample shape ``(*C, H, W)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.func import functional_call, stack_module_state, vmap

from nets.stacked import StackedMLP
from nets.train.batches import OrbitData
from nets.train.config import TrainConfig, stream_seed
from nets.train.evaluate import shared_orbit_accuracy, stacked_orbit_accuracy
from nets.train.factory import (  # noqa: F401  (re-exported: they lived here before nets.train.factory)
    TRAINABLE_DTYPES, ModelFn, can_stack, check_model_output, copy_module, declared_input_shape, init_model,
    input_shape_of, model_dtype)


class MLPStack:
    """The paper's MLP (DA, IR) or weight-tied MLP (WT) members as one :class:`StackedMLP`."""

    engine = "stacked_mlp"
    uses_global_rng = False

    def __init__(self, configs: Sequence[TrainConfig], seeds: Sequence[int], data: OrbitData,
                 device: torch.device) -> None:
        cfg = configs[0]
        if len(data.sample_shape) != 2:
            raise ValueError(f"the paper MLP takes images (N, H, W); got samples of shape {data.sample_shape}")
        S = len(seeds)
        self.batch_method = cfg.method
        self.wt_pooling = f"first_layer-{cfg.pool}" if cfg.method == "WT" else None
        self.model = StackedMLP(S, (data.H, data.W), cfg.n_classes, cfg.hidden, cfg.n_hidden_layers,
                                group=data.group if cfg.method == "WT" else None, pool=cfg.pool, device=device)
        self.names = [f"layers.{l}.{kind}" for kind in ("weight", "bias") for l in range(self.model.n_layers)]
        self.params = list(self.model.weights) + list(self.model.biases)  # same order as ``names``
        self.tensors = self.params
        self.model.reset_parameters([torch.Generator().manual_seed(stream_seed(s, 0)) for s in seeds])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def train(self) -> None:
        pass

    def eval(self) -> None:
        pass

    def orbit_accuracy(self, data: OrbitData) -> torch.Tensor:
        return stacked_orbit_accuracy(self.model, data)

    def load_member(self, s: int, state: dict[str, torch.Tensor]) -> None:
        self.model.load_member_state_dict(s, state)


class GenericStack:
    """Members built by a factory, stacked with ``vmap`` (``vmap=True``) or one member alone."""

    def __init__(self, configs: Sequence[TrainConfig], seeds: Sequence[int], data: OrbitData,
                 device: torch.device, model_fn: ModelFn, *, vmap: bool) -> None:
        cfg = configs[0]
        if not vmap and len(seeds) != 1:
            raise ValueError(f"a model that cannot be stacked trains one run at a time, got {len(seeds)}")
        self.engine = "vmap" if vmap else "one_at_a_time"
        self.uses_global_rng = not vmap
        self.vmap = vmap
        self.S = len(seeds)
        self.G = data.G
        self.n_classes = cfg.n_classes
        self.batch_method = "IR" if cfg.method == "IR" else "DA"  # WT pools inside the model
        models = [init_model(cfg, s, model_fn) for s in seeds]
        self.wt_pooling = models[0].pooling if cfg.method == "WT" else None
        self.input_shape = input_shape_of(models[0], data.sample_shape)
        params, buffers = stack_module_state(models)
        frozen = {n for n, p in models[0].named_parameters() if not p.requires_grad}  # kept as the factory made them
        self.base = models[0].to(device)
        self.param_dict = {n: p.detach().to(device).requires_grad_(n not in frozen) for n, p in params.items()}
        self.buffer_dict = {n: b.detach().to(device) for n, b in buffers.items()}
        trained = [n for n in self.param_dict if n not in frozen]
        self.names = trained + [n for n in self.param_dict if n in frozen] + list(self.buffer_dict)
        self.params = [self.param_dict[n] for n in trained]  # Adam's: the frozen ones stay as they are
        state = {**self.param_dict, **self.buffer_dict}
        self.tensors = [state[n] for n in self.names]
        self._call = lambda p, b, x: functional_call(self.base, (p, b), (x,))

    def _forward(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        M = x.shape[-2]
        x = x.reshape(*x.shape[:-1], *self.input_shape)
        if self.vmap:
            fn = vmap(self._call, in_dims=(0, 0, None if shared else 0))
            out = fn(self.param_dict, self.buffer_dict, x)
        else:
            p = {n: t[0] for n, t in self.param_dict.items()}
            b = {n: t[0] for n, t in self.buffer_dict.items()}
            out = self._call(p, b, x if shared else x[0]).unsqueeze(0)
        if out.ndim != 3 or out.shape != (self.S, M, self.n_classes):
            raise ValueError(f"the model must return logits (M, n_classes) = ({M}, {self.n_classes}) for inputs "
                             f"(M, *{self.input_shape}); got {tuple(out.shape[1:])}")
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (S, M, D)`` (member ``s``'s own rows) -> logits ``(S, M, C)``."""
        return self._forward(x, shared=False)

    def train(self) -> None:
        self.base.train()

    def eval(self) -> None:
        self.base.eval()

    @torch.no_grad()
    def orbit_accuracy(self, data: OrbitData) -> torch.Tensor:
        """Accuracy of every member over the full orbit of ``data``, ``(S,)`` float64 on the device
        (each orbit input classified by every member; WT pools over its orbit inside the model)."""
        chunk = max(64, 4096 // (self.S * (self.G if self.wt_pooling else 1)))
        return shared_orbit_accuracy(lambda x: self._forward(x, shared=True), data, self.S, chunk)

    @torch.no_grad()
    def load_member(self, s: int, state: dict[str, torch.Tensor]) -> None:
        for n, t in zip(self.names, self.tensors):
            t[s].copy_(state[n])
