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


def fit_data(X, sample_weight, family: CovarianceFamily, n_components: int) -> DaskTrainingData:
    """Validate a dask array for ``fit`` and persist it; see :class:`DaskTrainingData`.

    Reads X twice: once to persist it, once to check it for NaN and infinity
    and to compute the shift, the row count and the weight checks together.
    """
    dask, da = import_dask()
    X = as_rows(X)
    X = _persist(X)
    if any(np.isnan(c) for c in X.chunks[0]):
        X.compute_chunk_sizes()
    check_n_samples(X.shape, n_components)
    w = _weights(sample_weight, X)
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

    def __init__(self, X, sample_weight, family, n_components, shift):
        self.X = X
        self.sample_weight = sample_weight
        self.family = family
        self.n_components = n_components
        self.shift = shift
        self.in_memory = False
        self.feature_source = X

    def expectation(self, params: em.Parameters, log_const: np.ndarray):
        dask, _ = import_dask()
        # Each block runs em.expectation itself, so it computes exactly as in
        # memory (the working precision included); the M-step's coefficients come
        # from the same function on no rows.
        empty = np.empty((0, self.X.shape[1]), dtype=self.X.dtype)
        _, coefs = em.expectation(self._chunks(empty, None), params, log_const)
        # One key for the parameters, fetched once per worker rather than once per block.
        shared = dask.delayed((params, log_const), pure=True, traverse=False)
        blocks = self.X.to_delayed(optimize_graph=False).ravel()
        weights = (
            [None] * len(blocks)
            if self.sample_weight is None
            else self.sample_weight.to_delayed(optimize_graph=False).ravel()
        )
        block_statistics = dask.delayed(_block_statistics, pure=True)
        parts = [
            block_statistics(Xb, wb, self.family, self.shift, self.n_components, shared)
            for Xb, wb in zip(blocks, weights, strict=True)
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
        return X, w, em.ChunkedData(X, w, self.family, self.shift, self.n_components)

    def take(self, rows: np.ndarray):
        dask, _ = import_dask()
        w = None if self.sample_weight is None else self.sample_weight[rows]
        return dask.compute(self.X[rows], w)


def _block_statistics(Xb, wb, family, shift, n_components, shared) -> em.Statistics | None:
    """Statistics of one block, by the in-memory E-step (None for an empty block)."""
    params, log_const = shared
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
        NaN or infinity.
    """
    n_components = params.means.shape[0]
    meta = kernel.output(0, n_components, X.dtype)
    columns = kernel.n_columns(n_components)
    if columns:
        return X.map_blocks(
            _block_rows,
            params,
            family,
            log_const,
            kernel,
            chunks=(X.chunks[0], (columns,)),
            dtype=meta.dtype,
            meta=meta,
        )
    return X.map_blocks(
        _block_rows, params, family, log_const, kernel, drop_axis=1, dtype=meta.dtype, meta=meta
    )


def _block_rows(block, params, family, log_const, kernel, block_info=None):
    first_row = 0 if block_info is None else block_info[0]["array-location"][0][0]
    row_kernels.check_finite(block, first_row)
    return row_kernels.apply(block, params, family, log_const, kernel)
