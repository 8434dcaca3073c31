"""A process's peak memory during one piece of work: CUDA's allocator peak, or on Linux the resident
high-water mark ``VmHWM``, reset before the work (``/proc/self/clear_refs``). :mod:`benchmarks.bench`
runs each item in a fresh subprocess and reads the peak before and after it."""

from __future__ import annotations

import gc
import resource

import torch

__all__ = ["reset_peak", "peak_bytes"]


def reset_peak(device: torch.device) -> bool:
    """Start a new peak from the current usage: CUDA's peak statistics, or on Linux the
    resident high-water mark (``5`` to ``/proc/self/clear_refs``). Without the reset the
    set-up's own transient peak could hide the item's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return True
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_bytes(device: torch.device) -> int:
    """CUDA: ``max_memory_allocated``. CPU: the resident high-water mark ``VmHWM`` of
    ``/proc/self/status``; ``ru_maxrss`` only where that is missing, because a child's
    ``ru_maxrss`` starts at its parent's peak (Linux carries it across fork and exec)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
