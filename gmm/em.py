"""The EM pass: one fused sweep over row chunks per iteration.

Each chunk is shifted by a reference point, turned into the covariance family's
features, and gives, in one go, the log-likelihood and the summable sufficient
statistics (``nk``, the family's moments). The responsibilities of a chunk live
only while that chunk is processed, so an iteration needs O(chunk · (K + F))
extra memory, never O(n_samples · K · D). The M-step turns the summed
statistics into parameters.

Everything here is a kernel: inputs are trusted. Validation lives in
:mod:`gmm.validation`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import statistics
from .blas_threads import (
    blas_thread_count,
    blas_threads,
    blas_threads_for,
    matrix_work,
)
from .covariance import CovarianceFamily
from .statistics import Scatter


def _last_level_cache() -> int:
    """Bytes of the largest CPU cache the OS reports (0 if it reports none).

    From ``sysconf`` where the C library knows it, else Linux's
    ``/sys/devices/system/cpu/cpu0/cache/index*/size``.
    """
    import glob
    import os

    sizes = []
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            sizes.append(int(os.sysconf(name)))
        except (ValueError, OSError, AttributeError):
            pass
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as file:
                text = file.read().strip().upper()
        except OSError:
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in "KMG" else text
        if digits.isdigit():
            sizes.append(int(digits) * unit)
    return max(sizes, default=0)


#: Target size in bytes of one chunk's largest temporary (features, log-probs or
#: whitened deviations): half the last-level cache, between 8 and 32 MiB. Larger
#: chunks keep the threaded BLAS products long enough to amortise their start
#: (on a busy machine a (K × F) @ (F × 750) product was measured 15× slower per
#: row with two threads than with one); the cap keeps the memory growth of a fit
#: small against the data.
CHUNK_BYTES = int(np.clip(_last_level_cache() // 2, 8 * 2**20, 32 * 2**20))
#: Data whose features take at most this many bytes keeps them across iterations:
#: memory traded for time. Forming 'full' features every iteration was a third of
#: an iteration at 100,000 × 20, K = 20 (their 185 MB: 66-69 ms an iteration with
#: a 64 MiB cap, 45-50 ms with this one, idle two-core machine). Larger data streams
#: its features each pass (a fit of 2,000,000 × 20 never holds them); 0 never keeps them.
FEATURE_CACHE_BYTES = 256 * 2**20

#: log(2 pi): the E-step adds -D/2 of it to every component's log density.
LOG_2PI = np.log(2 * np.pi)


@dataclass
class Parameters:
    """Parameters of a Gaussian mixture, in scikit-learn's representation.

    ``state`` belongs to the covariance family: what its M-step carries from
    one iteration to the next (None for the closed-form families).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray
    state: Any = None


@dataclass
class Statistics:
    """Sufficient statistics of a set of rows, relative to a shift.

    Adding two of them gives the statistics of the union of their rows.
    """

    nk: np.ndarray
    moments: tuple[np.ndarray, ...]
    log_likelihood: float
    total_weight: float
    #: Statistics of rows with missing entries (:class:`gmm.missing.IncompleteStatistics`),
    #: kept apart from the family's moments; None when every row is complete.
    incomplete: Any = None
    #: ``sum_i w_i H_i``, the weighted entropy ``H_i = -sum_k r_ik log r_ik`` of the
    #: responsibilities, when the E-step ran under :func:`tracking_entropy`; else None.
    entropy: float | None = None

    def __add__(self, other: Statistics) -> Statistics:
        parts = [p for p in (self.incomplete, other.incomplete) if p is not None]
        both = self.entropy is not None and other.entropy is not None
        return Statistics(
            self.nk + other.nk,
            tuple(a + b for a, b in zip(self.moments, other.moments, strict=True)),
            self.log_likelihood + other.log_likelihood,
            self.total_weight + other.total_weight,
            sum(parts[1:], parts[0]) if parts else None,
            self.entropy + other.entropy if both else None,
        )


@dataclass
class FinalEStep:
    """What a fit's last E-step gave when its parameters are the fitted ones.

    Filled by the driver (:meth:`gmm.driver.BaseMixture._em`) under
    :func:`tracking_entropy` when EM stopped by the 'relative' rule, whose
    fitted parameters are those of the E-step that met it (mclust's order), so
    that the information criteria need no further pass over the rows. Means per
    unit of weight, in the data's units: ``log_likelihood`` is the fit's
    ``lower_bound_``, ``entropy`` the mean of ``H_i``; ``total_weight`` is the
    fit's (relative) total weight; ``owner`` the estimator whose fit filled it.
    """

    owner: object | None = None
    log_likelihood: float | None = None
    entropy: float | None = None
    total_weight: float | None = None

    @property
    def filled(self) -> bool:
        return self.log_likelihood is not None and self.entropy is not None


_TRACKED: ContextVar[FinalEStep | None] = ContextVar("gmm_tracked_entropy", default=None)


@contextmanager
def tracking_entropy() -> Iterator[FinalEStep]:
    """E-steps in this block also sum the responsibilities' entropy; yields the
    :class:`FinalEStep` a fit in the block fills (or leaves empty).

    Costs one more pass over each chunk's (K, rows) log-probabilities (a copy and
    a product, no logarithm); what it saves is the criteria's E-step after a fit
    (:func:`gmm.selection.search.fit_point`). A context variable: helper threads
    of an E-step get the flag from their caller, other threads do not see it.
    """
    final = FinalEStep()
    token = _TRACKED.set(final)
    try:
        yield final
    finally:
        _TRACKED.reset(token)


def tracked_final_estep() -> FinalEStep | None:
    """The :class:`FinalEStep` of the :func:`tracking_entropy` block in force, or None."""
    return _TRACKED.get()


#: The :mod:`gmm.lockstep` fit this thread runs, whose E-steps (:func:`expectation`)
#: go to the lockstep's coordinator; None (the default): computed here.
_LOCKSTEP: ContextVar[Any] = ContextVar("gmm_lockstep", default=None)


def chunk_rows(n_columns: int, itemsize: int, budget: int | None = None) -> int:
    """Rows per chunk so that an (rows, n_columns) temporary takes about ``budget``.

    ``budget`` defaults to :data:`CHUNK_BYTES` (read at call time). At least 256 rows.
    """
    budget = CHUNK_BYTES if budget is None else budget
    return max(256, budget // max(1, n_columns * itemsize))


class ChunkedData:
    """Row chunks of X, shifted, with their features, optionally cached.

    Parameters
    ----------
    X : ndarray or memmap of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    family : CovarianceFamily
    shift : ndarray of shape (n_features,)
        Subtracted from every row before the features are formed.
    n_components : int
        Only used to size the chunks.
    cache : bool or None
        Keep the shifted chunks and their features between passes when they
        take at most :data:`FEATURE_CACHE_BYTES`. None: the same, except for
        one component, whose rows one E-step reads (:func:`fixed_statistics`);
        True: whatever the components (rows that also have rows with holes
        beside them are read every iteration).
    """

    def __init__(self, X, sample_weight, family, shift, n_components, cache=None):
        self.X = X
        self.sample_weight = sample_weight
        self.family = family
        self.shift = np.asarray(shift, dtype=X.dtype)
        self.n_components = n_components
        n_samples, n_features = X.shape
        # Before any fitted state changes, kept chunks or not (their features check too).
        family.check_n_features(n_features)
        n_columns = max(family.chunk_columns(n_features, n_components, X.dtype), n_components)
        self.rows = chunk_rows(n_columns, X.dtype.itemsize)
        #: Multiply-adds of one chunk's products, about (for the BLAS thread policy).
        self.work = float(min(self.rows, n_samples)) * n_columns * max(n_components, 1)
        self._cache: list | None = None
        # One component's rows are read by one E-step (fixed_statistics): keeping
        # them would only add the copy's first-touch writes.
        one_pass = cache is None and n_components == 1 and REUSE_ONE_COMPONENT
        if (
            cache is not False
            and not one_pass
            and n_samples * n_columns * X.dtype.itemsize <= FEATURE_CACHE_BYTES
        ):
            self._cache = list(self._compute())

    def _compute(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        n_samples = self.X.shape[0]
        for start in range(0, n_samples, self.rows):
            stop = min(start + self.rows, n_samples)
            rows = np.asarray(self.X[start:stop])
            w = None if self.sample_weight is None else self.sample_weight[start:stop]
            with np.errstate(over="ignore"):  # reported by check_representable
                # The shift applied while the features are copied, where the family
                # can (one pass over the rows, no separate shifted copy to keep).
                Xc, feats = shifted_chunk_features(self.family, rows, self.shift, self.n_components)
            yield Xc, feats, w

    def __iter__(self):
        return iter(self._cache) if self._cache is not None else self._compute()

    @property
    def kept_bytes(self) -> int:
        """Bytes of the shifted chunks and features kept across passes (0 if none are)."""
        if self._cache is None:
            return 0
        # The shifted rows may be a view of the features (shifted_chunk_features).
        return sum(
            feats.nbytes + (0 if np.may_share_memory(feats, Xc) else Xc.nbytes)
            for Xc, feats, _ in self._cache
        )

    def shifted_rows(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """``(Xc, w)`` of each chunk, without forming features that are not cached."""
        if self._cache is not None:
            for Xc, _, w in self._cache:
                yield Xc, w
            return
        for start in range(0, self.X.shape[0], self.rows):
            stop = min(start + self.rows, self.X.shape[0])
            w = None if self.sample_weight is None else self.sample_weight[start:stop]
            yield shifted(np.asarray(self.X[start:stop]), self.shift), w

    def in_dtype(self, dtype) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """The chunks with data and features in ``dtype`` (recomputed if it differs)."""
        if np.dtype(dtype) == self.X.dtype:
            yield from self
            return
        for Xc, _, w in self:
            Xc = Xc.astype(dtype)
            with np.errstate(over="ignore"):  # reported by check_representable
                feats = self.family.chunk_features(Xc, self.n_components)
            yield Xc, feats, w


#: Rows narrower than this are shifted one column at a time (:func:`shifted`).
NARROW_FEATURES = 8


def shifted(X: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``X - shift``, shape (n, D), in X's dtype (``shift`` is in it).

    For fewer than :data:`NARROW_FEATURES` columns, column by column into a
    feature-major buffer, returned as its (n, D) transposed view: numpy's
    broadcast over a last axis of 2 to 4 elements costs about five times more
    per element (measured: 47 µs against 9 µs for 10,000 × 2 in float64), and
    the 'full' and 'diag' features then copy contiguous columns. The same
    numbers either way. O(n·D) time and memory.
    """
    n_features = X.shape[1]
    if n_features >= NARROW_FEATURES:
        return X - shift
    columns = np.empty((n_features, X.shape[0]), dtype=X.dtype)
    for j in range(n_features):
        np.subtract(X[:, j], shift[j], out=columns[j])
    return columns.T


def weighted_log_prob(
    Xc: np.ndarray, feats: np.ndarray, family: CovarianceFamily, coefs, log_norm_const
) -> np.ndarray:
    """``log(pi_k) + log N(x | mu_k, Sigma_k)``, component-major: shape (K, rows).

    ``log_norm_const`` is ``log(pi_k) + log det U_k - D/2 log(2 pi)``, shape (K,).
    The family's :meth:`~gmm.covariance.CovarianceFamily.log_prob` (the
    axis-aligned ones give it in one product). O(rows · K · F) time.
    """
    # Overflow (a row ~1e155 away in float64) is reported by check_representable.
    with np.errstate(over="ignore", invalid="ignore"):
        return family.log_prob(Xc, feats, coefs, log_norm_const)


def working_precision(params: Parameters, family: CovarianceFamily, shift, dtype):
    """The dtype to compute an iteration in, and the parameters cast to it.

    The data's own dtype, unless the family says its kernels would lose accuracy
    there (float32 data with tight or near-singular components): then float64.
    """
    shifted = params.means - shift
    with np.errstate(over="ignore", invalid="ignore"):  # a far model: check_representable
        working = family.working_dtype(dtype, params.weights, shifted, params.precisions_cholesky)
    if working == np.dtype(dtype):
        return params, working
    cast = {
        name: value if name == "state" or value is None else np.asarray(value, dtype=working)
        for name, value in vars(params).items()
    }
    return Parameters(**cast), working


def normalize_log_prob(
    log_prob: np.ndarray, first_row: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities and per-row log-normalisers, in place of ``log_prob``.

    ``log_prob`` is component-major, (K, rows): ``log_norm = logsumexp(log_prob,
    axis=0)`` and ``resp = exp(log_prob - log_norm)``, reusing the exponentials.
    Reductions over K are elementwise operations between K rows. With
    ``first_row`` (the index of the block's first row in the data given), a
    row whose log-probabilities are all -inf or NaN raises
    :class:`OutOfRangeError` as :func:`check_representable` does, from the
    same maximum. O(K · rows) time, O(rows) extra memory (O(K · rows) bytes
    when some entries are clamped).
    """
    resp, log_norm, _ = _normalize(log_prob, first_row, entropy=False)
    return resp, log_norm


def normalize_log_prob_entropy(
    log_prob: np.ndarray, first_row: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`normalize_log_prob` and each row's entropy ``-sum_k r_k log r_k``, (rows,).

    The entropy comes without a logarithm per entry: with ``l_k`` a row's
    log-probabilities less their maximum, ``e_k = exp(l_k)`` and ``s = sum_k e_k``,
    ``H = log s - sum_k e_k l_k / s``, a sum of two non-negative terms (no
    cancellation). Clamped entries (responsibility 0) add nothing. The same
    responsibilities and normalisers as :func:`normalize_log_prob`, bit for bit;
    one more pass over the (K, rows) entries, and the responsibilities in a new
    array (O(K · rows) memory) since ``log_prob`` keeps the shifted values.
    """
    return _normalize(log_prob, first_row, entropy=True)


def _normalize(log_prob: np.ndarray, first_row: int | None, entropy: bool):
    top = np.max(log_prob, axis=0)
    finite = np.isfinite(top)
    all_finite = bool(finite.all())
    if not all_finite:
        if first_row is not None:
            _raise_unrepresentable(top, finite, first_row, log_prob.dtype)
        # A row with every log-probability at -inf has top = -inf; keep it finite here
        # so the row gives 0/0 = NaN nowhere (its log_norm stays -inf).
        top[~finite] = 0
    log_prob -= top
    # Below the smallest normal number (e^-708 in float64, e^-87 in float32) exp gives
    # subnormals, slow in exp and in the M-step's products: such entries become 0.
    # One comparison finds out, and where some entry is below the floor (or NaN, whose
    # row is refused or undefined) it is the mask of the clamp: no separate pass for
    # the minimum (the mclust sweep's chunks mostly clamp; 3-10 % of an E-step).
    floor = exp_floor(log_prob.dtype)
    # For the entropy the shifted log-probabilities stay (finite: clamped at the
    # floor, where the responsibility is 0) and the exponentials get their own array.
    out = None if entropy else log_prob
    representable = np.greater_equal(log_prob, floor)  # NaN: False, the clamping path
    if representable.all():
        resp = np.exp(log_prob, out=out)
    else:
        np.maximum(log_prob, floor, out=log_prob)
        resp = np.exp(log_prob, out=out)
        resp *= representable  # the clamped entries become exactly 0
    # (Exponentiating only the representable entries into zeros, np.exp(where=...),
    # was 10-20 % faster per call on the mclust sweep's K <= 9 but made 'diag' and
    # 'spherical' at 100,000 x 20, K = 20 take 22-26 ms an iteration against 14-16:
    # numpy's masked exp does not vectorise. 2026-12-02, idle two-core box.)
    total = np.sum(resp, axis=0)
    # sum_k e_k l_k, before resp is normalised: one pass, no (K, rows) temporary.
    weighted = np.einsum("kr,kr->r", resp, log_prob) if entropy else None
    # Every finite row holds its maximum's exp(0) = 1, so total >= 1: no division
    # by 0 and no log of 0 unless some row is all -inf or NaN.
    with nullcontext() if all_finite else np.errstate(divide="ignore", invalid="ignore"):
        resp /= total
        if weighted is not None:
            weighted /= total
        log_norm = np.log(total, out=total)
    row_entropy = None
    if weighted is not None:
        row_entropy = np.subtract(log_norm, weighted, out=weighted)
    log_norm += top
    return resp, log_norm, row_entropy


@functools.lru_cache(maxsize=8)
def exp_floor(dtype: np.dtype) -> float:
    """``log(tiny) + 1`` of ``dtype``: below it (relative to a row's maximum) exp is subnormal."""
    return float(np.log(np.finfo(dtype).tiny) + 1)


def log_det_precision(params: Parameters, family: CovarianceFamily) -> np.ndarray:
    """``log det U_k`` (half the log-determinant of each precision), (K,), float64."""
    n_features = params.means.shape[1]
    log_det = family.log_det_precision_cholesky(params.precisions_cholesky, n_features)
    return np.asarray(log_det, dtype=np.float64)


def prepare(params: Parameters, family: CovarianceFamily, shift: np.ndarray, log_const):
    """Per-iteration coefficients: ``(coefs, log_const)`` in the parameters' dtype.

    ``log_const`` (K,) is what the estimator adds to ``-maha / 2`` for each
    component (its E-step hooks; ``log(weight) + log normaliser`` for maximum
    likelihood).
    """
    dtype = params.means.dtype
    # Overflow (a model ~1e155 from the data's scale) is reported by check_representable.
    with (
        blas_threads_for(matrix_work(*params.means.shape)),
        np.errstate(over="ignore", invalid="ignore"),
    ):
        coefs = family.coefficients(
            params.weights, (params.means - shift).astype(dtype), params.precisions_cholesky
        )
    return coefs, np.asarray(log_const).astype(dtype)


class OutOfRangeError(ValueError):
    """Data or a model beyond what the dtype can represent.

    ``row`` is the 0-based index of the row at fault in the data given (None
    when the cause is the data's scale as a whole, see :mod:`gmm.units`).
    """

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row

    def __reduce__(self):
        return type(self), (self.args[0], self.row)


def out_of_range(row: int, dtype) -> OutOfRangeError:
    """The :class:`OutOfRangeError` of a row whose log-probabilities are all -inf or NaN."""
    return OutOfRangeError(
        f"Row {row} (counting from 0) lies so far from every component that its squared "
        f"distances overflow {np.dtype(dtype).name} (its density is 0 to machine precision "
        "and its responsibilities are undefined). Check that row for a unit or scale "
        "error, or standardise the data.",
        row=row,
    )


def check_representable(log_prob: np.ndarray, first_row: int = 0) -> None:
    """Raise :class:`OutOfRangeError` if a row's log-probabilities are all -inf or NaN.

    ``log_prob`` is component-major (K, rows). O(K · rows).
    """
    top = np.max(log_prob, axis=0)
    _raise_unrepresentable(top, np.isfinite(top), first_row, log_prob.dtype)


def _raise_unrepresentable(top: np.ndarray, finite: np.ndarray, first_row: int, dtype) -> None:
    """:class:`OutOfRangeError` for the first row whose maximum log-probability is -inf or NaN.

    ``top`` is each row's maximum over the components, ``finite`` whether it is finite.
    """
    if finite.all():
        return
    bad = ~(top > -np.inf)  # -inf, or NaN from inf - inf in an expanded form
    if bad.any():
        raise out_of_range(first_row + int(np.flatnonzero(bad)[0]), dtype)


#: Largest error bound of a chunk's shared term (``shared_log_prob``), relative to
#: ``|log-likelihood| + weight``, for which the chunk keeps the E-step without it:
#: then its log-likelihood equals the per-row path's to about this (normal data:
#: bound ~1e-15; a near-singular 'tied' covariance, condition 1e12: ~1e-3, where
#: the cancellation of P's entries would cost digits the per-row path keeps).
SHARED_RTOL = 1e-13


def chunk_statistics(
    Xc, feats, w, family, coefs, const, first_row: int = 0, entropy: bool = False
) -> Statistics:
    """Fused E-step and sufficient statistics of one chunk (whose first row is ``first_row``).

    With ``entropy``, also the responsibilities' weighted entropy
    (:func:`normalize_log_prob_entropy`; ``Statistics.entropy``). A family with
    the hook ``log_prob_less_shared`` (:func:`_drops_shared`) computes without
    the term every component shares (the responsibilities and entropy do not
    depend on it) and adds its chunk sum to the log-likelihood from the moments
    (``shared_log_prob``); where the log-likelihood is not finite (a row so far
    that it overflows) or that sum's error bound exceeds :data:`SHARED_RTOL` of
    it, the chunk is computed again by ``log_prob`` (which reports a far row).
    """
    if _drops_shared(type(family)):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            split = family.log_prob_less_shared(Xc, feats, coefs, const)
            if split is not None:
                stats = _fused_statistics(split, Xc, feats, w, family, coefs, None, entropy)
                shared, error = family.shared_log_prob(stats.moments, coefs)
                stats.log_likelihood += shared
                scale = abs(stats.log_likelihood) + stats.total_weight
                if np.isfinite(stats.log_likelihood) and error <= SHARED_RTOL * scale:
                    return stats
    log_prob = weighted_log_prob(Xc, feats, family, coefs, const)
    return _fused_statistics(log_prob, Xc, feats, w, family, coefs, first_row, entropy)


def _fused_statistics(log_prob_work, Xc, feats, w, family, coefs, first_row, entropy):
    """:func:`chunk_statistics` from the chunk's ``(log_prob, work)``."""
    log_prob, work = log_prob_work
    resp, log_norm, row_entropy = _normalize(log_prob, first_row, entropy)
    loglik, total, entropy_sum = row_sums(resp, log_norm, row_entropy, w)
    stats = _statistics(Xc, feats, resp, family, coefs, work, loglik, total)
    stats.entropy = entropy_sum
    return stats


def row_sums(
    resp: np.ndarray, log_norm: np.ndarray, row_entropy: np.ndarray | None, w: np.ndarray | None
) -> tuple[float, float, float | None]:
    """A chunk's ``(log-likelihood, weight, entropy)`` sums, and ``resp`` weighted in place.

    ``resp`` (K, rows) and ``log_norm`` (rows,) from :func:`normalize_log_prob`
    (``row_entropy`` (rows,) from :func:`normalize_log_prob_entropy`, or None:
    no entropy); ``w`` (rows,) or None. Sums in float64. O(K · rows).
    """
    entropy_sum = None
    if w is not None:
        if row_entropy is not None:
            entropy_sum = float(np.dot(w, row_entropy.astype(np.float64)))
        resp *= w.astype(resp.dtype, copy=False)
        loglik = float(np.dot(w, log_norm.astype(np.float64)))
        total = float(np.sum(w, dtype=np.float64))
    else:
        if row_entropy is not None:
            entropy_sum = float(np.sum(row_entropy, dtype=np.float64))
        loglik = float(np.sum(log_norm, dtype=np.float64))
        total = float(resp.shape[1])
    return loglik, total, entropy_sum


@functools.lru_cache(maxsize=64)
def _drops_shared(cls: type) -> bool:
    """Whether ``cls``'s hook ``log_prob_less_shared`` stands for its ``log_prob``.

    True when the class that defines the hook (not the base's default) defines,
    or inherits, the ``log_prob``, ``mahalanobis`` and ``moments`` the hook and
    ``shared_log_prob`` mirror: a subclass that overrides one of them below it
    computes by ``log_prob``.
    """
    hook = _owner(cls, "log_prob_less_shared")
    if hook is None or hook is CovarianceFamily:
        return False
    return all(
        issubclass(hook, _owner(cls, name)) for name in ("log_prob", "mahalanobis", "moments")
    )


def _statistics(Xc, feats, resp, family, coefs, work, loglik, total) -> Statistics:
    threaded = threaded_shape(family, resp.shape[0], Xc.shape[1], Xc.dtype)
    blocks = moment_blocks(feats, resp, work, threaded)
    if len(blocks) == 1:
        moments = family.moments(Xc, feats, resp, coefs, work)
        moments = tuple(m.astype(np.float64, copy=False) for m in moments)
    else:
        moments = _summed_block_moments(Xc, feats, resp, family, coefs, work, blocks)
    return Statistics(resp.sum(axis=1, dtype=np.float64), moments, loglik, total)


def _summed_block_moments(Xc, feats, resp, family, coefs, work, blocks) -> tuple:
    """The family's moments of the row ranges ``blocks``, summed in row order in float64.

    The family's hook ``summed_moments(X, feats, resp, coefs, blocks)`` where the
    class that defines its ``moments`` defines it (:class:`gmm.covariance.full.Full`:
    one stacked product array, no per-range zeros) and it does not return None;
    else ``moments`` per range and one float64 reduction of each moment's stacked
    parts (the same sums as adding them one by one). The same numbers either way
    up to the products' rounding (bit for bit on the mclust benchmark's data).
    O(n·K·F) time, O(blocks·K·F) memory.
    """
    if _owns(type(family), "summed_moments", "moments"):
        summed = family.summed_moments(Xc, feats, resp, coefs, blocks)
        if summed is not None:
            return summed
    parts = [family.moments(Xc[r], feats[r], resp[:, r], coefs, work) for r in blocks]
    return tuple(
        np.add.reduce(np.array(same), axis=0, dtype=np.float64) for same in zip(*parts, strict=True)
    )


#: Multiply-adds of one moments product (``resp @ features`` of a row block) at
#: most: a chunk's moments are the sum, in row order and float64, of its row
#: blocks'. OpenBLAS 0.3.31 runs a (K x rows) @ (rows x F) product of at most
#: about 1e6 multiply-adds without packing its operands, and the blocks' products
#: read features the log-probabilities' product has just brought into the cache:
#: measured ('full' D = 10, 20,000 rows, one thread, process CPU, medians of 40
#: alternating calls of ``Full.moments``, busy two-core machine) K = 2: 0.66 ms
#: whole against 0.37 in blocks of 1,024 rows; K = 5: 0.92 against 0.54; K = 9:
#: 1.12 against 0.85 (blocks of 4,096 rows, past that size, as slow as whole).
#: 0: one product per chunk.
MOMENT_BLOCK_WORK = 2**19
#: Fewest rows of a moments block: where the budget gives fewer (many components or
#: features: the products are not skinny) the chunk's moments are one product. 'full'
#: at 100,000 x 20, K = 20 (blocks of 256 rows) took 92 ms an iteration with blocks and
#: 74 without (2026-12-02, idle two-core box, medians of 3 fits of 5 iterations).
MOMENT_BLOCK_MIN_ROWS = 512


def moment_blocks(feats, resp: np.ndarray, work, threaded: bool = False) -> tuple[slice, ...]:
    """Row ranges whose moments are summed (:data:`MOMENT_BLOCK_WORK`), sharing rows evenly.

    One range (all rows) unless the features are a plain (rows, F) array, the
    E-step passed no work of its own (whitened deviations, row blocks), the
    shape is not ``threaded`` (:func:`threaded_shape`: two parts at once would
    contend for the GIL between their many small products; measured, idle,
    100,000 × 20, K = 20, ms an iteration, blocks of 639 rows / one product:
    'diag' 12.9 / 11.9 and 'spherical' 11.4 / 10.8 on two threads, 19.7 / 19.3
    'diag' on one), and the rows make at least two blocks of at least
    :data:`MOMENT_BLOCK_MIN_ROWS` rows. O(1) (the ranges are kept per shape).
    """
    n_rows = resp.shape[1]
    if not (
        MOMENT_BLOCK_WORK
        and not threaded
        and work is None
        and isinstance(feats, np.ndarray)
        and feats.ndim == 2
        and feats.shape[0] == n_rows
    ):
        return (slice(0, n_rows),)
    return _even_blocks(
        n_rows, resp.shape[0] * feats.shape[1], MOMENT_BLOCK_WORK, MOMENT_BLOCK_MIN_ROWS
    )


@functools.lru_cache(maxsize=256)
def _even_blocks(n_rows: int, work_per_row: int, budget: int, min_rows: int) -> tuple[slice, ...]:
    """Row ranges of at most ``budget // work_per_row`` rows, sharing ``n_rows`` evenly;
    one range when that is fewer than ``min_rows`` or fewer than two such blocks fit."""
    rows = budget // max(1, work_per_row)
    n_blocks = n_rows // rows if rows >= min_rows else 0
    if n_blocks < 2:
        return (slice(0, n_rows),)
    bounds = [n_rows * block // n_blocks for block in range(n_blocks + 1)]
    return tuple(slice(a, b) for a, b in itertools.pairwise(bounds))


#: A chunk of at least this many rows is split into :data:`CHUNK_PARTS` row
#: ranges, each a :func:`chunk_statistics` call, summed in order: the split, and so
#: the numbers, are the same however many threads run the parts.
SPLIT_ROWS = 8192
#: Parts of a split chunk.
CHUNK_PARTS = 2
#: Threads that run a split chunk's parts at once: numpy's elementwise passes and
#: BLAS's products release the GIL, so the E-step's passes over the (K, rows)
#: log-probabilities, single-threaded in numpy, run on two cores. BLAS gets one
#: thread meanwhile (the parts are its threads). 1 runs the parts in turn, and so
#: does a process whose BLAS was limited to one thread (a sweep's worker, or
#: ``threadpoolctl.threadpool_limits(1)``). The threads live for one E-step, so
#: none is left running between iterations (a sweep forks only a process
#: without other threads).
E_STEP_THREADS = min(
    CHUNK_PARTS,
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
)

#: Multiply-adds of a whole E-step (rows × feature columns × K) below which a
#: split chunk's parts run in turn, in this thread: starting the helper thread and
#: limiting BLAS cost about 1.4 ms an E-step on the idle two-core machine, more
#: than the second core saves on small problems (measured, 'full' D = 10, K = 9:
#: 0.94 ms an iteration without threads against 2.36 ms with, at 10,000 rows; a
#: gain from about 40,000 rows). The numbers do not depend on it (see :data:`SPLIT_ROWS`).
THREAD_WORK = 2**24
#: Fewest components for which a chunk is split (:func:`_split_statistics`) and its
#: parts run at once: with fewer, the E-step is a stream over the features with
#: little elementwise work per row, and the thread made it slower (measured, idle
#: machine, 100,000 rows, D = 50: spherical K = 2 7.9 ms an iteration in turn,
#: 14.2 ms on two threads; diag K = 2 13.6 against 18.9 ms), while from about 8
#: components it gains (diag D = 10, K = 9: 11.6 against 8.6 ms; diag D = 20,
#: K = 20: the two cores give 4.7x -> 8x scikit-learn).
THREAD_COMPONENTS = 8
#: Bytes of a row from which a chunk of fewer than :data:`THREAD_COMPONENTS`
#: components is split and its parts run at once all the same, for families
#: that say so (``threads_wide_rows``): their E-step is then bound by reading the
#: rows, which two cores read faster, where scikit-learn's products over all
#: rows already run on BLAS's threads (measured, idle two-core machine, 100,000
#: rows, float64, ms an iteration in turn / on two threads, ratio to scikit-learn
#: in turn / on two threads: 'spherical' D = 200, K = 2 80 / 60, 1.53x / 2.07x; K = 4
#: 82 / 56, 1.59x / 2.33x; 'diag' D = 200, K = 4 98 / 68, 1.97x / 2.82x; D = 100,
#: K = 4 45 / 35; 'full' D = 100, K = 4 493 / 402; at D = 50 the same within noise).
THREAD_ROW_BYTES = 800
#: Rows from which a chunk of a shape whose parts no E-step runs on threads (not
#: :func:`threaded_shape`: few components, narrow rows) is split all the same. Its
#: parts run in turn, and each pays a chunk's fixed cost (about 20 µs): a tenth of
#: the E-step of an online update of 10,000 rows of 'full' K = 3, D = 2, which is
#: one part below this. Larger chunks keep their
#: split and its halved (K, rows) temporaries, so a batch EM iteration on them
#: computes the numbers it did before this rule (splitting them or not timed
#: alike within the busy machine's noise, 'full' K = 3, D = 2, 200,000 rows).
SPLIT_ROWS_SERIAL = 4 * SPLIT_ROWS


def _e_step_threads(split: bool) -> int:
    """Threads for this E-step: :data:`E_STEP_THREADS`, at most BLAS's threads now.

    1 when the chunks are not split. Reading BLAS's thread count costs about 1 µs
    (a threadpoolctl controller, made once, ~5 ms); without threadpoolctl, 1.
    """
    if not split or E_STEP_THREADS < 2:
        return 1
    blas = blas_thread_count()
    return 1 if blas is None else max(1, min(E_STEP_THREADS, blas))


def _parts(n_rows: int) -> list[slice]:
    """The row ranges a chunk of ``n_rows`` rows is computed in (see :data:`SPLIT_ROWS`)."""
    if n_rows < SPLIT_ROWS:
        return [slice(0, n_rows)]
    bounds = [n_rows * part // CHUNK_PARTS for part in range(CHUNK_PARTS + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def _chunk_parts(n_rows: int, serial: bool) -> list[slice]:
    """The row ranges :func:`_split_statistics` computes a chunk of ``n_rows`` rows in.

    One range below :data:`SPLIT_ROWS_SERIAL` rows for a ``serial`` shape (not
    :func:`threaded_shape`), else :func:`_parts`. O(1).
    """
    return [slice(0, n_rows)] if serial and n_rows < SPLIT_ROWS_SERIAL else _parts(n_rows)


def _split_statistics(
    Xc,
    feats,
    w,
    family,
    coefs,
    const,
    first_row: int,
    helpers: ThreadPoolExecutor | None,
    entropy: bool = False,
) -> Statistics:
    """:func:`chunk_statistics` of a chunk by row ranges (:func:`_parts`).

    The first range runs here, the others on ``helpers`` (None: here, in turn).
    Their statistics are added in row order, and the error of the first range
    that has one is raised, so the result and a far row's index do not depend on
    the threads. A chunk whose parts no E-step runs on threads (not
    :func:`threaded_shape`) is split only from
    :data:`SPLIT_ROWS_SERIAL` rows, so the split, and the numbers, depend on the
    chunk's shape only. O(chunk · (K + F)) extra memory, as one chunk.
    """
    serial = not threaded_shape(family, np.shape(const)[0], Xc.shape[1], Xc.dtype)
    parts = _chunk_parts(Xc.shape[0], serial)

    def run(rows: slice) -> Statistics:
        part_w = None if w is None else w[rows]
        return chunk_statistics(
            Xc[rows], feats[rows], part_w, family, coefs, const, first_row + rows.start, entropy
        )

    if helpers is None or len(parts) == 1:
        results = [run(rows) for rows in parts]
    else:
        futures = [helpers.submit(run, rows) for rows in parts[1:]]
        try:
            first = run(parts[0])
        except BaseException:
            wait(futures)  # the helpers' errors, if any, are about later rows
            raise
        results = [first] + [future.result() for future in futures]
    return sum(results[1:], results[0])


def expectation(data: ChunkedData, params: Parameters, log_const: np.ndarray):
    """One fused E-step over all chunks.

    Each chunk's row ranges (:func:`_parts`) run on up to :data:`E_STEP_THREADS`
    threads (:func:`_e_step_threads`), BLAS on one thread meanwhile.

    Parameters
    ----------
    data : ChunkedData
    params : Parameters
    log_const : ndarray of shape (n_components,)
        Added to ``-maha / 2`` per component (see :func:`prepare`).

    Returns
    -------
    stats : Statistics
        Log-likelihood and sufficient statistics.
    coefs : object
        The family's coefficients of ``params``, which the statistics step needs.

    Notes
    -----
    In a fit that :mod:`gmm.lockstep` runs, the E-step goes to the lockstep's
    coordinator, which may stack it with other fits' (the same numbers up to
    the products' rounding).
    """
    fit = _LOCKSTEP.get()
    if fit is not None:
        return fit.expectation(data, params, log_const)
    return own_expectation(data, params, log_const)


def own_expectation(data: ChunkedData, params: Parameters, log_const: np.ndarray):
    """:func:`expectation` computed here, whether or not a lockstep runs this fit."""
    family = data.family
    params, dtype = working_precision(params, family, data.shift, data.X.dtype)
    coefs, const = prepare(params, family, data.shift.astype(dtype), log_const)
    threads = _threads_for(data, dtype)
    entropy = _TRACKED.get() is not None  # read here: the helper threads do not see it
    with (
        ThreadPoolExecutor(threads - 1) if threads > 1 else nullcontext() as helpers,
        blas_threads(1 if threads > 1 else None),
        blas_threads_for(getattr(data, "work", None), rows=True),
    ):
        total = _summed_chunks(data, dtype, family, coefs, const, helpers, entropy)
    if total is None:  # no rows (every row has a hole): zero statistics of the right shapes
        empty = np.zeros((0, data.X.shape[1]), dtype=dtype)
        with np.errstate(over="ignore"):
            feats = family.chunk_features(empty, params.weights.shape[0])
        total = chunk_statistics(empty, feats, None, family, coefs, const, entropy=entropy)
    return total, coefs


def scatter(stats: Statistics, family: CovarianceFamily, shift, coefs, dtype) -> Scatter:
    """The statistics step: summed moments → ``(nk, means, S_k)``. O(K·D³) at most.

    ``shift`` is the data source's float64 shift; ``dtype`` the rows'. The
    complete rows were shifted by it in their own dtype
    (:attr:`ChunkedData.shift`), so their means come back by adding that
    same value: for float32 rows the float64 shift may lie up to half a
    float32 ulp of the data's offset away from it, a bias of the means that
    online EM's blend turned into spread between batches (1e8 in every row:
    variances of 1.2 instead of ``reg_covar``). Statistics of rows with
    missing entries (``stats.incomplete``, shifted in float64) are merged
    into the family's scatter (:func:`gmm.statistics.merge_incomplete`), so
    every family's constraint step sees the exact complete-data scatter.
    """
    nk = statistics.guarded_counts(stats.nk, dtype)
    rows_shift = np.asarray(shift, dtype=dtype).astype(np.float64, copy=False)
    with blas_threads_for(matrix_work(stats.nk.shape[0], len(shift))):
        result = family.scatter(stats.moments, nk, rows_shift, coefs)
    inc = stats.incomplete
    if inc is None:
        return result
    return statistics.merge_incomplete(
        result, stats.nk, inc.nk, inc.first, inc.second, inc.centres + shift, dtype
    )


#: Reuse the E-step statistics of one component across iterations
#: (:func:`fixed_statistics`); False runs the data pass every iteration (the tests
#: compare the two).
REUSE_ONE_COMPONENT = True


def fixed_statistics(stats: Statistics) -> bool:
    """Whether an E-step's statistics are the same for any parameters.

    With one component every responsibility is 1 (times the row's weight), so the
    counts, means and scatter do not depend on the parameters; only the
    log-likelihood does, and :func:`one_component_statistics` gets it from them.
    Not with rows that have holes (``stats.incomplete``): their conditional
    expectations depend on the parameters. O(1).
    """
    return REUSE_ONE_COMPONENT and stats.nk.shape[0] == 1 and stats.incomplete is None


#: How far the precision, in the units of the features' correlations, may sum
#: its entries beyond ``D`` (what uncorrelated features give) for
#: :func:`one_component_statistics` to take the log-likelihood from the scatter:
#: its rounding is then at most about ``1e3·D·eps`` a row, against ``D·eps`` for
#: the pass. Nearly collinear features (a correlation of 1 - 1e-12: 8e-4 a row)
#: read the rows instead.
REUSE_SPREAD = 1e3


def _known_sizes(means_shape: tuple[int, int]) -> tuple[int, int, int]:
    """Sizes of one component's precision factor :func:`_dense_factor` reads: D², D, 1."""
    n_features = means_shape[1]
    return n_features * n_features, n_features, 1


def _dense_factor(prec_chol: np.ndarray, n_features: int) -> np.ndarray:
    """One component's precision factor ``U`` (``P = U U'``) as a (D, D) float64 matrix.

    From any family's shape with one component: D² entries (full, tied, the
    mclust models), D (diagonal) or 1 (spherical).
    """
    factor = np.asarray(prec_chol, dtype=np.float64).reshape(-1)
    if factor.size == n_features * n_features:
        return factor.reshape(n_features, n_features)
    if factor.size == n_features:
        return np.diag(factor)
    return factor[0] * np.eye(n_features)


def _dense_scatter(scatter: Scatter, n_features: int) -> np.ndarray:
    """One component's ``S`` (about its mean, normalised) as a (D, D) float64 matrix."""
    covariance = np.asarray(scatter.covariances, dtype=np.float64).reshape(-1)
    if covariance.size == n_features * n_features:
        return covariance.reshape(n_features, n_features)
    return np.diag(covariance)


def one_component_statistics(
    stats: Statistics, scatter: Scatter, params: Parameters, log_const: np.ndarray
) -> tuple[Statistics, Scatter]:
    """The E-step of one component at ``params`` from a previous pass's statistics.

    ``stats`` and ``scatter`` are a pass's statistics for which
    :func:`fixed_statistics` holds; ``log_const`` (1,) is what the estimator adds to
    ``-maha / 2`` (as for :func:`expectation`). The log-likelihood is
    ``W c - nk/2 [tr(U' S U) + |U'(xbar - mu)|²]``, the data pass's
    ``sum_i w_i (c - |U'(x_i - mu)|² / 2)`` without reading the rows: ``S`` is the
    scatter about the weighted mean ``xbar`` and the means are compared in the
    data's coordinates. O(D³) time, O(D²) memory, whatever the rows.

    Returns the statistics (the new log-likelihood) and a copy of the scatter (the
    M-step may keep what it is given); or None where the scatter would not give
    the pass's digits, and the caller reads the rows: a factor of a shape it
    does not know, or nearly collinear features. The rounding of ``S`` is
    about ``eps·sqrt(S_ii S_jj)`` per entry, so the trace carries
    ``eps·sum |P_ij| sqrt(S_ii S_jj)`` (the precision in the units of the
    correlations: ``D`` for uncorrelated features whatever their scales,
    about the correlation matrix's condition number times ``D`` otherwise);
    beyond :data:`REUSE_SPREAD` times ``D`` the pass is used.
    """
    n_features = params.means.shape[1]
    if np.size(params.precisions_cholesky) not in _known_sizes(params.means.shape):
        return None
    factor = _dense_factor(params.precisions_cholesky, n_features)
    spread = _dense_scatter(scatter, n_features)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.sqrt(np.abs(np.diagonal(spread)))
        amplified = float(scale @ np.abs(factor @ factor.T) @ scale)
    if not amplified <= REUSE_SPREAD * n_features:
        return None
    diff = scatter.means[0] - np.asarray(params.means[0], dtype=np.float64)
    with (
        blas_threads_for(matrix_work(1, n_features)),
        np.errstate(over="ignore", invalid="ignore"),  # a far model: check_representable
    ):
        trace = float(np.sum(factor * (spread @ factor)))
        quadratic = float(np.sum(np.square(diff @ factor)))
        log_likelihood = stats.total_weight * float(log_const[0]) - 0.5 * float(scatter.nk[0]) * (
            trace + quadratic
        )
    copy = Scatter(
        scatter.nk.copy(), scatter.means.copy(), scatter.covariances.copy(), scatter.kind
    )
    return dataclasses.replace(stats, log_likelihood=log_likelihood), copy


def scatter_from_resp(data: ChunkedData, resp: np.ndarray, n_components: int) -> Scatter:
    """The exact statistics of given responsibilities, or hard labels (1-D ints).

    Two passes in float64 (:func:`gmm.statistics.from_responsibilities`), so
    components of one point, or far from the rest, get their covariance
    without cancellation. Responsibilities with at most one positive entry
    per row (a partition) go as :class:`gmm.statistics.HardLabels`: O(n·D)
    for the diagonal kind, O(n·D²) for the others, whatever K.
    """
    hard = statistics.hard_labels(resp, n_components)

    def chunks():
        start = 0
        for Xc, w in data.shifted_rows():
            stop = start + Xc.shape[0]
            if hard is not None:
                chunk = hard[start:stop]
                if w is not None:
                    chunk = statistics.HardLabels(chunk.labels, chunk.weights * w, n_components)
            else:
                chunk = resp[start:stop].T.astype(np.float64)
                if w is not None:
                    chunk *= w
            yield Xc.astype(np.float64, copy=False), chunk, w
            start = stop

    with np.errstate(over="ignore", invalid="ignore"):  # a far row: named below
        result = statistics.from_responsibilities(
            chunks, data.family.scatter_kind, n_components, data.shift, data.X.dtype
        )
    if not np.all(np.isfinite(result.covariances)):
        _refuse_far_row(data)
    return result


def _refuse_far_row(data: ChunkedData) -> None:
    """Raise :class:`OutOfRangeError` for the first row whose squared deviation overflows.

    The initial statistics were not finite: some row lies so far from the
    data's mean that its square overflows float64. O(n·D), on that failure only.
    """
    first_row = 0
    for Xc, _ in data.shifted_rows():
        with np.errstate(over="ignore", invalid="ignore"):
            squares = np.sum(np.square(Xc, dtype=np.float64), axis=1)
        bad = np.flatnonzero(~np.isfinite(squares))
        if bad.size:
            row = first_row + int(bad[0])
            raise OutOfRangeError(
                f"Row {row} (counting from 0) lies so far from the data's mean that its "
                "squared deviation overflows float64, so no covariance can hold it. "
                "Check that row for a unit or scale error, or standardise the data.",
                row=row,
            )
        first_row += Xc.shape[0]


def maximization(
    scatter: Scatter,
    family: CovarianceFamily,
    reg_covar: float,
    weights: np.ndarray,
    previous: Parameters | None,
    dtype: np.dtype,
) -> Parameters:
    """M-step: parameters from the statistics and the estimator's weights. O(K·D³).

    The family applies its constraint and ``reg_covar`` (and carries its
    state); the estimator chose the weights. Raises
    :class:`gmm.covariance.CollapsedComponentError` if a covariance is not
    positive definite.
    """
    with blas_threads_for(matrix_work(*scatter.means.shape)):
        covariances, state = family.estimate(scatter, reg_covar, previous)
        prec_chol = family.precision_cholesky(covariances)
    return Parameters(
        weights=np.asarray(weights).astype(dtype),
        means=scatter.means.astype(dtype),
        covariances=covariances.astype(dtype),
        precisions_cholesky=prec_chol.astype(dtype),
        state=state,
    )


def log_prob_chunks(
    X, params: Parameters, family: CovarianceFamily, log_const: np.ndarray, first_row: int = 0
) -> Iterator[tuple[slice, np.ndarray]]:
    """Weighted log-probabilities ``(rows, K)`` of successive row chunks of X.

    ``log_const`` as in :func:`prepare`. An :class:`OutOfRangeError` counts its row
    from ``first_row``, the index of X's first row in the data given.
    """
    shift = (params.weights @ params.means).astype(X.dtype)
    data = ChunkedData(X, None, family, shift, params.means.shape[0], cache=False)
    params, dtype = working_precision(params, family, shift, X.dtype)
    coefs, const = prepare(params, family, shift.astype(dtype), log_const)
    start = 0
    for Xc, feats, _ in data.in_dtype(dtype):
        stop = start + Xc.shape[0]
        with blas_threads_for(data.work, rows=True):
            log_prob = weighted_log_prob(Xc, feats, family, coefs, const)[0]
        check_representable(log_prob, first_row + start)
        yield slice(start, stop), log_prob.T
        start = stop


# ============================================================ rows read once
class ReadOnceChunks(ChunkedData):
    """Row chunks that one E-step reads once (an online update): nothing is kept.

    Each chunk is shifted and turned into features in one pass where the family
    offers it (:func:`shifted_chunk_features`), the same numbers as
    :class:`ChunkedData`'s chunks bit for bit. Made from a :class:`ChunkedData`
    with :meth:`of`, sharing its rows and weights, and its chunk size or a
    smaller one (:func:`read_once_rows`).
    """

    @classmethod
    def of(cls, chunks: ChunkedData, budget: int | None = None) -> ReadOnceChunks:
        """The chunks of ``chunks`` read once (nothing is computed or copied).

        ``budget``: bytes of a chunk's largest temporary, for chunks of
        :func:`read_once_rows` rows; None keeps the chunk size of ``chunks``
        (the same chunks, so the same numbers as a fit's E-step, bit for bit).
        """
        once = cls.__new__(cls)
        once.__dict__.update(chunks.__dict__)
        once._cache = None
        if budget is not None:
            rows, n_columns = read_once_rows(chunks, budget)
            once.rows = rows
            products = n_columns * max(chunks.n_components, 1)
            once.work = float(min(rows, chunks.X.shape[0])) * products
        return once

    def _compute(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        n_samples = self.X.shape[0]
        for start in range(0, n_samples, self.rows):
            yield self.read(slice(start, min(start + self.rows, n_samples)))

    def read(self, rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(X - shift, features, w)`` of the rows ``rows`` (:func:`read_once_features`).

        A chunk, or a part of one (:func:`_summed_read_once`). O(rows·D) time.
        """
        w = None if self.sample_weight is None else self.sample_weight[rows]
        with np.errstate(over="ignore"):  # reported by check_representable
            Xc, feats = read_once_features(
                self.family, np.asarray(self.X[rows]), self.shift, self.n_components
            )
        return Xc, feats, w


def read_once_features(
    family: CovarianceFamily, X: np.ndarray, shift: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(X - shift, features)`` of a chunk that one E-step reads once.

    The family's hook ``read_once_features(X, shift, n_components)`` where the
    class that defines its ``chunk_features`` defines it (the diagonal and
    spherical families read the shifted rows, not features, from chunks of
    :attr:`~gmm.covariance.diag.Diag.PLAIN_MIN_VALUES` values on: what their
    ``chunk_features`` gives for few components, so their kernels take it),
    unless it returns None; else :func:`shifted_chunk_features`. ``shift`` is
    in X's dtype. O(n·D) time.
    """
    if _owns(type(family), "read_once_features", "chunk_features"):
        read = family.read_once_features(X, shift, n_components)
        if read is not None:
            return read
    return shifted_chunk_features(family, X, shift, n_components)


@functools.lru_cache(maxsize=64)
def _owns(cls: type, hook: str, method: str) -> bool:
    """Whether the class that defines ``cls``'s ``method`` also defines its ``hook``."""
    owner = _owner(cls, method)
    return owner is not None and _owner(cls, hook) is owner


def _owner(cls: type, name: str) -> type | None:
    """The first class in ``cls``'s method resolution order that defines ``name``."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def shifted_chunk_features(
    family: CovarianceFamily, X: np.ndarray, shift: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(X - shift, family.chunk_features(X - shift, n_components))``, bit for bit.

    In one pass over X where the family has the hook ``shifted_chunk_features``
    (the shift applied while the features' columns are copied; 'full', 'diag',
    'spherical' and the mclust models that keep those classes' features as they
    are: EII, VII, 'E' and 'V'), else :func:`shifted` then
    ``chunk_features``. A family that overrides ``features`` or
    ``chunk_features`` below the class that wrote the hook takes the two
    passes (:func:`_fuses_shift`). ``shift`` is in X's dtype. O(n·D) time.
    """
    if _fuses_shift(type(family)):
        fused = family.shifted_chunk_features(X, shift, n_components)
        if fused is not None:
            return fused
    Xc = shifted(X, shift)
    return Xc, family.chunk_features(Xc, n_components)


@functools.lru_cache(maxsize=64)
def _fuses_shift(cls: type) -> bool:
    """Whether ``cls``'s hook forms the features its ``chunk_features`` would.

    True when the class that defines its ``features`` defines the ``_features``
    it resolves to (the features of shifted rows, which ``features`` calls),
    and the class that defines its ``chunk_features`` defines the
    ``shifted_chunk_features`` it resolves to.
    """

    return _owns(cls, "_features", "features") and _owns(
        cls, "shifted_chunk_features", "chunk_features"
    )


#: Bytes of the largest temporary of a chunk that one E-step reads once (an
#: online update after the first): formed and used while in the CPU's second-level
#: cache, not written to memory and read back as :data:`CHUNK_BYTES`' chunks,
#: sized for a fit that keeps its features, are. Measured (process CPU per row
#: of one E-step of 100,000 rows, one BLAS thread, medians of 7 alternating
#: runs, the busy two-core machine, 1 MiB L2 per core): 'diag' K = 8, D = 20
#: 0.193 us with 16 MiB chunks, 0.154 with 2 MiB (a fit on kept features:
#: 0.128); 'spherical' K = 8, D = 20 0.137 against 0.108 (kept: 0.093); 'full'
#: K = 3, D = 2 (200,000 rows) 0.031 against 0.022; 'full' K = 8, D = 20 alike.
READ_ONCE_BYTES = 2 * 2**20


def read_once_rows(chunks: ChunkedData, budget: int) -> tuple[int, int]:
    """Rows per read-once chunk of ``chunks``' rows, and its temporaries' columns.

    About ``budget`` bytes of the widest temporary (:func:`chunk_rows`), but at
    least :data:`SPLIT_ROWS` rows, so a chunk of many components is still split
    into the ranges threads may run (:func:`_split_statistics`), and wide
    models keep products of thousands of rows (without the floor, 'full' K =
    16, D = 50 read 10,000 rows in 39 chunks of 256: 0.78x a batch iteration
    against 1.09x in one chunk, measured in one process, one BLAS thread), and
    at most ``chunks.rows``; the rows are shared evenly between the nearest
    number of chunks, so no chunk is a small remainder paying a chunk's fixed
    cost for few rows (10,000 rows of 'diag' K = 8, D = 20 are one chunk, not
    8,192 and 1,808). O(1).
    """
    n_samples, n_features = chunks.X.shape
    n_components, family, dtype = chunks.n_components, chunks.family, chunks.X.dtype
    n_columns = max(family.chunk_columns(n_features, n_components, dtype), n_components)
    target = max(SPLIT_ROWS, chunk_rows(n_columns, dtype.itemsize, budget))
    n_chunks = max(1, round(n_samples / target))
    return min(chunks.rows, -(-n_samples // n_chunks)), n_columns


def threaded_shape(family: CovarianceFamily, n_components: int, n_features: int, dtype) -> bool:
    """Whether an E-step of this shape may run its chunks' parts on threads.

    At least :data:`THREAD_COMPONENTS` components, or rows of at least
    :data:`THREAD_ROW_BYTES` bytes for a family with ``threads_wide_rows``.
    The split of a chunk, and so its numbers, follow from this and the
    chunk's shape only (:func:`_split_statistics`). O(1).
    """
    if n_components >= THREAD_COMPONENTS:
        return True
    wide = n_features * np.dtype(dtype).itemsize >= THREAD_ROW_BYTES
    return wide and family.threads_wide_rows


def e_step_work(data) -> float:
    """Multiply-adds of a whole E-step over ``data``'s chunks (its products), 0 if unknown.

    ``data.work`` is one chunk's; a chunk holds at most ``data.rows`` rows. O(1).
    """
    rows = min(getattr(data, "rows", 0), data.X.shape[0])
    return getattr(data, "work", 0.0) * data.X.shape[0] / max(rows, 1)


def _threads_for(data, dtype=None) -> int:
    """Threads for :func:`expectation` over ``data``'s chunks (:func:`_e_step_threads`).

    More than one only for chunks of at least :data:`SPLIT_ROWS` rows, a whole
    E-step of at least :data:`THREAD_WORK` multiply-adds and a
    :func:`threaded_shape` in ``dtype``, the E-step's working dtype (the one its
    chunks' split follows; default the data's). O(1).
    """
    rows = min(getattr(data, "rows", 0), data.X.shape[0])
    work = e_step_work(data)
    dtype = data.X.dtype if dtype is None else dtype
    shape = threaded_shape(data.family, data.n_components, data.X.shape[1], dtype)
    return _e_step_threads(rows >= SPLIT_ROWS and work >= THREAD_WORK and shape)


def _summed_chunks(data, dtype, family, coefs, const, helpers, entropy=False):
    """:func:`_split_statistics` of every chunk of ``data`` in ``dtype``, summed in row order.

    None when there are no chunks. O(n·K·F) time, one chunk's temporaries.
    """
    total = None
    first_row = 0
    for Xc, feats, w in data.in_dtype(dtype):
        stats = _split_statistics(Xc, feats, w, family, coefs, const, first_row, helpers, entropy)
        total = stats if total is None else total + stats
        first_row += Xc.shape[0]
    return total


def read_once_expectation(data: ReadOnceChunks, params: Parameters, log_const: np.ndarray):
    """:func:`expectation` of rows read once, in this thread, in fewer calls.

    An online update of a few thousand rows spends as much in
    :func:`expectation`'s machinery (the thread pool's and BLAS's contexts) as
    in its E-step. Where the E-step runs no part on a thread
    (:func:`_threads_for`), the same calls without it:
    :func:`working_precision`, :func:`prepare`, and per chunk (a fit's
    chunks, or a later batch's cache-sized ones, :func:`read_once_rows`) its
    parts' :func:`chunk_statistics` in this thread, each part's features formed
    when it is reached, summed in row order (:func:`_summed_read_once`): the
    numbers of :func:`expectation` on the same chunks bit for bit, with one
    chunk or several, split or not. It sets no BLAS limit for the chunks: the caller
    decides BLAS's threads for the whole update
    (:func:`gmm.blas_threads.blas_threads_for`, with the chunks' work as
    :func:`expectation` would; inside its one-thread block :func:`prepare`'s
    own limit reads nothing).

    Returns
    -------
    (stats, coefs) as :func:`expectation`, or None when the E-step may run on
    threads, the rows are none, or the entropy is tracked
    (:func:`tracking_entropy`): the caller then runs :func:`expectation`.
    O(rows·K·F) time, one chunk's temporaries.
    """
    if data.X.shape[0] == 0 or _TRACKED.get() is not None or _threads_for(data) > 1:
        return None
    family = data.family
    params, dtype = working_precision(params, family, data.shift, data.X.dtype)
    coefs, const = prepare(params, family, data.shift.astype(dtype), log_const)
    return _summed_read_once(data, dtype, family, coefs, const), coefs


def _summed_read_once(data: ReadOnceChunks, dtype, family, coefs, const) -> Statistics:
    """:func:`_summed_chunks` in this thread, each part's features formed when it is reached.

    The chunks and their parts are :func:`_split_statistics`', and each chunk's
    parts are added before the chunk joins the total, so the numbers are
    :func:`_summed_chunks`' bit for bit (features are elementwise: a part's are
    the chunk's rows of them); but a split chunk's part is shifted and turned
    into features (:func:`read_once_features`) only when its E-step runs, so
    its products read them while they are still in the CPU's cache, instead of
    the whole chunk's being written first. Measured (one BLAS thread, process
    CPU, medians of the per-round ratios of 300-400 alternating updates in one
    process, the busy two-core machine, 2026-12-02): 'full' K = 3, D = 2,
    updates of 65,536 rows (one chunk, two parts of 32,768) 0.965 to 0.998 of
    the time of forming the chunk's features at once (five runs, median
    0.984); 'full' K = 8, D = 20, updates of 10,000 rows (two parts of 5,000,
    9 MB of features each) 0.972 to 0.987 (four runs). Not for a working
    dtype other than the rows' (the chunks are cast), nor for a family whose
    hook ``read_once_features`` decides by the chunk's size ('diag',
    'spherical': a part might be decided otherwise than its chunk):
    :func:`_summed_chunks`. O(n·K·F) time, one part's temporaries.
    """
    X = data.X
    if np.dtype(dtype) != X.dtype or _owns(type(family), "read_once_features", "chunk_features"):
        return _summed_chunks(data, dtype, family, coefs, const, None)
    serial = not threaded_shape(family, np.shape(const)[0], X.shape[1], dtype)
    n_samples = X.shape[0]
    total = None
    for start in range(0, n_samples, data.rows):
        chunk = None
        for part in _chunk_parts(min(data.rows, n_samples - start), serial):
            rows = slice(start + part.start, start + part.stop)
            Xc, feats, w = data.read(rows)
            stats = chunk_statistics(Xc, feats, w, family, coefs, const, rows.start)
            chunk = stats if chunk is None else chunk + stats
        total = chunk if total is None else total + chunk
    return total
