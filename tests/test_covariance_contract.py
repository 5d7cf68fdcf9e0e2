"""The covariance-family interface as a contributor meets it.

A family written here only from the documented interface of
:class:`gmm.covariance.CovarianceFamily` (mclust's 'EII': one variance shared by
every component and feature), registered with :func:`gmm.covariance.register`,
must work everywhere a built-in family does: ``GaussianMixture``, ``sweep``,
``GaussianMixtureIC``, ``save``/``load``, ``sample`` and the command line.

References: a plain numpy EM step for EII written below (the closed-form M-step
of Celeux & Govaert 1995: ``sigma² = sum_k sum_n r_nk |x_n - m_k|² / (N·D)``),
and the built-in 'spherical' family on one component, where EII and VII are the
same model.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

import gmm
from gmm import GaussianMixture, GaussianMixtureIC, load, save, sweep
from gmm.cli import main
from gmm.covariance import (
    CollapsedComponentError,
    CovarianceFamily,
    covariance_types,
    get_family,
    register,
    unregister,
)
from gmm.statistics import Scatter, diagonal_from_moments


class EqualSpherical(CovarianceFamily):
    """'EII': every component has covariance sigma² I with the same sigma²."""

    name = "test-EII"
    precision_requirement = "positive, and equal for every component"
    factor_requirement = "positive"
    scatter_kind = "diagonal"

    # E-step kernels
    def features(self, X):
        return X

    def working_dtype(self, dtype, weights, means, prec_chol):
        return np.dtype(np.float64)  # the simplest precision policy: always float64

    def coefficients(self, weights, means, prec_chol):
        return means, prec_chol.astype(np.float64) ** 2

    def mahalanobis(self, X, feats, coefs):
        means, precision = coefs
        squared = ((X[None, :, :] - means[:, None, :]) ** 2).sum(axis=2)
        return squared * precision[:, None], None

    def moments(self, X, feats, resp, coefs, work):
        return (resp @ np.hstack([X * X, X]),)

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return n_features * np.log(prec_chol)

    # statistics and M-step
    def scatter(self, moments, nk, shift, coefs):
        means, variances = diagonal_from_moments(moments[0], nk, shift)
        return Scatter(nk, means, variances, self.scatter_kind)

    def estimate(self, scatter, reg_covar, previous):
        n_components, n_features = scatter.covariances.shape
        pooled = scatter.scatter.sum() / (scatter.nk.sum() * n_features)
        return np.full(n_components, pooled + reg_covar), None

    # representation
    def shape(self, n_components, n_features):
        return (n_components,)

    def n_parameters(self, n_components, n_features):
        return 1

    def precision_cholesky(self, covariances):
        if np.any(covariances <= 0):
            raise CollapsedComponentError(None, covariances.dtype)
        return 1.0 / np.sqrt(covariances)

    def precision_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions(self, prec_chol):
        return prec_chol**2

    def covariances(self, prec_chol):
        return 1.0 / prec_chol**2

    def component_covariance(self, covariances, k):
        return covariances[k]

    def is_positive_definite(self, matrices):
        matrices = np.asarray(matrices)
        return bool(np.all(np.isfinite(matrices)) and np.all(matrices > 0))

    def is_inverse_pair(self, covariances, precisions, dtype):
        return bool(np.allclose(covariances * precisions, 1, rtol=0, atol=64 * np.finfo(dtype).eps))

    def is_valid_factor(self, precisions_cholesky):
        return bool(np.all(np.asarray(precisions_cholesky) > 0))


@pytest.fixture
def eii():
    family = register(EqualSpherical())
    yield family
    unregister(family.name)


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    return centres[rng.integers(0, 3, 300)] + rng.standard_normal((300, 2))


def numpy_eii_step(X, weights, means, variance):
    """One EM step of EII written directly from the model, for reference."""
    d = X.shape[1]
    log_prob = (
        np.log(weights)
        - 0.5 * d * np.log(2 * np.pi * variance)
        - 0.5 * ((X[:, None, :] - means[None]) ** 2).sum(axis=2) / variance
    )
    resp = np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])
    nk = resp.sum(axis=0)
    new_means = resp.T @ X / nk[:, None]
    spread = (resp * ((X[:, None, :] - new_means[None]) ** 2).sum(axis=2)).sum()
    return nk / nk.sum(), new_means, spread / (X.shape[0] * d)


# ------------------------------------------------------------------ signatures
def _abstract_signatures():
    return {
        name: inspect.signature(getattr(CovarianceFamily, name))
        for name in sorted(CovarianceFamily.__abstractmethods__)
    }


@pytest.mark.parametrize("name", ["spherical", "diag", "full", "tied"])
def test_every_registered_family_has_the_interface_signatures(name):
    family = get_family(name)
    for method, expected in _abstract_signatures().items():
        got = inspect.signature(getattr(type(family), method))
        assert list(got.parameters) == list(expected.parameters), (name, method)


def test_the_contract_family_has_the_interface_signatures():
    for method, expected in _abstract_signatures().items():
        got = inspect.signature(getattr(EqualSpherical, method))
        assert list(got.parameters) == list(expected.parameters), method


def test_registry_refuses_duplicates_and_non_families(eii):
    with pytest.raises(ValueError, match="already registered"):
        register(EqualSpherical())
    with pytest.raises(TypeError, match="CovarianceFamily instance"):
        register("full")

    class Incomplete(CovarianceFamily):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


# ------------------------------------------------------------ through the API
@pytest.mark.parametrize("n_steps", [1, 5])
def test_registered_family_fits_like_the_numpy_reference(eii, X, n_steps):
    assert "test-EII" in covariance_types() and "test-EII" in gmm.covariance_types()
    weights = np.array([0.2, 0.3, 0.5])
    means = np.array([[1.0, 1.0], [4.0, -1.0], [-1.0, 4.0]])
    variance = 2.0
    model = GaussianMixture(
        3,
        covariance_type="test-EII",
        tol=0,
        max_iter=n_steps,
        reg_covar=0,
        weights_init=weights,
        means_init=means,
        precisions_init=np.full(3, 1 / variance),
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    for _ in range(n_steps):
        weights, means, variance = numpy_eii_step(X, weights, means, variance)
    np.testing.assert_allclose(model.weights_, weights, rtol=1e-12)
    np.testing.assert_allclose(model.means_, means, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.covariances_, np.full(3, variance), rtol=1e-12)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
    # mclust's count for EII: one variance, K·D means, K - 1 weights.
    assert model._n_parameters() == 1 + 3 * 2 + 3 - 1


def test_registered_family_equals_spherical_on_one_component(eii, X):
    ours = GaussianMixture(1, covariance_type="test-EII").fit(X)
    spherical = GaussianMixture(1, covariance_type="spherical").fit(X)
    np.testing.assert_allclose(ours.means_, spherical.means_, rtol=1e-12)
    np.testing.assert_allclose(ours.covariances_, spherical.covariances_, rtol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), spherical.score_samples(X), rtol=1e-12)


def test_registered_family_samples_with_its_variance(eii, X):
    model = GaussianMixture(3, covariance_type="test-EII", random_state=0).fit(X)
    draws, labels = model.sample(20_000, random_state=1)
    assert draws.shape == (20_000, 2) and labels.shape == (20_000,)
    for k in range(3):
        rows = draws[labels == k]
        np.testing.assert_allclose(rows.mean(axis=0), model.means_[k], atol=0.08)
        np.testing.assert_allclose(rows.var(axis=0), model.covariances_[k], rtol=0.08)


def test_registered_family_saves_and_loads(eii, X, tmp_path):
    model = GaussianMixture(3, covariance_type="test-EII", random_state=0).fit(X)
    save(model, tmp_path / "eii.npz")
    loaded = load(tmp_path / "eii.npz")
    assert loaded.covariance_type == "test-EII"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_registered_family_in_sweep_and_selection(eii, X):
    result = sweep(X, [1, 2, 3], ["test-EII", "spherical"], progress=False)
    rows = [row for row in result.table if row["covariance_type"] == "test-EII"]
    assert [row["n_parameters"] for row in rows] == [1 + k * 2 + k - 1 for k in (1, 2, 3)]
    direct = GaussianMixture(3, covariance_type="test-EII", random_state=0).fit(X)
    assert rows[2]["bic"] == pytest.approx(direct.bic(X), rel=1e-9)
    selection = GaussianMixtureIC(
        n_components=[1, 2, 3], covariance_type="test-EII", random_state=0
    ).fit(X)
    best = min(rows, key=lambda row: row["bic"])
    assert selection.best_estimator_.covariance_type == "test-EII"
    assert selection.best_estimator_.n_components == best["n_components"]
    assert selection.bic(X) == pytest.approx(best["bic"], rel=1e-9)


def test_registered_family_through_the_command_line(eii, X, tmp_path, capsys):
    np.save(tmp_path / "data.npy", X)
    status = main(
        ["fit", str(tmp_path / "data.npy"), "--k", "3", "--covariance", "test-EII",
         "--out", str(tmp_path / "m.npz")]
    )  # fmt: skip
    capsys.readouterr()
    assert status == 0
    model = load(tmp_path / "m.npz")
    assert model.covariance_type == "test-EII"
    status = main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "data.npy")])
    out, _ = capsys.readouterr()
    assert status == 0
    np.testing.assert_array_equal(np.array(out.split(), dtype=int), model.predict(X))
