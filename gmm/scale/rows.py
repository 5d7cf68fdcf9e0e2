"""Per-row results of a fitted mixture, computed chunk by chunk.

A *row kernel* turns the weighted log-probabilities of a chunk, shape
(rows, K), into one value per row (a label, a log-likelihood, an entropy) or K
values per row (the responsibilities). :func:`apply` runs a kernel over an
in-memory array; the file and dask data sources call the same function on each
block they read, so every data source gives the same numbers.

Everything here is a kernel: inputs are trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .. import criteria, em, missing
from ..covariance import CovarianceFamily


@dataclass(frozen=True)
class RowKernel:
    """A function of the weighted log-probabilities of a chunk, row by row.

    Attributes
    ----------
    func : callable
        ``func(log_prob) -> values``, ``log_prob`` of shape (rows, K), which it
        may overwrite; ``values`` of shape (rows,), (rows, K) or (rows, width).
    per_component : bool
        Whether ``values`` has shape (rows, K).
    width : int
        If not 0, the fixed number of columns of ``values``.
    integer : bool
        Whether ``values`` holds indices (``np.intp``) rather than numbers in
        the data's dtype.
    """

    func: Callable[[np.ndarray], np.ndarray]
    per_component: bool = False
    integer: bool = False
    width: int = 0

    def n_columns(self, n_components: int) -> int:
        """Columns of the result: 0 for one value per row."""
        return n_components if self.per_component else self.width

    def output(self, n_rows: int, n_components: int, dtype) -> np.ndarray:
        """An empty result array for ``n_rows`` rows."""
        columns = self.n_columns(n_components)
        shape = (n_rows, columns) if columns else (n_rows,)
        return np.empty(shape, dtype=np.intp if self.integer else dtype)


def _argmax(log_prob: np.ndarray) -> np.ndarray:
    return log_prob.argmax(axis=1)


def _log_norm(log_prob: np.ndarray) -> np.ndarray:
    return logsumexp(log_prob, axis=1)


def _resp(log_prob: np.ndarray) -> np.ndarray:
    log_prob -= logsumexp(log_prob, axis=1)[:, None]
    return np.exp(log_prob, out=log_prob)


def _log_norm_and_entropy(log_prob: np.ndarray) -> np.ndarray:
    # The E-step's normalisation: one exponential per entry, reused for the
    # responsibilities (scipy's logsumexp and a second exp took twice the time).
    resp, log_norm = em.normalize_log_prob(log_prob.T)
    return np.column_stack([log_norm, criteria.row_entropy(resp.T)])


#: Most probable component of each row.
LABELS = RowKernel(_argmax, integer=True)
#: ``log p(x)`` of each row.
LOG_LIKELIHOOD = RowKernel(_log_norm)
#: Posterior probability of each component, rows summing to 1.
RESPONSIBILITIES = RowKernel(_resp, per_component=True)
#: ``log p(x)`` and the entropy ``-sum_k r_k log r_k`` of the responsibilities,
#: (rows, 2): what the information criteria sum (:mod:`gmm.criteria`).
LOG_LIKELIHOOD_AND_ENTROPY = RowKernel(_log_norm_and_entropy, width=2)


class IncompleteRows:
    """Validated in-memory rows some of which hold NaN (missing entries).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        float32 or float64; finite or NaN.
    """

    def __init__(self, X: np.ndarray):
        self.X = X
        self.complete = ~np.isnan(X).any(axis=1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.X.shape[0]


def apply(
    X: np.ndarray,
    params: em.Parameters,
    family: CovarianceFamily,
    log_const: np.ndarray,
    kernel: RowKernel,
    first_row: int = 0,
) -> np.ndarray:
    """Run ``kernel`` over the rows of an in-memory array, chunk by chunk.

    Parameters
    ----------
    X : ndarray or IncompleteRows of shape (n_samples, n_features)
        Validated data in the model's dtype (or float64); rows of an
        :class:`IncompleteRows` may hold NaN.
    params : Parameters
    family : CovarianceFamily
    log_const : ndarray of shape (n_components,)
        The estimator's per-component constant (see :func:`gmm.em.prepare`).
    kernel : RowKernel
    first_row : int, default=0
        The index of X's first row in the data given (a block of a file or a
        dask array), so that an :class:`~gmm.em.OutOfRangeError` names the row
        in the whole data.

    Returns
    -------
    values : ndarray of shape (n_samples,) or (n_samples, n_components)

    Notes
    -----
    O(n·K·D²) time for 'full' and O(chunk·K) memory besides the result.
    """
    out = kernel.output(X.shape[0], params.means.shape[0], X.dtype)
    if isinstance(X, IncompleteRows):  # rows with holes: the marginal of their observed entries
        chunks = incomplete_log_prob_chunks(X, params, family, log_const, first_row)
    else:
        chunks = em.log_prob_chunks(X, params, family, log_const, first_row)
    for rows, log_prob in chunks:
        out[rows] = kernel.func(log_prob)
    return out


def check_finite(block: np.ndarray, first_row: int = 0) -> None:
    """Raise a ValueError naming the rows if ``block`` holds NaN or infinity.

    O(block) time; used where scikit-learn's whole-array check cannot run
    (files read in chunks, dask blocks).
    """
    finite = np.isfinite(block)
    if not finite.all():
        bad = first_row + int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(
            f"Input X contains NaN or infinity (first at row {bad}). Remove or "
            "impute those rows before fitting or predicting."
        )


def check_rows(log_prob: np.ndarray, rows: np.ndarray) -> None:
    """:func:`gmm.em.check_representable` of (K, n) log-probabilities of ``rows`` of X."""
    bad = np.flatnonzero(~(np.max(log_prob, axis=0) > -np.inf))
    if bad.size:
        em.check_representable(log_prob[:, bad[:1]], int(rows[bad[0]]))


def incomplete_log_prob_chunks(X: IncompleteRows, params, family, log_const, first_row: int = 0):
    """``(rows, log_prob)`` of successive chunks: row indices and (rows, K) log-probabilities.

    Complete rows by :func:`gmm.em.log_prob_chunks`; rows with holes by the
    marginal density of their observed entries. A row with no observed entry
    gets the log-weights ``log pi_k`` (its marginal is the prior).
    """
    index = np.flatnonzero(X.complete)
    if index.size:
        try:
            for chunk, log_prob in em.log_prob_chunks(X.X[index], params, family, log_const):
                yield index[chunk], log_prob
        except em.OutOfRangeError as error:  # counted among the complete rows: name it in X
            if error.row is None:
                raise
            raise em.out_of_range(first_row + int(index[error.row]), X.dtype) from None
    shift = np.asarray(params.weights, dtype=np.float64) @ np.asarray(params.means, np.float64)
    dense = missing.dense_components(params.means, params.precisions_cholesky, family, shift)
    log_const = np.asarray(log_const, dtype=np.float64)
    for block in missing.make_blocks(X.X, shift, params.means.shape[0]):
        conditionals = missing.conditional_precisions(block, dense)
        log_prob = missing.block_log_prob(block, dense, log_const, conditionals)[0]
        check_rows(log_prob, first_row + block.rows)
        yield block.rows, log_prob.T.astype(X.dtype)
