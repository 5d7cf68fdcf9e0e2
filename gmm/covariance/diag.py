"""'diag': every component has its own diagonal covariance."""

from __future__ import annotations

import numpy as np

from .. import statistics
from .base import CollapsedComponentError, CovarianceFamily, expansion_dtype


class Diag(CovarianceFamily):
    """Diagonal covariance, (K, D).

    Features are ``[x², x]`` (2·D columns): the E-step and the M-step are one
    matrix product each per chunk, O(n·K·D) flops, O(n·D) extra memory.
    """

    name = "diag"
    scatter_kind = "diagonal"
    precision_requirement = "positive (every entry > 0)"
    factor_requirement = "positive"

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def features(self, X):
        # Feature-major buffer, (n, 2D) view: BLAS reads it transposed for free.
        columns = X.T
        feats = np.empty((2 * X.shape[1], X.shape[0]), dtype=X.dtype)
        np.multiply(columns, columns, out=feats[: X.shape[1]])
        feats[X.shape[1] :] = columns
        return feats.T

    def _precision_per_feature(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        return prec_chol.astype(np.float64) ** 2

    def coefficients(self, weights, means, prec_chol):
        prec = self._precision_per_feature(prec_chol, means.shape[1])
        linear = np.concatenate([prec, -2.0 * prec * means], axis=1).T
        const = np.sum(prec * means * means, axis=1)
        return np.ascontiguousarray(linear.T, dtype=means.dtype), const.astype(means.dtype)[:, None]

    def working_dtype(self, dtype, weights, means, prec_chol):
        return expansion_dtype(dtype, lambda: self.expansion_condition(weights, means, prec_chol))

    def expansion_condition(self, weights, means, prec_chol):
        """Condition estimate ``kappa_k`` of the expanded quadratic, per component.

        See :data:`gmm.covariance.base.EXPANSION_TOLERANCE`; ``means`` are shifted.
        """
        d = means.shape[1]
        prec = self._precision_per_feature(prec_chol, d)
        means = means.astype(np.float64)
        spread = np.sqrt(weights @ (1.0 / prec + means**2))
        return np.sum(prec * (spread + np.abs(means)) ** 2, axis=1) / d

    def mahalanobis(self, X, feats, coefs):
        linear, const = coefs
        maha = linear @ feats.T
        maha += const
        return np.maximum(maha, 0, out=maha), None

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(prec_chol), axis=1)

    def moments(self, X, feats, resp, coefs, work):
        return (resp @ feats,)

    def scatter(self, moments, nk, shift, coefs):
        means, variances = statistics.diagonal_from_moments(moments[0], nk, shift)
        return statistics.Scatter(nk, means, variances, self.scatter_kind)

    def estimate(self, scatter, reg_covar, previous):
        return scatter.covariances + reg_covar, None

    def precision_cholesky(self, covariances):
        bad = np.flatnonzero(np.any(covariances <= 0, axis=tuple(range(1, covariances.ndim))))
        if bad.size:
            raise CollapsedComponentError(int(bad[0]), covariances.dtype)
        return 1.0 / np.sqrt(covariances)

    def precision_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions(self, prec_chol):
        return prec_chol**2

    def covariances(self, prec_chol):
        return 1.0 / prec_chol**2

    def component_covariance(self, covariances, k):
        return covariances[k]

    def is_positive_definite(self, matrices):
        matrices = np.asarray(matrices)
        return bool(np.all(np.isfinite(matrices)) and np.all(matrices > 0))

    def is_inverse_pair(self, covariances, precisions, dtype):
        eps = float(np.finfo(dtype).eps)
        cov = np.asarray(covariances, dtype=np.float64)
        prec = np.asarray(precisions, dtype=np.float64)
        with np.errstate(all="ignore"):
            return bool(np.all(np.abs(cov * prec - 1) <= 64 * eps))

    def is_valid_factor(self, precisions_cholesky):
        return bool(np.all(np.asarray(precisions_cholesky) > 0))
