"""Scale-out: fitting and predicting on data that is not one in-memory array.

The EM pass (:mod:`gmm.em`) needs the data only as row chunks, so where the
rows live is decided here, in one place, and the estimator never asks:

- **in-memory arrays** (NumPy, lists, pandas) are validated by scikit-learn,
  as always;
- **memory-mapped files**, ``np.load(path, mmap_mode='r')`` of a C-ordered
  ``.npy`` of any size: validation, the NaN check, the shift, every EM
  iteration and every prediction copy row chunks out of the user's own
  mapping and release its pages (:mod:`gmm.scale.files`), so memory stays at
  a few chunks, the file's pages never pile up in the process, and the data
  are the array given whatever happens to the file's path afterwards;
- **dask arrays** (``pip install "gmm[dask]"``), chunked by rows, with
  ``sample_weight`` as a dask array too: X is persisted once, each EM
  iteration is one map-reduce over the blocks, with the M-step on the client,
  and ``predict``, ``predict_proba`` and ``score_samples`` return lazy dask
  arrays (:mod:`gmm.scale.dask_arrays`). With a ``distributed`` client
  active, that runs on its cluster.

Initialisation on big data. For files and dask arrays the initializer
(``init_params``, k-means by default) runs on a uniform random subsample of
``init_sample_size`` rows (default 100,000) brought into memory; an M-step on
the subsample and one E-step and M-step over all rows give the initial
parameters. When the data have no more rows than that, the initializer sees
them all and the fit is the in-memory one. In-memory arrays use all rows
unless ``init_sample_size`` is set.

Sweeps on a cluster. :func:`gmm.sweep` runs its fits through joblib, so
joblib's dask backend sends each fit of the grid to the cluster as a task,
with checkpoints written on the client as fits finish::

    import joblib
    from distributed import Client
    client = Client("tcp://scheduler:8786")
    with joblib.parallel_config(backend="dask"):
        result = gmm.sweep(X, range(1, 21), n_jobs=-1, checkpoint="sweep.jsonl")

Folders of ``.npy`` or ``.csv`` parts, and zarr stores, are read as dask arrays
by :func:`gmm.scale.read_parts`.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from gmm import GaussianMixture
>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(0, 1, (500, 2)), rng.normal(8, 1, (500, 2))])
>>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
>>> np.save(path, X)
>>> mapped = np.load(path, mmap_mode="r")
>>> a = GaussianMixture(2, random_state=0).fit(X)
>>> b = GaussianMixture(2, random_state=0).fit(mapped)
>>> bool(np.allclose(a.means_, b.means_, rtol=1e-12))
True

The same with dask (here on dask's local threads):

>>> import dask.array as da
>>> c = GaussianMixture(2, random_state=0).fit(da.from_array(X, chunks=300))
>>> bool(np.allclose(a.means_, c.means_, rtol=1e-8))
True
>>> labels = c.predict(da.from_array(X, chunks=300))
>>> type(labels).__name__, bool((labels.compute() == a.predict(X)).all())
('Array', True)
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import numpy as np

from .. import em, validation
from ..covariance import CovarianceFamily
from . import dask_arrays, rows
from .dask_arrays import is_dask_collection
from .files import FileRows
from .incomplete import NAN_POLICIES, WithMissing, impute
from .parts import read_parts
from .rows import IncompleteRows
from .sources import (
    DEFAULT_INIT_SAMPLE_SIZE,
    TrainingData,
    check_n_samples,
    check_not_empty,
    column_mean,
)

__all__ = [
    "DEFAULT_INIT_SAMPLE_SIZE",
    "NAN_POLICIES",
    "FileRows",
    "IncompleteRows",
    "TrainingData",
    "WithMissing",
    "fit_data",
    "impute",
    "known_rows",
    "map_rows",
    "predict_data",
    "read_parts",
    "rows",
    "sum_rows",
]


def fit_data(
    X, sample_weight, family: CovarianceFamily, n_components: int, estimator_name: str
) -> TrainingData:
    """Validate training data of any kind; return it ready for the EM loop.

    Data only: the estimator records ``n_features_in_`` and
    ``feature_names_in_`` itself, from ``TrainingData.feature_source``.

    Parameters
    ----------
    X : array-like, memory-mapped array or dask array of shape (n_samples, n_features)
    sample_weight : array-like or dask array of shape (n_samples,), or None
    family : CovarianceFamily
    n_components : int
        The data need at least this many rows.
    estimator_name : str
        Words the error messages.

    Returns
    -------
    TrainingData
        With ``X`` (validated: ndarray, :class:`FileRows` or persisted dask
        array), ``dtype``, ``n_features``, ``shift``, ``expectation(params, log_const)``
        and ``initial_scatter(...)``.

    Raises
    ------
    ValueError
        For data that is not 2-D and numeric, holds NaN or infinity, or has
        fewer than 2 or ``n_components`` rows, and for invalid weights.
    ImportError
        For a dask array when dask is not installed.

    Notes
    -----
    In-memory data wrapped in :class:`WithMissing` may hold NaN, handled by its
    ``nan_policy`` (:mod:`gmm.scale.incomplete`); memory-mapped files and dask
    arrays are always checked for NaN.
    """
    if isinstance(X, WithMissing):
        from . import incomplete

        file_rows = _file_rows(X.X)
        if file_rows is not None:
            return incomplete.fit_file_data(X, file_rows, sample_weight, family, n_components)
        if is_dask_collection(X.X):
            from . import dask_arrays

            return dask_arrays.fit_data(X.X, sample_weight, family, n_components, source=X)
        return incomplete.fit_data(X, sample_weight, family, n_components, estimator_name)
    if is_dask_collection(X):
        from . import dask_arrays

        return dask_arrays.fit_data(X, sample_weight, family, n_components)
    if is_dask_collection(sample_weight):
        sample_weight = np.asarray(sample_weight)  # small: one number per row
    file_rows = _file_rows(X)
    if file_rows is not None:
        check_n_samples(file_rows.shape, n_components)
        w = validation.check_sample_weight(sample_weight, file_rows.shape[0], file_rows.dtype)
        shift = column_mean(file_rows, w, check_finite=True)
        return TrainingData(file_rows, w, family, n_components, shift, in_memory=False)
    known = _KNOWN_ROWS.get()
    if known is not None and known[0] is X and sample_weight is None:
        check_n_samples(X.shape, n_components)  # the rest was checked by known_rows' caller
        data = TrainingData(X, None, family, n_components, known[1].copy())
        data.feature_source = X
        return data
    valid = validation.check_fit_data(X, n_components, estimator_name)
    w = validation.check_sample_weight(sample_weight, valid.shape[0], valid.dtype)
    data = TrainingData(valid, w, family, n_components, column_mean(valid, w))
    data.feature_source = X  # column names of a DataFrame
    return data


#: ``(X, shift)`` while :func:`known_rows` is active in this context, else None.
_KNOWN_ROWS: ContextVar[tuple[np.ndarray, np.ndarray] | None] = ContextVar(
    "gmm_scale_known_rows", default=None
)


@contextlib.contextmanager
def known_rows(X: np.ndarray):
    """Within this context, :func:`fit_data` on this very array, unweighted, skips its checks.

    For a caller that fits the same validated rows many times (:func:`gmm.sweep`):
    ``fit_data(X, None, ...)`` on the object ``X`` itself (not an equal copy)
    takes ``X`` as validated and its column mean as computed here, once, instead
    of checking X and summing its columns in every fit; any other data, or
    weights, are checked as always. The same rows and the same shift, so the same
    fits, bit for bit. A context variable: other threads and processes do not
    see it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Already validated as :func:`gmm.validation.check_fit_data` validates
        (2-D, float32 or float64, finite, at least 2 rows), and not changed
        while the context lasts. O(n·D) time for the shift, no copy of X.
    """
    if type(X) is not np.ndarray:
        raise TypeError(f"known_rows takes a plain ndarray, got {type(X).__name__}.")
    token = _KNOWN_ROWS.set((X, column_mean(X, None)))
    try:
        yield X
    finally:
        _KNOWN_ROWS.reset(token)


def rescaled(data: TrainingData, problem, family: CovarianceFamily) -> TrainingData:
    """Training data from :func:`fit_data` as the problem ``(X - shift) / s``.

    ``problem`` is a :class:`gmm.units.Units` (``shift``, ``scale``,
    ``to_problem``).

    In-memory rows (with holes too, under nan_policy='marginalize') are copied
    once (O(n·D) time and memory, only for data outside
    :func:`gmm.units.safe_band`); dask arrays are rescaled lazily. Memory-mapped
    files are not rescaled (:class:`gmm.em.OutOfRangeError` says so).
    """
    X = data.X
    if is_dask_collection(X):
        rows = ((X.astype(np.float64) - problem.shift) / problem.scale).astype(X.dtype)
        return fit_data(rows, data.sample_weight, family, data.n_components, "")
    if isinstance(X, IncompleteRows) and hasattr(data, "full_weight"):
        # nan_policy='marginalize' in memory: NaN stays NaN through the rescaling
        holes = WithMissing(problem.to_problem(X.X, X.dtype), "marginalize")
        return fit_data(holes, data.full_weight, family, data.n_components, "")
    if type(data) is not TrainingData or not isinstance(X, np.ndarray):
        raise em.OutOfRangeError(
            f"The data's deviations from their mean are about {problem.scale:.3g}, too far "
            "from 1 for the kernels, and data with missing values or in memory-mapped "
            "files are not rescaled for you. Rescale the data (divide by a power of ten "
            "near its spread) and fit again."
        )
    rows = problem.to_problem(X, X.dtype)
    w = data.sample_weight
    scaled = TrainingData(
        rows, w, family, data.n_components, column_mean(rows, w), cache=data.cache
    )
    scaled.feature_source = data.feature_source
    return scaled


def predict_data(X, estimator_name: str):
    """Validate data for prediction; return ``(rows, feature_source)``.

    ``rows`` is an ndarray, a FileRows or a dask array; ``feature_source`` is
    what the estimator checks its features against (a DataFrame keeps its
    column names). Files and dask arrays are checked for NaN as their rows
    are read, by :func:`map_rows`. In-memory data wrapped in :class:`WithMissing`
    may hold NaN: its rows with holes come back as :class:`IncompleteRows`.
    """
    rows, feature_source = _predict_rows(X, estimator_name)
    check_not_empty(rows.shape, estimator_name)
    return rows, feature_source


def _predict_rows(X, estimator_name: str):
    if isinstance(X, WithMissing):
        file_rows = _file_rows(X.X)
        if file_rows is not None:
            return file_rows.with_nan(), file_rows
        if is_dask_collection(X.X):
            from . import dask_arrays

            rows = dask_arrays.WithHoles(dask_arrays.as_rows(X.X))
            return rows, rows.array
        else:
            from . import incomplete

            return incomplete.predict_data(X, estimator_name)
    if is_dask_collection(X):
        from . import dask_arrays

        rows = dask_arrays.as_rows(X)
        return rows, rows
    file_rows = _file_rows(X)
    if file_rows is not None:
        return file_rows, file_rows
    return validation.check_predict_data(X, estimator_name), X


def map_rows(
    X,
    params: em.Parameters,
    family: CovarianceFamily,
    log_const: np.ndarray,
    kernel: rows.RowKernel,
):
    """Apply a row kernel to data from :func:`predict_data` or ``fit_data(...).X``.

    Returns
    -------
    ndarray, or a lazy dask array for a dask X
        Shape (n_samples,) or (n_samples, n_components), see :class:`rows.RowKernel`.
        O(n·K·D²) time for 'full'; O(block·(D + K)) memory besides the result.
    """
    if is_dask_collection(X) or isinstance(X, dask_arrays.WithHoles):
        nan_allowed = isinstance(X, dask_arrays.WithHoles)
        X = X.array if nan_allowed else X
        return dask_arrays.map_rows(X, params, family, log_const, kernel, nan_allowed)
    if isinstance(X, FileRows):
        out = kernel.output(X.shape[0], params.means.shape[0], X.dtype)
        for start, block in _blocks(X):
            out[start : start + block.shape[0]] = rows.apply(
                block, params, family, log_const, kernel, start
            )
        return out
    return rows.apply(X, params, family, log_const, kernel)


def sum_rows(
    X,
    params: em.Parameters,
    family: CovarianceFamily,
    log_const: np.ndarray,
    kernel: rows.RowKernel,
    sample_weight=None,
) -> np.ndarray:
    """``sum_i w_i kernel(x_i)`` over the rows of X, in float64, in one pass.

    Per-row results are never held for all rows of a file: a memory-mapped
    file is reduced block by block, a dask array by one lazy sum computed once.

    Parameters
    ----------
    X : ndarray, FileRows or dask array of shape (n_samples, n_features)
        From :func:`predict_data`.
    params, family, log_const, kernel :
        As in :func:`map_rows`; ``kernel`` gives numbers (not labels).
    sample_weight : ndarray or dask array of shape (n_samples,), default=None

    Returns
    -------
    ndarray of shape () or (n_columns,)
        O(n·K·D²) time for 'full'; O(block·(D + K)) memory for files and dask.
    """
    if is_dask_collection(X) or isinstance(X, dask_arrays.WithHoles):
        values = map_rows(X, params, family, log_const, kernel).astype(np.float64)
        if sample_weight is not None:
            w = sample_weight.astype(np.float64)
            values = values * (w if values.ndim == 1 else w[:, None])
        return np.asarray(values.sum(axis=0).compute())
    total = np.zeros(kernel.output(0, params.means.shape[0], np.float64).shape[1:])
    for start, block in _blocks(X):
        values = rows.apply(block, params, family, log_const, kernel, start).astype(np.float64)
        if sample_weight is None:
            total += values.sum(axis=0)
        else:
            total += np.asarray(sample_weight[start : start + len(block)], np.float64) @ values
    return total


def _blocks(X):
    """``(first_row, rows)``: a file's blocks, each checked for NaN as read; else X whole."""
    if not isinstance(X, FileRows):
        yield 0, X
        return
    for start, block in X.blocks():
        if not X.nan_allowed:
            rows.check_finite(block, start)
            yield start, block
            continue
        from .incomplete import refuse_infinity

        refuse_infinity(block, start)
        yield start, (IncompleteRows(block) if np.isnan(block).any() else block)


def _file_rows(X) -> FileRows | None:
    """X as FileRows when it is a memory map whose rows can be read from its file."""
    if isinstance(X, FileRows):
        return X
    if not isinstance(X, np.memmap) or X.dtype.kind not in "biuf":
        return None
    dtype = X.dtype if X.dtype in validation.FLOAT_DTYPES else np.float64
    return FileRows.from_memmap(X, dtype)
