"""Dask arrays: each EM iteration is one map-reduce, predictions are lazy.

Fitting persists X once (cast to the working dtype, one chunk across the
columns), then validates it, sums the weights and computes the shift in one
reduction. Every EM iteration sends the current coefficients to the blocks;
each block returns its :class:`~gmm.em.Statistics` (``nk``, the family's
moments, the log-likelihood), computed by the same kernels as in memory, in
row chunks of a few megabytes; a tree of additions combines them and the M-step
runs on the client. With a ``distributed`` client active, all of this runs on
its cluster; otherwise on dask's local threads.

Dask is imported only when a dask array arrives.
"""

from __future__ import annotations

import os
import sys
from functools import reduce

import numpy as np

from .. import em, validation
from ..covariance import CovarianceFamily
from . import rows as row_kernels
from .sources import TrainingData, check_n_samples

INSTALL = 'pip install "gmm[dask]"'
#: Block statistics added together per task of the tree reduction.
SPLIT_EVERY = 8


def import_dask():
    """``(dask, dask.array)``, or an ImportError that says what to install."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError(
            f"X is a dask array, and working on one needs dask[array] and distributed: {INSTALL}"
        ) from None
    return dask, da


def is_dask_collection(X) -> bool:
    """Whether X is a dask collection (checked without importing dask)."""
    return hasattr(type(X), "__dask_graph__")


# ================================================================ validation
def as_rows(X, *, name: str = "X"):
    """X as a 2-D float dask array with one chunk across the columns (lazy).

    float32 and float64 stay; other numbers become float64, as in scikit-learn.
    """
    _, da = import_dask()
    if hasattr(X, "to_dask_array"):  # a dask DataFrame
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} is a {type(X).__name__}; pass a dask array, a dask DataFrame or a NumPy array."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D dask array of shape (n_samples, n_features), got shape {X.shape}. "
            "Reshape your data, e.g. X.reshape(-1, 1) for a single feature."
        )
    if X.dtype not in validation.FLOAT_DTYPES:
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {X.dtype}.")
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def fit_data(
    X, sample_weight, family: CovarianceFamily, n_components: int, source=None
) -> DaskTrainingData:
    """Validate a dask array for ``fit`` and persist it; see :class:`DaskTrainingData`.

    Reads X twice: once to persist it, once to check it for NaN and infinity
    and to compute the shift, the row count and the weight checks together.
    With ``source`` (a :class:`gmm.scale.incomplete.WithMissing`), X may hold
    NaN under its policy: :func:`fit_data_with_holes`.
    """
    dask, da = import_dask()
    X = as_rows(X)
    X = _persist(X)
    if any(np.isnan(c) for c in X.chunks[0]):
        X.compute_chunk_sizes()
    w = _weights(sample_weight, X)
    if source is not None:
        X, w, shift = fit_data_with_holes(X, w, n_components, source)
        if shift is not None:
            return DaskTrainingData(X, w, family, n_components, shift, marginalize=True)
    check_n_samples(X.shape, n_components)
    X64 = X.astype(np.float64)
    checks = {"finite": da.isfinite(X).all()}
    if w is None:
        checks["sum"] = X64.sum(axis=0)
    else:
        w64 = w.astype(np.float64)
        checks.update(
            sum=(X64 * w64[:, None]).sum(axis=0),
            total=w64.sum(),
            w_finite=da.isfinite(w64).all(),
            w_negative=(w64 < 0).any(),
        )
    (checks,) = dask.compute(checks)
    if not checks["finite"]:
        raise ValueError(
            "Input X contains NaN or infinity. Remove or impute those rows before fitting."
        )
    if w is None:
        shift = checks["sum"] / X.shape[0]
    else:
        if not checks["w_finite"]:
            raise ValueError("sample_weight contains NaN or infinity; weights must be finite.")
        if checks["w_negative"]:
            raise ValueError("sample_weight contains negative values; weights must be >= 0.")
        if not checks["total"] > 0:
            raise ValueError(
                "sample_weight is all zero; at least one sample needs a positive weight."
            )
        shift = checks["sum"] / checks["total"]
        w = _persist(w.astype(X.dtype))
    return DaskTrainingData(X, w, family, n_components, shift)


def fit_data_with_holes(X, w, n_components: int, source):
    """Checks of a dask X that may hold NaN, in one reduction: ``(X, w, shift)``.

    Infinity, a column with no observed entry and, under 'marginalize', a row
    with no observed entry are errors. Under 'omit' the complete rows are
    kept (persisted again, their count warned about; ``shift`` None: the usual
    checks follow); under 'marginalize' ``shift`` is the weighted mean of the
    observed entries. O(n·D), one or two passes over X.
    """
    dask, da = import_dask()
    holes = da.isnan(X)
    incomplete = holes.any(axis=1)
    w64 = da.ones(X.shape[0], chunks=(X.chunks[0],)) if w is None else w.astype(np.float64)
    counted = ~(holes | incomplete[:, None]) if source.policy == "omit" else ~holes
    checks = {
        "infinite": da.isinf(X).any(axis=1),
        "observed": (~holes).any(axis=0),
        "empty_rows": holes.all(axis=1),
        "incomplete": incomplete.sum(),
        "sum": (da.where(counted, X, 0).astype(np.float64) * w64[:, None]).sum(axis=0),
        "count": (counted * w64[:, None]).sum(axis=0),
    }
    (checks,) = dask.compute(checks)
    infinite = np.flatnonzero(checks["infinite"])
    if infinite.size:
        raise ValueError(
            f"Input X contains infinity (first in row {infinite[0]}). NaN marks a missing "
            "entry, but infinities are always an error: replace them by NaN or finite values."
        )
    empty_columns = np.flatnonzero(~checks["observed"])
    if empty_columns.size:
        raise ValueError(
            f"Column(s) {empty_columns.tolist()} of X have no observed entry (all NaN); "
            "nothing can be learnt about them. Drop those columns."
        )
    if source.policy == "omit":
        source.n_omitted = int(checks["incomplete"])
        if source.n_omitted:
            import warnings

            warnings.warn(
                f"nan_policy='omit' dropped {source.n_omitted} of {X.shape[0]} rows with "
                "missing entries. nan_policy='marginalize' uses their observed entries.",
                UserWarning,
                stacklevel=8,
            )
            kept = ~incomplete
            X = X[kept].persist()
            X.compute_chunk_sizes()
            if w is not None:
                w = w[kept].persist()
                w.compute_chunk_sizes()  # the same row chunks as X's
        source.rows = WithHoles(as_rows(source.X))
        return X, w, None
    empty_rows = np.flatnonzero(checks["empty_rows"])
    if empty_rows.size:
        raise ValueError(
            f"Row {empty_rows[0]} of X has no observed entry (all NaN): it says nothing "
            "about the mixture. Drop it, or use nan_policy='omit'."
        )
    check_n_samples(X.shape, n_components)
    if w is not None:
        if not bool(da.isfinite(w).all().compute()) or bool((w < 0).any().compute()):
            raise ValueError("sample_weight must be finite and >= 0, one weight per sample.")
        w = _persist(w.astype(X.dtype))
    source.rows = WithHoles(X)
    return X, w, checks["sum"] / np.where(checks["count"] > 0, checks["count"], 1)


class WithHoles:
    """A dask array whose rows may hold NaN (``nan_policy`` not 'raise'), for predictions.

    :func:`gmm.scale.map_rows` evaluates a block's rows with holes on the
    marginal density of their observed entries.
    """

    def __init__(self, array):
        self.array = array

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.array.shape[0]


def _weights(sample_weight, X):
    """sample_weight as a 1-D dask array with X's row chunks, or None."""
    _, da = import_dask()
    if sample_weight is None:
        return None
    n_samples = X.shape[0]
    if is_dask_collection(sample_weight):
        w = sample_weight
        if not isinstance(w, da.Array) or w.ndim != 1:
            raise ValueError(
                f"sample_weight has shape {getattr(w, 'shape', '?')}, expected ({n_samples},): "
                "one weight per sample."
            )
        if any(np.isnan(c) for c in w.chunks[0]):
            w = w.persist()
            w.compute_chunk_sizes()
        if w.shape[0] != n_samples:
            raise ValueError(
                f"sample_weight has shape {w.shape}, expected ({n_samples},): "
                "one weight per sample."
            )
        if w.dtype.kind not in "biuf":
            raise ValueError("sample_weight must be numeric, one non-negative weight per sample.")
        return w.rechunk((X.chunks[0],))
    # In memory: the usual checks, then the same blocks as X.
    w = validation.check_sample_weight(sample_weight, n_samples, X.dtype)
    return da.from_array(w, chunks=(X.chunks[0],))


def _persist(X):
    """X persisted, unless no cluster is active and X would not fit in half the RAM.

    Without a cluster, dask's local scheduler would hold a persisted array in
    this process; an array larger than memory is then read again every
    iteration instead.
    """
    if _has_client() or X.nbytes <= _physical_memory() // 2:
        return X.persist()
    return X


def _has_client() -> bool:
    if "distributed" not in sys.modules:  # no client without the module loaded
        return False
    from distributed import default_client

    try:
        default_client()
    except ValueError:
        return False
    return True


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**33


# ======================================================================= EM
class DaskTrainingData(TrainingData):
    """Persisted dask rows: the E-step is a map-reduce on the cluster.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Persisted, float32 or float64, one chunk across the columns, known
        chunk sizes.
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Same row chunks as X.
    family : CovarianceFamily
    n_components : int
    shift : ndarray of shape (n_features,)

    Notes
    -----
    Per iteration: one task per block, O(block·K·D²) time for 'full' and
    O(chunk·(K + D²)) memory besides the block, and log(blocks)/log(8) levels of
    additions of O(K·D²) statistics. The client holds only the parameters.
    """

    def __init__(self, X, sample_weight, family, n_components, shift, marginalize=False):
        self.X = X
        self.sample_weight = sample_weight
        self.family = family
        self.n_components = n_components
        self.shift = shift
        self.in_memory = False
        self.feature_source = X
        #: Whether rows may hold NaN, fitted on their observed entries.
        self.marginalize = marginalize

    def expectation(self, params: em.Parameters, log_const: np.ndarray):
        dask, _ = import_dask()
        # Each block runs em.expectation itself, so it computes exactly as in
        # memory (the working precision included); the M-step's coefficients come
        # from the same function on no rows.
        empty = np.empty((0, self.X.shape[1]), dtype=self.X.dtype)
        _, coefs = em.expectation(self._chunks(empty, None), params, log_const)
        # One key for the parameters, fetched once per worker rather than once per block.
        components = None
        if self.marginalize:
            from .incomplete import marginal_components

            components = marginal_components(params, self.family, self.shift)
        shared = dask.delayed((params, log_const, components), pure=True, traverse=False)
        blocks = self.X.to_delayed(optimize_graph=False).ravel()
        weights = (
            [None] * len(blocks)
            if self.sample_weight is None
            else self.sample_weight.to_delayed(optimize_graph=False).ravel()
        )
        block_statistics = dask.delayed(_block_statistics, pure=True)
        starts = np.cumsum([0, *self.X.chunks[0][:-1]]).tolist()
        parts = [
            block_statistics(Xb, wb, start, self.family, self.shift, self.n_components, shared)
            for Xb, wb, start in zip(blocks, weights, starts, strict=True)
        ]
        add = dask.delayed(_add, pure=True)
        while len(parts) > 1:
            parts = [add(*parts[i : i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
        (stats,) = dask.compute(parts[0], optimize_graph=False)
        return stats, coefs

    def _chunks(self, X, w) -> em.ChunkedData:
        return em.ChunkedData(X, w, self.family, self.shift, self.n_components, cache=False)

    def all_rows(self):
        dask, _ = import_dask()
        X, w = dask.compute(self.X, self.sample_weight)
        X = self._filled(X)
        chunks = em.ChunkedData(X, w, self.family, self.shift, self.n_components, cache=False)
        return X, w, chunks  # read once, for the initial statistics

    def take(self, rows: np.ndarray):
        dask, _ = import_dask()
        w = None if self.sample_weight is None else self.sample_weight[rows]
        X, w = dask.compute(self.X[rows], w)
        return self._filled(X), w

    def _filled(self, X: np.ndarray) -> np.ndarray:
        """Rows for the initializer: each hole at its column's mean (as in memory)."""
        if not self.marginalize:
            return X
        return np.where(np.isnan(X), self.shift.astype(X.dtype), X)


def _block_statistics(Xb, wb, start, family, shift, n_components, shared) -> em.Statistics | None:
    """Statistics of one block, by the in-memory E-step (None for an empty block)."""
    params, log_const, components = shared
    if components is not None:
        from .incomplete import block_expectation

        return block_expectation(
            Xb, wb, start, family, n_components, shift, params, log_const, components
        )[0]
    chunks = em.ChunkedData(Xb, wb, family, shift, n_components, cache=False)
    return em.expectation(chunks, params, log_const)[0]


def _add(*parts: em.Statistics | None) -> em.Statistics | None:
    present = [p for p in parts if p is not None]
    return reduce(lambda a, b: a + b, present) if present else None


# =============================================================== prediction
def map_rows(
    X,
    params: em.Parameters,
    family: CovarianceFamily,
    log_const: np.ndarray,
    kernel: row_kernels.RowKernel,
    nan_allowed: bool = False,
):
    """A lazy dask array of ``kernel`` applied to every block of X.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        From :func:`predict_data`.
    params, family, log_const, kernel :
        As in :func:`gmm.scale.rows.apply`.

    Returns
    -------
    dask.array.Array of shape (n_samples,) or (n_samples, n_components)
        Chunked like X's rows. Computing it raises ValueError if a block holds
        infinity, or NaN unless ``nan_allowed`` (then rows with holes use the
        marginal density of their observed entries).
    """
    n_components = params.means.shape[0]
    meta = kernel.output(0, n_components, X.dtype)
    columns = kernel.n_columns(n_components)
    layout = {"chunks": (X.chunks[0], (columns,))} if columns else {"drop_axis": 1}
    return X.map_blocks(
        _block_rows,
        params,
        family,
        log_const,
        kernel,
        nan_allowed,
        dtype=meta.dtype,
        meta=meta,
        **layout,
    )


def _block_rows(block, params, family, log_const, kernel, nan_allowed, block_info=None):
    first_row = 0 if block_info is None else block_info[0]["array-location"][0][0]
    if not nan_allowed or not np.isnan(block).any():
        row_kernels.check_finite(block, first_row)
        return row_kernels.apply(block, params, family, log_const, kernel, first_row)
    from .incomplete import refuse_infinity

    refuse_infinity(block, first_row)
    rows = row_kernels.IncompleteRows(block)
    return row_kernels.apply(rows, params, family, log_const, kernel, first_row)
