"""How many BLAS threads a kernel gets: one for small products, the library's otherwise.

Threaded BLAS wakes its threads on every call. On a shared two-core machine
(measured while other jobs ran) a triangular product of (2048 × 64) took 40 ms
with two threads and 0.36 ms with one, a (2 × 1375) @ (1375 × 750) product 15×
longer per row, a batched solve of two 100 × 100 systems 0.4 s instead of 2 ms.
The EM pass works on row chunks and on K small (D, D) matrices, so on such a
machine it pays to run them on one thread below :data:`THREADED_WORK`
multiply-adds and leave larger ones to the library.

On a quiet machine the same limit costs: measured on the idle two-core box, 'full'
100,000 × 20, K = 20 took 106 ms per iteration with the limit at 2**28 and 70 ms
without it, the digits (K = 110) 36 ms and 29 ms. So the default is 0 (never
limit); set ``gmm.blas_threads.THREADED_WORK = 2**28`` on a shared, busy machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Multiply-adds of one kernel call below which BLAS runs on one thread.
#: 0 (the default) never limits; 2**28 suits a shared, busy machine (see above).
THREADED_WORK = 0

_controller: Any = None


def matrix_work(n_components: int, n_features: int) -> float:
    """Multiply-adds of the per-iteration (D, D) matrix kernels, about K·D³."""
    return float(n_components) * float(n_features) ** 3


@contextmanager
def blas_threads_for(work: float) -> Iterator[None]:
    """Limit BLAS to one thread in this block if ``work`` < :data:`THREADED_WORK`.

    ``work`` is the multiply-adds of the block's largest BLAS call. Needs
    threadpoolctl (a dependency of scikit-learn); without it the block runs
    unchanged. Costs about 20 µs.

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads_for(1e3):
    ...     product = np.ones((2, 2)) @ np.ones((2, 2))
    >>> float(product[0, 0])
    2.0
    """
    if work >= THREADED_WORK:
        yield
        return
    with blas_threads(1):
        yield


@contextmanager
def blas_threads(limit: int | None, user_api: str = "blas") -> Iterator[None]:
    """At most ``limit`` BLAS threads in this block; None leaves them as they are.

    ``user_api='openmp'`` limits OpenMP's threads instead (scikit-learn's
    k-means runs on them).

    One threadpoolctl controller, made on first use, serves every call (making
    one scans the loaded libraries, about 5 ms); without threadpoolctl the block
    runs unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads(1):
    ...     product = np.ones((2, 2)) @ np.ones((2, 2))
    >>> float(product[0, 0])
    2.0
    """
    if limit is None:
        yield
        return
    controller = _get_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=limit, user_api=user_api):
        yield


def _get_controller():
    """The one threadpoolctl controller (made on first use), or None without threadpoolctl."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn depends on it
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller or None


def blas_thread_count() -> int | None:
    """The fewest threads any loaded BLAS library may use now (None if none is seen).

    Reads the libraries' current settings through the shared controller (about
    1 µs a library), so a ``threadpool_limits`` block in force is seen.
    """
    controller = _get_controller()
    if controller is None:
        return None
    counts = [lib.num_threads for lib in controller.lib_controllers if lib.user_api == "blas"]
    return min(counts) if counts else None
