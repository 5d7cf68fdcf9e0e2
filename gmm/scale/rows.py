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

from .. import criteria, em
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
    log_norm = logsumexp(log_prob, axis=1)
    log_prob -= log_norm[:, None]
    return np.column_stack([log_norm, criteria.row_entropy(np.exp(log_prob))])


#: Most probable component of each row.
LABELS = RowKernel(_argmax, integer=True)
#: ``log p(x)`` of each row.
LOG_LIKELIHOOD = RowKernel(_log_norm)
#: Posterior probability of each component, rows summing to 1.
RESPONSIBILITIES = RowKernel(_resp, per_component=True)
#: ``log p(x)`` and the entropy ``-sum_k r_k log r_k`` of the responsibilities,
#: (rows, 2): what the information criteria sum (:mod:`gmm.criteria`).
LOG_LIKELIHOOD_AND_ENTROPY = RowKernel(_log_norm_and_entropy, width=2)


def apply(
    X: np.ndarray,
    params: em.Parameters,
    family: CovarianceFamily,
    log_const: np.ndarray,
    kernel: RowKernel,
) -> np.ndarray:
    """Run ``kernel`` over the rows of an in-memory array, chunk by chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated data in the model's dtype (or float64).
    params : Parameters
    family : CovarianceFamily
    log_const : ndarray of shape (n_components,)
        The estimator's per-component constant (see :func:`gmm.em.prepare`).
    kernel : RowKernel

    Returns
    -------
    values : ndarray of shape (n_samples,) or (n_samples, n_components)

    Notes
    -----
    O(n·K·D²) time for 'full' and O(chunk·K) memory besides the result.
    """
    out = kernel.output(X.shape[0], params.means.shape[0], X.dtype)
    for rows, log_prob in em.log_prob_chunks(X, params, family, log_const):
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
