"""Training precision: float32, or bfloat16 autocast where the hardware has bf16 matrix units.

``"fp32"`` (default): everything in float32. ``"bf16"``: the training forward and
backward run under ``torch.autocast(dtype=torch.bfloat16)`` (matrix products in
bf16, reductions and the loss in float32 as autocast decides); the master weights,
Adam's state, validation and every measure stay float32.

bf16 is allowed on a CUDA device with native bf16 (compute capability 8.0 or later), and on
a CPU only when its flags (``/proc/cpuinfo``) include
``avx512_bf16`` or ``amx_bf16``: without bf16 matrix instructions PyTorch emulates
bf16 and a step runs many times slower than in float32, so it is refused with an
error naming the missing flags.

On CUDA, float32 means IEEE float32: :func:`exact_float32`, which the trainer, the commands and
:func:`nets.audit` enter, turns off TF32 for matrix products and convolutions (torch 2.13 uses it
for cuDNN's convolutions by default, reading 10 bits of each mantissa) and restricts cuDNN to
deterministic algorithms, so that one seed gives the same numbers twice and the measures agree
with the CPU's.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any, Iterator

import torch

from nets.results_io import NEW_TF32_API

__all__ = ["PRECISIONS", "PRECISION_COMMANDS", "BF16_CPU_FLAGS", "EXACT_FLOAT32", "cpu_flags", "check_precision",
           "autocast_on", "no_autocast", "training_autocast", "exact_float32"]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: The ``python -m nets`` subcommands that take ``--precision``: those that train the MLP's stacks
#: (``nets.sweep_plan.plan``); the others train their own runs in float32 or train nothing.
PRECISION_COMMANDS: tuple[str, ...] = ("table1", "drift", "spectral", "tsne", "saliency", "reproduce")
#: CPU flags of bf16 matrix instructions (AVX-512 BF16, AMX); one is needed for bf16 on a CPU.
BF16_CPU_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The first CPU's flags from ``cpuinfo`` (empty where the file does not exist)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def check_precision(precision: str, device: str | torch.device, flags: frozenset[str] | None = None) -> str:
    """Return ``precision`` if it can run on ``device``; raise ``ValueError`` otherwise.

    ``flags``: the CPU's flags (default :func:`cpu_flags`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dev = torch.device(device)
    if precision == "bf16" and dev.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        if not any(f in flags for f in BF16_CPU_FLAGS):
            raise ValueError(f"bf16 precision refused on this CPU: it has neither {' nor '.join(BF16_CPU_FLAGS)} "
                             "(bf16 would be emulated, many times slower than fp32); use fp32 or a CUDA device")
    elif precision == "bf16" and dev.type != "cuda":
        raise ValueError(f"bf16 precision runs on CUDA or a CPU with bf16 instructions, not on {dev.type}")
    elif precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported(
            including_emulation=False):
        raise ValueError(f"bf16 precision refused on {torch.cuda.get_device_name(dev)}: it has no native bf16 "
                         "(compute capability 8.0 or later has); use fp32")
    return precision


def autocast_on(device_type: str) -> bool:
    """Whether a ``torch.autocast`` for ``device_type`` is on in this thread (``False`` for a device type
    torch has no autocast for, ``meta``)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):
        return False


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast(device_type, enabled=False)`` where a caller's autocast is on (:func:`autocast_on`;
    autocast state is the thread's), so a float32 model trains and is measured in float32; nothing
    otherwise, so that the trainer's own bf16 autocast, entered inside, stays the outermost one, whose exit
    clears torch's cache of cast weights after every batch."""
    if not autocast_on(device_type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, enabled=False)


def training_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the training forward and loss run in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: The CUDA settings within :func:`exact_float32` (as :func:`~nets.results_io.numerics.cuda_float32` reads them).
EXACT_FLOAT32: dict[str, Any] = {"matmul": "ieee", "conv": "ieee", "cudnn_deterministic": True,
                                 "cudnn_benchmark": False}

# The settings are the process's: blocks entered from several threads share one state, applied by the
# first to enter and put back by the last to leave.
_LOCK = threading.Lock()
_depth = 0
_before: tuple | None = None


def _snapshot() -> tuple:
    """torch's settings as set: ``allow_tf32`` where torch can read it, else the ``fp32_precision`` ones."""
    b = torch.backends
    raw = (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision) if NEW_TF32_API \
        else None
    try:
        legacy = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
    except RuntimeError:  # torch >= 2.9, set through fp32_precision to what allow_tf32 cannot say
        legacy = None
    return raw, legacy, b.cudnn.deterministic, b.cudnn.benchmark


def _restore(snapshot: tuple) -> None:
    raw, legacy, deterministic, benchmark = snapshot
    b = torch.backends
    if legacy is not None:
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = legacy
    else:
        b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision = raw
    b.cudnn.deterministic, b.cudnn.benchmark = deterministic, benchmark


def _set_exact() -> None:
    """Through ``allow_tf32``, which torch 2.9+ keeps in step with ``fp32_precision``: set through
    ``fp32_precision``, torch would refuse to read ``allow_tf32`` inside the block (its own
    ``cudnn.flags()``, ``torch.compile``'s convolutions)."""
    b = torch.backends
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = False
    b.cudnn.deterministic, b.cudnn.benchmark = True, False


@contextlib.contextmanager
def exact_float32(device: str | torch.device | None) -> Iterator[None]:
    """Within the block, a caller's ``torch.autocast`` for ``device``'s type is off (:func:`no_autocast`), and if
    ``device`` is a CUDA device: float32 matrix products and convolutions in
    IEEE float32 (no TF32) and cuDNN's deterministic algorithms only, without benchmarking
    (:data:`EXACT_FLOAT32`); torch's settings as they were before are put back on leaving it.
    Nothing else changes for another device (``None``: the CPU; ``"auto"``: CUDA where there is one). The
    CUDA settings are the process's: blocks open in several threads at once share them (the first to
    enter sets them, the last to leave puts them back), and CUDA work of other threads meanwhile
    runs under them too. bf16 autocast (``--precision bf16``), entered inside the block, is unaffected."""
    global _depth, _before
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = "cpu" if device is None else torch.device(device).type
    if kind != "cuda":
        with no_autocast(kind):
            yield
        return
    with _LOCK:
        if _depth == 0:
            _before = _snapshot()
            _set_exact()
        _depth += 1
    try:
        with no_autocast(kind):
            yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                _restore(_before)
                _before = None
