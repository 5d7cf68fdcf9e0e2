"""Several EM fits on the same rows, advanced together, their E-steps stacked.

A sweep fits many models to one data set: mclust's default fits 14 covariance
models at each K. Seven of them ('VVV', 'EEV', 'VEV', 'EVV', 'VEE', 'EVE',
'VVE') read the same expanded features of the rows in every E-step, each with a
product of only K rows (K <= 9), which BLAS runs far below its peak; four
('EEI', 'VEI', 'EVI', 'VVI') share the axis-aligned kernels, and two ('EII',
'VII') the spherical ones. Advanced together, the E-steps of a kind share one
pass: one product for every fit's log-probabilities and one for every fit's
moments (``python -m experiments.bench_mclust --part stacking``, 20,000 x 10,
one thread, the fits' E-steps alone against stacked, idle two-core machine:
the seven K = 2 14.6 -> 5.2 ms, K = 9 29.2 -> 16.7 ms; the four K = 2 4.3 ->
2.2 ms, K = 9 9.4 -> 6.9 ms).

:func:`run_together` runs each call (a whole fit, as the sweep makes it) in a
thread of its own, but **one at a time**: a baton passes from the coordinator
to one fit and back, so the fits never run at once, on the one CPU the
caller runs on (its caches keep the features and the stacked products). A fit
that reaches an E-step
(:func:`gmm.em.expectation`) hands it to the coordinator and waits. Once every
fit of the group waits or has finished, the coordinator computes the waiting
E-steps: those whose families give equal keys (``stack_key``), on the same
chunks of the same rows, together (:func:`stacked_expectation`); any other
alone, as :func:`gmm.em.expectation` would. Then each waiting fit runs on,
in order, to its next E-step or its end. With helper threads
(``run_together(..., helpers=1)``, a serial sweep on two CPUs), a stacked
E-step large enough to pay for a thread (chunks of at least
:data:`gmm.em.SPLIT_ROWS` rows, :data:`STACK_THREAD_WORK`) runs the second half
of each chunk's rows on a helper on the other CPU, and so does a fit's E-step
that :func:`gmm.em.expectation` would run on threads (computed alone by the
coordinator); the numbers do not depend on the helpers.

The fits' numbers are those of fitting them one by one up to the products'
rounding (a column of a wider product may round differently; on this
machine's OpenBLAS the stacked log-probabilities are the same bits for two or
more components a fit, the moments are one product where the fit alone sums
row blocks). Nothing of a fit's code changes: its validation, initialisation,
M-steps and convergence rule run in its thread, as they would alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from . import em
from .blas_threads import blas_threads, blas_threads_for
from .covariance.base import stacked_rows

#: Multiply-adds of a stacked E-step (its fits' products together) from which its
#: rows' second half runs on the helper thread. Lower than a fit's own
#: :data:`gmm.em.THREAD_WORK`, which pays for starting a thread each E-step: the
#: lockstep's helper lives for the run (and a serial sweep's small fits have BLAS
#: on one thread already).
#: Measured (``python -m experiments.bench_mclust --part stacking`` with this at 0,
#: 20,000 x 10, ms an E-step in turn / with the helper, busy two-core machine): the four
#: axis-aligned models at K = 2 (1.6e6 multiply-adds) 1.74 / 2.62, K = 5 (4.0e6)
#: 5.22 / 4.16, K = 9 (2.2e7) 4.31 / 2.79; EII and VII at K = 5 (2.0e6) 1.79 / 2.04,
#: K = 9 (1.2e7) 2.09 / 1.85; the seven oriented models at K = 2 (2.1e7) 4.65 / 3.21.
STACK_THREAD_WORK = 3 * 2**20


class Cancelled(BaseException):
    """Ends a fit whose lockstep stopped (its caller stopped reading the results)."""


@dataclass
class Request:
    """An E-step a fit hands to the coordinator, prepared in the fit's thread."""

    data: em.ChunkedData
    coefs: Any
    const: np.ndarray
    entropy: bool
    key: tuple | None  # None: computed alone (an E-step that runs on threads)


def run_together(
    function: Callable[..., Any], tasks: Sequence[tuple[Any, tuple]], helpers: int = 0
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(key, function(*args))`` for each ``(key, args)``, the calls advanced together.

    Each call runs in its own thread, one at a time (see the module's
    docstring), in the context (:mod:`contextvars`) of the caller; its E-steps
    are computed by the coordinator, stacked where the families allow.
    Results come as the calls finish. A call that raises ends the run with
    its error; the other calls are then stopped (:class:`Cancelled`), as they
    are when the caller stops reading. Cost: the calls' own, less what the
    stacked E-steps save; one thread per call, alive until it finishes, and
    ``helpers`` threads for the run.

    Parameters
    ----------
    function : callable
    tasks : sequence of (key, args)
    helpers : int, default=0
        Threads besides the coordinator that a large E-step may run row ranges
        on (:func:`stacked_expectation`, and a fit's E-step that would run on
        threads alone), on the CPUs the caller may use other than the one the
        fits run on (none such: no helpers); 0 computes every E-step in the
        coordinator. The numbers are the same either way.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import GaussianMixture
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> def fit(model):
    ...     return model.fit(X).lower_bound_
    >>> tasks = [(name, (GaussianMixture(2, covariance_type=name, random_state=0),))
    ...          for name in ("VVV", "EEV")]
    >>> sorted(key for key, _ in run_together(fit, tasks))
    ['EEV', 'VVV']
    """
    fits = [_Fit(key, function, args, contextvars.copy_context()) for key, args in tasks]
    pinned = _pin_to_current_cpu()
    try:
        pool = None
        if helpers > 0:
            # Its threads start in this (pinned) thread; each moves to the other CPUs.
            others = None if pinned is None else pinned - os.sched_getaffinity(0)
            if others != set():
                pool = ThreadPoolExecutor(helpers, "gmm-lockstep-rows", _move_to, (others,))
        try:
            for fit in fits:
                fit.thread.start()  # a new thread takes this one's CPU affinity
            running = fits
            while running:
                waiting = []
                for fit in running:
                    fit.resume()
                    if fit.request is None:  # finished
                        yield fit.key, fit.outcome()
                    else:
                        waiting.append(fit)
                _answer(waiting, pool)
                running = waiting
        finally:
            try:
                for fit in fits:
                    fit.stop()
            finally:
                if pool is not None:
                    pool.shutdown()
    finally:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)


def _move_to(cpus: set[int] | None) -> None:
    """Move the calling thread to ``cpus`` (None, or a failure: it stays where it is)."""
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cpus)


def _pin_to_current_cpu() -> set[int] | None:
    """Pin this thread to the CPU it runs on; return its former affinity (None: not pinned).

    The fits of :func:`run_together` take turns, one thread at a time; left to
    the scheduler, each woken thread may start on the other core, away from the
    caches that hold the features and the stacked products. On one CPU they
    keep them (measured, mclust's sweep on 20,000 x 10, idle two-core machine,
    5 alternating rounds in one process: together 5.44-6.72 s a sweep unpinned,
    5.14-5.78 s with the whole process on one CPU; fit by fit 5.66-7.59 and
    6.13-7.80 s). Linux only (``sched_setaffinity`` on the calling thread, the
    CPU from ``/proc/thread-self/stat``); elsewhere, or if either fails, None.
    O(1).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        with open("/proc/thread-self/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        cpu = int(fields[36])  # field 39, 'processor'; fields[0] is field 3
        former = os.sched_getaffinity(0)
        if cpu not in former:
            return None
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError, IndexError):
        return None
    return former


def fit_clock() -> Callable[[], float]:
    """A clock of the calling fit's own seconds, for its ``fit_seconds``.

    Outside :func:`run_together`, :func:`time.perf_counter`. In a call it
    runs, the seconds that call's thread has run plus its share of the
    E-steps the coordinator computed for it (a stacked E-step's time split
    equally among its fits): not the wall time, which holds the other fits'
    work too. O(1).
    """
    fit = em._LOCKSTEP.get()
    return perf_counter if fit is None else fit.seconds


class _Fit:
    """One call of :func:`run_together`: its thread and the baton it waits for."""

    def __init__(self, key, function, args, context: contextvars.Context):
        self.key = key
        self.function = function
        self.args = args
        self.request: Request | None = None
        self.answer: Any = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self._cancelled = False  # set by stop(): the fit raises Cancelled when it next runs
        self._spent = 0.0  # seconds run before the current slice, and shares of E-steps
        self._since = 0.0  # when the current slice began
        self._go = threading.Semaphore(0)
        self._paused = threading.Semaphore(0)
        self.thread = threading.Thread(
            target=context.run, args=(self._main,), name=f"gmm-lockstep-{key}", daemon=True
        )

    def _main(self) -> None:
        self._go.acquire()
        self._since = perf_counter()
        token = em._LOCKSTEP.set(self)
        try:
            if not self._cancelled:
                self.result = self.function(*self.args)
        except BaseException as exc:  # handed to the coordinator
            self.error = exc
        finally:
            em._LOCKSTEP.reset(token)
            self.request = None
            self.finished = True
            self._paused.release()

    def resume(self) -> None:
        """Run the fit (in its thread) to its next E-step or its end; wait for that."""
        self._go.release()
        self._paused.acquire()

    def seconds(self) -> float:
        """This fit's own seconds so far (see :func:`fit_clock`); read in its thread."""
        return self._spent + (perf_counter() - self._since)

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result

    def stop(self) -> None:
        """End the fit if it has not finished: its E-step (or start) raises :class:`Cancelled`."""
        if not self.thread.is_alive():
            return
        self._cancelled = True
        if not self.finished:
            # Waiting (at its start or an E-step): it raises Cancelled and ends. Running
            # (the caller was interrupted meanwhile): it does so at its next E-step.
            self.resume()
        self.thread.join()

    # In the fit's thread --------------------------------------------------
    def expectation(self, data, params: em.Parameters, log_const: np.ndarray):
        """:func:`gmm.em.expectation` of this fit, computed by the coordinator."""
        request = _request(data, params, log_const)
        if request is None:
            return em.own_expectation(data, params, log_const)
        self.request = request
        self._spent += perf_counter() - self._since
        self._paused.release()
        self._go.acquire()
        if self._cancelled:
            raise Cancelled()
        self._since = perf_counter()
        answer, self.answer, self.request = self.answer, None, None
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _request(data, params: em.Parameters, log_const: np.ndarray) -> Request | None:
    """The E-step as a :class:`Request`, or None where it is computed alone, here.

    Here: data other than plain in-memory chunks (rows with holes, files, dask
    arrays), no rows, or a working dtype other than the data's. An E-step
    that would run on threads (:func:`gmm.em._threads_for`) is a request with
    no key: the coordinator computes it alone, its ranges on the run's helper
    threads, which sit on the other CPUs (a helper started in the fit's thread
    would share the fit's CPU). Otherwise alone, here, where the family has no
    hook (``stack_key``) or its chunk path drops a shared term, or it does not
    stack these coefficients.
    """
    family = data.family
    if type(data) is not em.ChunkedData or data.X.shape[0] == 0:
        return None
    kind = stack_kind(family)
    threaded = em._threads_for(data, data.X.dtype) > 1
    if kind is None and not threaded:
        return None
    params, dtype = em.working_precision(params, family, data.shift, data.X.dtype)
    if dtype != data.X.dtype:
        return None
    coefs, const = em.prepare(params, family, data.shift.astype(dtype), log_const)
    entropy = em._TRACKED.get() is not None
    if threaded:
        return Request(data, coefs, const, entropy, None)
    stack = family.stack_key(coefs)
    if stack is None:
        return None
    weights = data.sample_weight
    key = (
        id(data.X),
        data.X.shape,
        data.shift.tobytes(),
        data.rows,
        data.n_components,
        None if weights is None else id(weights),
        type(family).shifted_chunk_features,
        type(family).chunk_features,
        type(family).features,
        stack,
    )
    return Request(data, coefs, const, entropy, key)


def stack_kind(family) -> Hashable | None:
    """``family``'s :attr:`~gmm.covariance.CovarianceFamily.stack_kind`, or None where its
    chunks are computed by a shared term's hook (they never stack). O(1)."""
    if em._drops_shared(type(family)):
        return None
    return family.stack_kind


def _answer(waiting: list[_Fit], pool: ThreadPoolExecutor | None = None) -> None:
    """Compute the E-steps the ``waiting`` fits asked for and hand each its answer.

    ``pool``: helper threads for large E-steps (:func:`stacked_expectation`, :func:`_alone`).
    """
    groups: dict[Any, list[_Fit]] = {}
    for fit in waiting:
        key = fit.request.key
        groups.setdefault(id(fit) if key is None else key, []).append(fit)
    for group in groups.values():
        requests = [fit.request for fit in group]
        start = perf_counter()
        answers = (
            stacked_expectation(requests, pool) if len(group) > 1 else [_alone(requests[0], pool)]
        )
        share = (perf_counter() - start) / len(group)
        for fit, answer in zip(group, answers, strict=True):
            fit.answer = answer
            fit._spent += share


def _alone(request: Request, pool: ThreadPoolExecutor | None = None):
    """``(stats, coefs)`` of one request as :func:`gmm.em.expectation` computes it, or its error.

    An E-step that :func:`gmm.em.expectation` would run on threads (a request
    without a key, :func:`_request`) runs its ranges on ``pool`` (in turn
    without one), BLAS on one thread, as there: the same numbers.
    """
    data = request.data
    threaded = request.key is None
    try:
        with blas_threads(1) if threaded else blas_threads_for(data.work, rows=True):
            stats = em._summed_chunks(
                data,
                data.X.dtype,
                data.family,
                request.coefs,
                request.const,
                None if pool is None or not threaded else _InContext(pool),
                request.entropy,
            )
    except Exception as exc:
        return exc
    return stats, request.coefs


class _InContext:
    """``pool`` whose tasks run in a copy of the submitter's context (:mod:`contextvars`).

    numpy keeps its error settings (``np.errstate``) per context: in a helper
    thread's own context they would be numpy's defaults, not the caller's.
    """

    def __init__(self, pool: ThreadPoolExecutor):
        self.pool = pool

    def submit(self, function, *args):
        return self.pool.submit(contextvars.copy_context().run, function, *args)


def stacked_expectation(
    requests: Sequence[Request], pool: ThreadPoolExecutor | None = None
) -> list:
    """The E-steps of ``requests`` (of one key) in stacked products; ``(stats, coefs)`` each.

    Chunk by chunk (the first request's chunks: the key makes them every
    request's), each chunk in the row ranges :func:`gmm.em._parts` gives: the
    family's :meth:`stacked_log_prob`, each fit's responsibilities normalised
    in place (:func:`gmm.em.normalize_log_prob`, with the entropy where the fit
    tracks it), its sums (:func:`gmm.em.row_sums`), then
    :meth:`stacked_moments` of all of them; each fit's statistics summed over
    the ranges and chunks in row order. Where anything fails (a row too far
    from some fit's components, say), every request is computed alone, so each
    fit gets its own error or numbers. O(rows · sum K_i · F) time, one chunk's
    (sum K_i, rows) responsibilities of memory.

    A large E-step (split chunks, and at least :data:`STACK_THREAD_WORK`
    multiply-adds in the fits' products together) runs its products on one
    BLAS thread, and with a ``pool`` a chunk's later ranges on the pool's
    threads (in the caller's :mod:`contextvars` context: numpy's error
    settings) while the first runs here. The ranges, the BLAS threads, and so
    the numbers, are the same with or without the pool.
    """
    first = requests[0]
    data, family = first.data, first.data.family
    coefs = [request.coefs for request in requests]
    consts = [request.const for request in requests]
    parts = stacked_rows([request.const.shape[0] for request in requests])

    def statistics(Xc, feats, w, first_row: int) -> list[em.Statistics]:
        """Every fit's statistics of one row range."""
        with np.errstate(over="ignore", invalid="ignore"):
            stacked, work = family.stacked_log_prob(Xc, feats, coefs, consts)
        sums = []
        for part, request in zip(parts, requests, strict=True):
            resp, log_norm, row_entropy = em._normalize(stacked[part], first_row, request.entropy)
            if not np.may_share_memory(resp, stacked):
                stacked[part] = resp  # the entropy's own array: back into the stack
            sums.append(em.row_sums(stacked[part], log_norm, row_entropy, w))
        moments = family.stacked_moments(Xc, feats, stacked, coefs, work)
        found = []
        for index, (part, (loglik, total, entropy)) in enumerate(zip(parts, sums, strict=True)):
            stats = em.Statistics(
                stacked[part].sum(axis=1, dtype=np.float64), moments[index], loglik, total
            )
            stats.entropy = entropy
            found.append(stats)
        return found

    # Large: split chunks (em._parts) and at least STACK_THREAD_WORK multiply-adds. Its
    # products run on one BLAS thread with or without the pool, so the numbers do not
    # depend on the pool (BLAS's threads may round a product differently).
    large = min(data.rows, data.X.shape[0]) >= em.SPLIT_ROWS and (
        sum(em.e_step_work(request.data) for request in requests) >= STACK_THREAD_WORK
    )
    helpers = _InContext(pool) if large and pool is not None else None
    totals: list[em.Statistics | None] = [None] * len(requests)
    try:
        with blas_threads(1) if large else blas_threads_for(data.work, rows=True):
            first_row = 0
            for Xc, feats, w in data:

                def run(rows: slice, Xc=Xc, feats=feats, w=w, start=first_row):
                    part_w = None if w is None else w[rows]
                    return statistics(Xc[rows], feats[rows], part_w, start + rows.start)

                ranges = em._parts(Xc.shape[0])
                if helpers is None or len(ranges) == 1:
                    results = [run(rows) for rows in ranges]
                else:
                    futures = [helpers.submit(run, rows) for rows in ranges[1:]]
                    try:
                        results = [run(ranges[0])]
                    finally:
                        wait(futures)
                    results += [future.result() for future in futures]
                for found in results:
                    for index, stats in enumerate(found):
                        totals[index] = stats if totals[index] is None else totals[index] + stats
                first_row += Xc.shape[0]
    except Exception:
        return [_alone(request, pool) for request in requests]
    return [(stats, request.coefs) for stats, request in zip(totals, requests, strict=True)]
