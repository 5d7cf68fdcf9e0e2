"""Sampling from Gaussians through a factor of the covariance: ``y = mean + z @ L.T``."""

from __future__ import annotations

import numpy as np


def colorize(z: np.ndarray, cov: np.ndarray | float) -> np.ndarray:
    """Turn standard normal draws into draws with covariance ``cov``.

    Parameters
    ----------
    z : ndarray of shape (n, d)
        Independent standard normal draws.
    cov : float, ndarray of shape (d,) or (d, d)
        A variance shared by all features, per-feature variances, or a full
        symmetric positive-definite covariance.

    Returns
    -------
    ndarray of shape (n, d)
        ``z`` scaled (scalar, vector) or multiplied by the transposed lower
        Cholesky factor of ``cov``. O(n·d²) time for a full matrix, O(n·d) else.
        No checking is done: ``cov`` must be valid.
    """
    cov = np.asarray(cov)
    if cov.ndim < 2:
        return z * np.sqrt(cov)
    lower = np.linalg.cholesky(cov.astype(np.float64))
    return z @ lower.T.astype(z.dtype, copy=False)
