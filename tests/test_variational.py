"""The variational kernels against scipy.stats, closed forms and brute force.

References: scipy.stats' Dirichlet, Beta and Wishart log-densities (their
normalisers), scipy.special.multigammaln (whose derivative is the multivariate
digamma), Monte Carlo draws of a Dirichlet, and direct sums over rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import multigammaln

from gmm import statistics, variational
from gmm.covariance import get_family

from .mixture_data import component_matrix, random_spd


def test_log_dirichlet_norm_equals_scipy():
    alpha = np.array([0.3, 2.0, 5.5])
    x = np.array([0.2, 0.3, 0.5])
    # logpdf = log norm + sum (alpha - 1) log x
    expected = stats.dirichlet.logpdf(x, alpha) - np.sum((alpha - 1) * np.log(x))
    assert variational.log_dirichlet_norm(alpha) == pytest.approx(expected, rel=1e-12)


def test_log_stick_norm_equals_scipy_beta():
    a, b = np.array([1.5, 3.0]), np.array([0.7, 2.0])
    x = 0.4
    expected = sum(
        stats.beta.logpdf(x, ai, bi) - (ai - 1) * np.log(x) - (bi - 1) * np.log(1 - x)
        for ai, bi in zip(a, b, strict=True)
    )
    assert variational.log_stick_norm(np.stack([a, b])) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("d, nu", [(1, 1.5), (3, 4.2), (5, 30.0)])
def test_log_wishart_norm_equals_scipy(d, nu):
    rng = np.random.default_rng(d)
    scale = random_spd(rng, d)
    x = random_spd(rng, d)
    half_log_det = 0.5 * np.linalg.slogdet(scale)[1]
    # scipy's logpdf minus the x-dependent terms is the log normaliser, log pi included.
    _, log_det_x = np.linalg.slogdet(x)
    expected = (
        stats.wishart.logpdf(x, df=nu, scale=scale)
        - 0.5 * (nu - d - 1) * log_det_x
        + 0.5 * np.trace(np.linalg.solve(scale, x))
    )
    ours = variational.log_wishart_norm(nu, half_log_det, d) - d * (d - 1) / 4 * np.log(np.pi)
    assert float(ours) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d", [1, 2, 6])
def test_expected_log_det_scale_is_derivative_of_multigammaln(d):
    nu = np.array([d + 0.5, d + 3.0, 40.0])
    h = 1e-5
    # E[log det Lambda] - log det W = D log 2 + d/da log Gamma_D(a) at a = nu / 2.
    derivative = (multigammaln(nu / 2 + h, d) - multigammaln(nu / 2 - h, d)) / (2 * h)
    np.testing.assert_allclose(
        variational.expected_log_det_scale(nu, d), d * np.log(2) + derivative, rtol=1e-7
    )


def test_expected_log_weights_dirichlet_monte_carlo():
    alpha = np.array([0.8, 2.0, 6.0])
    draws = np.random.default_rng(0).dirichlet(alpha, size=200_000)
    np.testing.assert_allclose(
        variational.expected_log_weights_dirichlet(alpha), np.log(draws).mean(axis=0), atol=0.01
    )


def test_expected_log_weights_stick_monte_carlo():
    concentration = np.array([[2.0, 3.0, 1.5], [4.0, 1.0, 0.5]])
    rng = np.random.default_rng(1)
    v = rng.beta(concentration[0], concentration[1], size=(400_000, 3))
    rest = np.cumprod(np.concatenate([np.ones((len(v), 1)), 1 - v[:, :-1]], axis=1), axis=1)
    np.testing.assert_allclose(
        variational.expected_log_weights_stick(concentration),
        np.log(v * rest).mean(axis=0),
        atol=0.01,
    )


@given(st.lists(st.floats(0, 50), min_size=1, max_size=8), st.floats(0.01, 10))
@settings(max_examples=50, deadline=None)
def test_stick_concentration_by_loop(nk, prior):
    nk = np.array(nk)
    got = variational.stick_concentration(nk, prior)
    for k in range(nk.size):
        assert got[0, k] == pytest.approx(1 + nk[k])
        assert got[1, k] == pytest.approx(prior + nk[k + 1 :].sum())
    weights = variational.stick_weights(got)
    assert weights.sum() == pytest.approx(1.0) and np.all(weights > 0)


def _scatter(X, resp, kind):
    chunks = lambda: iter([(X, resp.T.copy(), None)])  # noqa: E731
    return statistics.from_responsibilities(
        chunks, kind, resp.shape[1], np.zeros(X.shape[1]), X.dtype
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_expected_mahalanobis_sum_equals_direct_sum(covariance_type):
    rng = np.random.default_rng(2)
    n, k, d = 50, 3, 3
    X = rng.normal(size=(n, d))
    resp = rng.dirichlet(np.ones(k), size=n)
    means = rng.normal(size=(k, d))
    family = get_family(covariance_type)
    precisions = {
        "full": np.stack([random_spd(rng, d) for _ in range(k)]),
        "tied": random_spd(rng, d),
        "diag": rng.uniform(0.5, 2, size=(k, d)),
        "spherical": rng.uniform(0.5, 2, size=k),
    }[covariance_type]
    direct = 0.0
    for j in range(k):
        dev = X - means[j]
        direct += resp[:, j] @ np.einsum(
            "ni,ij,nj->n", dev, component_matrix(precisions, covariance_type, j, d), dev
        )
    scatter = _scatter(X, resp, family.scatter_kind)
    scatter.nk -= 10 * np.finfo(np.float64).eps  # the guard, which the direct sum lacks
    ours = variational.expected_mahalanobis_sum(scatter, means, precisions)
    assert ours == pytest.approx(direct, rel=1e-10)


@pytest.mark.parametrize("kind", ["full", "diagonal", "pooled"])
def test_prior_corrected_scatter_is_scatter_about_shrunk_mean(kind):
    """Bishop (10.62), summed row by row: W_k^-1 - W_0^-1 = sum_n r_nk (x_n - xbar_k)(...)'
    + beta0 nk / (beta0 + nk) (xbar_k - m0)(xbar_k - m0)', divided by nk (pooled: by sum nk)."""
    rng = np.random.default_rng(3)
    n, k, d = 40, 2, 2
    X = rng.normal(size=(n, d))
    resp = rng.dirichlet(np.ones(k), size=n)
    m0, beta0 = np.array([0.5, -1.0]), 0.7
    scatter = _scatter(X, resp, kind)
    beta = beta0 + scatter.nk
    corrected = variational.prior_corrected_scatter(scatter, m0, beta0, beta)
    blocks = []
    for j in range(k):
        xbar = resp[:, j] @ X / resp[:, j].sum()
        dev = X - xbar
        w = resp[:, j]
        between = np.outer(xbar - m0, xbar - m0) * beta0 * w.sum() / (beta0 + w.sum())
        blocks.append((dev * w[:, None]).T @ dev + between)
    if kind == "full":
        expected = np.stack(blocks) / scatter.nk[:, None, None]
    elif kind == "diagonal":
        expected = np.stack([np.diag(b) for b in blocks]) / scatter.nk[:, None]
    else:
        expected = sum(blocks) / scatter.nk.sum()
    np.testing.assert_allclose(corrected.covariances, expected, rtol=1e-10)
