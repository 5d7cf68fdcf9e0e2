"""How many BLAS threads a kernel gets: one for small products, the library's otherwise.

Threaded BLAS wakes its threads on every call. On a shared two-core machine
(measured while other jobs ran) a triangular product of (2048 × 64) took 40 ms
with two threads and 0.36 ms with one, a (2 × 1375) @ (1375 × 750) product 15×
longer per row, a batched solve of two 100 × 100 systems 0.4 s instead of 2 ms.
The EM pass works on row chunks and on K small (D, D) matrices, so on such a
machine it pays to run them on one thread below :data:`THREADED_WORK`
multiply-adds and leave larger ones to the library.

On a quiet machine the limit costs: measured on the idle two-core box (last
session, before the E-step ran its row ranges on two threads), the digits
(1,797 × 41, K = 110) took 36 ms per 'full' iteration with the limit at 2**28
and 29 ms without it. So the default (:data:`THREADED_WORK` None) follows the
machine's load: when other processes keep the cores busy (:func:`machine_busy`)
products below :data:`BUSY_THREADED_WORK` run on one thread, otherwise nothing
is limited. Measured on the shared two-core box at load 3.3-4.4 (CPU and wall,
medians of 3-5 alternating fits of 5 iterations, ``experiments.bench`` starts):

============================  ============  ===========  ==============
'full' per iteration           BLAS threads  one thread   largest product
============================  ============  ===========  ==============
digits 1,797 × 41, K = 110         115 ms        68 ms       1.8e8
digits 1,797 × 41, K = 200         147 ms        79 ms       3.2e8
100,000 × 50, K = 2                261 ms        93 ms       ~4e6
100,000 × 20, K = 20                65 ms        63 ms       (split E-step)
============================  ============  ===========  ==============

A lone product gains from the second thread only from a few 1e8 multiply-adds
even then ((1,797 × 902) @ (902 × 400) and back, 6.5e8: 142 ms on one thread,
106 ms on two; at 1.8e8 51.6 against 50.5 ms), hence :data:`BUSY_THREADED_WORK`
= 2**29, between the largest fit that lost (3.2e8) and the smallest product that
gained (6.5e8). The 100,000 × 20 case does not move: its E-step runs its row
ranges on two threads with BLAS on one already (:mod:`gmm.em`), and its K·D³
matrix kernels are small either way.

The same comparison in one process (``python -m experiments.bench --threads 7``,
digits K = 110, wall / CPU ms per iteration): at load 2.6 threads 101 / 84, one
thread 40 / 38, the default 33 / 33 (busy in 7 of 7 repeats); at load 1.6 threads
26 / 50, one thread 34 / 53, the default 26 / 48 (busy in none). The second core
pays when it is free, hence :data:`BUSY_LOAD`.

Whatever the load, a product over data rows (the E-step's chunks) below
:data:`SMALL_WORK` multiply-adds runs on one thread: it takes under a
millisecond on one core, so a second thread can save at most half of that,
while waking OpenBLAS's threads cost 5-16 ms a call
(measured on the two-core box, median of 15 calls, one thread against the
library's two: ``(1 × 100,000) @ (100,000 × 1)`` 0.018 against 16 ms, the
triangular product of 100,000 × 1 rows 0.30 against 16 ms, at load 3.9; 5-8 ms
on the idle box). That is what made 'tied' at D = 1, K = 1 0.60x scikit-learn
on the idle box, where nothing else limited the threads. The (D, D) matrix
kernels are not held to it on a quiet machine: OpenBLAS keeps small ones on one
thread by itself, and a limit costs about 30 µs a block (threadpoolctl's
calls), which every M-step of every fit in a sweep would pay. A block inside
one that already limits BLAS skips its own (a 5 µs check).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Multiply-adds of one kernel call below which BLAS runs on one thread. None
#: (the default) follows the load: :data:`BUSY_THREADED_WORK` while the machine
#: is busy (:func:`machine_busy`), else :data:`SMALL_WORK`. A number fixes it:
#: 0 never limits.
THREADED_WORK: float | None = None
#: The limit while the machine is busy (see the module's table).
BUSY_THREADED_WORK = 2**29
#: Multiply-adds below which a kernel runs on one thread whatever the load (see
#: the module's docstring): under a millisecond on one core, where waking a
#: second BLAS thread was measured at 5-16 ms. Kept this low because the E-step
#: passes the chunk's rows × columns × K, which for 'tied' is below its
#: triangular product (rows × D²/2, which two threads may speed up on a quiet
#: machine): at 2**22 'tied' D = 100, K = 2 would have been limited too. A fixed
#: :data:`THREADED_WORK` overrides it.
SMALL_WORK = 2**20
#: The machine is busy when its 1-minute load average exceeds its cores by this
#: much: this process counts for about one (two while its BLAS threads spin), so
#: an idle two-core box running one fit reads 1-2, and the shared box 3-6.
BUSY_LOAD = 0.5

_controller: Any = None
#: Depth of this module's own one-thread BLAS blocks now in force (:func:`blas_threads`
#: with ``limit=1``): inside one, :func:`blas_threads_for` has nothing to limit and
#: skips reading the load and the libraries' thread counts (a sweep of 126 mclust fits
#: made ~7,000 such reads, 0.1-0.2 s). BLAS limits are process-wide, so one count
#: serves every thread; a block that sets another limit hides it while it runs.
_one_thread_depth = 0


def matrix_work(n_components: int, n_features: int) -> float:
    """Multiply-adds of the per-iteration (D, D) matrix kernels, about K·D³."""
    return float(n_components) * float(n_features) ** 3


@functools.lru_cache(maxsize=1)
def _cores() -> int:
    """CPUs this process may run on (read once)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


def machine_busy(load: float | None = None, cores: int | None = None) -> bool:
    """Whether other processes keep the cores busy, so BLAS threads would wait.

    ``load`` (default: the 1-minute load average, :func:`load_average`)
    exceeds ``cores`` (default: the CPUs this process may use) by
    :data:`BUSY_LOAD`. False where the load average cannot be read.
    """
    if load is None:
        load = load_average()
        if load is None:  # pragma: no cover - not on Windows
            return False
    return load - (_cores() if cores is None else cores) >= BUSY_LOAD


#: Seconds one reading of the load average serves. Linux recomputes it every 5 s,
#: so a fresher reading says nothing new; reading it is a system call (1-2 µs), and
#: an online update of a small model asked several times (3 % of its time).
LOAD_READING_SECONDS = 1.0
_load_reading: tuple[float, float] | None = None  # (time.monotonic(), load)


def load_average() -> float | None:
    """The 1-minute load average, read at most once a :data:`LOAD_READING_SECONDS`.

    None where it cannot be read (not on Windows). O(1).
    """
    global _load_reading
    now = time.monotonic()
    reading = _load_reading
    if reading is not None and 0 <= now - reading[0] < LOAD_READING_SECONDS:
        return reading[1]
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on Windows
        return None
    _load_reading = (now, load)
    return load


def threaded_work(rows: bool = False) -> float:
    """The limit in force: :data:`THREADED_WORK`, or by the load when it is None.

    By the load: :data:`BUSY_THREADED_WORK` while the machine is busy, else
    :data:`SMALL_WORK` for products over data rows (``rows``: tiny ones never
    wake BLAS's threads) and 0 for the rest (the (D, D) matrix kernels, which
    OpenBLAS runs on one thread at small sizes by itself, so limiting them
    would cost its 30 µs for nothing, on every M-step of every fit of a sweep).
    """
    if THREADED_WORK is not None:
        return THREADED_WORK
    if machine_busy():
        return BUSY_THREADED_WORK
    return SMALL_WORK if rows else 0


@contextmanager
def blas_threads_for(work: float | None, *, rows: bool = False) -> Iterator[None]:
    """Limit BLAS to one thread in this block if ``work`` < :func:`threaded_work`.

    ``work`` is the multiply-adds of the block's largest BLAS call (None: not
    known, the block runs unchanged); ``rows`` says its products run over data
    rows (see :func:`threaded_work`). Needs threadpoolctl (a dependency of
    scikit-learn); without it the block runs unchanged. Costs about 30 µs when
    it limits, 5 µs when BLAS is on one thread already (an enclosing block, a
    sweep's worker, the user's ``threadpool_limits``), nothing otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads_for(1e3):
    ...     product = np.ones((2, 2)) @ np.ones((2, 2))
    >>> float(product[0, 0])
    2.0
    """
    if work is None or _one_thread_depth or work >= threaded_work(rows):
        yield
        return
    if _every_blas_at_one():
        yield
        return
    with blas_threads(1):
        yield


def _every_blas_at_one() -> bool:
    """Whether every loaded BLAS library runs on one thread now (a limit in force).

    Every one, not the fewest: with scipy's OpenBLAS limited and numpy's not,
    numpy's products would still wake two threads. About 5 µs.
    """
    counts = _blas_thread_counts()
    return bool(counts) and max(counts) <= 1


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
    global _one_thread_depth
    controller = _get_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=limit, user_api=user_api):
        if user_api != "blas":
            yield
            return
        outer = _one_thread_depth
        _one_thread_depth = outer + 1 if limit == 1 else 0
        try:
            yield
        finally:
            _one_thread_depth = outer


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
    counts = _blas_thread_counts()
    return min(counts) if counts else None


def _blas_thread_counts() -> list[int]:
    """The thread count of each loaded BLAS library now (empty without threadpoolctl)."""
    controller = _get_controller()
    if controller is None:
        return []
    return [lib.num_threads for lib in controller.lib_controllers if lib.user_api == "blas"]
