"""'tied''s half-GEMM kernels against the general products they replace, on hard data."""

from __future__ import annotations

import numpy as np
import pytest

from gmm.covariance.tied import weighted_gram, whiten


def _hard_rows(n, d, dtype, rng):
    """Offset 1e6, features from 1e-4 to 1e4 (shifted as the E-step shifts them)."""
    X = 1e6 + rng.standard_normal((n, d)) * np.logspace(-4, 4, d)
    return (X - X.mean(axis=0)).astype(dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("d", [1, 3, 17])
def test_whiten_is_x_times_the_factor(dtype, rtol, d):
    rng = np.random.default_rng(d)
    X = _hard_rows(500, d, dtype, rng)
    cov = np.cov(X.astype(np.float64), rowvar=False).reshape(d, d) + 1e-12 * np.eye(d)
    factor = np.linalg.cholesky(np.linalg.inv(cov)).T  # upper: P = U U'
    factor = factor.astype(dtype)
    got = whiten(X, factor)
    assert got.dtype == dtype and got.shape == X.shape
    ref = X.astype(np.float64) @ np.triu(factor).astype(np.float64)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    assert whiten(X[:0], factor).shape == (0, d)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("d", [1, 3, 17])
def test_weighted_gram_is_the_weighted_scatter(dtype, rtol, d):
    rng = np.random.default_rng(10 + d)
    X = _hard_rows(500, d, dtype, rng)
    w = rng.uniform(0, 3, X.shape[0]).astype(dtype)
    w[:20] = 0  # rows without weight
    got = weighted_gram(X, w)
    assert got.dtype == dtype
    X64 = X.astype(np.float64)
    ref = (X64 * w.astype(np.float64)[:, None]).T @ X64
    np.testing.assert_array_equal(got, got.T)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))  # entries against their diagonals
    assert np.all(np.abs(got - ref) <= rtol * scale)
    np.testing.assert_array_equal(weighted_gram(X[:0], w[:0]), np.zeros((d, d)))
