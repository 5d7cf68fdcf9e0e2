"""gmm.gaussian.Gaussian: whiten, colorize and log_det against independent references.

References: scipy.stats.multivariate_normal for log-densities, np.linalg.slogdet
for log-determinants, np.linalg.solve / np.linalg.inv for Mahalanobis
distances, np.linalg.eigh for principal axes, np.cov of colorized draws for the
covariance, and closed forms for the diagonal cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from gmm.gaussian import Gaussian, SingularCovarianceWarning

MEAN = np.array([1.0, -2.0, 0.5])
FULL = np.array([[2.0, 0.8, -0.3], [0.8, 1.0, 0.2], [-0.3, 0.2, 0.5]])


def precision_cholesky(cov):
    """Upper U with inv(cov) = U @ U.T, as inv(L).T for the lower Cholesky L (numpy only).

    inv() does not know L is triangular: its round-off above the diagonal is zeroed.
    """
    return np.triu(np.linalg.inv(np.linalg.cholesky(cov)).T)


def dense(cov, d):
    cov = np.asarray(cov, dtype=np.float64)
    return cov * np.eye(d) if cov.ndim == 0 else np.diag(cov) if cov.ndim == 1 else cov


# Every representation of the same three covariances: (id, builder, dense covariance).
REPRESENTATIONS = [
    ("scalar", lambda: Gaussian.from_covariance(MEAN, 0.7), 0.7 * np.eye(3)),
    (
        "vector",
        lambda: Gaussian.from_covariance(MEAN, [0.5, 2.0, 1.5]),
        np.diag([0.5, 2.0, 1.5]),
    ),
    ("cholesky", lambda: Gaussian.from_covariance(MEAN, FULL), FULL),
    (
        "precision_cholesky",
        lambda: Gaussian.from_precision_cholesky(MEAN, precision_cholesky(FULL)),
        FULL,
    ),
    (
        "precision_scale",
        lambda: Gaussian.from_precision_cholesky(MEAN, 1 / np.sqrt([0.5, 2.0, 1.5])),
        np.diag([0.5, 2.0, 1.5]),
    ),
    (
        "eigh",
        lambda: Gaussian.from_psd_covariance(MEAN, FULL, method="eigh"),
        FULL,
    ),
]
IDS = [r[0] for r in REPRESENTATIONS]


@pytest.mark.parametrize(("name", "build", "cov"), REPRESENTATIONS, ids=IDS)
def test_log_det_is_slogdet(name, build, cov):
    sign, logdet = np.linalg.slogdet(cov)
    assert sign == 1
    np.testing.assert_allclose(build().log_det, logdet, rtol=1e-12)


@pytest.mark.parametrize(("name", "build", "cov"), REPRESENTATIONS, ids=IDS)
def test_logpdf_is_scipys(name, build, cov):
    X = np.random.default_rng(0).normal(size=(500, 3)) * 2 + MEAN
    expected = multivariate_normal(MEAN, cov).logpdf(X)
    np.testing.assert_allclose(build().logpdf(X), expected, rtol=1e-10)


@pytest.mark.parametrize(("name", "build", "cov"), REPRESENTATIONS, ids=IDS)
def test_whitened_norm_is_the_mahalanobis_distance(name, build, cov):
    x = np.random.default_rng(1).normal(size=(50, 3))
    white = build().whiten(x)
    expected = np.einsum("ij,ij->i", x, np.linalg.solve(cov, x.T).T)
    np.testing.assert_allclose(np.einsum("ij,ij->i", white, white), expected, rtol=1e-10)


@pytest.mark.parametrize(("name", "build", "cov"), REPRESENTATIONS, ids=IDS)
def test_factor_and_covariance_give_back_the_covariance(name, build, cov):
    gaussian = build()
    np.testing.assert_allclose(gaussian.covariance, cov, rtol=1e-12, atol=1e-14)
    factor = gaussian.factor
    rebuilt = factor @ factor.T if factor.ndim == 2 else dense(factor**2, 3)
    np.testing.assert_allclose(rebuilt, cov, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("name", "build", "cov"), REPRESENTATIONS, ids=IDS)
def test_colorized_draws_have_the_covariance(name, build, cov):
    """np.cov of 200,000 colorized draws within 4 standard errors of the truth.

    For Gaussian data var(cov_ij) ≈ (S_ii S_jj + S_ij²) / n.
    """
    n = 200_000
    Y = build().colorize(np.random.default_rng(2).standard_normal((n, 3)))
    variances = np.diag(cov)
    standard_error = np.sqrt((np.outer(variances, variances) + cov**2) / n)
    assert np.all(np.abs(np.cov(Y.T) - cov) < 4 * standard_error)


def test_closed_forms_of_the_diagonal_cases():
    x = np.array([[3.0, -4.0, 1.0]])
    spherical = Gaussian.from_covariance(np.zeros(3), 4.0)
    np.testing.assert_array_equal(spherical.whiten(x), x / 2)
    np.testing.assert_array_equal(spherical.colorize(x), 2 * x)
    assert spherical.log_det == pytest.approx(3 * np.log(4.0), rel=1e-15)
    diagonal = Gaussian.from_covariance(np.zeros(3), [1.0, 4.0, 9.0])
    np.testing.assert_array_equal(diagonal.whiten(x), [[3.0, -2.0, 1 / 3]])
    np.testing.assert_array_equal(diagonal.colorize(x), [[3.0, -8.0, 3.0]])
    assert diagonal.log_det == pytest.approx(np.log(36.0), rel=1e-15)


def test_cholesky_colorize_is_z_times_transposed_numpy_factor():
    z = np.random.default_rng(3).normal(size=(10, 3))
    expected = z @ np.linalg.cholesky(FULL).T
    np.testing.assert_allclose(Gaussian.from_covariance(MEAN, FULL).colorize(z), expected)


@pytest.mark.parametrize(("name", "build", "cov"), REPRESENTATIONS, ids=IDS)
def test_principal_axes_are_numpys_eigendecomposition(name, build, cov):
    scales, axes = build().principal_axes()
    np.testing.assert_allclose(scales**2, np.linalg.eigvalsh(cov), rtol=1e-12)
    # cov v = s² v for every axis, and the axes are orthonormal.
    np.testing.assert_allclose(cov @ axes, axes * scales**2, atol=1e-12)
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-12)


def test_float32_stays_float32():
    gaussian = Gaussian.from_covariance(MEAN.astype(np.float32), FULL)
    X = np.random.default_rng(4).normal(size=(20, 3)).astype(np.float32)
    assert gaussian.dtype == np.float32
    assert gaussian.whiten(X).dtype == gaussian.colorize(X).dtype == np.float32
    assert gaussian.logpdf(X).dtype == np.float32
    np.testing.assert_allclose(
        gaussian.logpdf(X), multivariate_normal(MEAN, FULL).logpdf(X), rtol=1e-5
    )


def test_singular_covariance_colorizes_into_its_subspace():
    ones = np.ones((2, 2))  # rank 1: all draws on the line y = x
    with pytest.warns(SingularCovarianceWarning, match="falls back"):
        gaussian = Gaussian.from_psd_covariance(np.zeros(2), ones)
    assert gaussian.kind == "eigh" and gaussian.log_det == -np.inf
    Y = gaussian.colorize(np.random.default_rng(5).normal(size=(100, 2)))
    np.testing.assert_allclose(Y[:, 0], Y[:, 1], atol=1e-12)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Gaussian.from_covariance([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), "not positive"),
        (lambda: Gaussian.from_covariance([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (lambda: Gaussian.from_covariance([0.0, 0.0], [1.0, -1.0]), "must be positive"),
        (lambda: Gaussian.from_covariance([0.0, 0.0], np.eye(3)), r"expected \(2, 2\)"),
        (lambda: Gaussian.from_covariance([[0.0, 0.0]], 1.0), "mean must be 1-D"),
        (lambda: Gaussian.from_covariance([0.0, np.nan], 1.0), "NaN"),
        (lambda: Gaussian.from_precision_cholesky([0.0, 0.0], np.tril(np.ones((2, 2)))), "upper"),
        (lambda: Gaussian.from_precision_cholesky([0.0, 0.0], -np.eye(2)), "positive diagonal"),
    ],
)
def test_validated_constructors_name_the_problem(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ---------------------------------------------------------------- property
def _covariances(d, seed, log10_condition):
    """Q diag(lambda) Q' with eigenvalues over ``log10_condition`` decades (numpy only)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eigenvalues = 10.0 ** rng.uniform(-log10_condition / 2, log10_condition / 2, size=d)
    cov = (q * eigenvalues) @ q.T
    return (cov + cov.T) / 2, eigenvalues


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    d=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    log10_condition=st.floats(0.0, 6.0),
    kind=st.sampled_from(["vector", "cholesky", "precision_cholesky", "eigh"]),
)
def test_whiten_inverts_colorize(d, seed, log10_condition, kind):
    cov, eigenvalues = _covariances(d, seed, log10_condition)
    mean = np.zeros(d)
    gaussian = {
        "vector": lambda: Gaussian.from_covariance(mean, eigenvalues),
        "cholesky": lambda: Gaussian.from_covariance(mean, cov),
        "precision_cholesky": lambda: Gaussian.from_precision_cholesky(
            mean, precision_cholesky(cov)
        ),
        "eigh": lambda: Gaussian.from_psd_covariance(mean, cov, method="eigh"),
    }[kind]()
    z = np.random.default_rng(seed).normal(size=(7, d))
    # Round trip through a factor of condition number up to 10³: a few hundred eps.
    np.testing.assert_allclose(gaussian.whiten(gaussian.colorize(z)), z, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cov": 1e-100},
        {"cov": np.eye(2) * 1e-100},
        {"prec_chol": 1e50},
        {"prec_chol": np.eye(2) * 1e50},
    ],
)
def test_a_factor_beyond_float32_is_a_clear_error_not_nan(kwargs):
    from gmm import mvn_logpdf

    x = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match=r"beyond what float32 holds.*float64"):
        mvn_logpdf(x, [0.0, 0.0], **kwargs)
    assert np.isfinite(mvn_logpdf(x.astype(np.float64), [0.0, 0.0], **kwargs)).all()


def test_a_complex_covariance_is_refused_not_cast():
    from gmm import mvn_logpdf, sample_mvn

    with pytest.raises(ValueError, match="cov must be real"):
        sample_mvn([0.0, 0.0], np.eye(2) * 1j, 2)
    with pytest.raises(ValueError, match="cov must be real"):
        mvn_logpdf(np.zeros((1, 2)), [0.0, 0.0], np.eye(2) * (1 + 1j))
