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
from pathlib import Path
from typing import Any, Iterator

import torch

from nets.results_io import NEW_TF32_API, cuda_float32

__all__ = ["PRECISIONS", "PRECISION_COMMANDS", "BF16_CPU_FLAGS", "EXACT_FLOAT32", "cpu_flags", "check_precision",
           "training_autocast", "exact_float32"]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: The ``python -m nets`` subcommands that take ``--precision``: those that train the MLP's stacks
#: (``nets.distributed.plan``); the others train their own runs in float32 or train nothing.
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
            raise ValueError(f"--precision bf16 refused on this CPU: it has neither {' nor '.join(BF16_CPU_FLAGS)} "
                             "(bf16 would be emulated, many times slower than fp32); use fp32 or a CUDA device")
    elif precision == "bf16" and dev.type != "cuda":
        raise ValueError(f"--precision bf16 runs on CUDA or a CPU with bf16 instructions, not on {dev.type}")
    elif precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported(
            including_emulation=False):
        raise ValueError(f"--precision bf16 refused on {torch.cuda.get_device_name(dev)}: it has no native bf16 "
                         "(compute capability 8.0 or later has); use fp32")
    return precision


def training_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the training forward and loss run in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: The CUDA settings of :func:`exact_float32` (in :func:`~nets.results_io.numerics.cuda_float32`'s form).
EXACT_FLOAT32: dict[str, Any] = {"matmul": "ieee", "conv": "ieee", "rnn": "ieee", "cudnn_deterministic": True,
                                 "cudnn_benchmark": False}


def _set_cuda_float32(settings: dict[str, Any]) -> None:
    b = torch.backends
    if NEW_TF32_API:
        b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision = settings["matmul"], settings["conv"]
        b.cudnn.rnn.fp32_precision = settings.get("rnn", settings["conv"])
    else:
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = settings["matmul"] == "tf32", settings["conv"] == "tf32"
    b.cudnn.deterministic, b.cudnn.benchmark = settings["cudnn_deterministic"], settings["cudnn_benchmark"]


@contextlib.contextmanager
def exact_float32(device: str | torch.device | None) -> Iterator[None]:
    """Within the block, if ``device`` is a CUDA device: float32 matrix products and convolutions in
    IEEE float32 (no TF32) and cuDNN's deterministic algorithms only, without benchmarking
    (:data:`EXACT_FLOAT32`); the settings before are restored on leaving it. Nothing changes for
    another device (``None``: the CPU). The settings are the process's: a thread that runs CUDA work
    meanwhile runs under them too. bf16 autocast (``--precision bf16``) is unaffected."""
    if device is None or torch.device(device).type != "cuda":
        yield
        return
    before = cuda_float32()
    _set_cuda_float32(EXACT_FLOAT32)
    try:
        yield
    finally:
        _set_cuda_float32(before)
