"""Training the paper's three kinds of model (Sections 3.3 and 4.1).

* ``DA``: the plain :class:`~nets.models.MLP` trained with data augmentation, a
  uniformly random group element per sample per epoch.
* ``WT``: the weight-tied :class:`~nets.models.InvariantMLP`, also trained with
  augmentation.
* ``IR``: the MLP with augmentation plus ``nu`` times an invariance regularizer,
  Eq. 4: ``min_theta L_f(D) + nu I_f(D, G)``.

Regularizer forms (:func:`invariance_regularizer`), on the logits of the whole
orbit of each augmented sample ``x_a`` (one forward of all ``|G|`` members), the
task loss (cross-entropy) on ``x_a`` itself, and the regularizer comparing
``f(x_a)`` with the other members ``f(h x_a)``, ``h != e``, averaged over ``h``
and the batch:

* ``"logit"`` (default, Eq. 2): ``1/2 ||f(x) - f(hx)||^2``;
* ``"kl"`` (Eq. 1): ``KL(softmax f(x) || softmax f(hx))``, from ``log_softmax``;
* ``"normalized_logit"`` (Section 4.4): ``||f(x) - f(hx)||^2 / (||f(x)||^2 + eps)``
  with ``eps = NORMALIZED_LOGIT_EPS`` (1e-6; our guard, not in the paper,
  against a vanishing denominator).

Protocol (Section 4.1, "Training details"): Adam, learning rate 0.0008, batch
size 512, 300 epochs; the final model is the epoch with the best validation
accuracy, where accuracy is taken over the validation set's *full orbit* (every
sample under every group element). The last partial batch of an epoch is kept.

Performance. All data live on the device as one tensor: the training set's
orbit table ``(|G| N, D)`` is built once, so an augmented batch (or the orbit
of one, for IR and WT) is a single row gather; one random permutation and one
draw of group elements per epoch. Several runs of one method/group/regularizer
(different seeds and ``nu``) train together as one :class:`~nets.stacked.StackedMLP`
(``torch.baddbmm`` over the members); member ``s`` still has its own
initialisation, data order, augmentation draws and ``nu``, and gets exactly the
gradient of its own loss. Adam is fused where the device supports it. The
host reads device values once per epoch (losses and validation accuracy).

Randomness. Every run draws from two explicit CPU ``torch.Generator`` objects
derived from its seed (initial weights; data order and augmentation), never
from the global RNG, so a seed gives the same initial weights and the same
batches on every device and whether it is stacked or not, and the same seed
on the same device gives the same numbers. Two runs with the same seed but
different methods start from the same weights and see the same batches
("common random seeds", Section 4.2).

Resuming. With ``run_dir`` each run writes ``<key>-seed<seed>.pt`` atomically
(temporary file, then ``os.replace``) every ``checkpoint_every`` epochs and at
the end: current and best weights, Adam state, the data generator's state,
history and wall time; plain tensors, dicts, lists and numbers, so it loads with
``torch.load(..., weights_only=True)``. Calling again skips finished runs and
continues unfinished ones from their last checkpoint, with the same final
result as an uninterrupted run (same device and the same stacking).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nets.data import Split, Splits
from nets.groups import Group, get_group
from nets.models import MLP, InvariantMLP
from nets.results_io import atomic_torch_save, load_torch_file
from nets.stacked import StackedMLP

__all__ = [
    "Method",
    "Regularizer",
    "TrainConfig",
    "TrainedRun",
    "NuSelection",
    "TrainingDiverged",
    "NORMALIZED_LOGIT_EPS",
    "resolve_device",
    "invariance_regularizer",
    "orbit_accuracy",
    "train_runs",
    "select_nu",
    "tune_nu",
    "AUTO_NU_SEARCH",
    "checkpoint_path",
]

Method = Literal["DA", "WT", "IR"]
Regularizer = Literal["logit", "kl", "normalized_logit"]
Pool = Literal["max", "mean"]

METHODS: tuple[str, ...] = ("DA", "WT", "IR")
REGULARIZERS: tuple[str, ...] = ("logit", "kl", "normalized_logit")

#: Guard in the denominator of the normalized logit form, ``||f(x)||^2 + eps``.
NORMALIZED_LOGIT_EPS = 1e-6

#: Version of the checkpoint layout; a different version is refused on load.
CHECKPOINT_FORMAT = 1

#: Whether ``train_runs(stack=None)`` stacks compatible runs, per device type.
#: Measured with ``benchmarks/train_throughput_quick.py`` on the project's 2-core CPU
#: (torch 2.13, 2 threads, 4 seeds, paper MLP, 10k/2k samples), seconds per run-epoch
#: stacked vs one at a time: DA 0.29 vs 0.33, IR 0.86 vs 0.91, WT 0.64 vs 0.67; on a
#: busy machine stacking gained far more (DA 1.9x), as larger kernels amortise thread
#: synchronisation. On CUDA, stacking turns small kernels into large ones (not measured
#: here: no GPU was available).
AUTO_STACK: dict[str, bool] = {"cpu": True, "cuda": True}

#: Largest orbit table (bytes) built for a split; beyond it, batches are gathered per pixel.
MAX_ORBIT_TABLE_BYTES = 4 * 2**30


# ---------------------------------------------------------------------------
# Configuration and results
# ---------------------------------------------------------------------------
def _fmt(x: float) -> str:
    """Shortest round-trip text of a float, without a trailing ``.0`` (``1.0 -> "1"``)."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


@dataclass(frozen=True)
class TrainConfig:
    """One training setting; the defaults are the paper's (Section 4.1).

    Attributes:
        method: ``"DA"``, ``"WT"`` or ``"IR"`` (module docstring).
        group: group name for :func:`nets.groups.get_group` (``"r4"``, ``"t3"``, ...).
        regularizer: IR's regularizer form (only used by ``IR``).
        nu: IR's regularizer weight (Eq. 4); must be 0 for DA and WT.
        epochs: 300. batch_size: 512. lr: Adam's learning rate 0.0008.
        pool: WT's pooling over the group (``"max"``; only used by ``WT``).
        hidden, n_hidden_layers, n_classes: the model (:class:`nets.models.MLP`:
            128, 5 hidden layers, 9 classes; 233,225 parameters on 36x36 inputs).
    """

    method: Method = "DA"
    group: str = "r4"
    regularizer: Regularizer = "logit"
    nu: float = 0.0
    epochs: int = 300
    batch_size: int = 512
    lr: float = 8e-4
    pool: Pool = "max"
    hidden: int = 128
    n_hidden_layers: int = 5
    n_classes: int = 9

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {self.regularizer!r}")
        if self.pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {self.pool!r}")
        get_group(self.group)  # raises for an unknown name
        object.__setattr__(self, "group", self.group.strip().lower())
        nu = float(self.nu)
        if not math.isfinite(nu) or nu < 0:
            raise ValueError(f"nu must be finite and >= 0, got {self.nu}")
        if self.method != "IR" and nu != 0:
            raise ValueError(f"nu is IR's regularizer weight; method {self.method} needs nu=0, got {self.nu}")
        object.__setattr__(self, "nu", nu)
        for name in ("epochs", "batch_size", "hidden", "n_hidden_layers", "n_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not (math.isfinite(float(self.lr)) and float(self.lr) > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}")
        object.__setattr__(self, "lr", float(self.lr))

    def key(self) -> str:
        """Stable, filesystem-safe id: ``"r4-DA"``, ``"r4-WT"``, ``"r4-IR-logit-nu1"``; every
        field that differs from its default and matters for the method is appended
        (``"-mean"``, ``"-e20"``, ``"-bs64"``, ``"-lr0.001"``, ``"-h32"``, ``"-l2"``, ``"-c10"``)."""
        parts = [self.group, self.method]
        if self.method == "IR":
            parts += [self.regularizer, f"nu{_fmt(self.nu)}"]
        if self.method == "WT" and self.pool != "max":
            parts.append(self.pool)
        d = TrainConfig.__dataclass_fields__
        for name, tag in (("epochs", "e"), ("batch_size", "bs"), ("lr", "lr"), ("hidden", "h"),
                          ("n_hidden_layers", "l"), ("n_classes", "c")):
            value = getattr(self, name)
            if value != d[name].default:
                parts.append(f"{tag}{_fmt(value) if isinstance(value, float) else value}")
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _stack_key(self) -> tuple:
        """Runs with equal stack keys can train as members of one stacked model."""
        d = self.to_dict()
        d.pop("nu")
        if self.method != "IR":
            d.pop("regularizer")
        if self.method != "WT":
            d.pop("pool")
        return tuple(sorted(d.items()))


@dataclass
class TrainedRun:
    """One trained ``(config, seed)``.

    Attributes:
        model: :class:`~nets.models.MLP` (DA, IR) or :class:`~nets.models.InvariantMLP`
            (WT) holding the weights of the best validation epoch, in eval mode,
            on the training device.
        best_epoch: 0-based index of that epoch into the history lists, so
            ``history["val_accuracy"][best_epoch] == best_val_accuracy`` (epoch
            ``best_epoch + 1`` of ``config.epochs``; the first epoch wins ties).
        best_val_accuracy: accuracy over the validation set's full orbit, in [0, 1].
        history: per-epoch ``"loss"`` (task + nu reg), ``"task_loss"`` (cross-entropy),
            ``"reg_loss"`` (the regularizer, 0 for DA and WT): means over the
            epoch's training samples; ``"val_accuracy"``.
        wall_time_s: training time of this run; for a stacked run, the stack's
            time divided by its number of members (summed over resumed sessions).
        stack_size: number of runs trained together with this one (1 = alone).
    """

    config: TrainConfig
    seed: int
    model: nn.Module
    best_epoch: int
    best_val_accuracy: float
    history: dict[str, list[float]]
    wall_time_s: float
    stack_size: int = 1


HISTORY_KEYS: tuple[str, ...] = ("loss", "task_loss", "reg_loss", "val_accuracy")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` or ``None``: CUDA when available, else the CPU; anything else as given."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_group(group: Group | str) -> Group:
    return get_group(group) if isinstance(group, str) else group


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------
def _regularizer_members(logits: torch.Tensor, form: Regularizer) -> torch.Tensor:
    """Per-member regularizer: ``logits (S, |G|, B, C)`` with ``[:, 0]`` the reference
    ``f(x)``; returns ``(S,)``, the mean over ``h = 1 .. |G|-1`` and the batch."""
    ref, other = logits[:, :1], logits[:, 1:]
    if form == "logit":  # Eq. 2
        per = 0.5 * (other - ref).pow(2).sum(-1)
    elif form == "kl":  # Eq. 1: KL(u_x || q_hx) = sum_c u_c (log u_c - log q_c)
        logp = torch.log_softmax(logits, dim=-1)
        lref = logp[:, :1]
        per = (lref.exp() * (lref - logp[:, 1:])).sum(-1)
    elif form == "normalized_logit":  # Section 4.4
        per = (other - ref).pow(2).sum(-1) / (ref.pow(2).sum(-1) + NORMALIZED_LOGIT_EPS)
    else:
        raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {form!r}")
    return per.mean(dim=(1, 2))


def invariance_regularizer(logits_orbit: torch.Tensor, form: Regularizer = "logit") -> torch.Tensor:
    """Invariance regularizer ``I_f`` of Eq. 4 on the logits of whole orbits.

    logits_orbit: ``(|G|, B, C)``, member ``0`` the reference ``f(x)`` and member
    ``h`` the logits ``f(h x)`` of the same ``B`` samples. Returns the scalar mean
    over ``h != 0`` and the batch of

    * ``"logit"`` (Eq. 2): ``1/2 ||f(x) - f(hx)||_2^2``;
    * ``"kl"`` (Eq. 1): ``KL(softmax f(x) || softmax f(hx))`` (computed from ``log_softmax``;
      unchanged by adding a constant to a logit vector);
    * ``"normalized_logit"`` (Section 4.4): ``||f(x) - f(hx)||^2 / (||f(x)||^2 + 1e-6)``
      (the ``eps`` guard is ours).

    Gradients flow through both ``f(x)`` and ``f(hx)``. With ``|G| = 1`` there is
    nothing to compare and the mean over an empty set is NaN, so it is refused.
    """
    if logits_orbit.ndim != 3:
        raise ValueError(f"logits_orbit must have shape (|G|, B, C), got {tuple(logits_orbit.shape)}")
    if logits_orbit.shape[0] < 2:
        raise ValueError("logits_orbit needs at least two orbit members (|G| >= 2)")
    return _regularizer_members(logits_orbit.unsqueeze(0), form)[0]


def _task_loss_members(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per member: ``logits (S, B, C)``, ``y (S, B)`` -> ``(S,)``."""
    S, B, C = logits.shape
    return F.cross_entropy(logits.reshape(S * B, C), y.reshape(S * B), reduction="none").view(S, B).mean(1)


def _member_losses(
    model: StackedMLP, x: torch.Tensor, y: torch.Tensor, method: Method, form: Regularizer
) -> tuple[torch.Tensor, torch.Tensor]:
    """Task loss and regularizer of every member on its batch, each ``(S,)``.

    x: DA ``(S, B, D)`` the augmented samples; WT and IR ``(S, |G|, B, D)`` the
    orbit of each augmented sample with ``x[:, 0]`` the augmented sample itself.
    y: ``(S, B)``. The regularizer is zero for DA and WT.
    """
    if method == "IR":
        S, G, B, D = x.shape
        logits = model(x.reshape(S, G * B, D)).view(S, G, B, -1)
        return _task_loss_members(logits[:, 0], y), _regularizer_members(logits, form)
    task = _task_loss_members(model(x), y)
    return task, torch.zeros_like(task)


# ---------------------------------------------------------------------------
# Data on the device
# ---------------------------------------------------------------------------
class _OrbitData:
    """A split's images and labels on the device, with the orbit table when it fits.

    ``rows(elem, idx)`` returns ``vec(elem * x_idx)`` for index tensors of any shape
    ``(...)``, as ``(..., D)``: one row gather from the table ``(|G| N, D)`` (row
    ``g N + i`` is ``vec(g x_i)``), or, for tables over ``MAX_ORBIT_TABLE_BYTES``,
    a row gather and a pixel gather.
    """

    def __init__(self, split: Split, group: Group, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        x = split.x.to(device=device, dtype=dtype)
        if x.ndim != 3:
            raise ValueError(f"expected images (N, H, W), got {tuple(x.shape)}")
        self.N, self.H, self.W = x.shape
        self.D = self.H * self.W
        self.G = group.order
        self.group = group
        self.y = split.y.to(device=device, dtype=torch.long)
        self.flat = x.reshape(self.N, self.D)
        if self.G * self.N * self.D * x.element_size() <= MAX_ORBIT_TABLE_BYTES:
            # One pixel gather per element straight into the table (no (N, |G|, D) temporary).
            idx = group.orbit_index(self.H, self.W, device)
            table = torch.empty(self.G, self.N, self.D, device=device, dtype=dtype)
            for g in range(self.G):
                torch.gather(self.flat, 1, idx[g].expand(self.N, -1), out=table[g])
            self.table: torch.Tensor | None = table.view(self.G * self.N, self.D)
        else:
            self.table = None
            self.oi = group.orbit_index(self.H, self.W, device)

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


def _orbit_cayley(group: Group, device: torch.device) -> torch.Tensor:
    """``t[g, h] = h g`` as a ``(|G|, |G|)`` long tensor: row ``g`` lists the orbit of
    ``g x`` in the order ``h = e, 1, 2, ...`` (so column 0 is ``g`` itself)."""
    return torch.as_tensor(group.cayley_table().T.copy(), dtype=torch.long, device=device)


def _batch_inputs(data: _OrbitData, method: Method, elem: torch.Tensor, idx: torch.Tensor,
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


@torch.no_grad()
def _stacked_orbit_accuracy(model: StackedMLP, data: _OrbitData) -> torch.Tensor:
    """Accuracy of every member over the full orbit of ``data``: ``(S,)`` on the device.

    Plain members classify all ``|G| N`` orbit inputs. Weight-tied members pool the
    first layer over the orbit of their input, and the orbit of ``g x_i`` is the
    orbit of ``x_i``: built from the orbit table, the pooled pre-activations are the
    same numbers for every ``g``, so each sample is classified once from its orbit
    rows and counted ``|G|`` times (``1/|G|`` of the work, same result).
    """
    S = model.n_members
    chunk = int(min(8192, max(256, 2**24 // (S * model.hidden))))
    correct = torch.zeros(S, dtype=torch.long, device=data.y.device)
    if model.tied and data.table is not None:
        orbit = data.table.view(data.G, data.N, data.D)
        n = max(1, chunk // data.G)
        for a in range(0, data.N, n):
            pred = model.forward_shared_orbit(orbit[:, a:a + n]).argmax(-1)
            correct += data.G * (pred == data.y[a:a + n]).sum(1)
    else:
        if model.tied:
            chunk = max(256, chunk // data.G)
        for x, y in data.orbit_chunks(chunk):
            correct += (model.forward_shared(x).argmax(-1) == y).sum(1)
    return correct.to(torch.float64) / (data.G * data.N)


@torch.no_grad()
def orbit_accuracy(model: nn.Module, split: Split, group: Group | str, chunk_size: int = 2048) -> float:
    """Accuracy of ``model`` over the full orbit of ``split``: the fraction of pairs
    ``(x_i, g)`` with ``argmax f(g x_i) = y_i``, over all samples and all ``g`` in ``G``.

    model maps ``(M, H, W)`` to logits ``(M, C)``; split: ``x (N, H, W)``, ``y (N,)``,
    moved to the model's device. ``chunk_size`` samples (``|G|`` times as many
    inputs) per forward. The model's train/eval mode is left as it is.
    """
    group = _as_group(group)
    p = next(iter(model.parameters()), None)
    device = p.device if p is not None else split.x.device
    x, y = split.x.to(device), split.y.to(device)
    if len(y) == 0:
        raise ValueError("orbit_accuracy needs a non-empty split")
    correct = torch.zeros((), dtype=torch.long, device=device)
    for a in range(0, len(y), chunk_size):
        orb = group.orbit(x[a:a + chunk_size])  # (|G|, n, H, W)
        G, n = orb.shape[:2]
        pred = model(orb.reshape(G * n, *orb.shape[2:])).argmax(-1).view(G, n)
        correct += (pred == y[a:a + chunk_size]).sum()
    return int(correct) / (group.order * len(y))


# ---------------------------------------------------------------------------
# Runs, checkpoints
# ---------------------------------------------------------------------------
def _stream_seed(seed: int, stream: int) -> int:
    """Independent 63-bit seed for stream ``stream`` of run seed ``seed`` (NumPy SeedSequence)."""
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def checkpoint_path(run_dir: Path | str, config: TrainConfig, seed: int) -> Path:
    """Where :func:`train_runs` keeps the checkpoint of ``(config, seed)``."""
    return Path(run_dir) / f"{config.key()}-seed{int(seed)}.pt"


def _atomic_save(obj: dict, path: Path) -> None:
    atomic_torch_save(obj, path)


def _load_checkpoint(path: Path, config: TrainConfig, seed: int) -> dict | None:
    ckpt = load_torch_file(path, "checkpoint")  # None: missing, or damaged and moved aside
    if ckpt is None:
        return None
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {ckpt.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    if ckpt.get("config") != config.to_dict() or ckpt.get("seed") != int(seed):
        raise ValueError(
            f"{path}: checkpoint is for config {ckpt.get('config')} seed {ckpt.get('seed')}, "
            f"not {config.to_dict()} seed {seed}; move it away or use another run_dir"
        )
    return ckpt


def _build_model(config: TrainConfig, in_shape: tuple[int, int], state: dict, device: torch.device) -> nn.Module:
    kw = dict(in_shape=in_shape, n_classes=config.n_classes, hidden=config.hidden,
              n_hidden_layers=config.n_hidden_layers)
    if config.method == "WT":
        model: nn.Module = InvariantMLP(get_group(config.group), pool=config.pool, **kw)
    else:
        model = MLP(**kw)
    model.load_state_dict(state)
    return model.to(device).eval()


def _run_from_checkpoint(config: TrainConfig, seed: int, ckpt: dict, in_shape: tuple[int, int],
                         device: torch.device) -> TrainedRun:
    return TrainedRun(
        config=config, seed=int(seed), model=_build_model(config, in_shape, ckpt["best_state"], device),
        best_epoch=int(ckpt["best_epoch"]), best_val_accuracy=float(ckpt["best_val_accuracy"]),
        history={k: list(v) for k, v in ckpt["history"].items()}, wall_time_s=float(ckpt["wall_time_s"]),
        stack_size=int(ckpt.get("stack_size", 1)),
    )


def _make_adam(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults otherwise; fused where supported, else foreach."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


@dataclass
class _Member:
    config: TrainConfig
    seed: int
    path: Path | None
    ckpt: dict | None

    @property
    def start_epoch(self) -> int:
        return int(self.ckpt["epoch"]) if self.ckpt is not None else 0


class TrainingDiverged(FloatingPointError):
    """The loss of a run became NaN or infinite."""


def _train_stack(
    members: list[_Member],
    train: _OrbitData,
    val: _OrbitData,
    device: torch.device,
    *,
    checkpoint_every: int,
    progress: bool,
    on_epoch_end: Callable[[int], None] | None,
    precision: str = "fp32",
) -> list[TrainedRun]:
    """Train ``members`` (same stack key and start epoch) together; see :func:`train_runs`."""
    from nets.precision import training_autocast

    cfg = members[0].config
    S = len(members)
    start = members[0].start_epoch
    group = train.group
    method: Method = cfg.method
    model = StackedMLP(S, (train.H, train.W), cfg.n_classes, cfg.hidden, cfg.n_hidden_layers,
                       group=group if method == "WT" else None, pool=cfg.pool, device=device)
    names = [f"layers.{l}.{kind}" for kind in ("weight", "bias") for l in range(model.n_layers)]
    params = list(model.weights) + list(model.biases)  # same order as ``names``
    model.reset_parameters([torch.Generator().manual_seed(_stream_seed(m.seed, 0)) for m in members])
    data_gens = [torch.Generator().manual_seed(_stream_seed(m.seed, 1)) for m in members]
    opt = _make_adam(params, cfg.lr, device)

    histories: list[dict[str, list[float]]] = [{k: [] for k in HISTORY_KEYS} for _ in members]
    best_params = [p.detach().clone() for p in params]
    best_acc = torch.full((S,), -1.0, dtype=torch.float64, device=device)
    best_epoch = torch.full((S,), -1, dtype=torch.long, device=device)
    prev_wall = [0.0] * S
    if start > 0:
        with torch.no_grad():
            for s, m in enumerate(members):
                ck = m.ckpt
                model.load_member_state_dict(s, ck["state"])
                for p, b, n in zip(params, best_params, names):
                    b[s].copy_(ck["best_state"][n])
                data_gens[s].set_state(ck["generator"])
                histories[s] = {k: list(ck["history"][k]) for k in HISTORY_KEYS}
                prev_wall[s] = float(ck["wall_time_s"])
            best_acc.copy_(torch.tensor([float(m.ckpt["best_val_accuracy"]) for m in members]))
            best_epoch.copy_(torch.tensor([int(m.ckpt["best_epoch"]) for m in members]))
        sd = opt.state_dict()
        sd["state"] = {
            i: {
                "step": torch.tensor(float(members[0].ckpt["optimizer"]["step"]), dtype=torch.float32),
                "exp_avg": torch.stack([m.ckpt["optimizer"]["exp_avg"][n] for m in members]).to(device),
                "exp_avg_sq": torch.stack([m.ckpt["optimizer"]["exp_avg_sq"][n] for m in members]).to(device),
            }
            for i, n in enumerate(names)
        }
        opt.load_state_dict(sd)

    nu = torch.tensor([m.config.nu for m in members], dtype=torch.float32, device=device)
    N, B, G = train.N, cfg.batch_size, group.order
    cayley_t = _orbit_cayley(group, device)
    label = cfg.key() if S == 1 else "-".join(
        [cfg.group, method] + ([cfg.regularizer] if method == "IR" else [])) + f" [{S} runs]"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc=label, unit="epoch", leave=True, dynamic_ncols=True)

    t0 = time.perf_counter()
    try:
        for epoch in range(start, cfg.epochs):
            # One permutation and one element per sample and epoch, from each run's own generator.
            perm = torch.stack([torch.randperm(N, generator=g) for g in data_gens]).to(device)
            elem = torch.stack([torch.randint(0, G, (N,), generator=g) for g in data_gens]).to(device)
            y_epoch = train.y[perm]  # (S, N)
            sums = torch.zeros(3, S, dtype=torch.float64, device=device)
            for a in range(0, N, B):
                b = min(a + B, N)
                x = _batch_inputs(train, method, elem[:, a:b], perm[:, a:b], cayley_t)
                with training_autocast(precision, device):
                    task, reg = _member_losses(model, x, y_epoch[:, a:b], method, cfg.regularizer)
                    loss = (task + nu * reg).float()
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
                sums += torch.stack([loss, task, reg]).detach() * (b - a)
            val_acc = _stacked_orbit_accuracy(model, val)
            with torch.no_grad():
                improved = val_acc > best_acc
                best_acc = torch.where(improved, val_acc, best_acc)
                best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
                for p, bp in zip(params, best_params):
                    bp.copy_(torch.where(improved.view(-1, *([1] * (p.ndim - 1))), p, bp))
            stats = torch.cat([sums / N, val_acc.unsqueeze(0)]).cpu().tolist()  # the one sync per epoch
            for s in range(S):
                for k, row in zip(HISTORY_KEYS, stats):
                    histories[s][k].append(float(row[s]))
            bad = [s for s in range(S) if not math.isfinite(stats[0][s])]
            if bad:
                who = ", ".join(f"{members[s].config.key()} seed {members[s].seed}" for s in bad)
                raise TrainingDiverged(f"loss became {stats[0][bad[0]]} in epoch {epoch + 1} of run(s) {who}")
            done = epoch + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(stats[0]):.4f}", val_acc=f"{np.mean(stats[3]):.4f}")
            if members[0].path is not None and (done % checkpoint_every == 0 or done == cfg.epochs):
                elapsed = time.perf_counter() - t0
                _save_members(members, model, opt, names, best_params, best_acc, best_epoch, data_gens,
                              histories, [w + elapsed / S for w in prev_wall], done, cfg.epochs)
            if on_epoch_end is not None:
                on_epoch_end(done)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0

    runs = []
    best_acc_l, best_epoch_l = best_acc.cpu().tolist(), best_epoch.cpu().tolist()
    for s, m in enumerate(members):
        state = {n: bp[s].detach().clone() for n, bp in zip(names, best_params)}
        runs.append(TrainedRun(
            config=m.config, seed=m.seed, model=_build_model(m.config, (train.H, train.W), state, device),
            best_epoch=int(best_epoch_l[s]), best_val_accuracy=float(best_acc_l[s]), history=histories[s],
            wall_time_s=prev_wall[s] + elapsed / S, stack_size=S,
        ))
    return runs


def _save_members(members, model, opt, names, best_params, best_acc, best_epoch, data_gens, histories,
                  wall, done, epochs) -> None:
    finished = done == epochs
    params = list(model.weights) + list(model.biases)
    step = None
    if not finished:
        st = opt.state[params[0]]
        step = float(st["step"])
    acc, ep = best_acc.cpu().tolist(), best_epoch.cpu().tolist()
    for s, m in enumerate(members):
        ckpt: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "config": m.config.to_dict(),
            "seed": int(m.seed),
            "epoch": int(done),
            "finished": bool(finished),
            "best_state": {n: bp[s].detach().cpu().clone() for n, bp in zip(names, best_params)},
            "best_epoch": int(ep[s]),
            "best_val_accuracy": float(acc[s]),
            "generator": data_gens[s].get_state(),
            "history": {k: list(v) for k, v in histories[s].items()},
            "wall_time_s": float(wall[s]),
            "stack_size": len(members),
            "torch_version": str(torch.__version__),
        }
        if not finished:  # a finished run never resumes: only its selected weights are kept
            ckpt["state"] = {n: p[s].detach().cpu().clone() for n, p in zip(names, params)}
            ckpt["optimizer"] = {
                "step": step,
                "exp_avg": {n: opt.state[p]["exp_avg"][s].detach().cpu().clone() for n, p in zip(names, params)},
                "exp_avg_sq": {n: opt.state[p]["exp_avg_sq"][s].detach().cpu().clone()
                               for n, p in zip(names, params)},
            }
        _atomic_save(ckpt, m.path)


def train_runs(
    configs: Sequence[TrainConfig],
    seeds: Sequence[int],
    splits: Splits,
    *,
    device: str | torch.device | None = "auto",
    run_dir: Path | str | None = None,
    progress: bool = True,
    stack: bool | None = None,
    max_stack: int | None = None,
    checkpoint_every: int = 10,
    on_epoch_end: Callable[[int], None] | None = None,
    precision: str = "fp32",
) -> list[TrainedRun]:
    """Train every ``(config, seed)`` on ``splits.train``, selecting on ``splits.val``.

    Returns the runs configs-major: ``[(c0, s0), (c0, s1), ..., (c1, s0), ...]``.

    Args:
        configs, seeds: the runs (seeds are non-negative integers).
        splits: ``train`` and ``val`` images ``(N, H, W)`` and labels ``(N,)``.
        device: ``"auto"`` (CUDA when available) or a device.
        run_dir: where checkpoints live (:func:`checkpoint_path`); finished runs are
            loaded instead of trained, unfinished ones continue from their checkpoint.
        progress: a tqdm bar per trained stack (epoch, loss, validation accuracy, ETA).
        stack: train runs that differ only in seed and ``nu`` together as one
            stacked model (``True``), one at a time (``False``), or per
            ``AUTO_STACK`` for the device (``None``).
        max_stack: at most this many runs per stack (``None``: no limit).
        checkpoint_every: epochs between checkpoints (and one at the end).
        on_epoch_end: called with the number of finished epochs after each epoch
            of each stack (after its checkpoint, if any).
        precision: ``"fp32"``, or ``"bf16"``: the training forward and loss under bf16
            autocast, weights, Adam state and validation in float32
            (:mod:`nets.precision`; refused on a CPU without bf16 instructions). bf16
            checkpoints live in ``run_dir / "bf16"``, apart from the float32 ones.

    Raises:
        TrainingDiverged: a loss became NaN or infinite (names the runs and the epoch).
    """
    configs = list(configs)
    seeds = [int(s) for s in seeds]
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative, got {seeds}")
    if not configs or not seeds:
        return []
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if max_stack is not None and max_stack < 1:
        raise ValueError(f"max_stack must be >= 1, got {max_stack}")
    keys = [(c.key(), s) for c in configs for s in seeds]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate (config, seed) pairs in train_runs")
    dev = resolve_device(device)
    from nets.precision import check_precision

    check_precision(precision, dev)
    if stack is None:
        stack = AUTO_STACK.get(dev.type, True)
    rdir = Path(run_dir) if run_dir is not None else None
    if rdir is not None and precision != "fp32":
        rdir = rdir / precision
    if rdir is not None:
        rdir.mkdir(parents=True, exist_ok=True)
    if len(splits.val) == 0 or len(splits.train) == 0:
        raise ValueError("train_runs needs non-empty train and val splits")
    in_shape = (int(splits.train.x.shape[-2]), int(splits.train.x.shape[-1]))
    n_lab = int(max(splits.train.y.max(), splits.val.y.max())) + 1
    for c in configs:
        if n_lab > c.n_classes:
            raise ValueError(f"labels go up to {n_lab - 1} but {c.key()} has n_classes={c.n_classes}")

    results: dict[int, TrainedRun] = {}
    pending: list[tuple[int, _Member]] = []
    for i, (c, s) in enumerate((c, s) for c in configs for s in seeds):
        path = checkpoint_path(rdir, c, s) if rdir is not None else None
        ckpt = _load_checkpoint(path, c, s) if path is not None else None
        if ckpt is not None and ckpt["finished"]:
            results[i] = _run_from_checkpoint(c, s, ckpt, in_shape, dev)
        else:
            pending.append((i, _Member(c, s, path, ckpt)))

    groups: dict[tuple, list[tuple[int, _Member]]] = {}
    for i, m in pending:
        k = (m.config._stack_key(), m.start_epoch) if stack else (i,)
        groups.setdefault(k, []).append((i, m))
    data_cache: dict[str, tuple[_OrbitData, _OrbitData]] = {}
    for grp in groups.values():
        size = max_stack or len(grp)
        for a in range(0, len(grp), size):
            chunk = grp[a:a + size]
            gname = chunk[0][1].config.group
            if gname not in data_cache:
                g = get_group(gname)
                data_cache[gname] = (_OrbitData(splits.train, g, dev), _OrbitData(splits.val, g, dev))
            tr, va = data_cache[gname]
            runs = _train_stack([m for _, m in chunk], tr, va, dev, checkpoint_every=checkpoint_every,
                                progress=progress, on_epoch_end=on_epoch_end, precision=precision)
            for (i, _), r in zip(chunk, runs):
                results[i] = r
    return [results[i] for i in range(len(keys))]


# ---------------------------------------------------------------------------
# Choosing nu
# ---------------------------------------------------------------------------
#: How ``tune_nu(search=None)`` walks the nu grid, per device type. ``"ascending"``
#: trains one nu at a time (its seeds stacked), smallest first, and stops at the first
#: nu that reaches the SI target: the choice is the same as training the whole grid
#: (every smaller nu was trained and missed), at a fraction of the cost when the target
#: is reached early. ``"full"`` trains the whole grid as one stack: on a GPU, where the
#: small models are launch-bound, a 20-model stack costs about what a 4-model one does.
AUTO_NU_SEARCH: dict[str, str] = {"cpu": "ascending", "cuda": "full"}

NuSearch = Literal["ascending", "full"]


@dataclass
class NuSelection:
    """Outcome of :func:`tune_nu`: per grid value (in the order given) the mean
    validation saliency invariance ``si`` and the mean best validation accuracy
    ``accuracy`` over seeds (``None`` for a value the ascending search never
    trained because a smaller one had reached the target), the chosen ``nu``
    (``None`` if no value reached ``target``), the target and the ``search`` used."""

    grid: list[float]
    si: list[float | None]
    accuracy: list[float | None]
    chosen: float | None
    target: float
    search: str = "full"

    @property
    def trained(self) -> list[float]:
        """The grid values that were trained (in grid order)."""
        return [nu for nu, si in zip(self.grid, self.si) if si is not None]

    def to_dict(self) -> dict:
        return {"grid": list(self.grid), "si": list(self.si), "accuracy": list(self.accuracy),
                "chosen": self.chosen, "target": self.target, "search": self.search}


def select_nu(grid: Sequence[float], si_values: Sequence[float | None], target: float = 0.95) -> float | None:
    """The smallest ``nu`` in ``grid`` whose saliency invariance reaches ``target``
    (``si >= target``, Section 4.1: "such that ... SI_f >= 0.95"); ``None`` if none does.

    ``grid`` need not be sorted; NaN or ``None`` (not trained) SI never passes.
    """
    grid, si_values = list(grid), list(si_values)
    if len(grid) != len(si_values):
        raise ValueError(f"grid and si_values differ in length: {len(grid)} vs {len(si_values)}")
    passing = [float(nu) for nu, si in zip(grid, si_values) if si is not None and float(si) >= target]
    return min(passing) if passing else None


def tune_nu(
    base: TrainConfig,
    grid: Sequence[float],
    seeds: Sequence[int],
    splits: Splits,
    *,
    si_target: float = 0.95,
    n_si_samples: int = 500,
    device: str | torch.device | None = "auto",
    run_dir: Path | str | None = None,
    progress: bool = True,
    stack: bool | None = None,
    search: NuSearch | None = None,
    **si_kwargs: Any,
) -> tuple[NuSelection, dict[float, list[TrainedRun]]]:
    """Train ``base`` with the ``nu`` of ``grid`` and every seed, and pick ``nu``.

    For each trained ``nu``: the saliency invariance (:func:`nets.metrics.saliency_invariance`,
    Eq. 3) of each seed's best-validation model on the first ``n_si_samples``
    validation samples (a number the paper does not give), averaged over seeds,
    and the mean best validation accuracy. The choice is :func:`select_nu`
    (smallest ``nu`` with SI >= ``si_target``), ``None`` when no value reaches it;
    callers report that rather than picking anyway.

    ``search``: ``"full"`` trains every grid value (stacked together);
    ``"ascending"`` trains them smallest first, one value (all seeds) at a time,
    and stops once one reaches the target, so it picks the same ``nu`` as
    ``"full"`` with fewer runs; ``None``: :data:`AUTO_NU_SEARCH` for the device.
    Both resume from ``run_dir``.

    Returns the selection and the trained runs per ``nu`` (seed order).
    ``si_kwargs`` go to ``saliency_invariance``.
    """
    from nets import metrics

    if base.method != "IR":
        raise ValueError(f"tune_nu tunes IR's regularizer weight; got method {base.method}")
    grid = [float(v) for v in grid]
    if not grid:
        raise ValueError("tune_nu needs a non-empty grid")
    if len(set(grid)) != len(grid):
        raise ValueError(f"tune_nu's grid has repeated values: {grid}")
    seeds = [int(s) for s in seeds]
    dev = resolve_device(device)
    if search is None:
        search = AUTO_NU_SEARCH.get(dev.type, "full")  # type: ignore[assignment]
    if search not in ("ascending", "full"):
        raise ValueError(f"search must be 'ascending' or 'full', got {search!r}")
    group = get_group(base.group)
    n = min(int(n_si_samples), len(splits.val))
    x, y = splits.val.x[:n].to(dev), splits.val.y[:n].to(dev)

    def measure(runs: list[TrainedRun]) -> tuple[float, float]:
        si = float(np.mean([float(metrics.saliency_invariance(r.model, x, y, group, **si_kwargs)) for r in runs]))
        return si, float(np.mean([r.best_val_accuracy for r in runs]))

    k = len(seeds)
    by_nu: dict[float, list[TrainedRun]] = {}
    scores: dict[float, tuple[float, float]] = {}
    if search == "full":
        runs = train_runs([replace(base, nu=v) for v in grid], seeds, splits, device=dev, run_dir=run_dir,
                          progress=progress, stack=stack)
        for j, v in enumerate(grid):
            by_nu[v] = runs[j * k:(j + 1) * k]
            scores[v] = measure(by_nu[v])
    else:
        for v in sorted(grid):
            by_nu[v] = train_runs([replace(base, nu=v)], seeds, splits, device=dev, run_dir=run_dir,
                                  progress=progress, stack=stack)
            scores[v] = measure(by_nu[v])
            if scores[v][0] >= si_target:
                break
    si = [scores[v][0] if v in scores else None for v in grid]
    acc = [scores[v][1] if v in scores else None for v in grid]
    sel = NuSelection(grid=grid, si=si, accuracy=acc, chosen=select_nu(grid, si, si_target),
                      target=float(si_target), search=str(search))
    return sel, by_nu
