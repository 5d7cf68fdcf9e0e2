"""Running the sweep's fits: in this process or in worker processes, with a progress bar.

Everything here is about *where* and *how visibly* independent calls run, not
about what they compute: :func:`run` takes any module-level function and its
argument tuples. Workers get a share of the cores for their BLAS (through
threadpoolctl), so workers times threads never exceed the cores, and no more
than a call in this process would get (:func:`worker_threads`).

Two kinds of workers (:func:`backend`). On Linux, from a process with no other
Python thread and no dask collection among the arguments, this process is one
of the workers and the others are forked once its first task (the smallest)
shows there is enough work left (:data:`SMALLEST_SHARE`, :data:`WORTH_FORKING`;
failing that, a later one): they start in milliseconds with gmm
already imported and inherit the tasks' arguments (the data are shared
copy-on-write, never pickled), so a sweep with ``n_jobs=2`` is faster than
with ``n_jobs=1``, start-up counted, and a small one is no slower. Elsewhere
joblib's workers (loky) start fresh interpreters, about a second each, and
receive the arguments pickled (large arrays memory-mapped by joblib). joblib,
tqdm and threadpoolctl are optional (``pip install "gmm[parallel]"``) and
imported only when asked for.
"""

from __future__ import annotations

import numbers
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from time import perf_counter
from typing import Any

from ..blas_threads import blas_threads

INSTALL_PARALLEL = 'pip install "gmm[parallel]"'


def run(
    function: Callable[..., Any],
    tasks: Sequence[tuple[Any, tuple]],
    n_jobs: int | None,
    kind: str | None = None,
    serial_threads: int | None = None,
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
    serial_threads : int or None, default=None
        BLAS and OpenMP threads of each call when the tasks run in this process
        (None: as they are). Workers get their share of the cores, at most
        this many: fits too small to gain from threads run on one thread
        wherever they run.

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
            yield _call_limited(key, function, args, serial_threads)
        return
    threads = worker_threads(n_workers, serial_threads)
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


#: Seconds of work left above which forking the other workers pays. Starting and
#: stopping them takes some 25 ms, and the copy-on-write page faults that follow a
#: fork slow both processes at first: on the two-core development machine the 16
#: fits of a small moons grid (0.085 s in this process) took 0.16 s with a forked
#: worker, the 80 fits (n_init=3) of the large one 1.2 s alone and 0.7 s with one.
#: Compared with a task's time times the tasks left, the task being one of the
#: largest (an estimate of the work left that is too high rather than too low).
WORTH_FORKING = 0.5

#: The share of :data:`WORTH_FORKING` that the smallest task's time times the
#: tasks left (an estimate too low rather than too high) must exceed for the
#: workers to be forked after it, before any large task has run. Measured on the
#: two-core machine, loaded (a sweep of the 80 moons fits, 10 ms for a fit with
#: K = 1 against some 40 ms for the largest): the fork takes 5-10 ms, the forked
#: worker starts its first task 8 ms after it, and its copy-on-write page faults
#: (some 3,400 a process) cost 25 ms of system time a process, so forking pays
#: from about 0.1 s of work; the smallest task first starts the worker 22 ms
#: into the sweep instead of 50 ms (medians of 16 sweeps, load 1.0-1.5).
SMALLEST_SHARE = 0.4

#: What the forked workers inherit: the function, the tasks, their BLAS threads,
#: the shared index of the next task and the queue of results.
_INHERITED: tuple | None = None


def _run_forked(function, tasks, n_workers: int, threads: int) -> Iterator[tuple[Any, Any]]:
    """Run ``tasks`` here and in ``n_workers - 1`` forked processes; results as they finish.

    This process is one of the workers. It runs the last task first (the
    smallest: the tasks come largest first), then every process takes the next
    task from a shared index. The other workers are forked after a task of
    this process only while there is enough work left: after the smallest,
    if its time times the tasks left exceeds :data:`SMALLEST_SHARE` of
    :data:`WORTH_FORKING` (at least that much work is left, and the workers
    start before any large task has run); after any later one, if its time
    times the tasks left exceeds :data:`WORTH_FORKING` (one of the largest,
    it bounds the work left). A tiny grid runs here alone, a large one on
    every core. The workers
    inherit the tasks (nothing is pickled on the way in), send back
    ``(key, result)`` or the exception, and ignore SIGINT: an interrupt reaches
    this process alone, which then stops them. A worker that dies without an
    answer is an error here, never a wait without end.
    """
    import multiprocessing
    import queue

    global _INHERITED
    context = multiprocessing.get_context("fork")
    counter, answers = context.Value("q", 0), context.Queue()
    shared = len(tasks) - 1  # the counter hands out all but the last task
    _INHERITED = (function, tasks, shared, threads, counter, answers, os.getpid())
    workers = []
    try:
        waiting = len(tasks)
        for index in _own_tasks(counter, shared):
            key, args = tasks[index]
            begin = perf_counter()
            answer = _call_limited(key, function, args, threads)
            worth = WORTH_FORKING * (SMALLEST_SHARE if index == shared else 1.0)
            if not workers and (perf_counter() - begin) * (shared - counter.value) > worth:
                for _ in range(n_workers - 1):
                    worker = context.Process(target=_work_inherited, daemon=True)
                    worker.start()
                    workers.append(worker)
            waiting -= 1
            yield answer
            while waiting:  # answers that came meanwhile
                try:
                    answer = answers.get_nowait()
                except queue.Empty:
                    break
                waiting -= 1
                yield _unpack(answer)
        while waiting:
            try:
                answer = answers.get(timeout=1.0)
            except queue.Empty:
                if not any(worker.is_alive() for worker in workers):
                    raise RuntimeError(
                        f"A worker process of the sweep ended with {waiting} fit(s) unanswered "
                        f"(exit codes {[worker.exitcode for worker in workers]})."
                    ) from None
                continue
            waiting -= 1
            yield _unpack(answer)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
        answers.close()
        answers.cancel_join_thread()
        _INHERITED = None


def _own_tasks(counter, shared: int) -> Iterator[int]:
    """This process's tasks: the last one (the smallest), then those the counter hands out."""
    yield shared
    while (index := _take(counter)) < shared:
        yield index


def _take(counter) -> int:
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    return index


def _die_with(parent: int) -> None:
    """Have this forked worker end with the sweep's process ``parent``.

    On Linux the kernel sends it SIGKILL when the parent dies
    (``prctl(PR_SET_PDEATHSIG)``): a sweep killed by SIGKILL cannot stop its
    workers, and one left running blocked for ever on the answers' pipe,
    holding the parent's standard output open. Elsewhere the worker checks
    its parent between fits. A parent already gone ends it now. O(1).
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):  # not Linux
        pass
    if os.getppid() != parent:
        os._exit(1)


def _work_inherited() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    function, tasks, shared, threads, counter, answers, parent = _INHERITED
    _die_with(parent)
    while (index := _take(counter)) < shared:
        if os.getppid() != parent:
            os._exit(1)
        key, args = tasks[index]
        try:
            # GNU OpenMP's thread team does not survive a fork: a forked process
            # that asks it for more than one thread waits for ever (scikit-learn's
            # k-means would). OpenBLAS restarts its threads, so BLAS keeps its share.
            answers.put(("ok", _call_limited(key, function, args, threads, 1)))
        except BaseException as error:  # the caller raises it
            answers.put(("error", error))
            return


def _unpack(answer):
    status, value = answer
    if status == "error":
        raise value
    return value


def _call_limited(key, function, args, threads: int, openmp_threads: int | None = None):
    """``(key, function(*args))`` with this worker's share of the cores for BLAS and
    OpenMP (``openmp_threads``, default ``threads``): more would oversubscribe the
    cores, and OpenMP's spinning threads then slow every process down many times."""
    openmp = threads if openmp_threads is None else openmp_threads
    with blas_threads(threads), blas_threads(openmp, user_api="openmp"):
        return key, function(*args)


def check_n_jobs(n_jobs) -> None:
    """Refuse an ``n_jobs`` other than None or a nonzero integer (joblib's: -1 all cores).

    Called before any work (a sweep's checkpoint is not opened for a bad one),
    whatever the number of tasks. O(1).

    >>> check_n_jobs(-1), check_n_jobs(None)
    (None, None)
    """
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None, -1 or an integer >= 1, got {n_jobs!r}.")


def n_workers_for(n_jobs, n_tasks: int) -> int:
    """Workers to start for ``n_tasks`` calls: 1 (no joblib needed) or joblib's count."""
    check_n_jobs(n_jobs)
    if n_jobs is None or n_jobs == 1 or n_tasks <= 1:
        return 1
    try:
        import joblib
    except ImportError:
        raise ImportError(f"n_jobs > 1 needs joblib: {INSTALL_PARALLEL}") from None
    return max(1, min(joblib.effective_n_jobs(int(n_jobs)), n_tasks))


def worker_threads(n_workers: int, limit: int | None = None) -> int:
    """BLAS and OpenMP threads of each of ``n_workers`` workers: their share of the
    cores, at most ``limit`` (None: no limit), at least 1. O(1).

    >>> worker_threads(2, 1) <= 1
    True
    """
    share = max(1, cpu_count() // n_workers)
    return share if limit is None else max(1, min(share, limit))


def cpu_count() -> int:
    """Cores available to this process, as joblib counts them."""
    try:
        import joblib

        return joblib.cpu_count()
    except ImportError:  # pragma: no cover - joblib is needed to get here
        return os.cpu_count() or 1


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
