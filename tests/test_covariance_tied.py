"""'tied''s half-GEMM kernels against the general products they replace, on hard data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

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


# ------------------------------------------- the fitting E-step without the shared term
def _tied_case(rng, n=400, d=5, k=3):
    """Hard rows (offset 1e6, scales 1e-4..1e4, shifted), a tied factor, means, weights."""
    X = _hard_rows(n, d, np.float64, rng)
    cov = np.cov(X, rowvar=False) * 0.3
    factor = np.linalg.cholesky(np.linalg.inv(cov)).T  # upper: P = U U'
    means = X[rng.choice(n, k, replace=False)]
    return X, cov, factor, means


def test_log_prob_less_shared_plus_the_shared_term_is_the_centred_log_density():
    """Per row, the hook's values less |U'x|²/2 are log_const_k - |U'(x - m_k)|²/2 (a
    direct centred reference); the shared sum from the moments is -sum_i w_i |U'x_i|²/2."""
    rng = np.random.default_rng(21)
    X, _, factor, means = _tied_case(rng)
    family = Tied()
    weights = np.array([0.2, 0.5, 0.3])
    coefs = family.coefficients(weights, means, factor)
    log_const = (
        np.log(weights) + np.log(np.diag(factor)).sum() - 0.5 * X.shape[1] * np.log(2 * np.pi)
    )
    feats = family.chunk_features(X, 3)
    got, _ = family.log_prob_less_shared(X, feats, coefs, log_const)
    shared = -0.5 * np.sum((X @ factor) ** 2, axis=1)
    ref = np.stack(
        [
            c - 0.5 * np.sum(((X - m) @ factor) ** 2, axis=1)
            for c, m in zip(log_const, means, strict=True)
        ]
    )
    scale = np.abs(shared).max()
    np.testing.assert_allclose(got + shared, ref, rtol=0, atol=1e-12 * scale)
    resp = np.full((3, X.shape[0]), 1.0 / 3)
    resp *= rng.uniform(0, 2, X.shape[0])  # the rows' weights, summed over components
    moments = family.moments(X, feats, resp, coefs, None)
    w = resp.sum(axis=0)
    expected = float(np.dot(w, shared))
    value, error = family.shared_log_prob(moments, coefs)
    assert value == pytest.approx(expected, rel=1e-13)
    assert 0 < error < 1e-14 * abs(expected)  # hard rows, a well-conditioned P
    assert family.log_prob_less_shared(X.astype(np.float32), feats, coefs, log_const) is None


def _fit_pair(X, w, n_components, covariance_type, monkeypatch, **kwargs):
    """Fits with the shared term dropped and, monkeypatched off, by log_prob."""
    from sklearn.exceptions import ConvergenceWarning

    def fit():
        model = GaussianMixture(
            n_components,
            covariance_type=covariance_type,
            max_iter=6,
            tol=0,
            random_state=0,
            **kwargs,
        )
        with pytest.warns(ConvergenceWarning):
            return model.fit(X, sample_weight=w)

    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(Tied, "mahalanobis", _counted(Tied.mahalanobis, calls))
        new = fit()
        from_new = len(calls)
        patch.setattr(em, "_drops_shared", lambda cls: False)
        old = fit()
    return new, old, from_new, len(calls) - from_new


def _counted(method, calls):
    def counted(*args):
        calls.append(1)
        return method(*args)

    return counted


@pytest.mark.parametrize("case", ["normal", "hard", "near_singular"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_without_the_shared_term_equals_the_whitening_path(case, weighted, monkeypatch):
    """Same lower bounds (1e-12 relative on normal data), means and covariances as
    the E-step by log_prob; on hard data, offset 1e6 and scales 1e-4..1e4, or a
    near-singular tied covariance, and the fitted model also agrees with scikit-learn."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    monkeypatch.setattr(em, "SPLIT_ROWS", 256)
    monkeypatch.setattr(em, "CHUNK_BYTES", 2**14)  # several chunks, split in parts
    rng = np.random.default_rng(30)
    n, d = 2000, 4
    centres = rng.uniform(-6, 6, (3, d))
    X = centres[rng.integers(0, 3, n)] + rng.standard_normal((n, d))
    if case == "hard":
        X = 1e6 + X * np.logspace(-4, 4, d)
    elif case == "near_singular":
        X[:, 3] = X[:, 0] + 1e-7 * rng.standard_normal(n)  # collinear to 1e-7
    w = rng.uniform(0, 2, n) if weighted else None
    reg_covar = 1e-12 if case == "near_singular" else 1e-6
    new, old, whitened_new, whitened_old = _fit_pair(
        X, w, 3, "tied", monkeypatch, reg_covar=reg_covar
    )
    if case == "near_singular":
        # The shared term's bound is large: every chunk is computed again by the
        # per-row path. The two fits then differ at rounding level in the kept
        # scatter (formed from the first attempt's row sums of the responsibilities),
        # which a covariance of condition 1e12 amplifies after two iterations.
        assert whitened_new >= whitened_old
        np.testing.assert_allclose(new.lower_bounds_[:2], old.lower_bounds_[:2], rtol=1e-12)
        return
    assert 3 * whitened_new < whitened_old  # per row only outside the fitting E-steps
    rtol = 1e-12 if case == "normal" else 1e-9
    np.testing.assert_allclose(new.lower_bounds_, old.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(new.means_, old.means_, rtol=1e-9, atol=1e-12 * np.abs(X).max())
    span = np.abs(old.covariances_).max()
    np.testing.assert_allclose(new.covariances_, old.covariances_, rtol=1e-7, atol=1e-12 * span)
    if not weighted and case != "near_singular":  # scikit-learn: no weights; singular
        # scikit-learn's own start fails at offset 1e6 (it does not shift): it fits
        # the rows less the offset; the bound and covariances do not depend on it.
        offset = 1e6 if case == "hard" else 0.0
        sk = SkGaussianMixture(3, covariance_type="tied", max_iter=6, tol=0, random_state=0)
        with pytest.warns(ConvergenceWarning):
            sk.fit(X - offset)
        assert new.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-8)
        np.testing.assert_allclose(new.means_ - offset, sk.means_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(new.covariances_, sk.covariances_, rtol=1e-6, atol=1e-9 * span)


def test_pooled_mclust_model_drops_the_shared_term_and_overrides_do_not():
    """EEE (mclust's pooled model, tied's kernels) takes the hook; a subclass that
    changes the distances, or a float32 chunk, computes by log_prob."""
    from gmm.covariance import get_family

    assert em._drops_shared(Tied)
    assert em._drops_shared(type(get_family("EEE")))

    class Changed(Tied):
        def mahalanobis(self, X, feats, coefs):
            return super().mahalanobis(X, feats, coefs)

    assert not em._drops_shared(Changed)
    assert not em._drops_shared(type(get_family("full")))
