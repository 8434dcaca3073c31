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
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "PRECISION_COMMANDS", "BF16_CPU_FLAGS", "cpu_flags", "check_precision", "training_autocast"]

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
