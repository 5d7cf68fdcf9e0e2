"""Online EM: stepwise EM (Cappé & Moulines, 2009) on a stream of batches.

Each batch gets one fused E-step with the current parameters
(:func:`gmm.em.expectation`) and the shared statistics step
(:func:`gmm.em.scatter`), which give its counts, means and scatter. Those
statistics, normalised by the batch's total weight, are blended into running
statistics with step size ``rho_t = (t + learning_offset) ** -learning_decay``
(``t`` batches seen before this one):

    s_t = (1 - rho_t) s_{t-1} + rho_t S_t / T_t,

with ``S_t`` the batch's summed statistics (``nk``, ``sum r x``, ``sum r x x'``)
and ``T_t`` its total weight. The first batch of a stream (and the first after
``fit``) has nothing to blend with: its statistics become the running ones
(step 1). The estimator's M-step (the family's constraint,
:func:`gmm.em.maximization`) then runs on the running statistics. Nothing here
asks which covariance family it holds.

Two choices keep the blend exact and well conditioned:

- **One coordinate frame.** The running statistics are a
  :class:`~gmm.statistics.Scatter`: counts, means in the data's own
  coordinates and scatter about those means (in float64). Each batch's E-step
  is shifted by that batch's column mean, as in ``fit``, but what is blended
  is independent of the shift, so batches far apart never mix frames. Two
  scatters are pooled like parallel variances (Chan, Golub & LeVeque, 1979):
  means by their weight fractions, scatters plus the spread of the means, with
  no large raw second moments that would cancel.
- **The batch's scale.** The running statistics are kept multiplied by the
  latest batch's total weight, ``s_t · T_t``, so that the M-step (whose guard
  against empty components adds ``10 eps`` to each count) sees the counts a
  batch EM iteration on that batch would see. With ``rho = 1`` the blend
  returns the batch's statistics bit for bit: an update with step size 1 and
  the whole data set as its batch is one batch EM iteration.

Everything but :func:`partial_fit` and :func:`fit_stream` is a kernel: inputs
are trusted.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from . import em, scale, statistics, units, validation
from .blas_threads import blas_threads_for, threaded_work
from .driver import one_fit_at_a_time, state_kept_on_failure, total_weight
from .scale import FileRows
from .scale.dask_arrays import is_dask_collection
from .statistics import Scatter

#: Default exponent of the step size (measured: see ``experiments/online.py``).
DEFAULT_LEARNING_DECAY = 0.7
#: Default offset of the step size.
DEFAULT_LEARNING_OFFSET = 1.0
#: Least rows per update of :func:`fit_stream` over one array (measured:
#: ``experiments/bench_online.py`` for the throughput, ``experiments/online.py`` for
#: the held-out gap to batch EM).
DEFAULT_BATCH_SIZE = 10_000
#: ... and at least this many bytes of rows per update: an update's fixed cost
#: (~0.3-0.5 ms, the M-step and Python) is then a small share for narrow rows too.
#: Measured (idle, one BLAS thread, ``experiments/bench_online.py``): 'full' K=3, D=2
#: gave 0.83x a batch EM iteration's rows/s at 50,000 rows an update against 0.41x
#: at 10,000 (2026-12-02 07:37 UTC), and 0.74x against 0.59x after this default
#: came in (09:58); on the stationary 1,000,000-row stream the held-out gap to
#: batch EM is the same (``experiments/online.py``, busy machine). Not more: fewer,
#: larger updates cost accuracy. One pass over 1,000,000 rows of 'full' K=3, D=2
#: (``python -m experiments.bench_online --gaps``, three seeds) ends 0.0080, 0.0016 and
#: 0.0002 nats per sample below batch EM on held-out rows at 65,536 rows an update,
#: 0.0214, 0.0023 and 0.0004 at 131,072 (2 MiB), 0.0427, 0.0034 and 0.0006 at 262,144:
#: twice this default would break the issue's 0.01 (2026-12-02).
DEFAULT_BATCH_BYTES = 1 << 20
#: Bytes of a split chunk's part's (K, rows) log-probabilities up to which a later
#: update's chunks may take twice :data:`gmm.em.READ_ONCE_BYTES`
#: (:func:`read_once_budget`): a core's second-level cache on the machines measured.
PART_BYTES = 1 << 20


def default_batch_size(n_features: int, dtype=np.float64) -> int:
    """Rows per update of :func:`fit_stream` when ``batch_size`` is not given. O(1).

    The larger of :data:`DEFAULT_BATCH_SIZE` rows and :data:`DEFAULT_BATCH_BYTES`
    of rows (a float dtype's item size, 8 bytes for other dtypes, which are read
    as float64): 65,536 rows of 2 float64 features, 13,107 of 10, 10,000 from 14.

    >>> default_batch_size(2), default_batch_size(20), default_batch_size(2, np.float32)
    (65536, 10000, 131072)
    """
    dtype = np.dtype(dtype)
    itemsize = dtype.itemsize if dtype.kind == "f" else 8
    return max(DEFAULT_BATCH_SIZE, DEFAULT_BATCH_BYTES // (max(int(n_features), 1) * itemsize))


@dataclass(frozen=True)
class OnlineState:
    """What stepwise EM carries from one batch to the next.

    Attributes
    ----------
    scatter : Scatter
        The running statistics times ``scale`` (float64): counts ``nk``, means
        in the data's coordinates, and the scatter of the family's kind.
    scale : float
        Total weight of the latest batch.
    weight_seen : float
        Total weight of all batches.
    log_likelihood : float
        Sum over the batches of their log-likelihood under the parameters
        that scored them (before their own update).
    """

    scatter: Scatter
    scale: float
    weight_seen: float
    log_likelihood: float


# ================================================================= kernels
def step_size(n_batches_seen: int, learning_decay: float, learning_offset: float) -> float:
    """``rho_t = (t + learning_offset) ** -learning_decay`` for the batch after ``t`` batches.

    >>> step_size(0, 0.7, 1.0), round(step_size(3, 1.0, 1.0), 6)
    (1.0, 0.25)
    """
    return float((n_batches_seen + learning_offset) ** -learning_decay)


def blend(running: Scatter, scale: float, batch: Scatter, batch_weight: float, rho: float):
    """Stepwise-EM blend of normalised statistics, kept at the batch's scale.

    Parameters
    ----------
    running : Scatter
        Running statistics, multiplied by ``scale``.
    scale : float
        Total weight the running statistics are multiplied by.
    batch : Scatter
        The batch's statistics (summed, not normalised), same kind.
    batch_weight : float
        The batch's total weight ``T``.
    rho : float
        Step size in (0, 1].

    Returns
    -------
    Scatter
        ``((1 - rho) running / scale + rho batch / T) · T``, float64. With
        ``rho = 1`` the arrays of ``batch`` themselves, bit for bit. O(K·D²)
        time for kinds 'full' and 'pooled', O(K·D) for 'diagonal'.
    """
    a = (1.0 - rho) * (batch_weight / scale)
    n_old = a * running.nk
    nk = n_old + rho * batch.nk
    # Weight fractions of the two sets in each component: f_new is exactly 1 for rho = 1.
    f_old = n_old / nk
    f_new = (rho * batch.nk) / nk
    delta = running.means - batch.means
    means = batch.means + f_old[:, None] * delta
    between_weight = f_old * f_new  # per component, of delta delta'
    if batch.kind == "pooled":
        total = nk.sum()
        outer = np.einsum("k,ki,kj->ij", between_weight * nk, delta, delta)
        covariances = (
            (n_old.sum() / total) * running.covariances
            + ((rho * batch.nk).sum() / total) * batch.covariances
            + outer / total
        )
    elif batch.kind == "diagonal":
        covariances = f_old[:, None] * running.covariances
        covariances += f_new[:, None] * batch.covariances
        covariances += between_weight[:, None] * delta * delta
    else:
        # Summed in place, in the order of f_old S_old + f_new S_new + w d d': no
        # (K, D, D) temporaries beyond one product at a time.
        covariances = f_old[:, None, None] * running.covariances
        covariances += f_new[:, None, None] * batch.covariances
        covariances += (between_weight[:, None] * delta)[:, :, None] * delta[:, None, :]
    return Scatter(nk, means, covariances, batch.kind)


def check_learning_parameters(learning_decay, learning_offset) -> tuple[float, float]:
    """Validate ``learning_decay`` in (0.5, 1] and a finite ``learning_offset`` >= 1; return floats.

    Each may be any real number, Python's or numpy's (not a bool): a string or
    a bool is a TypeError; NaN, an infinity, a value outside its range, or a
    number float64 cannot hold (an integer beyond about 1.8e308) a ValueError
    that says which parameter and what it takes. Plain floats in range (the
    check on every ``partial_fit``) take one comparison each. O(1).

    >>> check_learning_parameters(0.7, 10)
    (0.7, 10.0)
    """
    if (
        type(learning_decay) is float
        and type(learning_offset) is float
        and 0.5 < learning_decay <= 1
        and 1 <= learning_offset < math.inf
    ):
        return learning_decay, learning_offset
    decay = _as_float("learning_decay", learning_decay, "a number in (0.5, 1]")
    offset = _as_float("learning_offset", learning_offset, "a finite number >= 1")
    if not 0.5 < decay <= 1:
        raise ValueError(
            f"learning_decay must lie in (0.5, 1] (stepwise EM converges only there), "
            f"got {learning_decay!r}. The default is {DEFAULT_LEARNING_DECAY}."
        )
    if not (math.isfinite(offset) and offset >= 1):
        raise ValueError(
            f"learning_offset must be a finite number >= 1, got {learning_offset!r}. "
            f"The default is {DEFAULT_LEARNING_OFFSET}."
        )
    return decay, offset


def _as_float(name: str, value, takes: str) -> float:
    """``float(value)`` of a real number (not a bool), or an error that names ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number ({takes}), got {value!r}.")
    try:
        return float(value)
    except OverflowError:  # an integer (or fraction) beyond float64's range
        text = repr(value)
        shown = text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"
        raise ValueError(
            f"{name} is too large for a float64 (at most about 1.8e308): got {shown}. "
            f"It takes {takes}; pass a float in that range."
        ) from None


# ============================================================ the estimator
def partial_fit(est, X, sample_weight=None):
    """One stepwise-EM update of ``est`` from the batch ``X``; see the module docstring.

    The logic behind :meth:`gmm.GaussianMixture.partial_fit` (which documents
    the behaviour), written on the EM driver's hooks. Validates everything
    before any state changes; on any error ``est`` is left exactly as it was.

    Returns
    -------
    est
    """
    with one_fit_at_a_time(est), state_kept_on_failure(est):
        _update(est, X, sample_weight)
    return est


def _update(est, X, sample_weight) -> None:
    # Relative within the batch: its pull on the model is the step size, not the weights' scale.
    sample_weight = validation.fit_weights(sample_weight)
    decay, offset = check_learning_parameters(est.learning_decay, est.learning_offset)
    family, initializer = est._check_parameters()
    state: OnlineState | None = getattr(est, "_online", None)
    started = hasattr(est, "means_")
    # A model fitted by fit (or loaded) blends its first batch in unless that step is 1.
    blends_fit = started and state is None and step_size(0, decay, offset) < 1
    if started:
        _check_continuable(est, family, state)
        data = _later_batch(est, X, sample_weight, family)
        params = est._get_parameters()
        if state is None and not blends_fit:
            _check_replacing_batch(est, data, family)
    else:
        data = _first_batch(est, X, sample_weight, family)
    # A batch far from unit size runs its E-step and the M-step rescaled (gmm.units);
    # the running statistics stay in the data's units.
    problem = _units(data, est.reg_covar)
    if problem is not None:
        data = scale.rescaled(data, problem, family)
        params = problem.params_in(params) if started else None
    est._units = problem
    try:
        if not started:
            params = est._initialize(
                data, family, initializer, check_random_state(est.random_state)
            )
        log_const = est._log_const(params, family)
        # Rows read once: each chunk shifted as its features are formed, and dropped.
        # The first batch keeps a fit's chunks (step 1 on all rows is a fit's
        # iteration, bit for bit); later ones take chunks sized to the cache.
        chunks = em.ReadOnceChunks.of(
            data.chunks, read_once_budget(data.chunks) if started else None
        )
        # One BLAS limit for the update when its E-step's chunks take one: the
        # blocks inside (E-step, M-step) then find BLAS on one thread and skip theirs.
        # Decided once: the E-step (em.read_once_expectation) sets none of its own.
        limited = chunks.work < threaded_work(rows=True)
        with blas_threads_for(0.0 if limited else None, rows=True):
            stats, coefs = _expectation(chunks, params, log_const)
            batch = em.scatter(stats, family, data.shift, coefs, data.dtype)
            if problem is not None:
                batch = problem.scatter_out(batch)
                stats.log_likelihood -= stats.total_weight * data.n_features * problem.log_scale
            previous = _fitted_state(est, family, stats.total_weight) if blends_fit else state
            running, weight_seen, log_likelihood = _running(
                previous, batch, stats, est, decay, offset
            )
            # A copy: a family's M-step must not be able to change the running statistics.
            private = Scatter(running.nk, running.means, running.covariances.copy(), running.kind)
            if problem is not None:
                private = problem.scatter_in(private)
            params = est._m_step(private, params, family, data.dtype)
    finally:
        est.__dict__.pop("_units", None)
    if problem is not None:
        params = problem.params_out(params)
    units.check_representable(params, family, data.dtype, problem)
    n_batches = getattr(est, "n_batches_seen_", 0) if state is not None else 0
    batch_bound = stats.log_likelihood / stats.total_weight
    est._set_parameters(params, family)
    est._online = OnlineState(
        running,
        stats.total_weight,
        weight_seen + stats.total_weight,
        log_likelihood + stats.log_likelihood,
    )
    est.n_batches_seen_ = n_batches + 1
    est.n_samples_seen_ = (est.n_samples_seen_ if state is not None else 0) + data.n_samples
    est.lower_bound_ = est._online.log_likelihood / est._online.weight_seen
    est.n_iter_ = est.n_batches_seen_
    est.converged_ = False
    if state is None:
        est.lower_bounds_ = []
    # Last, and in place (O(1), not a copy per batch): nothing after it can fail.
    est.lower_bounds_.append(batch_bound)


def _fitted_state(est, family, scale: float) -> OnlineState:
    """Running statistics that a model fitted by ``fit`` (or loaded) starts a stream with.

    Its parameters as statistics: counts ``weights_ · scale``, its means, and
    its covariances less the ``reg_covar`` they were fitted with (the M-step
    adds the current one; a variance below it counts as 0) in the layout of
    the family's :attr:`~gmm.covariance.CovarianceFamily.scatter_kind`, at the
    scale of the first batch. The first update then blends with them
    at step size ``learning_offset ** -learning_decay`` (the batch's E-step
    uses the same parameters), as any later update does; only where that step
    is below 1 (at 1 the blend returns the batch's statistics whatever these
    are). O(K·D²).
    """
    params = est._get_parameters()
    n_components, n_features = np.shape(params.means)
    weights = np.asarray(params.weights, dtype=np.float64)
    matrices = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        part = np.asarray(family.component_covariance(params.covariances, k), dtype=np.float64)
        matrices[k] = part if part.ndim == 2 else np.diag(np.broadcast_to(part, (n_features,)))
    diagonal = np.arange(n_features)
    reg_covar = getattr(est, "_fitted_reg_covar", est.reg_covar)
    matrices[:, diagonal, diagonal] = np.maximum(matrices[:, diagonal, diagonal] - reg_covar, 0.0)
    running = statistics.from_matrices(weights * scale, params.means, matrices, family.scatter_kind)
    return OnlineState(running, scale, 0.0, 0.0)


def _check_replacing_batch(est, data, family) -> None:
    """The rows a first update of a fitted model needs when its step size is 1.

    With step size 1 (``learning_offset=1``, the default) the batch's
    statistics replace the fitted ones, as a stream's first batch
    initialises a model: the same checks as for a first batch (at least
    ``n_components`` rows, and the family's count of parameters).
    """
    _check_starting_rows(
        est,
        data.n_samples,
        f"This {type(est).__name__} was fitted by fit (or loaded) and this is its first "
        "partial_fit, whose step size is 1 (learning_offset=1): the batch's statistics "
        "replace the fitted ones, so it",
        "Pass a larger first batch, or set a learning_offset above 1 to blend the batch "
        "into the fitted model at step size learning_offset ** -learning_decay.",
    )
    try:
        family.check_rows(total_weight(data), est.n_components, data.n_features)
    except ValueError as error:
        raise ValueError(
            f"{error} (This is the first partial_fit of a fitted model, at step size 1: its "
            "batch replaces the fitted statistics. Pass more rows, or set a learning_offset "
            "above 1 to blend the batch into the fitted model.)"
        ) from None


def _check_starting_rows(est, n_rows: int | None, subject: str, advice: str) -> None:
    """Refuse a batch whose statistics start the model with fewer rows than components.

    ``subject`` begins the message ("... needs at least n_components=K rows"),
    ``advice`` ends it; ``n_rows`` None (not known before validation) passes. O(1).
    """
    if n_rows is not None and n_rows < est.n_components:
        raise ValueError(
            f"{subject} needs at least n_components={est.n_components} rows, got {n_rows}. {advice}"
        )


def _check_continuable(est, family, state: OnlineState | None) -> None:
    """Refuse parameters that no longer describe the model a later update would continue.

    A stream (or a model fitted by ``fit`` or loaded) continues with the
    covariance type and number of components of the parameters it holds:
    ``set_params(n_components=...)`` or another ``covariance_type`` between two
    updates would otherwise fail deep in numpy or in the family's state, or be
    ignored. The shapes are checked too, for parameters set by hand. O(1).
    """
    n_components, n_features = np.shape(est.means_)
    held = np.shape(est.precisions_cholesky_)
    fitted_type = getattr(est, "_fitted_covariance_type", None)
    kind = None if state is None else state.scatter.kind
    if (
        est.n_components == n_components
        and fitted_type in (None, est.covariance_type)
        and held == tuple(family.shape(n_components, n_features))
        and kind in (None, family.scatter_kind)
    ):
        return
    now = f"covariance_type={est.covariance_type!r}, n_components={est.n_components}"
    if fitted_type is None:  # parameters set by hand, or a model pickled by an older gmm
        raise ValueError(
            f"partial_fit continues the model this {type(est).__name__} holds ({n_components} "
            f"components, precisions_cholesky_ of shape {held}), which its parameters "
            f"({now}) cannot continue. Set them back to those of the fit, or call fit to "
            "start afresh."
        )
    raise ValueError(
        f"partial_fit continues the model this {type(est).__name__} holds, with "
        f"covariance_type={fitted_type!r} and {n_components} components, but its parameters "
        f"now say {now}. Set them back with set_params(covariance_type={fitted_type!r}, "
        f"n_components={n_components}) to continue the stream, or call fit to start afresh."
    )


def read_once_budget(chunks: em.ChunkedData) -> int:
    """Bytes of temporaries that size a later update's chunks (:func:`gmm.em.read_once_rows`).

    :data:`gmm.em.READ_ONCE_BYTES`, or twice that where it halves the E-step's
    calls at no loss of cache. A chunk of a shape whose parts run in turn (not
    :func:`gmm.em.threaded_shape`) is split in two from
    :data:`gmm.em.SPLIT_ROWS_SERIAL` rows and its parts are E-stepped one after
    the other, each paying a part's fixed cost (tens of µs: some twenty numpy
    calls, a sizeable share of the E-step of narrow rows, about 20 ns a row for
    'full' K = 3, D = 2). Where the budget's chunks would be split so, twice the
    budget gives half as many chunks and parts, as long as a part's (K, rows)
    log-probabilities, which the normalisation reads and writes several times,
    still take at most :data:`PART_BYTES` (a core's second-level cache).
    Measured (one BLAS thread, process CPU, medians of 150-300 alternating
    updates on the busy two-core machine, 2026-12-02): 'full' K = 3, D = 2,
    updates of 65,536 rows, one chunk in two parts instead of two in four,
    2.09 against 2.35-2.40 ms an update, and a pass over 1,000,000 rows 28.8
    against 30.6 ms (0.70 against 0.63 a batch iteration, medians of 21
    alternating passes in one process); without the cache condition 'spherical'
    K = 7, D = 8 (131,072 rows, parts of 32,768 rows, 1.8 MB of
    log-probabilities) was 4 % slower, which the condition keeps at the budget.
    O(1).
    """
    budget = em.READ_ONCE_BYTES
    X, n_components = chunks.X, chunks.n_components
    if em.threaded_shape(chunks.family, n_components, X.shape[1], X.dtype):
        return budget
    if em.read_once_rows(chunks, budget)[0] < em.SPLIT_ROWS_SERIAL:
        return budget  # chunks run whole: as few calls as the budget allows
    rows = em.read_once_rows(chunks, 2 * budget)[0]
    part = max(part.stop - part.start for part in em._chunk_parts(rows, serial=True))
    return 2 * budget if n_components * part * X.dtype.itemsize <= PART_BYTES else budget


def _expectation(chunks: em.ReadOnceChunks, params, log_const):
    """The update's E-step: :func:`gmm.em.read_once_expectation`, if it applies.

    Else (the E-step may run on threads, or the entropy is tracked)
    :func:`gmm.em.expectation`. The same numbers either way, so the first
    batch, in a fit's chunks, is still a fit's E-step bit for bit.
    """
    result = em.read_once_expectation(chunks, params, log_const)
    return em.expectation(chunks, params, log_const) if result is None else result


def _running(state, batch, stats, est, decay, offset):
    """The running statistics after ``batch``, and the stream's weight and log-likelihood."""
    if state is None:
        return batch, 0.0, 0.0
    rho = step_size(getattr(est, "n_batches_seen_", 0), decay, offset)
    running = blend(state.scatter, state.scale, batch, stats.total_weight, rho)
    return running, state.weight_seen, state.log_likelihood


def _first_batch(est, X, sample_weight, family) -> scale.TrainingData:
    """The batch that initialises the model: validated, its features recorded."""
    _check_starting_rows(
        est,
        _n_rows(X),
        "The first batch initialises the model and",
        "Pass a larger first batch.",
    )
    valid = validation.check_fit_data(X, est.n_components, type(est).__name__)
    w = validation.check_sample_weight(sample_weight, valid.shape[0], valid.dtype)
    data = _read_once(valid, w, family, est.n_components, scale.column_mean(valid, w))
    # The model's parameter count against the first batch (mclust's models): later
    # batches only blend into statistics the first batch made estimable.
    family.check_rows(total_weight(data), est.n_components, data.n_features)
    validation.check_features(est, X, reset=True)
    return data


def _later_batch(est, X, sample_weight, family) -> scale.TrainingData:
    """A batch after the first: any number of rows, the model's features and dtype.

    A plain ndarray of the model's dtype and feature count takes a fast path
    (:func:`_plain_rows`): its column sums, which the shift needs anyway, also
    show that its values are finite. Anything else, or sums that are not
    finite, goes through full validation, which words the error.
    """
    dtype = est.means_.dtype
    if _plain_rows(est, X, dtype):
        w = validation.check_sample_weight(sample_weight, X.shape[0], dtype)
        shift = _batch_shift(X, w)
        if shift is not None:
            return _read_once(X, w, family, est.n_components, shift)
    given = _float_dtype(X)
    if given is not None and given.itemsize != dtype.itemsize:
        raise TypeError(
            f"This batch has dtype {given.name}, but the model was started on {dtype.name} "
            f"data and keeps that precision. Pass X.astype(np.{dtype.name})."
        )
    valid = validation.check_predict_data(X, type(est).__name__).astype(dtype, copy=False)
    validation.check_features(est, X, reset=False)
    w = validation.check_sample_weight(sample_weight, valid.shape[0], dtype)
    shift = _batch_shift(valid, w)
    if shift is None:  # finite values whose sums overflow X's dtype
        shift = scale.column_mean(valid, w)
    return _read_once(valid, w, family, est.n_components, shift)


def _float_dtype(X) -> np.dtype | None:
    """The floating dtype of a batch's values: its own, or a DataFrame's float columns'.

    A DataFrame's is the common type of its floating columns (pandas'
    nullable ``Float32``/``Float64`` count as float32/float64), the precision
    validation would give them. None for batches with no floating values
    (integers, objects: converted as validation does). Byte order does not
    count: a big-endian float64 batch is float64. O(columns).
    """
    given = getattr(X, "dtype", None)
    if not isinstance(given, np.dtype) and hasattr(X, "dtypes") and hasattr(X, "columns"):
        # Each column's numpy dtype (pandas' nullable Float32/Float64 carry one): the
        # floating columns' common type is the precision validation would give them.
        columns = [getattr(d, "numpy_dtype", d) for d in X.dtypes]
        floats = [d for d in columns if isinstance(d, np.dtype) and d.kind == "f"]
        given = np.result_type(*floats) if floats else None
    return given if isinstance(given, np.dtype) and given.kind == "f" else None


def _read_once(X, w, family, n_components: int, shift: np.ndarray) -> scale.TrainingData:
    """A batch: rows that one E-step reads once, so no features are kept.

    Each chunk's features are formed when the E-step reaches it and dropped
    after (10,000 rows of 'full' D = 50 are 110 MB of features; forming them
    per chunk took a fifth less CPU per update, measured, 'full' K = 16, D =
    50), the chunk shifted while its features' columns are copied
    (:class:`gmm.em.ReadOnceChunks`, in :func:`_update`). The first batch too:
    an initialisation that reads its rows (k-means, the initial statistics)
    reads the rows, not features, and keeping them cost the first update of
    100,000 rows of 'full' K = 8, D = 20 twice a later one's CPU (184 MB
    written, measured).
    """
    return scale.TrainingData(X, w, family, n_components, shift, cache=False)


def _plain_rows(est, X, dtype) -> bool:
    """Whether X is a batch that full validation would return unchanged, but for its values.

    A 2-D ndarray (not a subclass) with at least one row, of the model's dtype
    and feature count, for a model that recorded no feature names (a model
    fitted on a DataFrame warns about unnamed batches: full validation does).
    O(1).
    """
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype == dtype
        and X.shape[0] >= 1
        and X.shape[1] == getattr(est, "n_features_in_", -1)
        and not hasattr(est, "feature_names_in_")
    )


def _batch_shift(X: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray | None:
    """Weighted column mean of a later batch in float64, or None if a column sum is not finite.

    The shift of the batch's E-step. The sums are one matrix-vector product
    (numpy's column-wise ``sum(axis=0)`` is many times slower on narrow rows,
    as slow as the E-step itself), in float64: float32 sums of rows far from
    the origin lose the mean's low digits (1e8 in every row summed to a mean
    several ulps off), and the rows are then centred far from their mean, where
    float32's expanded forms lose the spread. A NaN or infinity anywhere in X
    makes a sum NaN or infinite (a zero weight included: 0 · inf is NaN).
    O(n·D) time, O(D) memory (and a float64 copy of float32 rows, O(n·D)).
    """
    if X.dtype != np.float64:
        X = X.astype(np.float64)
    weights = _ones(X.shape[0], X.dtype) if sample_weight is None else sample_weight
    with np.errstate(over="ignore", invalid="ignore"):
        sums = weights @ X
    if not np.all(np.isfinite(sums)):
        return None
    total = X.shape[0] if sample_weight is None else sample_weight.sum(dtype=np.float64)
    return sums.astype(np.float64) / total


@functools.lru_cache(maxsize=4)
def _ones(n_rows: int, dtype) -> np.ndarray:
    """``np.ones(n_rows, dtype)``, read-only, kept for the next batches of the same size.

    A stream's batches mostly have one size; four sizes are kept, at most four
    batches' worth of ``n_rows`` numbers.
    """
    ones = np.ones(n_rows, dtype=dtype)
    ones.flags.writeable = False
    return ones


def _units(data: scale.TrainingData, reg_covar: float) -> units.Units | None:
    """:func:`gmm.units.choose` for a batch, deciding the common case without its overhead.

    A batch in memory whose deviations from the shift, over the rows
    ``units.choose`` reads, lie within :func:`gmm.units.safe_band` is fitted
    as it is (the decision ``units.choose`` makes on the same numbers,
    :func:`_within_band`); any other batch goes to ``units.choose``, which
    rescales or refuses it. The batch's values are finite (validated, or
    summed by :func:`_batch_shift`). O(min(n, SIZE_ROWS)·D) time, with no
    sorting of row indices per update.
    """
    X = data.X
    if type(X) is np.ndarray and X.shape[0] and _within_band(X, data.shift):
        return None
    return units.choose(X, data.shift, data.dtype, reg_covar)


def _within_band(X: np.ndarray, shift: np.ndarray) -> bool:
    """Whether ``low <= _deviation(X, shift) <= high`` for X's :func:`gmm.units.safe_band`.

    For rows of :data:`gmm.em.NARROW_FEATURES` or more, settled from bounds
    where they settle it, without the deviations themselves: every ``|x_ij|``
    and ``|shift_j|`` at most ``high / 2`` puts every ``|x_ij - shift_j|`` at
    most ``high`` (a power of two, so its rounding too), and the first row's
    largest deviation (a row ``units.choose`` reads) at least ``low`` puts
    their maximum at least ``low``: two contiguous reductions over the rows
    read and one row's deviations, where :func:`_deviation` subtracts the shift
    from every value read through numpy's short inner loop ('diag' K = 8, D =
    20, ``python -m experiments.bench_online --profile``, quiet machine: 0.080
    -> 0.057 ms an update of 10,000 rows, 0.174 -> 0.110 ms of 50,000).
    Narrower rows, and any batch the bounds leave undecided, are decided by
    :func:`_deviation`. X is finite. O(min(n, SIZE_ROWS)·D) time.
    """
    low, high = units.safe_band(X.dtype)
    n_rows, n_features = X.shape
    if n_features >= em.NARROW_FEATURES:
        sample = X if n_rows <= units.SIZE_ROWS else X.take(units.size_rows(n_rows), axis=0)
        largest = max(float(sample.max()), -float(sample.min()))
        if largest <= high / 2 and float(np.max(np.abs(shift))) <= high / 2:
            # No overflow: |x - shift| <= high here.
            first = np.abs(np.subtract(sample[0], shift, dtype=np.float64))
            if first.max() >= low:
                return True
    return low <= _deviation(X, shift) <= high


def _deviation(X: np.ndarray, shift: np.ndarray) -> float:
    """``max |x_ij - shift_j|`` in float64 over the rows :func:`gmm.units.choose` reads.

    Every row when there are at most ``units.SIZE_ROWS``, else those rows
    gathered by ``take`` (a tenth of the cost of fancy indexing).
    Rows narrower than :data:`gmm.em.NARROW_FEATURES` go from each column's
    extremes (on a feature-major copy, whose reductions are contiguous), with
    no float64 temporaries: rounding is monotone, so ``max_i fl(x_ij - s_j) =
    fl(max_i x_ij - s_j)`` and the result is the number the elementwise
    deviations give. X is finite. O(min(n, SIZE_ROWS)·D) time and memory.
    """
    n_rows, n_features = X.shape
    sample = X if n_rows <= units.SIZE_ROWS else X.take(units.size_rows(n_rows), axis=0)
    if n_features < em.NARROW_FEATURES:  # Python floats from here: no numpy warnings
        columns = sample.T.copy()  # feature-major: each extreme is a contiguous reduction
        high, low = columns.max(axis=1).tolist(), columns.min(axis=1).tolist()
        return max(
            max(top - centre, centre - bottom)
            for top, bottom, centre in zip(high, low, shift.tolist(), strict=True)
        )
    with np.errstate(over="ignore", invalid="ignore"):
        deviation = np.subtract(sample, shift, dtype=np.float64)  # the shift is float64
        return float(np.max(np.abs(deviation, out=deviation)))


def _n_rows(X) -> int | None:
    """Rows of a 2-D array or a list of rows, without converting it; None if unknown."""
    shape = getattr(X, "shape", None)
    if shape is not None:
        known = len(shape) == 2 and isinstance(shape[0], numbers.Integral)
        return int(shape[0]) if known else None
    return len(X) if isinstance(X, (list, tuple)) else None


def forget(est) -> None:
    """Drop the running statistics and the stream's counters (``fit`` starts afresh)."""
    for name in ("_online", "n_batches_seen_", "n_samples_seen_"):
        est.__dict__.pop(name, None)


# ================================================================ streams
def fit_stream(
    batches,
    model=None,
    *,
    batch_size: int | None = None,
    sample_weight=None,
    progress: bool | None = False,
    total: int | None = None,
    **params,
):
    """Fit a Gaussian mixture by stepwise EM over a stream, reading every row once.

    Parameters
    ----------
    batches : iterable of array-like, or a 2-D array, memory map, DataFrame or dask array
        An iterable yields batches: arrays of shape (n_rows, n_features), or
        ``(X, sample_weight)`` pairs. A 2-D ndarray, ``np.load(path,
        mmap_mode='r')`` (read with plain file reads), a pandas DataFrame or a
        dask array is read in row blocks of ``batch_size`` rows, once (a dask
        array's blocks are computed one at a time).
    model : GaussianMixture, optional
        Updated in place with :meth:`~gmm.GaussianMixture.partial_fit`; a model
        in the middle of a stream continues it. By default a new
        ``GaussianMixture(**params)``.
    batch_size : int, optional
        Rows per stepwise-EM update. One array is read in row blocks of
        ``batch_size`` rows (default :func:`default_batch_size`: 10,000 rows, or
        1 MiB of rows where that is more, e.g. 65,536 rows of 2 features). For an
        iterable, by default every batch is one update; with ``batch_size``,
        consecutive ndarray batches are gathered until they hold at least
        ``batch_size`` rows and make one update together (mini-batch stepwise
        EM: their E-steps all use the same parameters, as the rows of one
        batch do). Each update pays a fixed cost (the family's coefficients,
        the statistics step, one M-step, the blend: 0.3-5 ms), which
        larger updates spread over more rows; see the Notes. A batch that
        cannot join the gathered ones (not a 2-D floating ndarray, another
        dtype or width, a NaN or infinity, weights that are not finite and
        non-negative) closes the update: the gathered rows are applied, then
        that batch is passed alone to ``partial_fit``, which words any error,
        so after an error the model holds every row before the bad batch.
        ``n_batches_seen_`` counts updates.
    sample_weight : array-like of shape (n_samples,), optional
        With ``batches`` one array only: the rows' weights, sliced alike.
    progress : bool or None, default=False
        Show a tqdm progress bar over the batches on standard error (None: when
        standard error is a terminal and tqdm is installed).
    total : int, optional
        Number of batches, for the bar of an iterable without ``len``.
    **params
        Constructor parameters of the new model (``n_components``,
        ``covariance_type``, ``learning_decay``, ...); not with ``model``.

    Returns
    -------
    GaussianMixture
        The fitted model (``model`` itself if one was given).

    Notes
    -----
    Each update costs one E-step, O(rows·K·D²) time for 'full', and one
    M-step, O(K·D³). Memory: one update's rows and their per-chunk
    temporaries, O(batch_size·(D + K)), whatever the length of the stream.

    Rows per second against one batch EM iteration over the same rows
    (``python -m experiments.bench_online --throughput --rows 1000000``: one
    BLAS thread, process CPU, medians; every update exactly ``batch_size``
    rows of one array), measured on a 2-core AMD EPYC, 2026-12-03, at the
    default update size: 'diag' K=8, D=20 1.12, 'full' K=8, D=20 0.84, and
    'full' K=3, D=2 0.65-0.81 (median 0.69 over seven runs). Rows are read in
    chunks whose temporaries stay in the CPU's cache, so per row an update
    costs about what a batch iteration does; what small models pay is the
    fixed cost of an update (the family's coefficients, the M-step, the
    Python and numpy calls of each step on K·D² numbers: about 0.3-0.4 ms for
    'full' K=3, D=2), which a batch iteration pays once a pass and stepwise
    EM once an update (``--bound`` measures both). Larger updates spread it
    over more rows but mean fewer steps: one pass over 1,000,000 rows of
    'full' K=3, D=2 ends at most 0.008 nats per sample below batch EM on
    held-out rows at the default 65,536 rows an update, 0.021 at 131,072
    (``--gaps``); a short stream, or one that drifts, is better served by
    smaller updates.

    Examples
    --------
    >>> import numpy as np
    >>> import gmm
    >>> rng = np.random.default_rng(0)
    >>> stream = (
    ...     np.concatenate([rng.normal(-4, 1, (50, 2)), rng.normal(4, 1, (50, 2))])
    ...     for _ in range(40)
    ... )
    >>> model = gmm.fit_stream(stream, n_components=2, random_state=0)
    >>> model.n_batches_seen_, model.n_samples_seen_
    (40, 4000)
    >>> np.round(np.sort(model.means_[:, 0]))
    array([-4.,  4.])
    """
    from .estimator import GaussianMixture
    from .selection.parallel import want_progress

    if model is None:
        model = GaussianMixture(**params)
    elif params:
        raise TypeError(
            f"fit_stream takes constructor parameters ({', '.join(sorted(params))}) only "
            "without a model; set them on the model with model.set_params(...)."
        )
    _check_stream_source(batches)
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"batch_size must be an integer or None, got {batch_size!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        shape = getattr(batches, "shape", None)
        if shape is not None and len(shape) == 2:  # one array: blocks of batch_size rows
            validation.check_array_fits(
                (min(int(batch_size), int(shape[0])), int(shape[1])),
                np.float64,
                f"A batch of batch_size={batch_size} rows",
                "Use a smaller batch_size.",
            )
    if _is_array(batches):
        size = (
            default_batch_size(batches.shape[1], batches.dtype)
            if batch_size is None
            else int(batch_size)
        )
        if total is None:
            total = -(-batches.shape[0] // size)
        items = ((X, w, 1) for X, w in _array_batches(batches, size, sample_weight))
    else:
        if sample_weight is not None:
            raise TypeError(
                "sample_weight goes with one array of rows; for an iterable of batches, "
                "yield (X, sample_weight) pairs."
            )
        if total is None and hasattr(batches, "__len__"):
            total = len(batches)
        pairs = (_pair(item) for item in batches)
        if batch_size is None:
            items = ((X, w, 1) for X, w in pairs)
        else:
            items = gathered(pairs, int(batch_size))
    show = want_progress(progress)
    with _bar(show, total) as bar:
        for X, w, count in items:
            if isinstance(X, _Malformed):
                raise X.error()
            model.partial_fit(X, sample_weight=w)
            if bar is not None:
                bar.update(count)
    if not hasattr(model, "n_batches_seen_"):
        raise ValueError("fit_stream got no batches: the stream is empty.")
    return model


def _check_stream_source(batches) -> None:
    """Refuse an array of fewer than 2 dimensions, or of unknown rows, before any update.

    (An array of 3 dimensions is an iterable of 2-D batches.) O(1).
    """
    shape = getattr(batches, "shape", None)
    if shape is None or not isinstance(shape, tuple):
        return
    dask = is_dask_collection(batches)
    if len(shape) < 2 or (dask and len(shape) != 2):
        raise ValueError(
            f"fit_stream reads an array as rows of shape (n_samples, n_features), got an "
            f"array of shape {tuple(shape)}. Reshape it (X.reshape(-1, 1) for one feature), "
            "or pass an iterable of 2-D batches (an ndarray of shape (n_batches, rows, "
            "features) is one)."
        )
    if any(not isinstance(n, numbers.Integral) and not math.isfinite(n) for n in shape):
        raise ValueError(
            f"This dask array's chunk sizes are unknown (shape {tuple(shape)}), so it cannot "
            "be read in blocks of batch_size rows. Call X.compute_chunk_sizes() first, or "
            "pass its blocks as an iterable (for example, dask.compute each of X.to_delayed())."
        )


class _Malformed:
    """An iterable's item that is neither a batch nor a pair: refused when its turn comes.

    Not raised while batches are gathered, so the rows gathered before it are
    applied first, as before any bad batch.
    """

    def __init__(self, n_items: int):
        self.n_items = n_items

    def error(self) -> ValueError:
        return ValueError(
            f"fit_stream's batches are arrays or (X, sample_weight) pairs, got a tuple of "
            f"{self.n_items} item(s). Yield X alone, or (X, sample_weight)."
        )


def _pair(item) -> tuple:
    """An iterable's item as ``(X, sample_weight)``: a batch, or a pair of them."""
    if not isinstance(item, tuple):
        return item, None
    return item if len(item) == 2 else (_Malformed(len(item)), None)


def gathered(pairs, min_rows: int) -> Iterator[tuple]:
    """Consecutive ``(X, sample_weight)`` batches gathered into updates of >= ``min_rows`` rows.

    Yields ``(X, sample_weight, n_batches)``: the rows of ``n_batches``
    consecutive batches, concatenated (weights of 1 where a batch had none).
    A batch that cannot join (see :func:`_joinable`) is yielded alone, after
    the rows gathered before it, so that ``partial_fit`` validates it as given.
    The last update may hold fewer rows. Memory: at most ``min_rows`` rows plus
    one batch; O(rows·D) time for the finiteness checks and the copies.

    >>> import numpy as np
    >>> pairs = [(np.zeros((40, 2)), None)] * 3 + [(np.full((5, 2), np.nan), None)]
    >>> [(X.shape[0], n) for X, _, n in gathered(pairs, 50)]
    [(80, 2), (40, 1), (5, 1)]
    """
    pending: list[tuple[np.ndarray, np.ndarray | None]] = []
    rows = 0
    for X, w in pairs:
        if not _joinable(X, w, pending):
            if pending:
                yield _joined(pending)
                pending, rows = [], 0
            yield X, w, 1
            continue
        pending.append((X, w))
        rows += X.shape[0]
        if rows >= min_rows:
            yield _joined(pending)
            pending, rows = [], 0
    if pending:
        yield _joined(pending)


def _joinable(X, w, pending) -> bool:
    """A 2-D floating ndarray with rows, finite, like the gathered ones, with valid weights.

    O(rows·D): one sum over X (NaN or infinity anywhere makes it not finite).
    """
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and len(X)):
        return False
    if pending and (X.dtype != pending[0][0].dtype or X.shape[1] != pending[0][0].shape[1]):
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isfinite(np.add.reduce(X, axis=None)):
            return False
    if w is None:
        return True
    if not isinstance(w, np.ndarray) or w.shape != (X.shape[0],) or w.dtype.kind not in "fiu":
        return False
    return bool(np.all(np.isfinite(w)) and np.all(w >= 0))


def _joined(pending) -> tuple:
    """The gathered batches as one: ``(X, sample_weight or None, n_batches)``."""
    if len(pending) == 1:
        X, w = pending[0]
        return X, w, 1
    X = np.concatenate([x for x, _ in pending])
    if all(w is None for _, w in pending):
        return X, None, len(pending)
    w = np.concatenate([np.ones(len(x)) if w is None else w for x, w in pending])
    return X, w, len(pending)


def _is_array(batches) -> bool:
    return (
        is_dask_collection(batches)
        or isinstance(batches, FileRows)
        or _is_frame(batches)
        or (isinstance(batches, np.ndarray) and batches.ndim == 2)
    )


def _is_frame(X) -> bool:
    """A pandas DataFrame (iterating one would give its column names, not rows)."""
    return hasattr(X, "iloc") and hasattr(X, "columns")


def _array_batches(X, batch_size: int, sample_weight) -> Iterator[tuple]:
    """Row blocks of an ndarray, memory map or dask array, each read (computed) once.

    A memory map is read with plain file reads (:class:`gmm.scale.FileRows`),
    so its pages do not pile up in the process over a long pass.
    """
    if isinstance(X, np.memmap):
        X = FileRows.from_memmap(X) or X
    n_samples = X.shape[0]
    if sample_weight is not None and not is_dask_collection(sample_weight):
        sample_weight = np.asarray(sample_weight)
    for start in range(0, n_samples, batch_size):
        rows = slice(start, start + batch_size)
        block = X.iloc[rows] if _is_frame(X) else X[rows]
        w = None if sample_weight is None else sample_weight[rows]
        if is_dask_collection(block):
            block = block.compute()
        if is_dask_collection(w):
            w = w.compute()
        yield (block if _is_frame(block) else np.asarray(block)), w  # a frame keeps its names


def _bar(show: bool, total: int | None):
    if not show:
        return nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="stream", unit="batch", file=sys.stderr)
