"""Bad input: one table of cases. Each names the call, the exception type and a
message fragment that names the problem. After every failed call on a fitted
model, that model must still predict bit-for-bit as before."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from gmm import GaussianMixture

rng = np.random.default_rng(0)
X_GOOD = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(6, 1, (40, 2))])
X_NAN = X_GOOD.copy()
X_NAN[3, 1] = np.nan
X_INF = X_GOOD.copy()
X_INF[5, 0] = np.inf


def fit(**params):
    return lambda m, X=X_GOOD, **kw: m.set_params(**params).fit(X, **kw)


# (id, call(model), exception, message regex)
FIT_CASES = [
    ("nan", lambda m: m.fit(X_NAN), ValueError, "NaN"),
    ("inf", lambda m: m.fit(X_INF), ValueError, "infinity"),
    ("1d", lambda m: m.fit(X_GOOD[:, 0]), ValueError, "Expected 2D array"),
    ("3d", lambda m: m.fit(X_GOOD[None]), ValueError, "dim 3"),
    ("empty", lambda m: m.fit(np.empty((0, 2))), ValueError, "0 sample"),
    ("no features", lambda m: m.fit(np.empty((10, 0))), ValueError, "0 feature"),
    (
        "strings",
        lambda m: m.fit(np.array([["a", "b"]] * 10)),
        ValueError,
        "could not convert|dtype",
    ),
    ("complex", lambda m: m.fit(X_GOOD + 1j), ValueError, "[Cc]omplex"),
    ("object", lambda m: m.fit(np.array([[1, "x"]] * 10, dtype=object)), ValueError, "convert"),
    ("sparse", lambda m: m.fit(sp.csr_matrix(X_GOOD)), TypeError, "[Ss]parse"),
    ("one sample", lambda m: m.fit(X_GOOD[:1]), ValueError, "minimum of 2"),
    ("fewer samples than K", fit(n_components=5), None, None),  # placeholder, replaced below
    (
        "weight negative",
        lambda m: m.fit(X_GOOD, sample_weight=-np.ones(80)),
        ValueError,
        "negative",
    ),
    (
        "weight nan",
        lambda m: m.fit(X_GOOD, sample_weight=np.r_[np.nan, np.ones(79)]),
        ValueError,
        "NaN",
    ),
    (
        "weight inf",
        lambda m: m.fit(X_GOOD, sample_weight=np.r_[np.inf, np.ones(79)]),
        ValueError,
        "infinity",
    ),
    ("weight zero", lambda m: m.fit(X_GOOD, sample_weight=np.zeros(80)), ValueError, "all zero"),
    (
        "weight length",
        lambda m: m.fit(X_GOOD, sample_weight=np.ones(79)),
        ValueError,
        r"expected \(80,\)",
    ),
    ("weight 2d", lambda m: m.fit(X_GOOD, sample_weight=np.ones((80, 1))), ValueError, "shape"),
    ("weight text", lambda m: m.fit(X_GOOD, sample_weight=["a"] * 80), ValueError, "numeric"),
    ("n_components 0", fit(n_components=0), ValueError, "n_components must be >= 1"),
    ("n_components float", fit(n_components=2.5), TypeError, "n_components must be an integer"),
    (
        "covariance_type",
        fit(covariance_type="fulll"),
        ValueError,
        "'spherical', 'diag', 'full', 'tied'",
    ),
    ("init_params", fit(init_params="kmean"), ValueError, "'kmeans', 'k-means\\+\\+', 'random'"),
    ("reg_covar negative", fit(reg_covar=-1.0), ValueError, "reg_covar must be"),
    ("tol negative", fit(tol=-1e-3), ValueError, "tol must be"),
    ("tol nan", fit(tol=float("nan")), ValueError, "tol must be"),
    ("max_iter negative", fit(max_iter=-1), ValueError, "max_iter must be >= 0"),
    ("n_init 0", fit(n_init=0), ValueError, "n_init must be >= 1"),
    (
        "weights_init shape",
        fit(weights_init=[0.2, 0.3, 0.5]),
        ValueError,
        r"weights_init has shape",
    ),
    ("weights_init sum", fit(weights_init=[0.2, 0.3]), ValueError, "sum to 1"),
    ("weights_init range", fit(weights_init=[1.5, -0.5]), ValueError, r"\[0, 1\]"),
    ("means_init shape", fit(means_init=np.zeros((2, 3))), ValueError, r"means_init has shape"),
    ("means_init nan", fit(means_init=[[0, np.nan], [1, 1]]), ValueError, "NaN"),
    (
        "precisions_init shape",
        fit(precisions_init=np.ones((2, 3, 3))),
        ValueError,
        r"precisions_init has shape",
    ),
    (
        "precisions_init not PD",
        fit(precisions_init=np.array([[[1.0, 2.0], [2.0, 1.0]]] * 2)),
        ValueError,
        "positive definite",
    ),
    (
        "precisions_init not symmetric",
        fit(precisions_init=np.array([[[2.0, 1.0], [0.0, 2.0]]] * 2)),
        ValueError,
        "symmetric positive definite",
    ),
    (
        "precisions_init diag negative",
        fit(covariance_type="diag", precisions_init=-np.ones((2, 2))),
        ValueError,
        "must be positive",
    ),
]
FIT_CASES[11] = (
    "fewer samples than K",
    lambda m: m.set_params(n_components=5).fit(X_GOOD[:4]),
    ValueError,
    "n_samples >= n_components",
)

PREDICT_CASES = [
    (f"{method} {name}", method, X, exc, match)
    for method in ("predict", "predict_proba", "score_samples", "score", "aic", "bic", "icl")
    for name, X, exc, match in [
        ("wrong features", X_GOOD[:, :1], ValueError, "2 features"),
        ("nan", X_NAN, ValueError, "NaN"),
        ("1d", X_GOOD[0], ValueError, "Expected 2D array"),
        ("sparse", sp.csr_matrix(X_GOOD), TypeError, "[Ss]parse"),
    ]
]


@pytest.fixture
def fitted():
    model = GaussianMixture(2, random_state=0).fit(X_GOOD)
    before = (model.predict_proba(X_GOOD), model.score_samples(X_GOOD))
    yield model
    # Nothing fitted was lost: bit-for-bit the same predictions.
    np.testing.assert_array_equal(model.predict_proba(X_GOOD), before[0])
    np.testing.assert_array_equal(model.score_samples(X_GOOD), before[1])


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_bad_fit_input_is_refused_and_fitted_model_kept(fitted, case):
    _, call, exc, match = case
    params = fitted.get_params()
    with pytest.raises(exc, match=match):
        call(fitted)
    fitted.set_params(**params)


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_bad_fit_input_on_fresh_model(case):
    _, call, exc, match = case
    model = GaussianMixture(2, random_state=0)
    with pytest.raises(exc, match=match):
        call(model)
    assert not hasattr(model, "means_")


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_bad_predict_input(fitted, case):
    _, method, X, exc, match = case
    with pytest.raises(exc, match=match):
        getattr(fitted, method)(X)


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "score_samples", "score", "aic", "bic", "icl"]
)
def test_not_fitted(method):
    with pytest.raises(NotFittedError):
        getattr(GaussianMixture(2), method)(X_GOOD)


def test_sample_not_fitted_and_bad_n():
    with pytest.raises(NotFittedError):
        GaussianMixture(2).sample(3)
    model = GaussianMixture(2, random_state=0).fit(X_GOOD)
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
            model.sample(bad)


def test_collapse_during_refit_keeps_old_model(fitted):
    before = fitted.predict_proba(X_GOOD)
    collapsed = np.array([[0.0, 0.0]] * 6 + [[1.0, 1.0], [3.0, 3.0]])
    fitted.set_params(reg_covar=0, means_init=[[0, 0], [2, 2]])
    with pytest.raises(ValueError, match="reg_covar"):
        fitted.fit(collapsed)
    fitted.set_params(reg_covar=1e-6, means_init=None)
    np.testing.assert_array_equal(fitted.predict_proba(X_GOOD), before)


def test_keyboard_interrupt_during_fit_keeps_old_model(fitted, monkeypatch):
    from gmm import em

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(em, "expectation", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fitted.fit(X_GOOD + 1.0)
    monkeypatch.undo()
