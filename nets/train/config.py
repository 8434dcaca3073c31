"""Training configuration and results: :class:`TrainConfig` (the paper's defaults, Section 4.1),
:class:`TrainedRun`, the method and regularizer names, the device choice and the per-run seed streams."""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from nets.groups import group_key, group_name
from nets.model_checks import ONE_LOGIT_FIX

Method = Literal["DA", "WT", "IR"]
Regularizer = Literal["logit", "kl", "normalized_logit", "centered_normalized_logit", "detached_normalized_logit"]
Pool = Literal["max", "mean"]

METHODS: tuple[str, ...] = ("DA", "WT", "IR")
#: The paper's three forms (Section 4.4), then two of ours: the normalized form on class-centered
#: logits, and the normalized form with no gradient through its denominator.
REGULARIZERS: tuple[str, ...] = ("logit", "kl", "normalized_logit", "centered_normalized_logit",
                                 "detached_normalized_logit")
#: Our forms (not the paper's; :mod:`nets.experiments.centered` trains them).
CENTERED_FORM = REGULARIZERS[3]
DETACHED_FORM = REGULARIZERS[4]

#: The model name of the paper's MLP, trained as a :class:`~nets.stacked.StackedMLP`.
PAPER_MODEL = "mlp"
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.]+")


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
        nu: IR's regularizer weight (Eq. 4); must be 0 for DA and WT. IR takes 0 too (the default,
            so give it): whole-orbit batches with no regularizer, the unregularized point of a grid.
        epochs: 300. batch_size: 512. lr: Adam's learning rate 0.0008.
        pool: WT's pooling over the group at the first layer (``"max"``; only used by ``WT``, and
            only for a model with ``first_layer``: another is pooled by the mean of its logits,
            which :attr:`TrainedRun.wt_pooling` records as ``"logits-mean"``, whatever ``pool`` says).
        hidden, n_hidden_layers, n_classes: the model (:class:`nets.models.MLP`:
            128, 5 hidden layers, 9 classes; 233,225 parameters on 36x36 inputs);
            another model's factory may read them (it must give ``n_classes`` logits).
        model: which model: ``"mlp"`` (:data:`PAPER_MODEL`, the paper's MLP) or the name of
            a factory handed to :func:`~nets.train.train_runs` (``model_fn``); letters,
            digits, ``_`` and ``.``. Another name prefixes the key (``"cnn-r4-DA"``), so
            checkpoints of different models never collide; the paper MLP's keys are unchanged.
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
    model: str = PAPER_MODEL

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not _MODEL_NAME.fullmatch(self.model):
            raise ValueError(f"model must be a name of letters, digits, '_' and '.', got {self.model!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {self.regularizer!r}")
        if self.pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {self.pool!r}")
        object.__setattr__(self, "group", group_name(self.group))  # raises for an unknown name
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
        if self.n_classes == 1:
            raise ValueError(f"n_classes must be >= 2: one class has nothing to classify (its cross-entropy is 0); "
                             f"a binary classifier of one logit trains as {ONE_LOGIT_FIX}")
        if not (math.isfinite(float(self.lr)) and float(self.lr) > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}")
        object.__setattr__(self, "lr", float(self.lr))

    def key(self) -> str:
        """Stable, filesystem-safe id: ``"r4-DA"``, ``"r4-WT"``, ``"r4-IR-logit-nu1"``; every
        field that differs from its default and matters for the method is appended
        (``"-mean"``, ``"-e20"``, ``"-bs64"``, ``"-lr0.001"``, ``"-h32"``, ``"-l2"``, ``"-c10"``)."""
        parts = [group_key(self.group), self.method]
        if self.model != PAPER_MODEL:
            parts.insert(0, self.model)
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
        """The fields as a dict; ``model`` only when it is not the paper's MLP, so the paper's
        records and checkpoints keep the layout they were written with."""
        d = asdict(self)
        if self.model == PAPER_MODEL:
            d.pop("model")
        return d

    def stack_key(self) -> tuple:
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
            (WT), or for another model ``model_fn(config)`` (WT: wrapped in
            :class:`~nets.train.pooling.GroupPooled`), holding the state of the best
            validation epoch, in eval mode, on the training device.
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
        engine: how the members were trained: ``"stacked_mlp"`` (the paper MLP as a
            :class:`~nets.stacked.StackedMLP`), ``"vmap"`` (any model, members stacked with
            ``torch.func``) or ``"one_at_a_time"`` (a model that cannot be stacked).
        wt_pooling: WT only, where the group pooling sits: ``"first_layer-max"`` /
            ``"first_layer-mean"`` (the paper's, at the first layer) or ``"logits-mean"``
            (mean of the logits over the orbit); ``None`` for DA and IR.
    """

    config: TrainConfig
    seed: int
    model: nn.Module
    best_epoch: int
    best_val_accuracy: float
    history: dict[str, list[float]]
    wall_time_s: float
    stack_size: int = 1
    engine: str = "stacked_mlp"
    wt_pooling: str | None = None


HISTORY_KEYS: tuple[str, ...] = ("loss", "task_loss", "reg_loss", "val_accuracy")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` or ``None``: CUDA when available, else the CPU; anything else as given."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str, what: str = "--device") -> torch.device:
    """:func:`resolve_device` of a device name given on a command line (``what``, the name errors use:
    ``"device"`` for an argument), refusing one this machine does not have: ``ValueError``, one line
    (an unknown name, CUDA without CUDA, a CUDA index beyond the devices, a device type other than
    cpu, mps and cuda)."""
    if device == "auto":
        return resolve_device(device)
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown {what} {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {device}: CUDA is not available on this machine (torch "
                             f"{torch.__version__}); use {what} cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{what} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{what} {device}: MPS (Apple's GPU) is not available on this machine (torch "
                             f"{torch.__version__}); use {what} cpu or auto")
    elif dev.type != "cpu":
        raise ValueError(f"{what} {device}: only auto, cpu, cuda and cuda:N are supported")
    return dev


#: ``--threads`` may ask for at most this many threads per logical CPU: far more only slows a run, and
#: tens of thousands crash it (a segmentation fault, or a library that cannot map its memory).
MAX_THREADS_PER_CPU = 4


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` for a command's ``--threads`` (``None``: torch's choice,
    left alone); ``ValueError``, one line, for fewer than 1 or more than :data:`MAX_THREADS_PER_CPU`
    per logical CPU of this machine."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    cpus = os.cpu_count() or 1
    if threads > MAX_THREADS_PER_CPU * cpus:
        raise ValueError(f"--threads {threads} is more than {MAX_THREADS_PER_CPU} per logical CPU of this machine "
                         f"({cpus}); use at most {MAX_THREADS_PER_CPU * cpus}")
    torch.set_num_threads(threads)


def stream_seed(seed: int, stream: int) -> int:
    """Independent 63-bit seed for stream ``stream`` of run seed ``seed`` (NumPy SeedSequence)."""
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


class TrainingDiverged(FloatingPointError):
    """The loss of a run became NaN or infinite."""

