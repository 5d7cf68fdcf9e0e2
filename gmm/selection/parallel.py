"""Running the sweep's fits: in this process or in joblib workers, with a progress bar.

Everything here is about *where* and *how visibly* independent calls run, not
about what they compute: :func:`run` takes any module-level function and its
argument tuples. Workers get a share of the cores for their BLAS (through
threadpoolctl), so workers times threads never exceed the cores. joblib, tqdm
and threadpoolctl are optional (``pip install "gmm[parallel]"``) and imported
only when asked for.
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

INSTALL_PARALLEL = 'pip install "gmm[parallel]"'


def run(
    function: Callable[..., Any], tasks: Sequence[tuple[Any, tuple]], n_jobs: int | None
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(key, function(*args))`` for each ``(key, args)`` of ``tasks``, as they finish.

    Parameters
    ----------
    function : callable
        Module-level (workers import it by name).
    tasks : sequence of (key, args)
        Started in this order; results come in the order they finish.
    n_jobs : int or None
        None or 1: one after the other in this process; -1: one worker per core.

    Raises
    ------
    ValueError
        For an ``n_jobs`` that is not None, -1 or an integer >= 1.
    ImportError
        For ``n_jobs > 1`` without joblib.
    """
    n_workers = n_workers_for(n_jobs, len(tasks))
    if n_workers == 1:
        for key, args in tasks:
            yield key, function(*args)
        return
    from joblib import Parallel, delayed

    threads = max(1, cpu_count() // n_workers)
    calls = (delayed(_call_limited)(key, function, args, threads) for key, args in tasks)
    yield from Parallel(n_jobs=n_workers, return_as="generator_unordered")(calls)


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
