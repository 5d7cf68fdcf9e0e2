"""'spherical': every component has its own single variance."""

from __future__ import annotations

import numpy as np

from .diag import Diag


class Spherical(Diag):
    """Spherical covariance, (K,): a diagonal covariance with equal entries.

    It shares the diagonal family's features and kernels; only the estimate
    (the mean of the per-feature variances) and the shapes differ.
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
