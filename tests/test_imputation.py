"""GaussianMixtureImputer: scikit-learn's checks, a Pipeline, and its imputations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from gmm import GaussianMixture, GaussianMixtureImputer


@parametrize_with_checks([GaussianMixtureImputer(), GaussianMixtureImputer(2, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def correlated(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0, 1, 2], [[1, 0.9, 0.5], [0.9, 1, 0.4], [0.5, 0.4, 1]], n)
    Xm = X.copy()
    Xm[rng.random(X.shape) < 0.2] = np.nan
    Xm[np.isnan(Xm).all(axis=1), 0] = X[np.isnan(Xm).all(axis=1), 0]
    return X, Xm


def test_transform_is_the_mixtures_conditional_mean():
    _, Xm = correlated()
    imputer = GaussianMixtureImputer(2, random_state=0).fit(Xm)
    model = GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(Xm)
    np.testing.assert_array_equal(imputer.transform(Xm), model.impute(Xm))
    observed = ~np.isnan(Xm)
    np.testing.assert_array_equal(imputer.transform(Xm)[observed], Xm[observed])


def test_in_a_pipeline_before_an_estimator_that_refuses_nan():
    X, Xm = correlated()
    y = X @ [1.0, -2.0, 0.5]
    ours = make_pipeline(GaussianMixtureImputer(random_state=0), LinearRegression()).fit(Xm, y)
    mean = make_pipeline(SimpleImputer(), LinearRegression()).fit(Xm, y)
    # Correlated columns: the conditional mean recovers more of y than the column mean.
    assert ours.score(Xm, y) > mean.score(Xm, y) + 0.05


def test_failed_fit_keeps_the_fitted_imputer():
    _, Xm = correlated()
    imputer = GaussianMixtureImputer(random_state=0).fit(Xm)
    means = imputer.mixture_.means_.copy()
    bad = Xm.copy()
    bad[:, 0] = np.nan
    with pytest.raises(ValueError, match="no observed entry"):
        imputer.fit(bad)
    np.testing.assert_array_equal(imputer.mixture_.means_, means)
