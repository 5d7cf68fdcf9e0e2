"""Running the sweep's fits: in this process or in worker processes, with a progress bar.

Everything here is about *where* and *how visibly* independent calls run, not
about what they compute: :func:`run` takes any module-level function and its
argument tuples. Workers get a share of the cores for their BLAS (through
threadpoolctl), so workers times threads never exceed the cores.

Two kinds of workers (:func:`backend`). On Linux, from a process with no other
Python thread and no dask collection among the arguments, the workers are
forked: they start in milliseconds with gmm already imported and inherit the
tasks' arguments (the data are shared copy-on-write, never pickled), so even a
grid of small fits runs faster with two workers than in this process, start-up
counted (the moons grid of ``experiments/bench_sweep.py``). Elsewhere joblib's
workers (loky) start fresh interpreters, about a second each, and receive the
arguments pickled (large arrays memory-mapped by joblib). joblib, tqdm and
threadpoolctl are optional (``pip install "gmm[parallel]"``) and imported only
when asked for.
"""

from __future__ import annotations

import numbers
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

INSTALL_PARALLEL = 'pip install "gmm[parallel]"'


def run(
    function: Callable[..., Any],
    tasks: Sequence[tuple[Any, tuple]],
    n_jobs: int | None,
    kind: str | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(key, function(*args))`` for each ``(key, args)`` of ``tasks``, as they finish.

    In this process, or in worker processes chosen by :func:`backend`.

    Parameters
    ----------
    function : callable
        Module-level (workers import it by name).
    tasks : sequence of (key, args)
        Started in this order; results come in the order they finish.
    n_jobs : int or None
        None or 1: one after the other in this process; -1: one worker per core.
    kind : {'serial', 'fork', 'joblib'} or None, default=None
        :func:`backend`'s choice made earlier (before a progress bar starts its
        monitor thread, say); None: chosen now.

    Raises
    ------
    ValueError
        For an ``n_jobs`` that is not None, -1 or an integer >= 1.
    ImportError
        For ``n_jobs > 1`` without joblib.
    """
    n_workers = n_workers_for(n_jobs, len(tasks))
    kind = backend(n_workers, tasks) if kind is None or n_workers == 1 else kind
    if kind == "serial":
        for key, args in tasks:
            yield key, function(*args)
        return
    threads = max(1, cpu_count() // n_workers)
    if kind == "fork":
        yield from _run_forked(function, tasks, n_workers, threads)
        return
    from joblib import Parallel, delayed

    calls = (delayed(_call_limited)(key, function, args, threads) for key, args in tasks)
    yield from Parallel(n_jobs=n_workers, return_as="generator_unordered")(calls)


def backend(n_workers: int, tasks: Sequence[tuple[Any, tuple]]) -> str:
    """``'serial'``, ``'fork'`` or ``'joblib'``: where :func:`run` runs ``tasks``.

    Forked workers need Linux (macOS's system libraries are not safe to fork)
    and no other Python thread in this process (a lock held by one would stay
    held in the children); dask collections, whose schedulers hold threads and
    connections, go to joblib.
    """
    if n_workers == 1:
        return "serial"
    if (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and not any(_is_dask(arg) for _, args in tasks for arg in args)
    ):
        return "fork"
    return "joblib"


def _is_dask(value) -> bool:
    return hasattr(value, "__dask_graph__")


#: The tasks of the forked pool being started: the workers inherit them at fork.
_INHERITED: tuple[Callable[..., Any], Sequence[tuple[Any, tuple]], int] | None = None


def _run_forked(function, tasks, n_workers: int, threads: int) -> Iterator[tuple[Any, Any]]:
    """Run ``tasks`` in ``n_workers`` forked processes; results as they finish.

    The workers find the tasks in :data:`_INHERITED` (set before the fork) and
    get only each task's index; they ignore SIGINT, so an interrupt reaches this
    process alone, which then stops them (``terminate``).
    """
    import multiprocessing

    global _INHERITED
    _INHERITED = (function, tasks, threads)  # kept while the pool may fork a replacement
    pool = None
    try:
        pool = multiprocessing.get_context("fork").Pool(n_workers, initializer=_ignore_sigint)
        yield from pool.imap_unordered(_call_inherited, range(len(tasks)), chunksize=1)
        pool.close()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _INHERITED = None


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call_inherited(index: int):
    function, tasks, threads = _INHERITED
    key, args = tasks[index]
    return _call_limited(key, function, args, threads)


def _call_limited(key, function, args, threads: int):
    with blas_threads(threads):
        return key, function(*args)


def n_workers_for(n_jobs, n_tasks: int) -> int:
    """Workers to start for ``n_tasks`` calls: 1 (no joblib needed) or joblib's count."""
    if n_jobs is None or n_jobs == 1 or n_tasks <= 1:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None, -1 or an integer >= 1, got {n_jobs!r}.")
    try:
        import joblib
    except ImportError:
        raise ImportError(f"n_jobs > 1 needs joblib: {INSTALL_PARALLEL}") from None
    return max(1, min(joblib.effective_n_jobs(int(n_jobs)), n_tasks))


def cpu_count() -> int:
    """Cores available to this process, as joblib counts them."""
    try:
        import joblib

        return joblib.cpu_count()
    except ImportError:  # pragma: no cover - joblib is needed to get here
        return os.cpu_count() or 1


@contextmanager
def blas_threads(limit: int | None):
    """Limit BLAS (and OpenMP) threads in this block to ``limit``; None leaves them."""
    if limit is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        # Without threadpoolctl, joblib's workers still cap their BLAS threads.
        yield
        return
    with threadpool_limits(limits=limit):
        yield


# ------------------------------------------------------------------- progress
def want_progress(progress: bool | None) -> bool:
    """Whether to show a bar: as asked, or (None) when stderr is a terminal and tqdm is there.

    Raises
    ------
    ImportError
        For ``progress=True`` without tqdm.
    """
    if progress is None:
        if not _isatty(sys.stderr):
            return False
        try:
            import tqdm
        except ImportError:
            return False
        return True
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise ImportError(f"progress=True needs tqdm: {INSTALL_PARALLEL}") from None
    return bool(progress)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(show: bool, total: int, done: int):
    """A tqdm bar over ``total`` fits, ``done`` of them already finished, or a null context."""
    if not show:
        return nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="fit", file=sys.stderr)
