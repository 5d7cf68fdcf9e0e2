"""Degenerate data: every case gets a valid fit or the documented error, never NaN or inf.

A valid fit has finite parameters of the data's dtype, weights summing to 1,
positive-definite covariances, finite log-likelihoods, predict_proba rows
summing to 1 and finite samples. The documented error is
:class:`gmm.covariance.base.CollapsedComponentError` (a ValueError that says
to increase ``reg_covar``). Where a closed form exists the fit is also checked
against it: the mean and covariance of the data for K=1 (numpy), ``reg_covar``
as the variance of identical points, and the fit on the plain float64 C array
for integer, boolean, DataFrame, Fortran-ordered and strided input.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gmm import GaussianMixture
from gmm.covariance.base import CollapsedComponentError

from .mixture_data import COVARIANCE_TYPES, component_matrix

# k-means warns when identical points give fewer distinct clusters than K.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DTYPES = (np.float32, np.float64)
REG = 1e-6  # GaussianMixture's default reg_covar
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def _blobs(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    half = n // 2
    return np.vstack([rng.normal(0, 1, (half, d)), rng.normal(6, 1, (n - half, d))])


BASE = _blobs()


def _strided(X):
    """X as a view with a column stride (every other column of a wider array)."""
    wide = np.zeros((X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
    wide[:, 1::2] = X
    return wide[:, 1::2]


# name -> (make X for a float dtype, n_components). Integer and boolean data are
# float64 whatever the dtype asked for: that is the documented conversion.
CASES = {
    "duplicated points": (lambda dt: np.repeat(BASE[:20], 3, axis=0).astype(dt), 2),
    "K equal to n_samples": (lambda dt: BASE[::10].astype(dt), 6),
    "constant feature": (lambda dt: np.c_[BASE[:, :2], np.full(60, 3.25)].astype(dt), 2),
    "collinear features": (
        lambda dt: np.c_[BASE[:, :2], 2 * BASE[:, 0] - BASE[:, 1]].astype(dt),
        2,
    ),
    "one point far away": (lambda dt: np.vstack([BASE, [[1e6] * 3]]).astype(dt), 2),
    "all points identical": (lambda dt: np.full((20, 3), 1.5, dtype=dt), 2),
    "more features than samples": (
        lambda dt: np.random.default_rng(1).normal(size=(8, 20)).astype(dt),
        2,
    ),
    "single feature": (lambda dt: BASE[:, :1].astype(dt), 2),
    "K=1": (lambda dt: BASE.astype(dt), 1),
    "cluster of 2 points": (
        lambda dt: np.vstack([BASE, [[40.0, 40.0, 40.0], [40.5, 39.5, 40.0]]]).astype(dt),
        3,
    ),
    "integer X": (lambda dt: np.round(3 * BASE).astype(np.int64), 2),
    "boolean X": (lambda dt: BASE > 3, 2),
    "Fortran-ordered": (lambda dt: np.asfortranarray(BASE.astype(dt)), 2),
    "non-contiguous": (lambda dt: _strided(BASE.astype(dt)), 2),
}

# (case, dtype) pairs where the documented error would be an accepted answer.
# None is needed: since the start and the centred path keep a far one-point
# component's digits, every case above fits, in float32 too, like scikit-learn.
MAY_COLLAPSE: set[tuple[str, type]] = set()


def _expected_dtype(X):
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def assert_valid_fit(model, X):
    """Finite parameters of the right dtype and a proper probability model on X."""
    dtype = _expected_dtype(np.asarray(X))
    eps = float(np.finfo(dtype).eps)
    k = model.n_components
    for name in ATTRIBUTES:
        value = getattr(model, name)
        assert value.dtype == dtype, name
        assert np.all(np.isfinite(value)), name
    assert np.isfinite(model.lower_bound_)
    assert np.all(model.weights_ >= 0)
    assert abs(float(model.weights_.sum(dtype=np.float64)) - 1) < 10 * k * eps
    d = model.means_.shape[1]
    for j in range(k):
        cov = component_matrix(model.covariances_, model.covariance_type, j, d)
        np.linalg.cholesky(cov.astype(np.float64))  # positive definite
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), k) and np.all(np.isfinite(proba))
    assert np.all(proba >= 0)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=tolerance)
    assert np.all(np.isfinite(model.score_samples(X)))
    labels = model.predict(X)
    assert labels.min() >= 0 and labels.max() < k
    draws, components = model.sample(25, random_state=0)
    assert draws.dtype == dtype and np.all(np.isfinite(draws))
    assert np.all((components >= 0) & (components < k))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("case", list(CASES))
def test_degenerate_data_fits_or_raises_the_documented_error(case, covariance_type, dtype):
    make, k = CASES[case]
    X = make(dtype)
    model = GaussianMixture(k, covariance_type=covariance_type, random_state=0)
    try:
        model.fit(X)
    except CollapsedComponentError as error:
        assert (case, dtype) in MAY_COLLAPSE, f"{case} raised: {error}"
        assert "Increase reg_covar" in str(error)
        assert not hasattr(model, "means_")  # nothing half-fitted is left
        return
    assert_valid_fit(model, X)


# ------------------------------------------------------------ closed forms
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_identical_points_have_the_regularisation_as_variance(covariance_type, dtype):
    X = np.full((20, 3), 1.5, dtype=dtype)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(model.means_, 1.5, rtol=rtol)
    for j in range(2):
        cov = component_matrix(model.covariances_, covariance_type, j, 3)
        # The scatter of identical points is 0; reg_covar is added on the diagonal.
        np.testing.assert_allclose(cov, REG * np.eye(3), rtol=rtol, atol=rtol * REG)
    # Closed form: log N(x | x, reg·I) = -D/2 · log(2π · reg).
    expected = -1.5 * np.log(2 * np.pi * REG)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_component_is_the_sample_mean_and_covariance(covariance_type, dtype):
    X = np.c_[BASE[:, :2], 2 * BASE[:, 0] - BASE[:, 1]].astype(dtype)  # collinear too
    model = GaussianMixture(1, covariance_type=covariance_type).fit(X)
    X64 = X.astype(np.float64)
    empirical = np.cov(X64, rowvar=False, bias=True)
    expected = {
        "full": empirical[None] + REG * np.eye(3),
        "tied": empirical + REG * np.eye(3),
        "diag": np.diag(empirical)[None] + REG,
        "spherical": np.array([np.trace(empirical) / 3 + REG]),
    }[covariance_type]
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(model.means_[0], X64.mean(axis=0), rtol=rtol, atol=rtol)
    scale = np.abs(empirical).max()
    np.testing.assert_allclose(model.covariances_, expected, rtol=rtol, atol=rtol * scale)
    assert model.n_iter_ <= 2  # one M-step is the answer; the second confirms it


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_constant_feature_gets_the_constant_and_the_regularisation(covariance_type):
    X = np.c_[BASE[:, :2], np.full(60, 3.25)]
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    np.testing.assert_allclose(model.means_[:, 2], 3.25, rtol=1e-12)
    if covariance_type in ("diag", "full", "tied"):
        for j in range(2):
            cov = component_matrix(model.covariances_, covariance_type, j, 3)
            np.testing.assert_allclose(cov[2, 2], REG, rtol=1e-6)
            np.testing.assert_allclose(cov[2, :2], 0, atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_k_equal_to_n_samples_puts_one_component_on_each_point(covariance_type):
    X = BASE[::10]  # 6 distinct points
    model = GaussianMixture(6, covariance_type=covariance_type, random_state=0).fit(X)
    order = np.lexsort(model.means_.T)
    np.testing.assert_allclose(model.means_[order], X[np.lexsort(X.T)], atol=1e-6)
    np.testing.assert_allclose(model.weights_, 1 / 6, rtol=1e-6)
    assert len(set(model.predict(X))) == 6


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_duplicated_points_fit_as_the_unique_points(covariance_type):
    # Repeating every point three times weights each equally: the same EM path.
    unique = BASE[:20]
    means = unique[[0, 15]]
    a = GaussianMixture(2, covariance_type=covariance_type, means_init=means, random_state=0)
    b = GaussianMixture(2, covariance_type=covariance_type, means_init=means, random_state=0)
    a.fit(unique)
    b.fit(np.repeat(unique, 3, axis=0))
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-8, atol=1e-12)


# ------------------------------------------------------ input containers
def _reference(X, covariance_type, k=2):
    return GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("kind", ["integer", "boolean"])
def test_integer_and_boolean_data_fit_as_float64(covariance_type, kind):
    X = np.round(3 * BASE).astype(np.int32) if kind == "integer" else BASE > 3
    model = _reference(X, covariance_type)
    plain = _reference(X.astype(np.float64), covariance_type)
    for name in ATTRIBUTES:
        assert getattr(model, name).dtype == np.float64
        np.testing.assert_array_equal(getattr(model, name), getattr(plain, name))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_dataframe_records_names_and_fits_as_the_array(covariance_type, dtype):
    pd = pytest.importorskip("pandas")
    X = BASE.astype(dtype)
    frame = pd.DataFrame(X, columns=["height", "weight", "age"])
    model = _reference(frame, covariance_type)
    plain = _reference(X, covariance_type)
    assert list(model.feature_names_in_) == ["height", "weight", "age"]
    # A DataFrame arrives column-major: products may round differently (see layout below).
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for name in ATTRIBUTES:
        a, b = getattr(model, name), getattr(plain, name)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    np.testing.assert_array_equal(model.predict(frame), plain.predict(X))
    assert_valid_fit(model, frame)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("layout", ["Fortran", "strided"])
def test_memory_layout_does_not_change_the_fit(covariance_type, dtype, layout):
    X = BASE.astype(dtype)
    other = np.asfortranarray(X) if layout == "Fortran" else _strided(X)
    assert not other.flags.c_contiguous
    model = _reference(other, covariance_type)
    plain = _reference(X, covariance_type)
    # Matrix products may round differently on another layout: agree to rounding.
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for name in ATTRIBUTES:
        a, b = getattr(model, name), getattr(plain, name)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    np.testing.assert_array_equal(model.predict(other), plain.predict(X))


# ------------------------------------------------ known gaps (for the lead)
# Fixed: the centred path whitens (x - m) @ U and sums the whitened first moment,
# so a one-point component 1e6 away keeps its digits in float32.
def test_far_point_in_float32_fits_like_sklearn():
    covariance_type = "full"
    X = np.vstack([BASE, [[1e6] * 3]]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = SklearnGaussianMixture(2, covariance_type=covariance_type, random_state=0)
        reference.fit(X)  # the reference succeeds: a valid fit exists
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert_valid_fit(model, X)
    np.testing.assert_allclose(np.sort(model.weights_), np.sort(reference.weights_), rtol=1e-4)


@pytest.mark.parametrize(
    "covariance_type",
    [
        "full",
        # The M-step from moments gives a variance within its rounding error of 0
        # exactly 0 (statistics.diagonal_from_moments, the spherical scatter).
        "diag",
        "spherical",
    ],
)
def test_one_point_component_without_regularisation_raises(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(50, 2)), [[40.3, -17.1]]])
    model = GaussianMixture(
        2, covariance_type=covariance_type, reg_covar=0.0, means_init=[[0.0, 0.0], [40.3, -17.1]]
    )
    with pytest.raises(CollapsedComponentError, match="Increase reg_covar"):
        model.fit(X)
