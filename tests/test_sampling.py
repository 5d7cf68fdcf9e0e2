"""gmm.sampling: moments of the draws, numpy's check_valid semantics, singular covariances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gmm import GaussianMixture, sample_mvn
from gmm.sampling import SingularCovarianceWarning, colorize

MEAN = np.array([1.0, -2.0, 0.5])
FULL = np.array([[2.0, 0.8, -0.3], [0.8, 1.0, 0.2], [-0.3, 0.2, 0.5]])


def _assert_moments_within_4_standard_errors(Y, mean, cov):
    """Sample mean and covariance against the truth, in units of their standard errors.

    For Gaussian data, var(mean_i) = S_ii / n and var(cov_ij) ≈ (S_ii S_jj + S_ij²) / n.
    """
    n = Y.shape[0]
    variances = np.diag(cov)
    mean_se = np.sqrt(variances / n)
    assert np.all(np.abs(Y.mean(axis=0) - mean) < 4 * mean_se)
    cov_se = np.sqrt((np.outer(variances, variances) + cov**2) / n)
    assert np.all(np.abs(np.cov(Y.T) - cov) < 4 * cov_se)


@pytest.mark.parametrize(
    ("cov", "full"),
    [
        (0.7, 0.7 * np.eye(3)),  # spherical
        (np.array([0.5, 2.0, 1.5]), np.diag([0.5, 2.0, 1.5])),  # diagonal
        (FULL, FULL),
    ],
    ids=["spherical", "diag", "full"],
)
def test_moments_of_a_million_draws(cov, full):
    Y = sample_mvn(MEAN, cov, size=1_000_000, random_state=0)
    assert Y.shape == (1_000_000, 3)
    _assert_moments_within_4_standard_errors(Y, MEAN, full)


def test_eigh_method_has_the_same_moments():
    Y = sample_mvn(MEAN, FULL, size=200_000, random_state=1, method="eigh")
    _assert_moments_within_4_standard_errors(Y, MEAN, FULL)


def test_not_psd_raises_warns_or_is_ignored():
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    with pytest.raises(ValueError, match="not symmetric positive-semidefinite"):
        sample_mvn([0.0, 0.0], bad, size=5, check_valid="raise")
    with pytest.warns(RuntimeWarning, match="not symmetric positive-semidefinite"):
        Y = sample_mvn([0.0, 0.0], bad, size=5, check_valid="warn")
    assert np.all(np.isfinite(Y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_mvn([0.0, 0.0], bad, size=5, check_valid="ignore")


def test_asymmetric_and_negative_variances_are_not_psd():
    with pytest.raises(ValueError, match="not symmetric positive-semidefinite"):
        sample_mvn([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], check_valid="raise")
    with pytest.raises(ValueError, match="not symmetric positive-semidefinite"):
        sample_mvn([0.0, 0.0], [1.0, -1.0], check_valid="raise")
    with pytest.raises(ValueError, match="not symmetric positive-semidefinite"):
        sample_mvn([0.0, 0.0], -0.5, check_valid="raise")


def test_singular_psd_falls_back_to_eigh_with_a_note():
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])  # rank 1: y0 == y1
    with pytest.warns(SingularCovarianceWarning, match="falls back"):
        Y = sample_mvn([0.0, 3.0], singular, size=50_000, random_state=0)
    np.testing.assert_allclose(Y[:, 1] - Y[:, 0], 3.0, atol=1e-12)
    assert abs(Y[:, 0].var() - 1.0) < 4 * np.sqrt(2 / 50_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_mvn([0.0, 3.0], singular, size=5, method="eigh")


def test_size_shapes_reproducibility_and_generators():
    assert sample_mvn(MEAN, FULL).shape == (3,)
    assert sample_mvn(MEAN, FULL, size=(4, 5)).shape == (4, 5, 3)
    assert sample_mvn(MEAN, FULL, size=0).shape == (0, 3)
    np.testing.assert_array_equal(
        sample_mvn(MEAN, FULL, 10, random_state=3), sample_mvn(MEAN, FULL, 10, random_state=3)
    )
    a = sample_mvn(MEAN, FULL, 10, random_state=np.random.default_rng(3))
    b = sample_mvn(MEAN, FULL, 10, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert sample_mvn(MEAN.astype(np.float32), FULL, 4).dtype == np.float32


def test_colorize_multiplies_by_the_transposed_cholesky_factor():
    z = np.random.default_rng(0).standard_normal((7, 3))
    np.testing.assert_allclose(colorize(z, FULL), z @ np.linalg.cholesky(FULL).T, rtol=1e-14)
    np.testing.assert_allclose(colorize(z, np.array([4.0, 9.0, 1.0])), z * [2.0, 3.0, 1.0])
    np.testing.assert_allclose(colorize(z, 4.0), 2.0 * z)
    assert colorize(z.astype(np.float32), FULL).dtype == np.float32


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
def test_estimator_sample_goes_through_the_same_factor_code(covariance_type):
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 5])
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    Y, y = model.sample(20_000, random_state=0)
    for k in range(2):
        draws = Y[y == k]
        np.testing.assert_allclose(draws.mean(axis=0), model.means_[k], atol=0.1)


@pytest.mark.parametrize(
    ("mean", "cov", "kwargs", "match"),
    [
        ([0.0, 0.0], np.eye(3), {}, r"cov has shape \(3, 3\) but mean has shape \(2,\)"),
        ([0.0, 0.0], np.ones((2, 3)), {}, "cov must be square"),
        ([0.0, 0.0], np.ones(3), {}, "per-feature variances"),
        ([0.0, np.nan], np.eye(2), {}, "mean contains NaN"),
        ([0.0, 0.0], [[1.0, np.nan], [np.nan, 1.0]], {}, "cov contains NaN"),
        ([[0.0, 0.0]], np.eye(2), {}, "mean must be 1-D"),
        ([0.0, 0.0], np.ones((2, 2, 2)), {}, "must be a scalar"),
        ([0.0, 0.0], np.eye(2), {"check_valid": "maybe"}, "check_valid must be one of"),
        ([0.0, 0.0], np.eye(2), {"method": "svd"}, "method must be one of"),
        ([0.0, 0.0], np.eye(2), {"tol": -1.0}, "tol must be"),
        ([0.0, 0.0], np.eye(2), {"size": -3}, "size must be"),
        ([0.0, 0.0], np.eye(2), {"size": 2.5}, "size must be"),
        (["a", "b"], np.eye(2), {}, "mean must be numeric"),
    ],
)
def test_bad_input_names_the_problem(mean, cov, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_mvn(mean, cov, **kwargs)


def test_a_0d_array_size_is_taken_as_numpy_takes_it():
    expected = sample_mvn([0, 0], 1.0, 2, random_state=0)
    np.testing.assert_array_equal(sample_mvn([0, 0], 1.0, np.array(2), random_state=0), expected)
    with pytest.raises(ValueError, match="size must be a non-negative int"):
        sample_mvn([0, 0], 1.0, 2.5)
