"""Covariance families against independent references (np.cov, np.linalg, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gmm.covariance import CollapsedComponentError, covariance_types, get_family
from gmm.em import Parameters, prepare, weighted_log_prob

from .mixture_data import component_matrix, precisions_of, random_covariances


def test_registry_lists_valid_names_on_unknown():
    assert set(covariance_types()) == {"spherical", "diag", "full", "tied"}
    with pytest.raises(ValueError, match="Valid covariance types are: 'spherical'"):
        get_family("banana")


@pytest.mark.parametrize(
    "name, expected",
    # Closed forms: free parameters of the covariances alone, K=3, D=4.
    [("full", 3 * 4 * 5 // 2), ("tied", 4 * 5 // 2), ("diag", 3 * 4), ("spherical", 3)],
)
def test_n_parameters_closed_form(name, expected):
    assert get_family(name).n_parameters(3, 4) == expected


@pytest.mark.parametrize("name", covariance_types())
@pytest.mark.parametrize("d", [1, 3, 7])
def test_factor_roundtrips_against_numpy_inverse(name, d):
    rng = np.random.default_rng(d)
    family = get_family(name)
    cov = random_covariances(rng, name, 3, d)
    factor = family.precision_cholesky(cov)
    prec = family.precisions(factor)
    np.testing.assert_allclose(prec, precisions_of(cov, name), rtol=1e-10)
    np.testing.assert_allclose(family.covariances(factor), cov, rtol=1e-10)
    np.testing.assert_allclose(family.precision_cholesky_from_precisions(prec), factor, rtol=1e-10)
    if factor.ndim >= 2 and name in ("full", "tied"):
        # Upper triangular, as scikit-learn's precisions_cholesky_.
        assert np.allclose(np.tril(factor, -1), 0)


@pytest.mark.parametrize("name", covariance_types())
@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("d", [1, 2, 5, 20])
def test_log_density_equals_scipy(name, offset, d):
    rng = np.random.default_rng(d)
    family = get_family(name)
    K = 4
    cov = random_covariances(rng, name, K, d)
    means = rng.normal(offset, 3, size=(K, d))
    X = rng.normal(offset, 4, size=(300, d))
    weights = np.full(K, 1 / K)
    params = Parameters(weights, means, cov, family.precision_cholesky(cov))
    shift = X.mean(axis=0)
    coefs, const = prepare(params, family, shift, _ml_log_const(params, family))
    Xc = X - shift
    log_prob, _ = weighted_log_prob(Xc, family.features(Xc), family, coefs, const)
    expected = np.column_stack(
        [
            np.log(weights[k])
            + multivariate_normal(means[k], component_matrix(cov, name, k, d)).logpdf(X)
            for k in range(K)
        ]
    )
    np.testing.assert_allclose(log_prob.T, expected, rtol=1e-9)


def test_full_uses_centred_path_for_tight_components_and_stays_accurate():
    # Tight components (std 1e-3 in a range of 10): the expansion would cancel.
    rng = np.random.default_rng(0)
    family = get_family("full")
    d, K = 5, 3
    means = rng.uniform(-5, 5, size=(K, d))
    cov = np.stack([1e-6 * np.eye(d) + 1e-7 * np.ones((d, d)) for _ in range(K)])
    X = np.vstack(
        [rng.multivariate_normal(m, c, size=100) for m, c in zip(means, cov, strict=True)]
    )
    params = Parameters(np.full(K, 1 / K), means, cov, family.precision_cholesky(cov))
    shift = X.mean(axis=0)
    coefs, const = prepare(params, family, shift, _ml_log_const(params, family))
    assert coefs.centred.size == K and coefs.fast.size == 0
    Xc = X - shift
    log_prob, _ = weighted_log_prob(Xc, family.features(Xc), family, coefs, const)
    expected = np.column_stack(
        [np.log(1 / K) + multivariate_normal(means[k], cov[k]).logpdf(X) for k in range(K)]
    )
    np.testing.assert_allclose(log_prob.T, expected, rtol=1e-9)


def test_full_uses_fast_path_for_well_conditioned_components():
    rng = np.random.default_rng(1)
    family = get_family("full")
    cov = random_covariances(rng, "full", 4, 6)
    means = rng.normal(0, 3, size=(4, 6))
    params = Parameters(np.full(4, 0.25), means, cov, family.precision_cholesky(cov))
    coefs, _ = prepare(params, family, np.zeros(6), _ml_log_const(params, family))
    assert coefs.fast.size == 4 and coefs.centred.size == 0


@pytest.mark.parametrize("name", ["full", "diag", "spherical"])
def test_collapse_names_the_component(name):
    family = get_family(name)
    cov = random_covariances(np.random.default_rng(0), name, 4, 3)
    if name == "full":
        cov[2] = np.zeros((3, 3))
    else:
        cov[2] = 0
    with pytest.raises(CollapsedComponentError, match="component 2 ") as info:
        family.precision_cholesky(cov)
    assert info.value.component == 2
    assert "reg_covar" in str(info.value)


def test_tied_collapse_names_shared_covariance():
    with pytest.raises(CollapsedComponentError, match="shared covariance"):
        get_family("tied").precision_cholesky(np.zeros((3, 3)))


def test_float32_collapse_message_suggests_float64():
    with pytest.raises(CollapsedComponentError, match="float64"):
        get_family("diag").precision_cholesky(np.zeros((2, 2), dtype=np.float32))


def _ml_log_const(params, family):
    """Maximum likelihood's E-step constant, log(weight) + log normaliser."""
    from gmm.em import LOG_2PI, log_det_precision

    d = params.means.shape[1]
    return np.log(params.weights) + log_det_precision(params, family) - 0.5 * d * LOG_2PI
