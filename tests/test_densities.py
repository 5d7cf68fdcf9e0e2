"""gmm.densities against scipy.stats and scikit-learn, plus the memory promise."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.linalg import solve_triangular
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture, mixture_logpdf, mvn_logpdf, mvn_pdf


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    A = rng.normal(size=(d, d))
    return A @ A.T + d * np.eye(d)


def _points(rng: np.random.Generator, mean: np.ndarray, n: int = 40) -> np.ndarray:
    return mean + 2.0 * rng.normal(size=(n, mean.size))


def test_full_covariance_matches_scipy_for_d_1_to_50():
    rng = np.random.default_rng(0)
    for d in range(1, 51):
        cov = _random_spd(rng, d)
        mean = rng.normal(size=d)
        X = _points(rng, mean)
        expected = multivariate_normal(mean, cov).logpdf(X)
        np.testing.assert_allclose(mvn_logpdf(X, mean, cov), expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("d", [1, 3, 17, 50])
def test_diag_and_spherical_forms_match_scipy(d):
    rng = np.random.default_rng(d)
    mean = rng.normal(size=d)
    X = _points(rng, mean)
    variances = rng.uniform(0.2, 3.0, size=d)
    np.testing.assert_allclose(
        mvn_logpdf(X, mean, variances),
        multivariate_normal(mean, np.diag(variances)).logpdf(X),
        rtol=1e-10,
        atol=0,
    )
    np.testing.assert_allclose(
        mvn_logpdf(X, mean, 1.7),
        multivariate_normal(mean, 1.7 * np.eye(d)).logpdf(X),
        rtol=1e-10,
        atol=0,
    )


@pytest.mark.parametrize("d", [1, 4, 30])
def test_precision_cholesky_form_matches_scipy(d):
    rng = np.random.default_rng(100 + d)
    cov = _random_spd(rng, d)
    mean = rng.normal(size=d)
    X = _points(rng, mean)
    # U = inv(L).T is upper triangular with U @ U.T = inv(cov) (scikit-learn's convention).
    lower = np.linalg.cholesky(cov)
    upper = solve_triangular(lower, np.eye(d), lower=True).T
    expected = multivariate_normal(mean, cov).logpdf(X)
    np.testing.assert_allclose(mvn_logpdf(X, mean, prec_chol=upper), expected, rtol=1e-10)
    std = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(
        mvn_logpdf(X, mean, prec_chol=1.0 / std),
        multivariate_normal(mean, np.diag(std**2)).logpdf(X),
        rtol=1e-10,
    )


def test_precisions_cholesky_of_a_fitted_model_are_accepted():
    rng = np.random.default_rng(3)
    X = rng.multivariate_normal([1.0, -2.0, 0.5], _random_spd(rng, 3), size=500)
    model = GaussianMixture(1, random_state=0).fit(X)
    logpdf = mvn_logpdf(X, model.means_[0], prec_chol=model.precisions_cholesky_[0])
    np.testing.assert_allclose(logpdf, model.score_samples(X), rtol=1e-9)


def test_pdf_matches_scipy():
    rng = np.random.default_rng(4)
    cov = _random_spd(rng, 3)
    X = _points(rng, np.zeros(3))
    np.testing.assert_allclose(
        mvn_pdf(X, np.zeros(3), cov), multivariate_normal(np.zeros(3), cov).pdf(X), rtol=1e-10
    )


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    cov = _random_spd(rng, 4)
    X = _points(rng, np.zeros(4)).astype(np.float32)
    logpdf = mvn_logpdf(X, np.zeros(4, dtype=np.float32), cov)
    assert logpdf.dtype == np.float32
    expected = multivariate_normal(np.zeros(4), cov).logpdf(X.astype(np.float64))
    np.testing.assert_allclose(logpdf, expected, rtol=1e-5)
    assert mixture_logpdf(X, [1.0], np.zeros((1, 4)), cov[None]).dtype == np.float32


def test_two_million_points_without_an_n_by_n_intermediate():
    # (X - m) inv(S) (X - m).T for n = 2e6 would be a 32 TB matrix; row-wise it
    # needs the 16 MB result plus fixed-size chunks.
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2_000_000, 2))
    cov = np.array([[2.0, 1.0], [1.0, 1.0]])
    mean = np.array([1.0, 0.5])
    tracemalloc.start()
    try:
        logpdf = mvn_logpdf(X, mean, cov)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20
    sample = slice(None, None, 9973)
    np.testing.assert_allclose(
        logpdf[sample], multivariate_normal(mean, cov).logpdf(X[sample]), rtol=1e-10
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_mixture_logpdf_matches_scikit_learn(covariance_type):
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) * 0.5 + 4.0])
    sk = SkGaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    logpdf = mixture_logpdf(X, sk.weights_, sk.means_, sk.covariances_, covariance_type)
    np.testing.assert_allclose(logpdf, sk.score_samples(X), rtol=1e-9)


def test_mixture_logpdf_is_log_of_weighted_scipy_densities():
    rng = np.random.default_rng(8)
    weights = np.array([0.2, 0.5, 0.3])
    means = rng.normal(size=(3, 2)) * 3
    covs = np.stack([_random_spd(rng, 2) for _ in range(3)])
    X = rng.normal(size=(60, 2)) * 4
    densities = [multivariate_normal(m, c).pdf(X) for m, c in zip(means, covs, strict=True)]
    expected = np.log(weights @ np.array(densities))
    np.testing.assert_allclose(mixture_logpdf(X, weights, means, covs), expected, rtol=1e-10)


def test_mixture_logpdf_does_not_underflow_far_away():
    # Each component density underflows to 0 at x = 1000, the log-sum-exp does not.
    X = np.array([[1000.0]])
    logpdf = mixture_logpdf(X, [0.5, 0.5], [[0.0], [1.0]], [1.0, 1.0], "spherical")
    expected = np.logaddexp(
        np.log(0.5) + multivariate_normal(0.0, 1.0).logpdf(1000.0),
        np.log(0.5) + multivariate_normal(1.0, 1.0).logpdf(1000.0),
    )
    np.testing.assert_allclose(logpdf, [expected], rtol=1e-12)


@pytest.mark.parametrize(
    ("X", "mean", "cov", "match"),
    [
        (np.zeros((3, 2)), np.zeros(3), np.eye(2), "mean has shape"),
        (np.zeros((3, 2)), np.zeros(2), np.ones((2, 3)), "must be square"),
        (np.zeros((3, 2)), np.zeros(2), np.eye(3), r"expected \(2, 2\)"),
        (np.zeros((3, 2)), np.zeros(2), np.ones(3), "vector of variances"),
        (np.zeros((3, 2)), np.zeros(2), np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
        (np.zeros((3, 2)), np.array([0.0, np.nan]), np.eye(2), "mean contains NaN"),
        (np.full((3, 2), np.inf), np.zeros(2), np.eye(2), "X contains NaN or infinity"),
        (np.zeros(3), np.zeros(1), 1.0, "X must be 2-D"),
        (np.zeros((3, 2)), np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
        (np.zeros((3, 2)), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (np.zeros((3, 2)), np.zeros(2), -1.0, "must be positive"),
        (np.zeros((3, 2)), np.zeros(2), np.ones((2, 2, 2)), "must be a scalar"),
        (np.array([["a", "b"]]), np.zeros(2), 1.0, "X must be numeric"),
    ],
)
def test_bad_input_names_the_problem(X, mean, cov, match):
    with pytest.raises(ValueError, match=match):
        mvn_logpdf(X, mean, cov)


def test_exactly_one_covariance_representation():
    with pytest.raises(ValueError, match="exactly one of cov and prec_chol"):
        mvn_logpdf(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="exactly one of cov and prec_chol"):
        mvn_logpdf(np.zeros((2, 2)), np.zeros(2), np.eye(2), prec_chol=np.eye(2))


def test_prec_chol_must_be_upper_triangular_with_positive_diagonal():
    with pytest.raises(ValueError, match="upper triangular"):
        mvn_logpdf(np.zeros((2, 2)), np.zeros(2), prec_chol=np.array([[1.0, 0.0], [0.5, 1.0]]))
    with pytest.raises(ValueError, match="positive diagonal"):
        mvn_logpdf(np.zeros((2, 2)), np.zeros(2), prec_chol=np.array([[-1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize(
    ("weights", "means", "covariances", "covariance_type", "match"),
    [
        ([0.5, 0.6], np.zeros((2, 2)), np.ones(2), "spherical", "sum to 1"),
        ([1.5, -0.5], np.zeros((2, 2)), np.ones(2), "spherical", ">= 0"),
        ([1.0], np.zeros((2, 2)), np.ones(2), "spherical", "one weight per row"),
        ([0.5, 0.5], np.zeros((2, 3)), np.ones(2), "spherical", "means has shape"),
        ([0.5, 0.5], np.zeros((2, 2)), np.ones((2, 2)), "spherical", "covariances has shape"),
        ([0.5, 0.5], np.zeros((2, 2)), np.ones(2), "banana", "Unknown covariance_type"),
        ([0.5, 0.5], np.zeros((2, 2)), np.array([[1.0, 1.0], [0.0, 1.0]]), "diag", "component 1"),
    ],
)
def test_mixture_bad_input_names_the_problem(weights, means, covariances, covariance_type, match):
    with pytest.raises(ValueError, match=match):
        mixture_logpdf(np.zeros((4, 2)), weights, means, covariances, covariance_type)
