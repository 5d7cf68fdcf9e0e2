"""'full': every component has its own unrestricted covariance matrix."""

from __future__ import annotations

import numpy as np

from . import _matrices
from .base import CovarianceFamily


class Full(CovarianceFamily):
    """Full covariance, (K, D, D).

    The E-step uses the expansion
    ``(x-m)'P(x-m) = sum_{i<=j} c_ij x_i x_j - 2 x'Pm + m'Pm`` on shifted data, so
    with the features ``[x_i x_j (i<=j), x]`` (T = D(D+1)/2 + D columns) both the
    E-step and the M-step are a single matrix product per chunk:
    O(n·K·D²) flops each, O(n·D²) extra memory per chunk.
    """

    name = "full"

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def features(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        n_pairs = d * (d + 1) // 2
        feats = np.empty((n, n_pairs + d), dtype=X.dtype)
        start = 0
        for i in range(d):
            stop = start + d - i
            np.multiply(X[:, i : i + 1], X[:, i:], out=feats[:, start:stop])
            start = stop
        feats[:, n_pairs:] = X
        return feats

    def coefficients(self, means: np.ndarray, prec_chol: np.ndarray):
        d = means.shape[1]
        prec = _matrices.gram(prec_chol.astype(np.float64))
        rows, cols = np.triu_indices(d)
        pair_weight = np.where(rows == cols, 1.0, 2.0)
        quad = prec[:, rows, cols] * pair_weight
        prec_means = np.einsum("kij,kj->ki", prec, means)
        const = np.einsum("ki,ki->k", means, prec_means)
        weights = np.concatenate([quad, -2.0 * prec_means], axis=1).T
        return np.ascontiguousarray(weights, dtype=means.dtype), const.astype(means.dtype)

    def mahalanobis(self, X, feats, coefs):
        weights, const = coefs
        maha = feats @ weights
        maha += const
        return np.maximum(maha, 0, out=maha)

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)

    def moments(self, X, feats, resp):
        return (resp.T @ feats,)

    def estimate(self, moments, nk, reg_covar):
        (stat,) = moments
        n_components = stat.shape[0]
        d = _n_features_from_columns(stat.shape[1])
        n_pairs = d * (d + 1) // 2
        means = stat[:, n_pairs:] / nk[:, None]
        rows, cols = np.triu_indices(d)
        second = np.empty((n_components, d, d))
        second[:, rows, cols] = stat[:, :n_pairs]
        second[:, cols, rows] = stat[:, :n_pairs]
        second /= nk[:, None, None]
        covariances = second - means[:, :, None] * means[:, None, :]
        covariances[:, np.arange(d), np.arange(d)] += reg_covar
        return means, covariances

    def precision_cholesky(self, covariances):
        return _matrices.precision_factor(covariances)

    def precision_cholesky_from_precisions(self, precisions):
        return _matrices.precision_factor_from_precisions(precisions)

    def precisions(self, prec_chol):
        return _matrices.gram(prec_chol)

    def covariances(self, prec_chol):
        return _matrices.covariance_from_factor(prec_chol)

    def component_covariance(self, covariances, k):
        return covariances[k]

    def is_positive_definite(self, matrices):
        return _matrices.is_spd(matrices)


def _n_features_from_columns(n_columns: int) -> int:
    # n_columns = D(D+1)/2 + D  =>  D² + 3D - 2·n_columns = 0
    return int(round((-3 + np.sqrt(9 + 8 * n_columns)) / 2))
