"""Numerical extremes: data scaled by 1e-8 and 1e8, offset by 1e6, and with
features spanning 12 orders of magnitude.

EM is equivariant under ``x -> a * x + b`` (per-feature ``a`` for 'full',
'tied' and 'diag'; one scalar ``a`` for 'spherical') once ``reg_covar`` is 0:
started from the transformed parameters, it follows the transformed path. So
the reference is a float64 fit on the standardized data ``z = (x - mean) / a``
from the standardized start, mapped back: means ``a * m + mean``, covariances
``a a' * S``, and log-likelihoods shifted by ``-sum(log a)``.

Tolerances are in standardized units and come from the data's own rounding:
``kappa = eps(dtype) * max |x| / a`` is how far the data themselves are from
the exact transformed values (large for float32 data offset by 1e6: float32
holds 1e6 only to 1/16). Parameters must agree to a few ``kappa``;
log-likelihoods, to first order ``|z|`` times that, to ``20 kappa``; both plus
a thousand ``eps`` for the arithmetic of ten EM iterations.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gmm import GaussianMixture
from gmm.covariance._cost import FORMULATIONS, forced

from .mixture_data import COVARIANCE_TYPES, component_matrix

DTYPES = (np.float32, np.float64)
D = 3
SPAN = np.array([1e-6, 1.0, 1e6])

# name -> (scale, offset); x = z * scale + offset.
TRANSFORMS = {
    "scaled by 1e-8": (np.full(D, 1e-8), np.zeros(D)),
    "scaled by 1e8": (np.full(D, 1e8), np.zeros(D)),
    "offset by 1e6": (np.ones(D), np.full(D, 1e6)),
    "12 orders of magnitude": (SPAN, np.zeros(D)),
    "12 orders and an offset": (SPAN, np.array([0.0, 1e6, 0.0])),
}
ISOTROPIC = ("scaled by 1e-8", "scaled by 1e8", "offset by 1e6")


def _base() -> np.ndarray:
    """Two clusters of 150 points in 3-D: the first 150 rows, then the other 150."""
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])
    return np.vstack(
        [
            rng.multivariate_normal([-2.0, 0.0, 1.0], cov, 150),
            rng.multivariate_normal([2.0, 1.0, -1.0], 0.5 * np.eye(D), 150),
        ]
    )


BASE = _base()


def transformed(name, dtype) -> np.ndarray:
    scale, offset = TRANSFORMS[name]
    return (BASE * scale + offset).astype(dtype)


def tolerances(X, a, dtype):
    eps = float(np.finfo(dtype).eps)
    kappa = eps * float(np.max(np.abs(X.astype(np.float64)) / a))
    log_shift = float(np.sum(np.log(a)))
    param = 4 * kappa + 1e3 * eps
    score = 20 * kappa + 1e3 * eps * (1 + abs(log_shift))
    return param, score


def assert_finite_and_normalised(model, X, dtype):
    scores = model.score_samples(X)
    assert scores.dtype == dtype and np.all(np.isfinite(scores))
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=tolerance)


# ------------------------------------------------------- default settings
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_default_fit_is_finite_and_normalised(transform, covariance_type, dtype):
    X = transformed(transform, dtype)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert_finite_and_normalised(model, X, dtype)
    draws, _ = model.sample(50, random_state=0)
    assert np.all(np.isfinite(draws))


# ------------------------------------------------------------ agreement
def identity_precisions(covariance_type, k):
    return {
        "full": np.stack([np.eye(D)] * k),
        "tied": np.eye(D),
        "diag": np.ones((k, D)),
        "spherical": np.ones(k),
    }[covariance_type]


def to_data_units(precisions, covariance_type, a):
    """Precisions in standardized units -> in data units (divide by a_i a_j)."""
    if covariance_type in ("full", "tied"):
        return precisions / np.outer(a, a)
    if covariance_type == "diag":
        return precisions / a**2
    return precisions / a[0] ** 2


def standardizer(X64, covariance_type):
    mean = X64.mean(axis=0)
    if covariance_type == "spherical":
        a = np.full(D, np.sqrt(X64.var(axis=0).mean()))  # one scale for all features
    else:
        a = X64.std(axis=0)
    return mean, a


def agreement_cases():
    for transform in TRANSFORMS:
        for covariance_type in COVARIANCE_TYPES:
            if covariance_type == "spherical" and transform not in ISOTROPIC:
                continue  # one variance cannot follow per-feature scales
            for dtype in DTYPES:
                yield pytest.param(
                    transform,
                    covariance_type,
                    dtype,
                    id=f"{transform}-{covariance_type}-{np.dtype(dtype).name}",
                )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("transform, covariance_type, dtype", agreement_cases())
def test_agrees_with_standardized_float64_reference(transform, covariance_type, dtype):
    check_agreement(transform, covariance_type, dtype)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize(
    "transform, dtype",
    [(t, d) for t in TRANSFORMS for d in DTYPES],
    ids=[f"{t}-{np.dtype(d).name}" for t in TRANSFORMS for d in DTYPES],
)
def test_every_full_formulation_agrees_with_the_reference(transform, dtype, formulation):
    """Each formulation of the 'full' E-step (forced through the private override
    gmm.covariance._cost.forced) on the transformed data against the reference fitted
    on standardized float64 data with the formulation chosen by shape."""
    check_agreement(transform, "full", dtype, formulation)


def check_agreement(transform, covariance_type, dtype, formulation=None):
    """The fit on transformed data equals the fit on standardized float64 data.

    ``formulation`` forces one formulation of the 'full' E-step for the fit on
    the transformed data only (None: chosen by shape), so the reference checks it.
    """
    X = transformed(transform, dtype)
    X64 = X.astype(np.float64)  # the reference sees the same (rounded) data
    mean, a = standardizer(X64, covariance_type)
    Z = (X64 - mean) / a
    start = dict(
        weights_init=[0.5, 0.5],
        means_init=Z[[0, -1]],  # one point of each cluster
        precisions_init=identity_precisions(covariance_type, 2),
    )
    # reg_covar=0 keeps EM equivariant; tol=0 runs the same ten iterations on both.
    settings = dict(covariance_type=covariance_type, reg_covar=0.0, tol=0.0, max_iter=10)
    reference = GaussianMixture(2, **settings, **start).fit(Z)
    with forced(formulation):
        model = fitted_in_data_units(X, settings, start, mean, a, covariance_type)
        check_against_reference(model, reference, X, Z, mean, a, covariance_type, dtype)


def fitted_in_data_units(X, settings, start, mean, a, covariance_type):
    return GaussianMixture(
        2,
        **settings,
        weights_init=start["weights_init"],
        means_init=start["means_init"] * a + mean,
        precisions_init=to_data_units(start["precisions_init"], covariance_type, a),
    ).fit(X)


def check_against_reference(model, reference, X, Z, mean, a, covariance_type, dtype):
    assert model.means_.dtype == dtype
    param_tol, score_tol = tolerances(X, a, dtype)
    log_shift = np.sum(np.log(a))

    np.testing.assert_allclose(model.weights_, reference.weights_, rtol=0, atol=param_tol)
    means = (model.means_.astype(np.float64) - mean) / a
    np.testing.assert_allclose(means, reference.means_, rtol=0, atol=param_tol)
    for k in range(2):
        cov = component_matrix(model.covariances_, covariance_type, k, D).astype(np.float64)
        ref = component_matrix(reference.covariances_, covariance_type, k, D)
        np.testing.assert_allclose(cov / np.outer(a, a), ref, rtol=0, atol=param_tol)
    assert abs(model.lower_bound_ + log_shift - reference.lower_bound_) <= score_tol
    np.testing.assert_allclose(
        model.score_samples(X) + log_shift, reference.score_samples(Z), rtol=0, atol=score_tol
    )
    np.testing.assert_allclose(
        model.predict_proba(X), reference.predict_proba(Z), rtol=0, atol=param_tol
    )
    assert_finite_and_normalised(model, X, dtype)


# ------------------------------------------------------- far-away points
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_points_far_from_every_component(covariance_type, dtype):
    """Points 1e3 standard deviations out: finite scores, responsibilities as scipy's."""
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    model.fit(BASE.astype(dtype))
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(20, D))
    far = (1e3 * directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(dtype)
    assert_finite_and_normalised(model, far, dtype)
    # Reference: scipy's normal log-density of each component, in float64.
    log_prob = np.column_stack(
        [
            np.log(float(model.weights_[k]))
            + multivariate_normal(
                model.means_[k].astype(np.float64),
                component_matrix(model.covariances_, covariance_type, k, D).astype(np.float64),
            ).logpdf(far.astype(np.float64))
            for k in range(2)
        ]
    )
    expected = np.logaddexp(log_prob[:, 0], log_prob[:, 1])
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(model.score_samples(far), expected, rtol=rtol)
    atol = 1e-10 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(model.predict_proba(far), softmax(log_prob, axis=1), atol=atol)


# ------------------------------------------------ known gaps (for the lead)
# Fixed by the exact start: statistics.from_responsibilities centres each component on its own
# mean, so a one-point component starts with covariance reg_covar, as in scikit-learn.
@pytest.mark.parametrize(
    "covariance_type, init_params",
    [("full", "k-means++"), ("full", "random_from_data"), ("tied", "k-means++")],
)
def test_one_point_initialisation_on_large_data_fits_like_sklearn(covariance_type, init_params):
    X = transformed("scaled by 1e8", np.float64)
    settings = dict(covariance_type=covariance_type, init_params=init_params, random_state=0)
    # Reference: scikit-learn on the same data scaled back to unit size (its own
    # tied M-step loses digits at 1e16 scale); k-means++ draws the same seeds on
    # scaled data, and the mean log-likelihood shifts by -D log(1e8).
    reference = SklearnGaussianMixture(2, **settings).fit(X / 1e8)
    expected = reference.score(X / 1e8) - X.shape[1] * np.log(1e8)
    model = GaussianMixture(2, **settings).fit(X)
    assert_finite_and_normalised(model, X, np.float64)
    if covariance_type == "tied":
        # scikit-learn's tied start sums x x' over every row, also rows with no
        # responsibility (k-means++ gives K one-hot rows), so its path differs; gmm
        # weights the scatter by the responsibilities. Ours must not score worse.
        assert model.score(X) >= expected - 1e-6 * abs(expected)
    else:
        np.testing.assert_allclose(model.score(X), expected, rtol=1e-6)


# Fixed: such rows raise gmm.em.OutOfRangeError (a ValueError) naming the row.
@pytest.mark.parametrize("dtype, far", [(np.float32, 1e20), (np.float64, 1e160)])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_points_whose_distances_overflow_get_a_distribution_or_an_error(
    covariance_type, dtype, far
):
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    model.fit(BASE.astype(dtype))
    X = np.array([[far, 0.0, 0.0], [-far, far, 0.0]], dtype=dtype)
    try:
        with np.errstate(all="ignore"):
            proba = model.predict_proba(X)
    except ValueError as error:
        assert "overflow" in str(error) or "range" in str(error)
        return
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ("fit", "predict", "score_samples"))
def test_out_of_range_names_the_row_counting_from_0(method, dtype):
    # A far row past the first E-step chunk (em.chunk_rows is at least 256 rows): its
    # index in the whole data, 0-based, in the message and in the ``row`` attribute.
    from gmm import em

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 2)).astype(dtype)
    far = np.sqrt(np.finfo(dtype).max) * 4
    bad = X.copy()
    bad[2345] = [far, -far]
    model = GaussianMixture(2, random_state=0, init_params="random_from_data")
    if method != "fit":
        model.fit(X)
    before = model.__dict__.copy()
    with pytest.raises(em.OutOfRangeError, match=r"Row 2345 \(counting from 0\)") as caught:
        getattr(model, method)(bad)
    assert caught.value.row == 2345
    assert model.__dict__.keys() == before.keys()
