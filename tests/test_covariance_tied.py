"""'tied''s half-GEMM kernels against the general products they replace, on hard data."""

from __future__ import annotations

import numpy as np
import pytest

from gmm import GaussianMixture, em
from gmm.covariance import tied
from gmm.covariance.tied import GramRows, Tied, weighted_gram, whiten


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


def test_gram_rows_keep_one_scatter_per_row_range():
    """A chunk's views share the scatters of the rows they cover (np reference);
    copies and results own their memory and start without any."""
    rng = np.random.default_rng(5)
    X = _hard_rows(400, 3, np.float64, rng)
    w = rng.uniform(0, 2, 400)
    feats = Tied().chunk_features(X, 2)
    assert isinstance(feats, GramRows) and np.shares_memory(feats, X)
    for rows in (slice(0, 400), slice(0, 200), slice(200, 400)):
        got = feats[rows].gram(w[rows])
        ref = (X[rows] * w[rows, None]).T @ X[rows]
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())
        assert feats[rows].gram(np.zeros(rows.stop - rows.start)) is got  # kept
    assert len(feats.grams) == 3
    assert feats.copy().grams == {} and (feats * 2).grams == {}


def _tied_fits(X, w, n_components, monkeypatch, cache_bytes):
    from sklearn.exceptions import ConvergenceWarning

    monkeypatch.setattr(em, "FEATURE_CACHE_BYTES", cache_bytes)
    model = GaussianMixture(n_components, covariance_type="tied", tol=0, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        return model.fit(X, sample_weight=w)


@pytest.mark.parametrize("n_components", [2, 9])  # 9: chunks split into row ranges
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kept_chunks_reuse_their_scatter_and_fit_as_streamed_ones(n_components, dtype, monkeypatch):
    """EM on kept chunks (scatter formed once) equals EM on chunks streamed every
    pass (scatter formed every iteration) on hard data with weights."""
    monkeypatch.setattr(em, "SPLIT_ROWS", 256)
    monkeypatch.setattr(em, "CHUNK_BYTES", 2**14)  # several chunks
    rng = np.random.default_rng(6)
    centres = rng.standard_normal((n_components, 4)) * np.logspace(-3, 3, 4) * 5
    X = (1e6 + centres[rng.integers(0, n_components, 3000)]) + rng.standard_normal(
        (3000, 4)
    ) * np.logspace(-3, 3, 4)
    X = X.astype(dtype)
    w = rng.uniform(0, 2, 3000)
    calls = []
    monkeypatch.setattr(tied, "weighted_gram", lambda *a: calls.append(1) or weighted_gram(*a))
    kept = _tied_fits(X, w, n_components, monkeypatch, em.FEATURE_CACHE_BYTES)
    formed = len(calls)
    streamed = _tied_fits(X, w, n_components, monkeypatch, 0)
    if dtype == np.float64:  # float32 here computes in float64: chunks formed per pass
        assert 5 * formed == len(calls) - formed  # once against every iteration (5)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(kept.lower_bounds_, streamed.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(kept.means_, streamed.means_, rtol=rtol)
    span = np.abs(streamed.covariances_).max()
    np.testing.assert_allclose(kept.covariances_, streamed.covariances_, atol=rtol * span)
