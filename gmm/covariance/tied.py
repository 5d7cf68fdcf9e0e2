"""'tied': all components share one covariance matrix."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from .. import statistics
from . import _matrices
from ._products import rows_product, weighted_sum
from .base import CollapsedComponentError, CovarianceFamily, expansion_dtype


class Tied(_matrices.MatrixRepresentation, CovarianceFamily):
    """One shared covariance, (D, D).

    The fitting E-step needs only ``x'Pm_k`` (O(n·K·D), :meth:`log_prob_less_shared`),
    the term ``|y|²`` every component shares coming back from the scatter
    (:meth:`shared_log_prob`). Per-row log-probabilities whiten once,
    ``y = x @ U`` (O(n·D²), a triangular product), and
    gets every component's distance from ``|y|² - 2 x'Pm_k + m_k'Pm_k``
    (O(n·K·D)). The M-step needs ``sum_k r_k x`` and the weighted scatter
    ``X' diag(w) X`` (O(n·D²), a symmetric rank-n update). Both n·D² products
    are half a GEMM's flops (:func:`whiten`, :func:`weighted_gram`).
    """

    name = "tied"
    scatter_kind = "pooled"
    #: Its fitting E-step is one (n, D) by (D, K) product: on two threads D = 200, K = 2
    #: took twice as long in two runs, the rest within this family's noise (2026-12-02,
    #: idle, 100,000 rows, ms an iteration, one thread / two: D = 200, K = 2 90 / 173 and
    #: 75 / 159; K = 4 121 / 104 and 36 / 52; D = 100, K = 2 and 4 27-33 / 30-33). Its
    #: ratios there are 11-44x scikit-learn on one thread. mclust's pooled models inherit it.
    threads_wide_rows = False

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def features(self, X):
        return X

    def chunk_features(self, X, n_components):
        """The chunk's rows themselves, as :class:`GramRows` (a view, no copy).

        The weighted scatter ``X' diag(w) X`` the M-step reads does not depend on
        the parameters (each row's responsibilities sum to its weight), so a chunk
        the EM pass keeps across iterations forms it once (:meth:`moments`).
        """
        return self.features(X).view(GramRows)  # features: X, after a subclass's checks

    def chunk_columns(self, n_features, n_components, dtype):
        """The whitened rows (n, D) are the largest per-row temporary; the features are X."""
        return n_features

    def coefficients(self, weights, means, prec_chol):
        factor = prec_chol.astype(np.float64)
        prec = factor @ factor.T
        prec_means = means @ prec
        const = np.einsum("ki,ki->k", means, prec_means)
        dtype = means.dtype
        return (
            prec_chol.astype(dtype),
            np.ascontiguousarray(-2.0 * prec_means, dtype=dtype),
            const.astype(dtype)[:, None],
            prec,  # float64, for the shared term (:meth:`shared_log_prob`)
        )

    def working_dtype(self, dtype, weights, means, prec_chol):
        return expansion_dtype(dtype, lambda: self.expansion_condition(weights, means, prec_chol))

    def expansion_condition(self, weights, means, prec_chol):
        """Condition estimate ``kappa_k`` of the expanded quadratic, per component."""
        d = means.shape[1]
        factor = prec_chol.astype(np.float64)
        inv_factor = np.linalg.solve(factor, np.eye(d))
        norms = np.linalg.norm(means.astype(np.float64), axis=1)
        spread = np.sqrt(np.sum(inv_factor**2) + weights @ norms**2)
        with np.errstate(over="ignore", invalid="ignore"):
            gram = factor @ factor.T
        if not np.all(np.isfinite(gram)) or not np.isfinite(spread):
            return np.full(len(weights), np.inf)  # no estimate: float64, the exact path
        top = np.linalg.eigvalsh(gram)[-1]
        return top * (spread + norms) ** 2 / d

    def mahalanobis(self, X, feats, coefs):
        factor, cross, const, _ = coefs
        white = whiten(X, factor)
        maha = rows_product(cross, X)
        maha += np.einsum("ij,ij->i", white, white)
        maha += const
        return np.maximum(maha, 0, out=maha), None

    def log_prob_less_shared(self, X, feats, coefs, log_norm_const):
        """:meth:`log_prob` less ``-|U'x|² / 2``, the term every component shares.

        ``log_norm_const_k - m_k'Pm_k / 2 + x'Pm_k``: one (K, D) by (n, D)
        product, O(n·K·D), without the whitening's O(n·D²) and its (n, D) copy.
        Float64 only (float32 keeps :meth:`log_prob`: the chunk's scatter that
        gives the shared term back, :meth:`shared_log_prob`, would sum its rows in
        float32). The work is None, as from :meth:`mahalanobis`.
        """
        if X.dtype != np.float64:
            return None
        _, cross, const, _ = coefs
        log_prob = rows_product(-0.5 * cross, X)
        log_prob += log_norm_const[:, None] - 0.5 * const
        return log_prob, None

    def shared_log_prob(self, moments, coefs) -> tuple[float, float]:
        """``-sum_i w_i |U'x_i|² / 2 = -tr(P G) / 2`` of a chunk, and a bound on its error.

        ``G = X' diag(w) X`` is the chunk's weighted scatter (:meth:`moments`,
        kept across iterations by :class:`GramRows`); ``P = UU'``. Each ``G_ij``
        is off by up to about ``eps sqrt(G_ii G_jj)`` (its rows' products), so the
        bound is ``eps sum_ij |P_ij| sqrt(G_ii G_jj) / 2``: large where ``P``'s
        entries cancel (a near-singular covariance), where the per-row path is
        kept. O(D²).
        """
        second, prec = moments[1], coefs[3]
        root = np.sqrt(np.abs(np.diagonal(second)))
        error = np.finfo(np.float64).eps * np.einsum("i,ij,j->", root, np.abs(prec), root)
        return -0.5 * float(np.einsum("ij,ij->", second, prec)), 0.5 * float(error)

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diag(prec_chol)))

    def moments(self, X, feats, resp, coefs, work):
        # Each row's responsibilities sum to its weight: the scatter of a chunk's
        # rows is the same every iteration (kept by GramRows).
        row_weight = resp.sum(axis=0)
        if isinstance(feats, GramRows):
            return weighted_sum(resp, X), feats.gram(row_weight).copy()
        return weighted_sum(resp, X), weighted_gram(X, row_weight)

    def scatter(self, moments, nk, shift, coefs):
        sum_x, second = moments
        means, covariance = statistics.pooled_from_moments(sum_x, second, nk, shift)
        return statistics.Scatter(nk, means, covariance, self.scatter_kind)

    def estimate(self, scatter, reg_covar, previous):
        covariance = scatter.covariances.copy()
        covariance.flat[:: covariance.shape[0] + 1] += reg_covar
        return covariance, None

    def precision_cholesky(self, covariances):
        try:
            return _matrices.precision_factor(covariances[None])[0]
        except CollapsedComponentError:
            raise CollapsedComponentError(None, covariances.dtype) from None

    def component_covariance(self, covariances, k):
        return covariances


class GramRows(np.ndarray):
    """A chunk's shifted rows that keep the weighted scatter of their row ranges.

    :meth:`gram` gives ``X' diag(w) X`` (D, D) of exactly these rows, formed the
    first time and kept in a table shared by the views of one chunk (the row
    ranges an E-step splits a chunk into), keyed by the rows a view covers; the
    chunk's memory outlives its views, so a key names the same rows for as long as
    the table exists. An array that is not a view of the chunk (a copy, a result)
    starts a table of its own. A chunk the EM pass keeps is the same object every
    iteration, and so is its table: O(n·D²) time once, one (D, D) array a range.
    """

    grams: dict

    def __array_finalize__(self, obj) -> None:
        shared = isinstance(obj, GramRows) and isinstance(self.base, GramRows)  # a view
        self.grams = obj.grams if shared else {}

    def gram(self, row_weight: np.ndarray) -> np.ndarray:
        """``X' diag(w) X`` of these rows (kept; ``row_weight`` the same every call)."""
        key = (self.__array_interface__["data"][0], self.shape, self.strides)
        gram = self.grams.get(key)
        if gram is None:
            gram = self.grams[key] = weighted_gram(self.view(np.ndarray), row_weight)
        return gram


def whiten(X: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``X @ U`` for an upper triangular ``U`` (D, D), in X's dtype: shape (n, D).

    One triangular BLAS-3 product (``trmm``) on a copy of X: half the flops of
    ``X @ U``, the same numbers to rounding. O(n·D²) time, the (n, D) result.
    """
    white = np.array(X, dtype=X.dtype, order="C")
    if white.size == 0:
        return white
    trmm = blas.get_blas_funcs("trmm", dtype=white.dtype)
    # (x @ U) transposed is U' x': on the Fortran-ordered view of the rows, in place.
    out = trmm(
        1.0,
        factor.astype(white.dtype, copy=False),
        white.T,
        side=0,
        lower=0,
        trans_a=1,
        overwrite_b=1,
    )
    if not np.shares_memory(out, white):
        white[...] = out.T
    return white


def weighted_gram(X: np.ndarray, row_weight: np.ndarray) -> np.ndarray:
    """``X' diag(w) X`` (D, D) for non-negative ``w`` (n,), in X's dtype.

    One symmetric rank-n update (``syrk``) of ``sqrt(w)·X``: half the flops of
    the general product, the same numbers to rounding. O(n·D²) time, O(n·D) memory.
    """
    d = X.shape[1]
    if X.shape[0] == 0:
        return np.zeros((d, d), dtype=X.dtype)
    scaled = X * np.sqrt(row_weight, dtype=X.dtype)[:, None]
    syrk = blas.get_blas_funcs("syrk", dtype=scaled.dtype)
    upper = syrk(1.0, scaled.T, trans=0, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T
