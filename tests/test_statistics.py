"""The shared statistics step against np.cov and np.average.

Every kind of :class:`gmm.statistics.Scatter` (per-component full, diagonal,
pooled), from summed moments and from responsibilities, must equal the weighted
means and the biased weighted covariances that numpy computes directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gmm import em, statistics
from gmm.covariance import get_family

FAMILY_OF_KIND = {"full": "full", "diagonal": "diag", "pooled": "tied"}


def _data(seed, n=400, d=3, k=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * [1.0, 3.0, 0.5][:d] + 100.0  # offset data
    resp = rng.dirichlet(np.ones(k), size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    return X, resp, w


def _numpy_reference(X, resp, w):
    """Weighted means and biased covariances per component (np.average, np.cov)."""
    weights = resp * w[:, None]
    means = np.array([np.average(X, axis=0, weights=weights[:, k]) for k in range(resp.shape[1])])
    covs = np.array(
        [np.cov(X, rowvar=False, aweights=weights[:, k], bias=True) for k in range(resp.shape[1])]
    )
    return weights.sum(axis=0), means, covs


def _expected(kind, nk, covs):
    if kind == "diagonal":
        return np.diagonal(covs, axis1=1, axis2=2)
    if kind == "pooled":
        return np.tensordot(nk, covs, axes=1) / nk.sum()
    return covs


@pytest.mark.parametrize("kind", statistics.KINDS)
def test_scatter_from_moments_equals_numpy(kind):
    X, resp, w = _data(0)
    family = get_family(FAMILY_OF_KIND[kind])
    shift = X.mean(axis=0)
    Xc = X - shift
    params = em.Parameters(np.ones(3) / 3, np.zeros((3, 3)), None, None)
    coefs = None
    if kind == "full":  # the expanded formulation for every component
        factor = np.broadcast_to(np.eye(3), (3, 3, 3)).copy()
        coefs = family.coefficients(params.weights, params.means, factor)
    moments = family.moments(Xc, family.features(Xc), (resp * w[:, None]).T, coefs, None)
    nk = (resp * w[:, None]).sum(axis=0)
    scatter = family.scatter(moments, nk, shift, coefs)
    ref_nk, ref_means, ref_covs = _numpy_reference(X, resp, w)
    assert scatter.kind == kind
    np.testing.assert_allclose(scatter.nk, ref_nk, rtol=1e-12)
    np.testing.assert_allclose(scatter.means, ref_means, rtol=1e-12)
    np.testing.assert_allclose(scatter.covariances, _expected(kind, ref_nk, ref_covs), rtol=1e-9)


@pytest.mark.parametrize("kind", statistics.KINDS)
def test_scatter_from_responsibilities_equals_numpy(kind):
    X, resp, w = _data(1)
    shift = X.mean(axis=0)

    def chunks():  # two chunks, to show the passes sum over them
        for rows in (slice(0, 150), slice(150, None)):
            yield X[rows] - shift, (resp[rows] * w[rows, None]).T, w[rows]

    scatter = statistics.from_responsibilities(chunks, kind, 3, shift, np.float64)
    ref_nk, ref_means, ref_covs = _numpy_reference(X, resp, w)
    np.testing.assert_allclose(scatter.nk, ref_nk, rtol=1e-12)
    np.testing.assert_allclose(scatter.means, ref_means, rtol=1e-12)
    np.testing.assert_allclose(scatter.covariances, _expected(kind, ref_nk, ref_covs), rtol=1e-10)
    # W_k = nk S_k (pooled: sum_k W_k).
    expected_w = _expected(kind, ref_nk, ref_covs) * (
        ref_nk.sum()
        if kind == "pooled"
        else ref_nk.reshape((-1,) + (1,) * (ref_covs.ndim - 1 - (kind == "diagonal")))
    )
    np.testing.assert_allclose(scatter.scatter, expected_w, rtol=1e-10)


def test_whitened_moments_give_the_same_scatter():
    """The centred formulation's statistics equal np.cov about any centre and factor."""
    X, resp, w = _data(2, k=2)
    rng = np.random.default_rng(3)
    # Centres near the data (the previous means, in EM): no digits cancel.
    centres = X.mean(axis=0) + rng.standard_normal((2, 3))
    factors = np.triu(rng.standard_normal((2, 3, 3))) + 3 * np.eye(3)
    r = (resp * w[:, None]).T
    white = np.matmul(X[None] - centres[:, None, :], factors)
    first = np.einsum("gn,gnd->gd", r, white)
    gram = np.einsum("gn,gnd,gne->gde", r, white, white)
    inverses = np.linalg.inv(factors)
    means, covs = statistics.full_from_whitened(first, gram, r.sum(axis=1), centres, inverses)
    _, ref_means, ref_covs = _numpy_reference(X, resp, w)
    np.testing.assert_allclose(means, ref_means, rtol=1e-11)
    np.testing.assert_allclose(covs, ref_covs, rtol=1e-9, atol=1e-11)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), split=st.integers(1, 199))
def test_pooled_is_the_count_weighted_mean_of_the_full_scatter(seed, split):
    X, resp, w = _data(seed, n=200)
    shift = np.zeros(3)

    def chunks():
        for rows in (slice(0, split), slice(split, None)):
            yield X[rows], (resp[rows] * w[rows, None]).T, w[rows]

    full = statistics.from_responsibilities(chunks, "full", 3, shift, np.float64)
    pooled = statistics.from_responsibilities(chunks, "pooled", 3, shift, np.float64)
    diagonal = statistics.from_responsibilities(chunks, "diagonal", 3, shift, np.float64)
    np.testing.assert_allclose(pooled.scatter, full.scatter.sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(
        diagonal.covariances, np.diagonal(full.covariances, axis1=1, axis2=2), rtol=1e-9
    )


@pytest.mark.parametrize("kind", ["full", "diagonal"])
def test_scatter_of_hard_and_sparse_responsibilities_equals_numpy(kind):
    """Rows of zero responsibility are skipped: hard labels give each group's np.cov,
    and responsibilities with zeros give np.cov with aweights."""
    rng = np.random.default_rng(5)
    X = rng.normal(3.0, 2.0, size=(120, 4))
    labels = np.arange(120) % 3
    resp = np.zeros((3, 120))
    resp[labels, np.arange(120)] = 1.0
    resp[2, :40] = 0.0  # component 2 weighs fewer rows, softly
    resp[2, 40:] *= rng.random(80)
    resp[1, :] = 0.0  # an empty component
    means = rng.normal(size=(3, 4))
    scatter = statistics._CENTRED_SCATTER[kind](X, resp, means)
    for k in range(3):
        dev = X - means[k]
        expected = (resp[k][:, None] * dev).T @ dev  # the definition, all rows
        if kind == "diagonal":
            expected = np.diag(expected)
        np.testing.assert_allclose(scatter[k], expected, rtol=1e-12, atol=1e-12)
    # Against np.cov (about the group's own mean) for the hard-labelled component 0.
    full = statistics._CENTRED_SCATTER["full"](X, resp, X[labels == 0].mean(axis=0)[None])
    np.testing.assert_allclose(full[0], 40 * np.cov(X[labels == 0].T, bias=True), rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_full_from_moments_is_the_entrywise_formula_bit_for_bit(d):
    """Each S_k[i, j] is raw_k[pair(i, j)] / n_k - mu_ki mu_kj, in those operations.

    A plain loop over components and entries (the pair index from
    np.triu_indices), on moments of data offset by 1e6 with features from 1e-4
    to 1e4: the gathered, in-place kernel gives the same bits.
    """
    rng = np.random.default_rng(d)
    X = 1e6 + rng.normal(size=(50, d)) * np.logspace(-4, 4, d)
    resp = rng.dirichlet(np.ones(3), size=50).T
    rows, cols = np.triu_indices(d)
    raw = resp @ np.concatenate([X[:, rows] * X[:, cols], X], axis=1)
    nk = resp.sum(axis=1)
    shift = rng.normal(size=d)
    means, covariances = statistics.full_from_moments(raw, nk, shift)
    pair = {(i, j): p for p, (i, j) in enumerate(zip(rows, cols, strict=True))}
    for k in range(3):
        mu = raw[k, len(rows) :] / nk[k]
        assert np.array_equal(means[k], mu + shift)
        for i in range(d):
            for j in range(d):
                expected = raw[k, pair[min(i, j), max(i, j)]] / nk[k] - mu[i] * mu[j]
                assert covariances[k, i, j] == expected, (k, i, j)
