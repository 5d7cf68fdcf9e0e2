"""'spherical': every component has its own single variance.

Spherical components need less of each row than diagonal ones for their
densities: the squared distance ``p_k ||x - mu_k||² = p_k (||x||² - 2 mu_k.x +
||mu_k||²)`` reads ``[x, ||x||², 1]`` (D + 2 columns against the diagonal
family's 2·D + 1). :class:`SphericalKernels` holds that E-step for every family
whose components are spherical ('spherical', mclust's 'EII' and 'VII').
"""

from __future__ import annotations

import numpy as np

from .. import statistics
from . import _products
from ._products import rows_product
from .diag import AxisCoefficients, Diag, moments_dtype, shifted_columns


class SphericalKernels:
    """The E-step of spherical components on features ``[x², x, ||x||², 1]``.

    Mixed in before a family built on :class:`~gmm.covariance.diag.Diag`
    (whose ``log_prob``, ``mahalanobis``, ``moments`` and ``working_dtype`` it
    keeps). The E-step's product reads the D + 2 columns ``[x, ||x||², 1]``
    instead of the 2·D + 1 of ``[x², x, 1]``; the moments stay ``sum r [x², x]``,
    so the scatter is the diagonal kind with each feature's own variance, as
    every consumer of a 'diagonal' scatter expects. The family's precisions
    must be spherical (``_precision_per_feature`` equal across the features of
    each component; :meth:`precision_cholesky_from_precisions` checks a
    user's). O(n·D) time and memory for the features, one column more than
    the diagonal family's, when they are kept (:meth:`Diag.chunk_features`;
    otherwise the kernels read X and its squares per chunk).
    """

    def features(self, X):
        """``[x², x, ||x||², 1]``, (n, 2·D + 2), a transposed feature-major buffer."""
        return self._features(X, None)

    def _features(self, X, shift):
        """:meth:`features` of ``X - shift`` (of X when ``shift`` is None), shifted while copied."""
        self.check_n_features(X.shape[1])
        n_samples, n_features = X.shape
        feats = np.empty((2 * n_features + 2, n_samples), dtype=X.dtype)
        squares = feats[:n_features]
        columns = shifted_columns(X, shift, feats[n_features : 2 * n_features])
        np.multiply(columns, columns, out=squares)
        np.sum(squares, axis=0, out=feats[2 * n_features])
        feats[2 * n_features + 1] = 1
        return feats.T

    def coefficients(self, weights, means, prec_chol):
        n_features = means.shape[1]
        prec = self._precision_per_feature(prec_chol, n_features)[:, :1]  # (K, 1)
        wide = means.astype(np.float64)
        # p ||x - mu||² = p ||x||² - 2 (p mu).x + p ||mu||²: columns [x, ||x||², 1].
        const = prec * np.sum(wide * wide, axis=1, keepdims=True)
        matrix = np.hstack([-2.0 * prec * wide, prec, const])
        rows = slice(n_features, 2 * n_features + 2)  # the columns [x, ||x||², 1]
        return AxisCoefficients(matrix.astype(means.dtype), rows, n_features + 1)

    def plain_product(self, matrix, X, blocks):
        """``matrix @ [x, ||x||², 1]ᵀ`` from X, (K, rows): no squares are stored.

        ``||x||²`` by ``einsum``. With fewer than
        :data:`~gmm.covariance._products.EINSUM_FEATURES` features (the products
        are then BLAS's: :func:`~gmm.covariance._products.einsum_pays`), by the row
        blocks of ``blocks``: a block's product and its ``||x||²`` read it while it
        is in the core's cache, so X is read from memory once, not twice (measured,
        one thread, process CPU, 100,000 rows, load ~5, medians of 9: D = 5, K = 2
        11.1 -> 8.3 ms; D = 20, K = 4 9.0 -> 7.6 ms; D = 2, K = 1 19.0 -> 12.9 ms);
        else whole: with wide rows a block is a few hundred rows and the per-block
        calls cost more than the second read (D = 100, K = 4 20.9 -> 23.7 ms; D =
        200, K = 4 31.3 -> 34.3 ms by blocks). The same additions in the same order
        per entry either way. O(rows · K · D) time, the (K, rows) result and a row
        vector of memory.
        """
        d = X.shape[1]
        linear, norm, const = matrix[:, :d], matrix[:, d : d + 1], matrix[:, d + 1 :]
        if d >= _products.EINSUM_FEATURES:  # also every shape whose products are einsum's
            out = rows_product(linear, X)
            out += norm * np.einsum("ij,ij->i", X, X)
            out += const
            return out
        out = np.empty((matrix.shape[0], X.shape[0]), dtype=np.result_type(matrix, X))
        for rows in blocks:
            part_rows = X[rows]
            part = rows_product(linear, part_rows, out=out[:, rows])
            part += norm * np.einsum("ij,ij->i", part_rows, part_rows)
            part += const
        return out

    def scatter(self, moments, nk, shift, coefs):
        """The diagonal scatter; a component whose trace is within its rounding
        error of 0 has every variance exactly 0.

        The trace ``E||x||² - ||m||²`` cancels: at most ``(10 / nk + D + 2) · eps ·
        E||x||²`` (the counts' guard, :func:`gmm.statistics.guarded_counts`,
        leaves ``10 eps / nk`` of it for a component of one point; ``eps`` of
        the dtype the moments were summed in) it is not told from 0, so a
        component of one point or of identical points has variance 0 (and
        without ``reg_covar`` the M-step raises
        :class:`~gmm.covariance.CollapsedComponentError`). O(K·D).
        """
        means, variances = statistics.diagonal_from_moments(moments[0], nk, shift)
        d = means.shape[1]
        second = moments[0][:, :d].sum(axis=1) / nk
        eps = float(np.finfo(moments_dtype(moments, coefs)).eps)
        variances[variances.sum(axis=1) <= (10 / nk + d + 2) * eps * second] = 0
        return statistics.Scatter(nk, means, variances, "diagonal")

    def precision_cholesky_from_precisions(self, precisions):
        factors = super().precision_cholesky_from_precisions(precisions)
        diagonal = np.asarray(precisions)
        if diagonal.ndim == 3:
            diagonal = np.diagonal(diagonal, axis1=1, axis2=2)
        if diagonal.ndim == 2 and np.any(diagonal != diagonal[:, :1]):
            raise ValueError(
                f"precisions_init for covariance_type={self.name!r} must be spherical "
                "(each component's matrix a multiple of the identity): the model's "
                "components have one variance each."
            )
        return factors


class Spherical(SphericalKernels, Diag):
    """Spherical covariance, (K,): a diagonal covariance with equal entries.

    It shares the diagonal family's E-step on fewer features
    (:class:`SphericalKernels`); its estimate is the mean of the per-feature
    variances.
    """

    name = "spherical"

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components,)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components

    def _precision_per_feature(self, prec_chol, n_features):
        prec = prec_chol.astype(np.float64) ** 2
        return np.repeat(prec[:, None], n_features, axis=1)

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return n_features * np.log(prec_chol)

    def estimate(self, scatter, reg_covar, previous):
        variances, state = super().estimate(scatter, reg_covar, previous)
        return variances.mean(axis=1), state
