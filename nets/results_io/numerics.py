"""How float32 runs on CUDA in this process, as a results file records it.

On an NVIDIA GPU of compute capability 8.0 or later (A100, H100, H200) PyTorch may run a float32
matrix product or convolution on TF32 tensor cores, which read 10 of float32's 23 mantissa bits:
torch 2.11 and 2.13 do so for cuDNN's convolutions unless told otherwise. And cuDNN may pick a
nondeterministic algorithm for a convolution's backward pass. :func:`cuda_float32` reads both
settings; the one place that changes them is :func:`nets.precision.exact_float32`.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["NEW_TF32_API", "cuda_float32"]

#: Whether this torch has the ``fp32_precision`` settings (torch 2.9 and later) beside the older
#: ``allow_tf32`` ones. torch keeps the two in step when they are set through ``allow_tf32``; set
#: otherwise through ``fp32_precision``, it refuses to read ``allow_tf32`` ("a mix of the legacy and
#: new APIs").
NEW_TF32_API: bool = hasattr(torch.backends, "fp32_precision")


def _resolved(*settings: str) -> str:
    """An ``fp32_precision`` setting and its parents': the first that is not ``"none"``, else IEEE."""
    return next((s for s in settings if s != "none"), "ieee")


def cuda_float32() -> dict[str, Any]:
    """The CUDA float32 settings now: ``matmul`` (cuBLAS) and ``conv`` (cuDNN's convolutions and
    recurrent layers), each ``"tf32"`` or ``"ieee"``, ``cudnn_deterministic`` and ``cudnn_benchmark``.
    Read through ``allow_tf32``, or through ``fp32_precision`` where torch refuses that. Reads torch's
    flags only: no CUDA device is needed."""
    b = torch.backends
    try:
        kinds = {"matmul": "tf32" if b.cuda.matmul.allow_tf32 else "ieee",
                 "conv": "tf32" if b.cudnn.allow_tf32 else "ieee"}
    except RuntimeError:  # set through fp32_precision to what allow_tf32 cannot say
        kinds = {"matmul": _resolved(b.cuda.matmul.fp32_precision, b.fp32_precision),
                 "conv": _resolved(b.cudnn.conv.fp32_precision, b.cudnn.fp32_precision, b.fp32_precision)}
    return {**kinds, "cudnn_deterministic": bool(b.cudnn.deterministic), "cudnn_benchmark": bool(b.cudnn.benchmark)}
