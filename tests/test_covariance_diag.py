"""The axis-aligned families' plain kernels: X squared by row blocks, einsum or BLAS.

With few components or many features 'diag' and 'spherical' read the shifted
rows and square them block by block (:meth:`gmm.covariance.diag.Diag.plain_blocks`),
the products BLAS's by blocks (spherical's E-step product is numpy's einsum for
at most :data:`~gmm.covariance._products.EINSUM_COMPONENTS` components from
:data:`~gmm.covariance._products.EINSUM_FEATURES` features). These tests compare
that path, with blocks small enough that a chunk has several and a ragged last
one, against a direct float64
reference written here (the densities and sums of the definition, no expansion)
and against scikit-learn's fits, on hard data.
"""

from __future__ import annotations

import numpy as np
import pytest

from gmm import em
from gmm.covariance import get_family
from gmm.covariance.diag import Diag


def _hard_data(case: str, n: int = 1500, d: int = 6, k: int = 3, seed: int = 4):
    """Rows of a k-component mixture; the case makes them hard (as tests/test_extremes.py)."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-4, 4, d) if case == "features 1e-4..1e4" else np.ones(d)
    spread = 1e-3 if case == "tight std 1e-3" else 1.0
    means = rng.normal(0, 4, (k, d)) * scales * (1e-3 if case == "tight std 1e-3" else 1)
    X = means[rng.integers(0, k, n)] + rng.standard_normal((n, d)) * scales * spread
    if case == "offset 1e6":
        X += 1e6
    return X.astype(np.float32 if case == "float32" else np.float64)


def _reference(X, weights, means, variances):
    """Direct float64 E-step: log-likelihood, nk, sum r x², sum r x about ``shift``."""
    X = X.astype(np.float64)
    shift = X.mean(axis=0)
    dev = X[:, None, :] - means[None]  # (n, K, D), the definition
    log_prob = (
        np.log(weights)
        - 0.5 * np.sum(np.log(2 * np.pi * variances), axis=1)
        - 0.5 * np.sum(dev**2 / variances, axis=2)
    )
    top = log_prob.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(log_prob - top).sum(axis=1))
    resp = np.exp(log_prob - log_norm[:, None])
    centred = X - shift
    return log_norm.sum(), resp.sum(axis=0), resp.T @ centred**2, resp.T @ centred, shift


@pytest.fixture
def small_blocks(monkeypatch):
    """Plain kernels on any data, in blocks of 128 rows (so 1500 rows end ragged)."""
    monkeypatch.setattr(Diag, "FEATURE_COMPONENTS", 10**6)
    monkeypatch.setattr(Diag, "PLAIN_MIN_VALUES", 0)
    monkeypatch.setattr(Diag, "PLAIN_BLOCK_BYTES", 1)
    monkeypatch.setattr(Diag, "PLAIN_BLOCK_MIN_ROWS", 128)


@pytest.mark.parametrize("name", ["diag", "spherical"])
@pytest.mark.parametrize("k", [1, 2, 3])
# From EINSUM_FEATURES features spherical's product is einsum's for K <= 2 (diag's
# products and the moments stay BLAS's by blocks, einsum=False).
@pytest.mark.parametrize("d", [6, 40])
@pytest.mark.parametrize(
    "case", ["plain", "offset 1e6", "features 1e-4..1e4", "tight std 1e-3", "float32"]
)
def test_blocked_plain_kernels_give_the_direct_statistics(name, k, d, case, small_blocks):
    X = _hard_data(case, d=d, k=k)
    family = get_family(name)
    rng = np.random.default_rng(k)
    centre = X.astype(np.float64).mean(axis=0)
    spread = X.astype(np.float64).std(axis=0)
    means = centre + rng.normal(0, 1, (k, X.shape[1])) * spread
    variances = spread**2 * rng.uniform(0.5, 2.0, (k, X.shape[1]))
    if name == "spherical":
        variances = np.repeat(variances.mean(axis=1, keepdims=True), X.shape[1], axis=1)
    weights = np.full(k, 1 / k)
    cov = (variances if name == "diag" else variances[:, 0]).astype(X.dtype)
    factor = family.precision_cholesky(cov)
    params = em.Parameters(weights.astype(X.dtype), means.astype(X.dtype), cov, factor)
    shift = X.astype(np.float64).mean(axis=0)
    data = em.ChunkedData(X, None, family, shift, k)
    Xc, feats, _ = next(iter(data))
    assert feats.shape[1] == X.shape[1]  # the plain path
    assert len(family.plain_blocks(Xc)) == -(-X.shape[0] // 128)  # several, ragged last
    log_det = em.log_det_precision(params, family)
    log_const = np.log(weights) + log_det - 0.5 * X.shape[1] * em.LOG_2PI
    stats, _ = em.expectation(data, params, log_const)
    # The reference reads the parameters as the E-step got them (in X's dtype).
    exact_variances = np.ones((k, X.shape[1])) / factor.astype(np.float64).reshape(k, -1) ** 2
    loglik, nk, second, first, _ = _reference(
        X, weights, params.means.astype(np.float64), exact_variances
    )
    tol = 2e-4 if X.dtype == np.float32 else 1e-9
    assert stats.log_likelihood == pytest.approx(loglik, rel=tol)
    np.testing.assert_allclose(stats.nk, nk, rtol=tol, atol=tol * X.shape[0])
    d = X.shape[1]
    # Each column against its own size: sum r x² for both (sum r |x| is at most
    # sqrt(n sum r x²), and sum r x itself may cancel to near 0).
    size = np.sqrt(second.max(axis=0) * X.shape[0])
    for ours, theirs, scale in (
        (stats.moments[0][:, :d], second, second.max(axis=0)),
        (stats.moments[0][:, d:], first, size),
    ):
        assert np.max(np.abs(ours - theirs) / scale) <= tol


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["diag", "spherical"])
@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("d", [6, 40])
@pytest.mark.parametrize("case", ["offset 1e6", "features 1e-4..1e4"])
def test_fits_on_the_blocked_plain_kernels_equal_scikit_learns(name, k, d, case, small_blocks):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from gmm import GaussianMixture

    X = _hard_data(case, n=1200, d=d, k=max(k, 2))
    # scikit-learn's diagonal variances are E[x²] - 2 E[x]m + m², which cancels at an
    # offset of 1e6: it fits the centred rows (variances and weights do not move).
    centre = X.mean(axis=0)
    start = SkGaussianMixture(k, covariance_type=name, max_iter=1, random_state=0).fit(X - centre)
    init = {"weights_init": start.weights_, "precisions_init": start.precisions_}
    ours = GaussianMixture(
        k, covariance_type=name, max_iter=5, tol=0, means_init=start.means_ + centre, **init
    ).fit(X)
    ref = SkGaussianMixture(
        k, covariance_type=name, max_iter=5, tol=0, means_init=start.means_, **init
    ).fit(X - centre)
    scale = X.std(axis=0)
    np.testing.assert_allclose((ours.means_ - centre) / scale, ref.means_ / scale, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-8)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-9, atol=1e-12)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)


@pytest.mark.parametrize("name", ["diag", "spherical"])
@pytest.mark.parametrize("k", [1, 3])  # BLAS's matrix-vector product, BLAS by blocks
@pytest.mark.parametrize("d", [1, 2, 5])
def test_plain_kernels_on_feature_major_row_ranges(name, k, d, small_blocks):
    # Narrow chunks are feature-major (gmm.em.shifted) and the E-step computes them
    # by row ranges: the squares then take that layout. Against the same rows in
    # row-major layout and against the direct float64 terms.
    X = _hard_data("features 1e-4..1e4", d=d, k=k)
    shift = X.mean(axis=0)
    chunk = em.shifted(X, shift)
    assert chunk.strides[0] == chunk.itemsize  # feature-major
    part = chunk[300:1400]  # a row range: not contiguous as a whole
    rows = np.ascontiguousarray(part)
    family = get_family(name)
    rng = np.random.default_rng(d)
    spread = part.std(axis=0)
    means = rng.normal(0, 1, (k, d)) * spread
    variances = spread**2 * rng.uniform(0.5, 2.0, (k, d))
    if name == "spherical":
        variances = np.repeat(variances.mean(axis=1, keepdims=True), d, axis=1)
    cov = variances if name == "diag" else variances[:, 0]
    coefs = family.coefficients(np.full(k, 1 / k), means, family.precision_cholesky(cov))
    log_const = rng.normal(size=k)
    direct = log_const[:, None] - 0.5 * np.sum(
        (part[None] - means[:, None]) ** 2 / variances[:, None], axis=2
    )
    resp = rng.random((k, part.shape[0]))
    for Xc in (part, rows):
        log_prob, work = family.log_prob(Xc, Xc, coefs, log_const)
        scale = 0.5 * np.sum((part[None] ** 2 + means[:, None] ** 2) / variances[:, None], axis=2)
        assert np.all(np.abs(log_prob - direct) <= 1e-12 * (scale + np.abs(log_const)[:, None]))
        (moments,) = family.moments(Xc, Xc, resp, coefs, work)
        np.testing.assert_allclose(moments[:, :d], resp @ part**2, rtol=1e-12)
        np.testing.assert_allclose(
            moments[:, d:], resp @ part, rtol=1e-12, atol=1e-12 * np.sqrt(resp @ part**2).max()
        )
