"""Single-threaded BLAS for the small dense matrices of the theory checks.

Every matrix here is at most a few dozen rows; OpenBLAS threads only add synchronisation,
which on a busy 2-core machine makes a 6x6 ``scipy.linalg.expm`` about 100 times slower
(measured: 15 ms versus 0.15 ms). ``threadpoolctl`` ships with scikit-learn, a dependency of
the project; without it the limit is skipped and only speed changes, never a result.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS/LAPACK to one thread inside the block (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - speed only
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
