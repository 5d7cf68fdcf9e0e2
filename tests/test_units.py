"""Scale never matters: data far from 1 fit as the unscaled data mapped back, or
raise OutOfRangeError naming why the model cannot be represented (gmm/units.py).

The reference is independent of the rescaling: EM is equivariant under x -> c x
once reg_covar is scaled with the data (reg_covar · c²), so from the same start
(fixed responsibilities) the fit of c·X is the fit of X with means · c,
covariances · c², precision factors / c, the same weights and labels, and
log-likelihoods shifted by -D log c. Whether a model is representable is decided
from the unscaled reference alone: its variances times c² must lie between the
dtype's smallest normal and largest number (cases within a factor 16 of either
limit are left out as ambiguous).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gmm import BayesianGaussianMixture, GaussianMixture
from gmm import units as units_module
from gmm.em import OutOfRangeError

FAMILIES = ("full", "tied", "diag", "spherical", "VVV", "EEE", "VEV", "EVI")
UNIVARIATE = ("E", "V")
# Powers of ten and of two, inside the kernels' safe band and far outside it.
SCALES = (1e-300, 2.0**-700, 1e-150, 1e-100, 1e-20, 1.0, 1e20, 1e100, 1e150, 2.0**600, 1e300)
SCALES32 = (1e-30, 1e-17, 2.0**-40, 1e-5, 1e5, 2.0**40, 1e17, 1e30)
RESP = np.repeat(np.eye(2), 100, axis=0)  # the start: the two clusters as drawn


def _data(n_features: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, n_features))
    X[:100] += 4.0
    X[:, 0] *= 3.0
    return X


def _fit(X, family, reg_covar, cls=GaussianMixture, **kwargs):
    settings = dict(init_params=lambda X, k, rs: RESP, tol=1e-10, max_iter=100)
    model = cls(2, covariance_type=family, reg_covar=reg_covar, **{**settings, **kwargs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def _representable(reference, c: float, dtype) -> bool | None:
    """True/False from the reference's variances at scale c; None near a limit."""
    cov = np.asarray(reference.covariances_, dtype=np.float64)
    square = cov.ndim == 3 or reference.covariance_type == "tied"
    var = np.diagonal(cov, axis1=-2, axis2=-1) if square else cov
    info = np.finfo(dtype)
    high = math.log2(var.max()) + 2 * math.log2(c)
    low = math.log2(var.min()) + 2 * math.log2(c)
    if high < math.log2(info.max) - 4 and low > math.log2(info.tiny) + 4:
        return True
    if high > math.log2(info.max) + 4 or low < math.log2(info.tiny) - 4:
        return False
    return None


def _check_scaled_fit(X, family, c, dtype, rtol):
    reference = _fit(X.astype(dtype), family, 1e-6)
    expected = _representable(reference, c, dtype)
    if expected is None:
        pytest.skip("within a factor 16 of the dtype's limits")
    scaled = X.astype(np.float64) * c
    data = scaled.astype(dtype)
    if expected is False:
        with pytest.raises(OutOfRangeError, match="cannot be represented; rescale the data"):
            _fit(data, family, 0.0)
        return
    model = _fit(data, family, 1e-6 * c * c)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        value = getattr(model, name)
        assert value.dtype == dtype, name
        assert np.all(np.isfinite(value)), name
    np.testing.assert_allclose(model.weights_, reference.weights_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(model.means_ / c, reference.means_, rtol=rtol, atol=rtol)
    cov = model.covariances_.astype(np.float64) / c / c
    np.testing.assert_allclose(cov, reference.covariances_, rtol=rtol, atol=rtol)
    log_c = X.shape[1] * math.log(c)
    assert model.lower_bound_ == pytest.approx(reference.lower_bound_ - log_c, rel=rtol, abs=rtol)
    log_prob = model.score_samples(data)
    assert np.all(np.isfinite(log_prob))
    np.testing.assert_allclose(
        log_prob + log_c, reference.score_samples(X.astype(dtype)), rtol=rtol, atol=10 * rtol
    )
    proba = model.predict_proba(data)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=10 * rtol)
    np.testing.assert_array_equal(model.predict(data), reference.predict(X.astype(dtype)))
    assert model.score(data) == pytest.approx(reference.score(X.astype(dtype)) - log_c, rel=rtol)


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("family", FAMILIES)
def test_float64_fit_at_any_scale_is_the_unscaled_fit_mapped_back_or_out_of_range(family, c):
    _check_scaled_fit(_data(), family, c, np.float64, rtol=1e-6)


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("family", UNIVARIATE)
def test_one_feature_models_at_any_scale(family, c):
    _check_scaled_fit(_data(1), family, c, np.float64, rtol=1e-6)


@pytest.mark.parametrize("c", SCALES32)
@pytest.mark.parametrize("family", ("full", "tied", "diag", "spherical", "VEV"))
def test_float32_fit_at_any_scale_is_the_unscaled_fit_mapped_back_or_out_of_range(family, c):
    _check_scaled_fit(_data(), family, c, np.float32, rtol=2e-3)


@pytest.mark.parametrize(
    "factor, dtype, words",
    [
        (1e160, np.float64, "exceed the largest float64"),
        (1e300, np.float64, "exceed the largest float64"),
        (1e-170, np.float64, "below the smallest normal float64"),
        (1e25, np.float32, "exceed the largest float32"),
        (1e-25, np.float32, "below the smallest normal float32"),
    ],
)
@pytest.mark.parametrize("n_components", (1, 2))
def test_the_issue_examples_name_the_cause_and_keep_the_fitted_model(
    factor, dtype, words, n_components
):
    # The issue: K=2 on X·1e160 raised IndexError, K=1 "zero-size array", reg_covar=0 on
    # X·1e-160 a broadcasting error, X·1e300 IndexError.
    X = _data().astype(dtype)
    model = GaussianMixture(n_components, random_state=0).fit(X)
    before = (model.predict_proba(X).copy(), model.score_samples(X).copy(), dict(model.__dict__))
    with pytest.raises(OutOfRangeError, match=words):
        model.set_params(reg_covar=0.0).fit((X.astype(np.float64) * factor).astype(dtype))
    np.testing.assert_array_equal(model.predict_proba(X), before[0])
    np.testing.assert_array_equal(model.score_samples(X), before[1])
    assert model.__dict__.keys() == before[2].keys()


def test_data_whose_differences_overflow_are_refused_with_the_reason():
    X = _data()
    X[:100, 0] = 1.5e308
    X[100:, 0] = -1.5e308
    with pytest.raises(OutOfRangeError, match="differ by more than the largest float64"):
        GaussianMixture(2, random_state=0).fit(X)


@pytest.mark.parametrize("family", ("full", "tied", "diag", "spherical"))
@pytest.mark.parametrize("c", (1e-100, 1e100))
def test_agrees_with_sklearn_where_sklearn_works(family, c):
    # scikit-learn fits 1e±100 directly in the data's units; we fit them rescaled.
    X = _data() * c
    start = _fit(_data(), family, 1e-6, max_iter=0)
    init = dict(
        weights_init=start.weights_,
        means_init=start.means_ * c,
        precisions_init=start.precisions_ / c / c,
    )
    settings = dict(covariance_type=family, reg_covar=1e-6 * c * c, tol=1e-10, max_iter=200)
    ours = GaussianMixture(2, **settings, **init).fit(X)
    theirs = SklearnGaussianMixture(2, **settings, **init).fit(X)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-6)


def test_one_component_is_the_closed_form_at_an_extreme_scale():
    # Mean and covariance (ddof=0) of the data, from numpy on the unscaled rows times
    # the exact power-of-two factor: an independent closed form at 2^600.
    X = _data()
    c = 2.0**500
    model = GaussianMixture(1, reg_covar=0.0).fit(X * c)
    np.testing.assert_allclose(model.means_[0] / c, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.covariances_[0] / c / c, np.cov(X.T, bias=True), rtol=1e-10)


def test_initial_parameters_priors_and_warm_start_are_in_the_data_units():
    X = _data()
    c = 2.0**480
    start = _fit(X, "full", 0.0, max_iter=0)
    init = dict(
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
    )
    plain = GaussianMixture(2, reg_covar=0.0, tol=1e-10, **init).fit(X)
    scaled_init = dict(init, means_init=start.means_ * c, precisions_init=start.precisions_ / c**2)
    scaled = GaussianMixture(2, reg_covar=0.0, tol=1e-10, **scaled_init).fit(X * c)
    np.testing.assert_allclose(scaled.means_ / c, plain.means_, rtol=1e-9)
    # warm start: a second fit continues from the first, in the data's units
    warm = GaussianMixture(2, reg_covar=0.0, tol=0, max_iter=3, warm_start=True, **scaled_init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm.fit(X * c).fit(X * c)
        cold = GaussianMixture(2, reg_covar=0.0, tol=0, max_iter=6, **init).fit(X)
    np.testing.assert_allclose(warm.means_ / c, cold.means_, rtol=1e-9)
    # mclust's default prior is computed from the data: in the data's units
    prior = dict(covariance_type="VVV", prior="default", random_state=0)
    a = GaussianMixture(2, **prior).fit(X)
    b = GaussianMixture(2, **prior).fit(X * c)
    np.testing.assert_allclose(b.prior_.mean / c, a.prior_.mean, rtol=1e-12)
    np.testing.assert_allclose(b.prior_.scale / c**2, a.prior_.scale, rtol=1e-12)
    np.testing.assert_allclose(b.means_ / c, a.means_, rtol=1e-6)


@pytest.mark.parametrize("family", ("full", "tied", "diag", "spherical"))
@pytest.mark.parametrize("c", (1e-150, 1e120, 2.0**500))
def test_bayesian_fit_at_any_scale_is_the_unscaled_fit_mapped_back(family, c):
    X = _data()
    settings = dict(reg_covar=0.0, cls=BayesianGaussianMixture)
    reference = _fit(X, family, **settings)
    model = _fit(X * c, family, **settings)
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.weights_, reference.weights_, rtol=1e-8)
    np.testing.assert_allclose(model.means_ / c, reference.means_, rtol=1e-8)
    np.testing.assert_allclose(model.covariances_ / c / c, reference.covariances_, rtol=1e-8)
    np.testing.assert_allclose(model.mean_prior_ / c, reference.mean_prior_, rtol=1e-12)
    np.testing.assert_allclose(
        model.covariance_prior_ / c / c, reference.covariance_prior_, rtol=1e-10
    )
    np.testing.assert_array_equal(model.predict(X * c), reference.predict(X))


def test_bayesian_lower_bound_follows_one_law_inside_and_outside_the_band():
    # In the band the data are fitted as they are, outside rescaled: the lower bound
    # at 2^e must be one linear function of e across both (no jump at the band's edge).
    X = _data()
    exponents = (0, 100, 200, 400, 500)
    bounds = [
        _fit(X * 2.0**e, "full", 0.0, cls=BayesianGaussianMixture).lower_bound_ for e in exponents
    ]
    slope = (bounds[1] - bounds[0]) / 100
    for e, bound in zip(exponents, bounds, strict=True):
        assert bound == pytest.approx(bounds[0] + slope * e, rel=1e-9)


def test_ordinary_data_are_not_rescaled():
    low, high = units_module.safe_band(np.float64)
    assert (low, high) == (2.0**-256, 2.0**256)
    X = _data()
    assert units_module.choose(X, X.mean(axis=0), X.dtype, 1e-6) is None
    size = np.abs(X - X.mean(axis=0)).max() * 1e80
    scale = units_module.choose(X * 1e80, X.mean(axis=0) * 1e80, X.dtype, 1e-6).scale
    assert math.frexp(scale)[0] == 0.5 and scale / 2 <= size <= scale  # a power of two
    # tiny data invisible beside reg_covar: fitted as they are (every covariance is reg_covar)
    assert units_module.choose(X * 1e-200, X.mean(axis=0) * 1e-200, X.dtype, 1e-6) is None


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_representable_passes_only_what_the_full_check_passes(covariance_type, dtype, monkeypatch):
    """units.representable (check_representable's fast path) never passes parameters
    that the array-by-array check refuses.

    Each array spoiled in turn (NaN, infinity, a variance below the smallest
    normal number, finite entries whose sum overflows): the shortcut says True
    only where the full check raises nothing.
    """
    from gmm.covariance import get_family

    stream = np.random.default_rng(4).normal(size=(600, 2)) + np.repeat(
        [[0, 0], [6, 0], [0, 6]], 200, axis=0
    )

    model = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(stream.astype(dtype))
    family = get_family(covariance_type)
    info = np.finfo(dtype)
    cases = [model._get_parameters()]
    for name in ("covariances", "precisions_cholesky", "means"):
        for value in (np.nan, np.inf, -np.inf, info.max):
            params = model._get_parameters()
            spoiled = getattr(params, name).copy()
            spoiled.flat[0] = value
            if value == info.max:  # finite, but a sum over the array overflows
                spoiled.flat[-1] = value
            setattr(params, name, spoiled)
            cases.append(params)
    params = model._get_parameters()
    params.covariances = params.covariances.copy()
    params.covariances.flat[0] = info.tiny / 4  # a subnormal variance (the first entry of
    cases.append(params)  # every kind is on the diagonal)
    verdicts = []
    for params in cases:
        try:
            with monkeypatch.context() as patch:  # the array-by-array check alone
                patch.setattr(units_module, "representable", lambda *args: False)
                units_module.check_representable(params, family, np.dtype(dtype), None)
            passes = True
        except OutOfRangeError:
            passes = False
        ours = units_module.representable(params, family, np.dtype(dtype))
        assert passes or not ours
        verdicts.append(ours)
    assert verdicts[0] and not any(verdicts[1:])
