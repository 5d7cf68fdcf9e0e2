"""Seeded generators of mixture data with known parameters (for tests)."""

from __future__ import annotations

import numpy as np

from gmm.covariance import covariance_types


def random_spd(rng: np.random.Generator, d: int, scale: float = 1.0) -> np.ndarray:
    """A random symmetric positive-definite (d, d) matrix, well conditioned."""
    A = rng.standard_normal((d, d))
    return scale * (A @ A.T / d + 0.5 * np.eye(d))


def random_covariances(rng, covariance_type: str, n_components: int, d: int) -> np.ndarray:
    """Covariances in the shape that ``covariance_type`` uses."""
    if covariance_type == "full":
        return np.stack([random_spd(rng, d) for _ in range(n_components)])
    if covariance_type == "tied":
        return random_spd(rng, d)
    if covariance_type == "diag":
        return rng.uniform(0.3, 2.0, size=(n_components, d))
    return rng.uniform(0.3, 2.0, size=n_components)


def component_matrix(covariances, covariance_type: str, k: int, d: int) -> np.ndarray:
    """Component k's covariance as a dense (d, d) matrix."""
    if covariance_type == "full":
        return covariances[k]
    if covariance_type == "tied":
        return covariances
    if covariance_type == "diag":
        return np.diag(covariances[k])
    return covariances[k] * np.eye(d)


def precisions_of(covariances, covariance_type: str) -> np.ndarray:
    """Inverse covariances in the same shape (uses np.linalg.inv: an independent path)."""
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / covariances


def make_mixture(covariance_type: str, n_samples=600, n_components=3, d=2, seed=0):
    """Data drawn from a known mixture: returns (X, labels, weights, means, covariances)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.uniform(-8, 8, size=(n_components, d))
    covariances = random_covariances(rng, covariance_type, n_components, d)
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = np.empty((n_samples, d))
    for k in range(n_components):
        rows = labels == k
        cov = component_matrix(covariances, covariance_type, k, d)
        X[rows] = rng.multivariate_normal(means[k], cov, size=rows.sum())
    return X, labels, weights, means, covariances


COVARIANCE_TYPES = covariance_types()
