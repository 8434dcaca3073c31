"""How float32 runs on CUDA in this process, as a results file records it.

On an NVIDIA GPU of compute capability 8.0 or later (A100, H100, H200) PyTorch may run a float32
matrix product or convolution on TF32 tensor cores, which read 10 bits of each mantissa: torch 2.13
does so for cuDNN's convolutions unless told otherwise. And cuDNN may pick a nondeterministic
algorithm for a convolution's backward pass. :func:`cuda_float32` reads both settings; the one
place that changes them is :func:`nets.precision.exact_float32`.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["NEW_TF32_API", "cuda_float32"]

#: Whether this torch has the ``fp32_precision`` settings (torch 2.9 and later); older ones have
#: ``allow_tf32``. One process uses one of the two: torch refuses a mix of them.
NEW_TF32_API: bool = hasattr(torch.backends, "fp32_precision")


def cuda_float32() -> dict[str, Any]:
    """The CUDA float32 settings now: ``matmul`` (cuBLAS) and ``conv`` (cuDNN), each ``"ieee"`` or
    ``"tf32"`` (or ``"none"``, torch 2.9's "as the enclosing setting says", whose default is IEEE
    for cuBLAS), ``rnn`` (cuDNN's recurrent layers, torch 2.9 and later only), ``cudnn_deterministic``
    and ``cudnn_benchmark``. Reads torch's flags only: no CUDA device is needed."""
    b = torch.backends
    if NEW_TF32_API:
        kinds = {"matmul": b.cuda.matmul.fp32_precision, "conv": b.cudnn.conv.fp32_precision,
                 "rnn": b.cudnn.rnn.fp32_precision}
    else:
        kinds = {"matmul": "tf32" if b.cuda.matmul.allow_tf32 else "ieee",
                 "conv": "tf32" if b.cudnn.allow_tf32 else "ieee"}
    return {**kinds, "cudnn_deterministic": bool(b.cudnn.deterministic), "cudnn_benchmark": bool(b.cudnn.benchmark)}
