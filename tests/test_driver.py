"""The EM driver: its hooks are declared, and a second estimator can subclass it.

Reference: a numpy/scipy EM step written below for a mixture whose weights stay
fixed at 1/K (responsibilities from scipy.stats.multivariate_normal, weighted
means and np.cov), an estimator the driver must support by overriding one hook.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gmm import GaussianMixture, em
from gmm.driver import BaseMixture


class EqualWeightsMixture(GaussianMixture):
    """Weights fixed at 1/K: only the M-step hook changes."""

    def _m_step(self, scatter, previous, family, dtype):
        k = scatter.nk.shape[0]
        return em.maximization(scatter, family, self.reg_covar, np.full(k, 1 / k), previous, dtype)


def _numpy_step(X, means, covs):
    k = len(means)
    dens = np.column_stack([multivariate_normal(means[j], covs[j]).pdf(X) / k for j in range(k)])
    resp = dens / dens.sum(axis=1, keepdims=True)
    new_means = resp.T @ X / resp.sum(axis=0)[:, None]
    new_covs = np.array([np.cov(X, rowvar=False, aweights=resp[:, j], bias=True) for j in range(k)])
    return new_means, new_covs


def test_hooks_are_declared_abstract():
    assert {
        "_check_parameters",
        "_initialize",
        "_estep_log_weights",
        "_estep_log_normalizer",
        "_m_step",
        "_lower_bound",
        "_get_parameters",
        "_set_parameters",
    } <= BaseMixture.__abstractmethods__

    class NoHooks(BaseMixture):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoHooks()


def test_a_subclass_with_its_own_m_step_runs_em_as_written(moons):
    means = np.array([[-0.5, 0.5], [1.5, -0.2]])
    covs = np.array([np.eye(2) * 0.5, np.eye(2) * 0.3])
    model = EqualWeightsMixture(
        2,
        tol=0,
        max_iter=4,
        reg_covar=0,
        weights_init=[0.5, 0.5],
        means_init=means,
        precisions_init=np.linalg.inv(covs),
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(moons)
    for _ in range(4):
        means, covs = _numpy_step(moons, means, covs)
    np.testing.assert_allclose(model.weights_, [0.5, 0.5])
    np.testing.assert_allclose(model.means_, means, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, covs, rtol=1e-9, atol=1e-12)
    # The driver's prediction methods use the subclass's E-step hooks.
    np.testing.assert_allclose(model.predict_proba(moons).sum(axis=1), 1)


def test_fit_predict_is_the_final_e_step(moons):
    model = GaussianMixture(3, random_state=0)
    labels = model.fit_predict(moons)
    np.testing.assert_array_equal(labels, model.predict(moons))
