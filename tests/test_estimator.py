"""GaussianMixture against scikit-learn (the reference) and against invariants.

Reference values come from scikit-learn's GaussianMixture fitted in the same
process, scipy.stats.multivariate_normal, np.cov and closed forms; none are
copied from our own runs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture

from .mixture_data import COVARIANCE_TYPES, component_matrix, make_mixture, precisions_of

ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def assert_close(actual, desired, rtol):
    """Relative agreement, with zeros (off-diagonals) judged against the array's scale."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * np.max(np.abs(desired)))


def sklearn_start(X, n_components, covariance_type, seed=0):
    """Initial parameters from scikit-learn's own k-means start (one EM step)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=1, random_state=seed
        ).fit(X)
    return {
        "weights_init": ref.weights_,
        "means_init": ref.means_,
        "precisions_init": ref.precisions_,
    }


def fit_both(X, n_components, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(n_components, **params).fit(X)
        ref = SkGaussianMixture(n_components, **params).fit(X)
    return ours, ref


# ---------------------------------------------------------------- agreement
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("max_iter", [1, 5, 50])
@pytest.mark.parametrize("dataset, n_components", [("moons", 16), ("digits_pca", 110)])
def test_same_start_same_trajectory(request, dataset, n_components, covariance_type, max_iter):
    X = request.getfixturevalue(dataset)
    start = sklearn_start(X, n_components, covariance_type)
    ours, ref = fit_both(
        X, n_components, covariance_type=covariance_type, tol=0, max_iter=max_iter, **start
    )
    for name in ATTRIBUTES:
        assert_close(getattr(ours, name), getattr(ref, name), rtol=1e-6)
    assert_close(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-6)
    assert ours.n_iter_ == ref.n_iter_ == max_iter


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dataset, n_components", [("moons", 16), ("digits_pca", 110)])
def test_same_defaults_same_model(request, dataset, n_components, covariance_type, seed):
    X = request.getfixturevalue(dataset)
    ours, ref = fit_both(X, n_components, covariance_type=covariance_type, random_state=seed)
    for name in ATTRIBUTES:
        assert_close(getattr(ours, name), getattr(ref, name), rtol=1e-5)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-8)


@pytest.mark.parametrize("init_params", ["k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_other_inits_score_as_well_moons(moons, init_params, covariance_type):
    ours, refs = [], []
    for seed in range(10):
        a, b = fit_both(
            moons, 16, covariance_type=covariance_type, init_params=init_params, random_state=seed
        )
        ours.append(a.score(moons))
        refs.append(b.score(moons))
    assert np.mean(ours) >= np.mean(refs) - 0.02


@pytest.mark.parametrize("init_params", ["k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_other_inits_score_as_well_digits(digits_pca, init_params, covariance_type):
    # Fewer seeds and iterations than on moons, to keep the suite short.
    ours, refs = [], []
    for seed in range(2):
        a, b = fit_both(
            digits_pca,
            110,
            covariance_type=covariance_type,
            init_params=init_params,
            random_state=seed,
            max_iter=5,
        )
        ours.append(a.score(digits_pca))
        refs.append(b.score(digits_pca))
    assert np.mean(ours) >= np.mean(refs) - 0.02


def _transplant(ours: GaussianMixture) -> SkGaussianMixture:
    """A scikit-learn model holding our fitted parameters."""
    ref = SkGaussianMixture(ours.n_components, covariance_type=ours.covariance_type)
    for name in (*ATTRIBUTES, "n_features_in_", "converged_", "n_iter_", "lower_bound_"):
        setattr(ref, name, getattr(ours, name))
    return ref


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset, n_components", [("moons", 16), ("digits_pca", 110)])
def test_criteria_equal_sklearn_for_same_parameters(
    request, dataset, n_components, covariance_type
):
    X = request.getfixturevalue(dataset)
    ours = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0).fit(X)
    ref = _transplant(ours)
    np.testing.assert_allclose(ours.aic(X), ref.aic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.bic(X), ref.bic(X), rtol=1e-10)
    # 1e-9: the documented error bound of the expanded quadratic in float64
    # (gmm.covariance.base.EXPANSION_TOLERANCE).
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)


# ------------------------------------------------- independent references
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_equals_scipy(covariance_type):
    X, _, weights, means, covariances = make_mixture(covariance_type, n_components=3, d=3)
    model = GaussianMixture(
        3,
        covariance_type=covariance_type,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions_of(covariances, covariance_type),
        max_iter=0,
    ).fit(X)
    per_component = np.column_stack(
        [
            np.log(weights[k])
            + multivariate_normal(
                means[k], component_matrix(covariances, covariance_type, k, 3)
            ).logpdf(X)
            for k in range(3)
        ]
    )
    np.testing.assert_allclose(model.score_samples(X), logsumexp(per_component, axis=1), rtol=1e-10)
    expected_resp = np.exp(per_component - logsumexp(per_component, axis=1)[:, None])
    np.testing.assert_allclose(model.predict_proba(X), expected_resp, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_one_step_covariances_equal_np_cov(covariance_type, weighted):
    X, _, weights, means, covariances = make_mixture(covariance_type, n_components=3, d=3, seed=4)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 3.0, size=X.shape[0]) if weighted else np.ones(X.shape[0])
    reg = 1e-6
    model = GaussianMixture(
        3,
        covariance_type=covariance_type,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions_of(covariances, covariance_type),
        max_iter=1,
        tol=0,
        reg_covar=reg,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, sample_weight=w if weighted else None)
    # Responsibilities of the initial parameters, by scipy.
    log_p = np.column_stack(
        [
            np.log(weights[k])
            + multivariate_normal(
                means[k], component_matrix(covariances, covariance_type, k, 3)
            ).logpdf(X)
            for k in range(3)
        ]
    )
    resp = np.exp(log_p - logsumexp(log_p, axis=1)[:, None]) * w[:, None]
    full = np.stack([np.cov(X.T, aweights=resp[:, k], bias=True) for k in range(3)])
    expected = {
        "full": full + reg * np.eye(3),
        "diag": np.diagonal(full, axis1=1, axis2=2) + reg,
        "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1) + reg,
        "tied": np.einsum("k,kij->ij", resp.sum(0), full) / w.sum() + reg * np.eye(3),
    }[covariance_type]
    assert_close(model.covariances_, expected, rtol=1e-9)
    expected_means = (resp.T @ X) / resp.sum(0)[:, None]
    assert_close(model.means_, expected_means, rtol=1e-10)
    assert_close(model.weights_, resp.sum(0) / w.sum(), rtol=1e-10)


# --------------------------------------------------------------- invariants
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_lower_bound_never_decreases(moons, covariance_type):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(
            8, covariance_type=covariance_type, reg_covar=0, tol=0, max_iter=60, random_state=0
        ).fit(moons)
    bounds = np.asarray(model.lower_bounds_)
    assert len(bounds) == 60
    assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:]))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_invariants(moons, covariance_type):
    model = GaussianMixture(5, covariance_type=covariance_type, random_state=0)
    labels = model.fit_predict(moons)
    np.testing.assert_array_equal(labels, model.predict(moons))
    np.testing.assert_array_equal(
        labels,
        GaussianMixture(5, covariance_type=covariance_type, random_state=0)
        .fit(moons)
        .predict(moons),
    )
    proba = model.predict_proba(moons)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.weights_.sum(), 1, atol=1e-12)
    d = moons.shape[1]
    for k in range(model.n_components):
        prec = component_matrix(model.precisions_, covariance_type, k, d)
        cov = component_matrix(model.covariances_, covariance_type, k, d)
        np.testing.assert_allclose(prec @ cov, np.eye(d), atol=1e-10)
    assert model.score(moons) == pytest.approx(model.score_samples(moons).mean(), rel=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_moments_match_model(covariance_type):
    X, *_ = make_mixture(covariance_type, n_samples=800, n_components=3, d=3, seed=1)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    n = 200_000
    S, y = model.sample(n, random_state=0)
    assert S.shape == (n, 3) and y.shape == (n,)
    # Closed-form mixture moments.
    mean = model.weights_ @ model.means_
    second = sum(
        model.weights_[k]
        * (
            component_matrix(model.covariances_, covariance_type, k, 3)
            + np.outer(model.means_[k], model.means_[k])
        )
        for k in range(3)
    )
    cov = second - np.outer(mean, mean)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(S.mean(axis=0) - mean) < 5 * se_mean)
    centred = S - mean
    products = centred[:, :, None] * centred[:, None, :]
    se_cov = products.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(products.mean(axis=0) - cov) < 5 * se_cov + 1e-12)
    counts = np.bincount(y, minlength=3)
    se_counts = np.sqrt(n * model.weights_ * (1 - model.weights_))
    assert np.all(np.abs(counts - n * model.weights_) < 5 * se_counts)


def test_sample_order_and_random_state(moons):
    model = GaussianMixture(4, random_state=0).fit(moons)
    _, y = model.sample(500, random_state=0)
    assert np.any(np.diff(y) < 0), "samples must not come grouped by component"
    a, ya = model.sample(50, random_state=3)
    b, yb = model.sample(50, random_state=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    c, _ = model.sample(50)
    d, _ = model.sample(50)
    assert not np.array_equal(c, d)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    X, *_ = make_mixture(covariance_type, n_samples=300, n_components=3, d=2, seed=7)
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4, size=X.shape[0])
    start = sklearn_start(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, tol=0, max_iter=25, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(3, **params).fit(X, sample_weight=counts)
        repeated = GaussianMixture(3, **params).fit(np.repeat(X, counts, axis=0))
    for name in ATTRIBUTES:
        assert_close(getattr(weighted, name), getattr(repeated, name), rtol=1e-9)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


def test_weighted_lower_bound_is_weighted_mean_loglik(moons):
    w = np.linspace(0.5, 2.0, moons.shape[0])
    model = GaussianMixture(3, random_state=0, max_iter=1, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(moons, sample_weight=w)
        # lower_bound_ is the log-likelihood of the parameters before the last M-step.
        before = GaussianMixture(3, random_state=0, max_iter=0).fit(moons, sample_weight=w)
    expected = np.average(before.score_samples(moons), weights=w)
    assert model.lower_bound_ == pytest.approx(expected, rel=1e-10)


def test_icl_is_bic_plus_twice_entropy(moons):
    model = GaussianMixture(6, random_state=0).fit(moons)
    proba = model.predict_proba(moons)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(proba > 0, proba * np.log(proba), 0.0))
    assert model.icl(moons) == pytest.approx(model.bic(moons) + 2 * entropy, rel=1e-10)
    assert model.icl(moons) >= model.bic(moons)


# -------------------------------------------------------------- behaviour
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32(moons, covariance_type):
    X32 = moons.astype(np.float32)
    model = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X32)
    for name in ATTRIBUTES:
        assert getattr(model, name).dtype == np.float32, name
    assert model.score_samples(X32).dtype == np.float32
    assert model.predict_proba(X32).dtype == np.float32
    assert model.sample(5, random_state=0)[0].dtype == np.float32
    ref = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(moons)
    assert model.score(X32) == pytest.approx(ref.score(moons), rel=1e-3)


def test_more_inits_never_score_worse(moons):
    one = GaussianMixture(8, n_init=1, random_state=0).fit(moons)
    many = GaussianMixture(8, n_init=5, random_state=0).fit(moons)
    assert many.lower_bound_ >= one.lower_bound_


def test_warm_start_continues_from_current_parameters(moons):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = GaussianMixture(4, warm_start=True, max_iter=2, tol=0, random_state=0)
        warm.fit(moons)
        warm.fit(moons)
        cold = GaussianMixture(4, max_iter=4, tol=0, random_state=0).fit(moons)
    for name in ATTRIBUTES:
        assert_close(getattr(warm, name), getattr(cold, name), rtol=1e-10)


def test_convergence_warning_and_flags(moons):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = GaussianMixture(4, max_iter=2, tol=0, random_state=0).fit(moons)
    assert not model.converged_ and model.n_iter_ == 2
    model = GaussianMixture(4, random_state=0).fit(moons)
    assert model.converged_ and model.n_iter_ < 100


def test_verbose_prints_progress(moons, capsys):
    GaussianMixture(2, verbose=2, verbose_interval=1, random_state=0).fit(moons)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 1" in out and "converged" in out


def test_collapsed_component_names_component_and_fix():
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0], [2.0, 0.5], [3.0, 3.0]])
    model = GaussianMixture(2, reg_covar=0, means_init=[[0, 0], [2, 1.5]], random_state=0)
    with pytest.raises(ValueError, match=r"component \d+ has an ill-defined covariance.*reg_covar"):
        model.fit(X)


def test_pandas_feature_names(moons):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(moons, columns=["x", "y"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, ["x", "y"])
    np.testing.assert_array_equal(model.predict(frame), model.predict(moons))


# ------------------------------------------------- weights are scale-free (issue 17, class 8)
WEIGHT_FACTORS = (5e-324, 1e-300, 1e-14, 1e-5, 1.0, 1e5, 1e300, 1.7e308)


def _weighted_fit(X, w, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(2, random_state=0, tol=1e-10, **settings).fit(X, sample_weight=w)


@pytest.mark.parametrize("factor", WEIGHT_FACTORS)
@pytest.mark.parametrize(
    "settings",
    [
        dict(covariance_type="full"),
        dict(covariance_type="diag"),
        dict(covariance_type="VEV"),
        dict(covariance_type="VVV", prior="default"),
    ],
    ids=["full", "diag", "VEV", "VVV-prior"],
)
def test_uniform_weights_of_any_scale_give_the_unweighted_fit(moons, factor, settings):
    # The issue: 1e-14 moved the means by ~0.02, 1e-300 collapsed them to the global
    # mean, 1.7e308 (whose sum overflows) failed with another library's message.
    plain = _weighted_fit(moons, None, **settings)
    weighted = _weighted_fit(moons, np.full(len(moons), factor), **settings)
    for name in ATTRIBUTES:
        assert_close(getattr(weighted, name), getattr(plain, name), rtol=1e-10)
    scalar = _weighted_fit(moons, factor, **settings)  # one number for every row
    assert_close(scalar.means_, plain.means_, rtol=1e-10)


@pytest.mark.parametrize("factor", (1e-300, 1e-14, 1e300))
def test_a_common_factor_on_uneven_weights_changes_nothing(moons, factor):
    w = np.random.default_rng(3).uniform(0.0, 2.0, size=len(moons))
    w[::7] = 0.0
    reference = _weighted_fit(moons, w)
    scaled = _weighted_fit(moons, w * factor)
    for name in ATTRIBUTES:
        assert_close(getattr(scaled, name), getattr(reference, name), rtol=1e-10)
    assert scaled.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.zeros(6), "all zero"),
        (np.array([1.0, np.nan, 1, 1, 1, 1]), "NaN or infinity"),
        (np.array([1.0, np.inf, 1, 1, 1, 1]), "NaN or infinity"),
        (np.array([1.0, -1e-300, 1, 1, 1, 1]), "negative"),
        (np.ones(5), r"shape \(5,\), expected \(6,\)"),
        ("heavy", "numeric"),
    ],
    ids=["all zero", "nan", "inf", "negative", "short", "text"],
)
def test_unusable_weights_get_our_message_and_keep_the_model(weights, message):
    X = np.random.default_rng(0).normal(size=(6, 2))
    model = GaussianMixture(2, random_state=0).fit(X)
    before = model.predict_proba(X).copy()
    with pytest.raises(ValueError, match=message):
        model.fit(X, sample_weight=weights)
    with pytest.raises(ValueError, match=message):
        model.bic(X, sample_weight=weights)
    np.testing.assert_array_equal(model.predict_proba(X), before)


@pytest.mark.parametrize("covariance_type", ("full", "spherical"))
def test_criteria_and_score_with_integer_weights_equal_repeated_rows(moons, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(moons)
    counts = np.random.default_rng(5).integers(0, 4, size=len(moons))
    repeated = np.repeat(moons, counts, axis=0)
    for name in ("aic", "bic", "icl"):
        weighted = getattr(model, name)(moons, sample_weight=counts)
        assert weighted == pytest.approx(getattr(model, name)(repeated), rel=1e-10)
    assert model.score(moons, sample_weight=counts) == pytest.approx(
        model.score(repeated), rel=1e-12
    )
    # the closed form from the per-row log-likelihoods: -2 sum w ll + p log(sum w)
    ll = model.score_samples(moons)
    p = model._n_parameters()
    expected = -2 * counts @ ll + p * np.log(counts.sum())
    assert model.bic(moons, sample_weight=counts) == pytest.approx(expected, rel=1e-10)


def test_criteria_refuse_weights_whose_sum_overflows(moons):
    model = GaussianMixture(2, random_state=0).fit(moons)
    with pytest.raises(ValueError, match="sums to more than the largest float64"):
        model.bic(moons, sample_weight=np.full(len(moons), 1e307))
    assert np.isfinite(model.bic(moons, sample_weight=np.full(len(moons), 1e300)))
