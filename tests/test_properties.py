"""Properties that hold for any valid input, checked with hypothesis.

References are independent of the code under test: scipy.stats.multivariate_normal
for densities, numpy for inverses, the data with rows repeated for integer
weights, closed-form equivariance for scaling, and the generating parameters
(with their standard errors) for sample-then-fit.

Parameters are drawn as a seed for numpy's generator plus a few shape and
conditioning numbers: hypothesis then explores and shrinks the sizes, types and
condition numbers, and numpy fills in the arrays.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gmm import GaussianMixture, load, save

from .mixture_data import COVARIANCE_TYPES, component_matrix

ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def examples(n: int):
    # derandomize: the suite runs the same examples every time (no flaky CI).
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ------------------------------------------------------------- generators
def random_covariance(rng, d, log10_condition):
    """Q diag(lambda) Q' with eigenvalues spread over ``log10_condition`` decades."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eigenvalues = 10.0 ** rng.uniform(-log10_condition / 2, log10_condition / 2, size=d)
    cov = (q * eigenvalues) @ q.T
    return (cov + cov.T) / 2


def random_parameters(seed, covariance_type, k, d, log10_condition=2.0, spread=5.0):
    """(weights, means, covariances, precisions) in the shapes ``covariance_type`` uses.

    Precisions come from ``np.linalg.inv`` (or 1/x), not from the code under test.
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 2.0))
    means = rng.uniform(-spread, spread, size=(k, d))
    if covariance_type == "full":
        cov = np.stack([random_covariance(rng, d, log10_condition) for _ in range(k)])
        precisions = np.linalg.inv(cov)
        precisions = (precisions + np.swapaxes(precisions, 1, 2)) / 2
    elif covariance_type == "tied":
        cov = random_covariance(rng, d, log10_condition)
        precisions = np.linalg.inv(cov)
        precisions = (precisions + precisions.T) / 2
    elif covariance_type == "diag":
        cov = 10.0 ** rng.uniform(-log10_condition / 2, log10_condition / 2, size=(k, d))
        precisions = 1.0 / cov
    else:
        cov = 10.0 ** rng.uniform(-log10_condition / 2, log10_condition / 2, size=k)
        precisions = 1.0 / cov
    return weights, means, cov, precisions


def model_from(weights, means, precisions, covariance_type, X, dtype=np.float64):
    """A fitted GaussianMixture holding exactly the given parameters (max_iter=0)."""
    model = GaussianMixture(
        len(weights),
        covariance_type=covariance_type,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
        max_iter=0,
    )
    return model.fit(np.asarray(X, dtype=dtype))


def scipy_log_density(X, weights, means, covariances, covariance_type):
    d = means.shape[1]
    columns = [
        np.log(weights[k])
        + np.atleast_1d(
            multivariate_normal(
                means[k], component_matrix(covariances, covariance_type, k, d)
            ).logpdf(X)
        )
        for k in range(len(weights))
    ]
    return logsumexp(np.column_stack(columns), axis=1)


def fixed_start(seed, covariance_type, k, d):
    """Initial parameters (weights, means, precisions) for fits that must not depend on k-means."""
    weights, means, _, precisions = random_parameters(seed + 1, covariance_type, k, d)
    return dict(weights_init=weights, means_init=means, precisions_init=precisions)


def mixture_data(seed, covariance_type, k, d, n):
    weights, means, cov, _ = random_parameters(seed, covariance_type, k, d, log10_condition=1.0)
    rng = np.random.default_rng(seed + 2)
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d))
    for j in range(k):
        rows = labels == j
        X[rows] = rng.multivariate_normal(
            means[j], component_matrix(cov, covariance_type, j, d), size=rows.sum()
        )
    return X


shapes = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.sampled_from(COVARIANCE_TYPES),
    st.integers(1, 3),  # K
    st.integers(1, 4),  # D
)


# ---------------------------------------------------------- 1. densities
@examples(60)
@given(shape=shapes, log10_condition=st.floats(0.0, 6.0))
def test_score_samples_equals_scipy(shape, log10_condition):
    seed, covariance_type, k, d = shape
    weights, means, cov, precisions = random_parameters(
        seed, covariance_type, k, d, log10_condition
    )
    X = np.random.default_rng(seed).normal(scale=4.0, size=(max(k, 2) + 5, d))
    model = model_from(weights, means, precisions, covariance_type, X)
    expected = scipy_log_density(X, weights, means, cov, covariance_type)
    # Precisions with condition number 10^c are inverted at relative cost eps * 10^c.
    rtol = 1e-12 * 10**log10_condition + 1e-12
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=rtol, atol=rtol)


# ----------------------------------------------- 2. responsibilities
@examples(40)
@given(shape=shapes, far=st.floats(1.0, 1e4))
def test_predict_proba_is_a_distribution_and_predict_its_argmax(shape, far):
    seed, covariance_type, k, d = shape
    weights, means, cov, precisions = random_parameters(seed, covariance_type, k, d)
    X = np.random.default_rng(seed).normal(scale=far, size=(max(k, 2) + 10, d))
    model = model_from(weights, means, precisions, covariance_type, X)
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # Same ordering as the reference's per-component log-densities.
    log_joint = np.column_stack(
        [
            np.log(weights[j])
            + np.atleast_1d(
                multivariate_normal(means[j], component_matrix(cov, covariance_type, j, d)).logpdf(
                    X
                )
            )
            for j in range(k)
        ]
    )
    labels = model.predict(X)
    best = log_joint.max(axis=1)
    # Ties aside (within rounding), the label is the reference's argmax.
    assert np.all(log_joint[np.arange(len(X)), labels] >= best - 1e-8 * (1 + np.abs(best)))


# ----------------------------------------------- 3. row order
@examples(25)
@given(shape=shapes, permutation_seed=st.integers(0, 2**32 - 1))
def test_permuting_rows_leaves_the_fit_unchanged(shape, permutation_seed):
    seed, covariance_type, k, d = shape
    X = mixture_data(seed, covariance_type, k, d, n=60 * k)
    order = np.random.default_rng(permutation_seed).permutation(len(X))
    settings_ = dict(covariance_type=covariance_type, tol=0.0, max_iter=5)
    start = fixed_start(seed, covariance_type, k, d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(k, **settings_, **start).fit(X)
        b = GaussianMixture(k, **settings_, **start).fit(X[order])
    # Sums taken in another order round differently; nothing else may change.
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-10)


# ----------------------------------------------- 4. scale equivariance
@examples(30)
@given(
    shape=shapes.filter(lambda s: s[1] in ("full", "diag")),
    log10_c=st.floats(-3.0, 3.0),
    negative=st.booleans(),
)
def test_scaling_x_shifts_the_mean_log_likelihood_by_d_log_c(shape, log10_c, negative):
    seed, covariance_type, k, d = shape
    c = (-1.0 if negative else 1.0) * 10.0**log10_c
    X = mixture_data(seed, covariance_type, k, d, n=50 * k)
    start = fixed_start(seed, covariance_type, k, d)
    scaled_start = dict(
        weights_init=start["weights_init"],
        means_init=c * start["means_init"],
        precisions_init=start["precisions_init"] / c**2,
    )
    reg = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(k, covariance_type=covariance_type, reg_covar=reg, tol=0, max_iter=4)
        a.set_params(**start).fit(X)
        b = GaussianMixture(
            k, covariance_type=covariance_type, reg_covar=reg * c**2, tol=0, max_iter=4
        )
        b.set_params(**scaled_start).fit(c * X)
    shift = -d * math.log(abs(c))
    np.testing.assert_allclose(
        np.array(b.lower_bounds_) - shift, a.lower_bounds_, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(b.score(c * X) - shift, a.score(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.means_ / c, a.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(b.covariances_ / c**2, a.covariances_, rtol=1e-8, atol=1e-12)


# ----------------------------------------------- 5. integer weights
@examples(25)
@given(shape=shapes, weight_seed=st.integers(0, 2**32 - 1))
def test_integer_sample_weight_equals_repeated_rows(shape, weight_seed):
    seed, covariance_type, k, d = shape
    X = mixture_data(seed, covariance_type, k, d, n=40 * k)
    weights = np.random.default_rng(weight_seed).integers(0, 4, size=len(X))
    weights[: 2 * k] = np.maximum(weights[: 2 * k], 1)  # enough rows stay
    start = fixed_start(seed, covariance_type, k, d)
    settings_ = dict(covariance_type=covariance_type, tol=0.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(k, **settings_, **start).fit(X, sample_weight=weights)
        repeated = GaussianMixture(k, **settings_, **start).fit(np.repeat(X, weights, axis=0))
    for name in ATTRIBUTES:
        np.testing.assert_allclose(
            getattr(weighted, name), getattr(repeated, name), rtol=1e-8, atol=1e-10
        )
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)


@examples(20)
@given(
    shape=shapes,
    weight_seed=st.integers(0, 2**32 - 1),
    log2_factor=st.integers(-1000, 1000),
)
def test_a_common_factor_on_the_weights_never_changes_the_fit(shape, weight_seed, log2_factor):
    # Weights are relative (gmm.validation.fit_weights): w and c·w, for any c from
    # 2^-1000 to 2^1000, give the same parameters (their sums over- or underflow).
    seed, covariance_type, k, d = shape
    X = mixture_data(seed, covariance_type, k, d, n=40 * k)
    weights = np.random.default_rng(weight_seed).uniform(0.1, 3.0, size=len(X))
    start = fixed_start(seed, covariance_type, k, d)
    settings_ = dict(covariance_type=covariance_type, tol=0.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = GaussianMixture(k, **settings_, **start).fit(X, sample_weight=weights)
        scaled = GaussianMixture(k, **settings_, **start).fit(
            X, sample_weight=np.ldexp(weights, log2_factor)
        )
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(scaled, name), getattr(plain, name), rtol=1e-10)


# ----------------------------------------------- 6. sample then fit
@examples(12)
@given(
    seed=st.integers(0, 2**32 - 1),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    k=st.integers(1, 3),
    d=st.integers(1, 3),
)
def test_fit_recovers_the_parameters_it_sampled_from(seed, covariance_type, k, d):
    # Well-separated components (means >= 12 standard deviations apart) so that the
    # maximum-likelihood fit is the generating model up to sampling error.
    weights, means, cov, precisions = random_parameters(
        seed, covariance_type, k, d, log10_condition=1.0, spread=30.0
    )
    weights = (weights + 0.5 / k) / 1.5  # every weight >= 1/(3k)
    rng = np.random.default_rng(seed)
    for j in range(1, k):  # push means apart along the first axis
        means[j, 0] = means[j - 1, 0] + 12 * np.sqrt(10) + rng.uniform(0, 10)
    n = 3000 * k
    truth = model_from(weights, means, precisions, covariance_type, means.repeat(2, axis=0))
    X, _ = truth.sample(n, random_state=seed % 2**31)
    fitted = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
    order = [int(np.argmin(np.linalg.norm(fitted.means_ - m, axis=1))) for m in means]
    assert sorted(order) == list(range(k))
    # Tolerances: 6 standard errors of each estimate from n_k = n w_k samples.
    np.testing.assert_array_less(
        np.abs(fitted.weights_[order] - weights), 6 * np.sqrt(weights * (1 - weights) / n) + 1e-12
    )
    for j, fitted_j in enumerate(order):
        n_j = n * weights[j]
        true_cov = component_matrix(cov, covariance_type, j, d)
        got_cov = component_matrix(fitted.covariances_, covariance_type, fitted_j, d)
        scale = np.sqrt(np.diag(true_cov))
        np.testing.assert_array_less(
            np.abs(fitted.means_[fitted_j] - means[j]), 6 * scale / np.sqrt(n_j)
        )
        # Var(S_ab) = (S_aa S_bb + S_ab^2) / n_j <= 2 S_aa S_bb / n_j.
        bound = 6 * np.sqrt(2 / n_j) * np.outer(scale, scale)
        if covariance_type == "tied":
            bound = 6 * np.sqrt(2 / n) * np.outer(scale, scale)
        np.testing.assert_array_less(np.abs(got_cov - true_cov), bound + 1e-6)


# ----------------------------------------------- 7. save then load
@examples(25)
@given(
    shape=shapes,
    dtype=st.sampled_from([np.float32, np.float64]),
    max_iter=st.sampled_from([0, 1, 3]),
)
def test_save_then_load_is_the_identity(shape, dtype, max_iter):
    seed, covariance_type, k, d = shape
    X = mixture_data(seed, covariance_type, k, d, n=30 * k).astype(dtype)
    start = fixed_start(seed, covariance_type, k, d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(k, covariance_type=covariance_type, max_iter=max_iter, **start)
        model.fit(X)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.npz")
        save(model, path)
        loaded = load(path)
    for name in ATTRIBUTES:
        a, b = getattr(loaded, name), getattr(model, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert (loaded.n_iter_, loaded.converged_) == (model.n_iter_, model.converged_)
    assert loaded.lower_bound_ == model.lower_bound_
    for name, value in model.get_params().items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(loaded.get_params()[name], value), name
        else:
            assert loaded.get_params()[name] == value, name
    assert np.array_equal(loaded.score_samples(X), model.score_samples(X))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


# ----------------------------------------------- 8. EM never goes downhill
@examples(25)
@given(shape=shapes)
def test_em_lower_bound_never_decreases(shape):
    seed, covariance_type, k, d = shape
    X = mixture_data(seed, covariance_type, k, d, n=40 * k)
    # Start near the generating model (mixture_data draws from seed's parameters),
    # so that no component collapses: without reg_covar EM is exactly monotone.
    _, means, _, precisions = random_parameters(seed, covariance_type, k, d, log10_condition=1.0)
    rng = np.random.default_rng(seed + 3)
    start = dict(
        weights_init=np.full(k, 1 / k),
        means_init=means + rng.normal(scale=0.5, size=means.shape),
        precisions_init=precisions / 2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(
            k, covariance_type=covariance_type, reg_covar=0.0, tol=0.0, max_iter=15, **start
        )
        model.fit(X)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.isfinite(bounds))
    # Up to the rounding of a mean of log-likelihoods.
    assert np.all(np.diff(bounds) >= -1e-10 * (1 + np.abs(bounds[1:])))


# --------------------------------- 9. a model's parameters are a valid start
@examples(20)
@given(shape=shapes.filter(lambda s: s[2] >= 2))
def test_a_fitted_models_parameters_are_a_valid_start(shape):
    seed, covariance_type, k, d = shape
    X = mixture_data(seed, covariance_type, k, d, n=30 * k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(k, covariance_type=covariance_type, max_iter=5)
        model.set_params(**fixed_start(seed, covariance_type, k, d)).fit(X)
    again = model_from(model.weights_, model.means_, model.precisions_, covariance_type, X)
    np.testing.assert_allclose(again.score_samples(X), model.score_samples(X), rtol=1e-9)


# Fixed: the M-step normalises the weights by their sum, as scikit-learn does.
def test_a_single_components_weight_is_a_valid_start():
    X = mixture_data(0, "spherical", 1, 1, n=30)
    model = GaussianMixture(1, covariance_type="spherical", max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.set_params(**fixed_start(0, "spherical", 1, 1)).fit(X)
    again = model_from(model.weights_, model.means_, model.precisions_, "spherical", X)
    np.testing.assert_allclose(again.score_samples(X), model.score_samples(X), rtol=1e-9)
