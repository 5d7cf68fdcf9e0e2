"""BayesianGaussianMixture against scikit-learn (the reference) and against invariants.

References: scikit-learn's BayesianGaussianMixture fitted in the same process
(from its own k-means start with the same random_state, or from the same
initial responsibilities), our GaussianMixture for the maximum-likelihood limit,
and the data's generating labels; none are copied from our own runs.

Agreement cells in the default suite: moons (K = 16), every covariance type,
both prior types, max_iter in {1, 5, 50}; digits after PCA (K = 110), every
covariance type, the Dirichlet-process prior, max_iter in {1, 5}. The other
digits cells (max_iter = 50, the Dirichlet-distribution prior) take about a
minute more, mostly in scikit-learn's 'full' iterations: run them with
``GMM_FULL_AGREEMENT=1``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import BayesianGaussianMixture as SkBayesian
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from experiments.bench_bayesian import SkFromResponsibilities
from gmm import BayesianGaussianMixture, GaussianMixture, load, save
from gmm.cli import main
from gmm.covariance import Spherical, register, unregister

from .mixture_data import make_mixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
ATTRIBUTES = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "mean_precision_",
    "degrees_of_freedom_",
    "mean_prior_",
    "covariance_prior_",
)
FULL_AGREEMENT = os.environ.get("GMM_FULL_AGREEMENT") == "1"


def assert_close(actual, desired, rtol, scale=None):
    """Relative agreement; entries near zero judged against ``scale`` (default: max |desired|).

    scikit-learn's tied lower bound is a (1,)-array per iteration: shapes are squeezed.
    """
    actual = np.squeeze(np.asarray(actual, dtype=np.float64))
    desired = np.squeeze(np.asarray(desired, dtype=np.float64))
    assert actual.shape == desired.shape
    scale = np.max(np.abs(desired)) if scale is None else scale
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)


def assert_same_model(ours, ref, X, rtol):
    for name in ATTRIBUTES:
        # Means near the data's mean are zeros up to cancellation: judge them on X's scale.
        scale = np.max(np.abs(X)) if name in ("means_", "mean_prior_") else None
        assert_close(getattr(ours, name), getattr(ref, name), rtol, scale)
    for mine, theirs in zip(
        np.atleast_2d(np.asarray(ours.weight_concentration_)),
        np.atleast_2d(np.asarray(ref.weight_concentration_)),
        strict=True,
    ):
        assert_close(mine, theirs, rtol)
    assert_close(ours.lower_bounds_, ref.lower_bounds_, rtol)
    assert ours.n_iter_ == ref.n_iter_


def fit_quietly(model, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, **kwargs)


def random_resp(n_samples, n_components, seed=0):
    resp = np.random.default_rng(seed).uniform(size=(n_samples, n_components))
    return resp / resp.sum(axis=1, keepdims=True)


# ================================================================ agreement
def agreement_cells():
    cells = []
    for covariance_type in COVARIANCE_TYPES:
        for prior in PRIOR_TYPES:
            for max_iter in (1, 5, 50):
                cells.append(("moons", 16, covariance_type, prior, max_iter))
                slow = max_iter == 50 or prior == "dirichlet_distribution"
                marks = (
                    ()
                    if (FULL_AGREEMENT or not slow)
                    else (pytest.mark.skip("set GMM_FULL_AGREEMENT=1"),)
                )
                cells.append(
                    pytest.param("digits_pca", 110, covariance_type, prior, max_iter, marks=marks)
                )
    return cells


@pytest.mark.parametrize(
    "dataset, n_components, covariance_type, prior, max_iter", agreement_cells()
)
def test_same_kmeans_start_same_trajectory(
    request, dataset, n_components, covariance_type, prior, max_iter
):
    X = request.getfixturevalue(dataset)
    params = dict(
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior,
        tol=0,
        max_iter=max_iter,
        random_state=0,
    )
    ours = fit_quietly(BayesianGaussianMixture(n_components, **params), X)
    ref = fit_quietly(SkBayesian(n_components=n_components, **params), X)
    assert_same_model(ours, ref, X, rtol=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior", PRIOR_TYPES)
def test_same_callable_start_same_trajectory(moons, covariance_type, prior):
    resp = random_resp(len(moons), 16)
    params = dict(
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior,
        tol=0,
        max_iter=20,
        weight_concentration_prior=0.3,
        mean_precision_prior=0.5,
        degrees_of_freedom_prior=3.5,
    )
    ours = BayesianGaussianMixture(16, init_params=lambda X, k, rs: resp, **params)
    ref = SkFromResponsibilities(resp, n_components=16, **params)
    assert_same_model(fit_quietly(ours, moons), fit_quietly(ref, moons), moons, rtol=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_defaults_same_model(moons, covariance_type, seed):
    params = dict(covariance_type=covariance_type, random_state=seed)
    ours = fit_quietly(BayesianGaussianMixture(16, **params), moons)
    ref = fit_quietly(SkBayesian(n_components=16, **params), moons)
    assert_same_model(ours, ref, moons, rtol=1e-5)
    assert ours.converged_ == ref.converged_
    np.testing.assert_array_equal(ours.predict(moons), ref.predict(moons))
    assert_close(ours.score_samples(moons), ref.score_samples(moons), rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_constructor_equals_sklearn(moons, seed):
    ours = fit_quietly(BayesianGaussianMixture(random_state=seed), moons)
    ref = fit_quietly(SkBayesian(random_state=seed), moons)
    assert_same_model(ours, ref, moons, rtol=1e-5)


# ========================================================= sklearn's checks
def _expected_failures(estimator):
    if estimator.n_components == 1:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "Weights are relative (mean 1 over the rows of positive weight), so the "
            "posterior counts rows, not total weight: a row of weight n is not n rows "
            "(test_weights_are_relative_and_zero_weight_drops_the_row)."
        )
    }


@parametrize_with_checks(
    [
        BayesianGaussianMixture(),
        BayesianGaussianMixture(3, covariance_type="diag", max_iter=20),
        BayesianGaussianMixture(
            2, covariance_type="tied", weight_concentration_prior_type="dirichlet_distribution"
        ),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# =============================================================== invariants
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior", PRIOR_TYPES)
def test_lower_bound_never_decreases(covariance_type, prior):
    X = make_mixture(covariance_type, n_samples=400, n_components=4, d=3, seed=1)[0]
    model = fit_quietly(
        BayesianGaussianMixture(
            10,
            covariance_type=covariance_type,
            weight_concentration_prior_type=prior,
            tol=0,
            max_iter=60,
            random_state=0,
        ),
        X,
    )
    bounds = np.asarray(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


@given(
    seed=st.integers(0, 2**16),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    prior=st.sampled_from(PRIOR_TYPES),
    concentration=st.floats(1e-3, 10.0),
    weighted=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_lower_bound_never_decreases_on_random_data(
    seed, covariance_type, prior, concentration, weighted
):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 2)) * rng.uniform(0.1, 10, size=2) + rng.normal(0, 5, size=2)
    w = rng.uniform(0.2, 3.0, size=60) if weighted else None
    model = fit_quietly(
        BayesianGaussianMixture(
            4,
            covariance_type=covariance_type,
            weight_concentration_prior_type=prior,
            weight_concentration_prior=concentration,
            tol=0,
            max_iter=25,
            init_params="random",
            random_state=seed,
        ),
        X,
        sample_weight=w,
    )
    bounds = np.asarray(model.lower_bounds_)
    assert np.all(np.isfinite(bounds))
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weak_prior_and_many_samples_give_the_ml_fit(covariance_type):
    X = make_mixture(covariance_type, n_samples=20_000, n_components=3, d=2, seed=3)[0]
    resp = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    start = resp.predict_proba(X)
    ml = GaussianMixture(3, covariance_type=covariance_type, tol=1e-10, max_iter=500)
    ml.set_params(init_params=lambda X, k, rs: start).fit(X)
    bayes = BayesianGaussianMixture(
        3,
        covariance_type=covariance_type,
        weight_concentration_prior_type="dirichlet_distribution",
        mean_precision_prior=1e-8,
        covariance_prior=None,
        tol=1e-8,
        max_iter=500,
        init_params=lambda X, k, rs: start,
    ).fit(X)
    # The posterior moves away from the ML fit by O(1/n) (prior counts over 20,000 rows).
    assert_close(bayes.means_, ml.means_, rtol=2e-3, scale=np.abs(X).max())
    assert_close(bayes.weights_, ml.weights_, rtol=2e-3)
    assert_close(bayes.covariances_, ml.covariances_, rtol=5e-3)


def test_dirichlet_process_finds_three_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.concatenate([rng.normal(c, 1.0, size=(300, 2)) for c in centres])
    model = BayesianGaussianMixture(20, max_iter=500, random_state=0).fit(X)
    effective = model.effective_components_
    assert len(effective) == 3
    found = model.means_[effective]
    nearest = np.argmin(np.linalg.norm(found[:, None] - centres[None], axis=2), axis=1)
    assert sorted(nearest) == [0, 1, 2]
    np.testing.assert_allclose(np.sort(model.weights_[effective]), [1 / 3] * 3, atol=0.02)


def test_effective_components_threshold():
    X = make_mixture("full", n_samples=300, seed=2)[0]
    model = BayesianGaussianMixture(6, random_state=0).fit(X)
    weights = model.weights_
    assert set(model.effective_components(0.0)) == set(np.flatnonzero(weights > 0))
    heavy = model.effective_components(0.2)
    assert np.all(weights[heavy] > 0.2) and np.all(np.diff(weights[heavy]) <= 0)
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\)"):
        model.effective_components(1.5)
    with pytest.raises(NotFittedError):
        _ = BayesianGaussianMixture().effective_components_


def test_fit_predict_equals_fit_then_predict(moons):
    model = BayesianGaussianMixture(8, random_state=0, max_iter=300)
    labels = model.fit_predict(moons)
    np.testing.assert_array_equal(labels, model.predict(moons))
    np.testing.assert_allclose(model.predict_proba(moons).sum(axis=1), 1.0)


# ========================================================== what we add
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weights_are_relative_and_zero_weight_drops_the_row(covariance_type):
    # Weights are relative (gmm.validation.relative_weights): the posterior's count
    # is the number of rows of positive weight, whatever the weights' scale, so
    # 0/1 weights fit exactly the rows of weight 1, and a common factor changes nothing.
    X = make_mixture(covariance_type, n_samples=120, seed=4)[0]
    keep = np.random.default_rng(0).integers(0, 2, size=len(X)).astype(bool)
    resp = random_resp(len(X), 5)
    params = dict(covariance_type=covariance_type, tol=0, max_iter=15)
    subset = BayesianGaussianMixture(5, init_params=lambda X, k, rs: resp[keep], **params)
    subset = fit_quietly(subset, X[keep])
    for factor in (1e-300, 1.0, 3.0, 1e300):
        weighted = BayesianGaussianMixture(5, init_params=lambda X, k, rs: resp, **params)
        weighted = fit_quietly(weighted, X, sample_weight=keep * factor)
        for name in ATTRIBUTES:
            assert_close(getattr(weighted, name), getattr(subset, name), rtol=1e-9)
        assert_close(weighted.lower_bounds_, subset.lower_bounds_, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32(moons, covariance_type):
    params = dict(covariance_type=covariance_type, random_state=0, tol=0, max_iter=10)
    single = fit_quietly(BayesianGaussianMixture(5, **params), moons.astype(np.float32))
    double = fit_quietly(BayesianGaussianMixture(5, **params), moons)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(single, name).dtype == np.float32
        assert_close(getattr(single, name), getattr(double, name), rtol=1e-3)
    assert single.predict_proba(moons.astype(np.float32)).dtype == np.float32
    assert single.sample(5, random_state=0)[0].dtype == np.float32


def test_sample_is_shuffled_and_seeded(moons):
    model = BayesianGaussianMixture(4, random_state=0).fit(moons)
    X1, y1 = model.sample(200, random_state=3)
    X2, _ = model.sample(200, random_state=3)
    np.testing.assert_array_equal(X1, X2)
    assert np.any(np.diff(y1) < 0)  # not sorted by component


def test_unsupported_covariance_family_is_named():
    class Other(Spherical):
        name = "other_spherical"

    register(Other())
    try:
        with pytest.raises(ValueError, match="'full', 'tied', 'diag', 'spherical' only"):
            BayesianGaussianMixture(2, covariance_type="other_spherical").fit(np.eye(4))
    finally:
        unregister("other_spherical")


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"weight_concentration_prior_type": "dp"}, ValueError, "must be one of"),
        ({"weight_concentration_prior": -1.0}, ValueError, "weight_concentration_prior must be"),
        ({"mean_precision_prior": 0.0}, ValueError, "mean_precision_prior must be"),
        ({"degrees_of_freedom_prior": "3"}, TypeError, "degrees_of_freedom_prior must be"),
        ({"degrees_of_freedom_prior": 0.5}, ValueError, "greater than n_features - 1 = 1"),
        ({"mean_prior": [0.0, 0.0, 0.0]}, ValueError, r"mean_prior has shape \(3,\)"),
        ({"covariance_prior": [[1.0, 2.0], [2.0, 1.0]]}, ValueError, "covariance_prior for"),
        ({"covariance_prior": np.ones(3)}, ValueError, "covariance_prior has shape"),
        ({"n_components": 0}, ValueError, "n_components must be >= 1"),
        ({"covariance_type": "VVV"}, ValueError, "not supported by BayesianGaussianMixture"),
    ],
)
def test_bad_parameters_fail_before_any_state_changes(moons, params, error, match):
    model = BayesianGaussianMixture(3, random_state=0).fit(moons)
    before = {name: value for name, value in vars(model).items() if name.endswith("_")}
    model.set_params(**params)
    with pytest.raises(error, match=match):
        model.fit(moons)
    after = {name: value for name, value in vars(model).items() if name.endswith("_")}
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name] is value


def test_failed_fit_keeps_the_model(moons):
    model = BayesianGaussianMixture(3, random_state=0).fit(moons)
    means = model.means_.copy()
    bad = moons[:, :1].copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    np.testing.assert_array_equal(model.means_, means)
    assert model.n_features_in_ == 2
    one_row = np.zeros(len(moons))
    one_row[3] = 1e-3
    with pytest.raises(ValueError, match="at least 2 rows of positive weight"):
        model.fit(moons, sample_weight=one_row)
    np.testing.assert_array_equal(model.means_, means)


def test_warm_start_continues(moons):
    params = dict(random_state=0, tol=0, max_iter=5)
    split = fit_quietly(BayesianGaussianMixture(6, warm_start=True, **params), moons)
    fit_quietly(split, moons)
    whole = fit_quietly(BayesianGaussianMixture(6, **{**params, "max_iter": 10}), moons)
    assert_close(split.means_, whole.means_, rtol=1e-9, scale=1.0)
    assert_close(split.lower_bounds_, whole.lower_bounds_[5:], rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior", PRIOR_TYPES)
def test_save_load_round_trip(tmp_path, moons, covariance_type, prior):
    model = BayesianGaussianMixture(
        4, covariance_type=covariance_type, weight_concentration_prior_type=prior, random_state=0
    ).fit(moons)
    path = tmp_path / "model.npz"
    save(model, path)
    loaded = load(path)
    assert type(loaded) is BayesianGaussianMixture
    np.testing.assert_array_equal(loaded.predict_proba(moons), model.predict_proba(moons))
    np.testing.assert_array_equal(loaded.score_samples(moons), model.score_samples(moons))
    assert loaded.get_params() == model.get_params()
    # A warm-started refit goes on from the loaded posterior as from the original.
    for m in (model, loaded):
        m.set_params(warm_start=True, max_iter=3, tol=0)
        fit_quietly(m, moons)
    np.testing.assert_array_equal(loaded.means_, model.means_)


def test_pipeline_use(moons):
    pipe = make_pipeline(StandardScaler(), BayesianGaussianMixture(5, random_state=0))
    labels = pipe.fit(moons).predict(moons)
    assert labels.shape == (len(moons),)
    assert np.isfinite(pipe.score(moons))


def test_memmap_fit_equals_in_memory(tmp_path, moons):
    path = tmp_path / "x.npy"
    np.save(path, moons)
    mapped = np.load(path, mmap_mode="r")
    params = dict(covariance_type="full", random_state=0, tol=0, max_iter=10)
    a = fit_quietly(BayesianGaussianMixture(5, **params), moons)
    b = fit_quietly(BayesianGaussianMixture(5, **params), mapped)
    for name in ATTRIBUTES:
        assert_close(getattr(b, name), getattr(a, name), rtol=1e-10, scale=1.0)
    assert_close(b.lower_bounds_, a.lower_bounds_, rtol=1e-10)


def test_subsampled_start_on_a_memmap_equals_in_memory(tmp_path, moons):
    path = tmp_path / "x.npy"
    np.save(path, moons)
    params = dict(random_state=0, tol=0, max_iter=5, init_sample_size=50)
    a = fit_quietly(BayesianGaussianMixture(4, **params), moons)
    b = fit_quietly(BayesianGaussianMixture(4, **params), np.load(path, mmap_mode="r"))
    for name in ATTRIBUTES:
        assert_close(getattr(b, name), getattr(a, name), rtol=1e-10, scale=1.0)
    assert np.all(np.diff(a.lower_bounds_) >= 0)


def test_dask_fit_equals_in_memory(moons):
    da = pytest.importorskip("dask.array")
    import dask

    params = dict(covariance_type="diag", random_state=0, tol=0, max_iter=10)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(moons))
    a = fit_quietly(BayesianGaussianMixture(5, **params), moons, sample_weight=w)
    with dask.config.set(scheduler="synchronous"):
        b = fit_quietly(
            BayesianGaussianMixture(5, **params),
            da.from_array(moons, chunks=64),
            sample_weight=da.from_array(w, chunks=64),
        )
    for name in ATTRIBUTES:
        assert_close(getattr(b, name), getattr(a, name), rtol=1e-8, scale=1.0)
    assert_close(b.lower_bounds_, a.lower_bounds_, rtol=1e-8)


def test_cli_fit_bayesian(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.5, size=(100, 2)) for c in (0.0, 6.0, 12.0)])
    data = tmp_path / "x.npy"
    np.save(data, X)
    out = tmp_path / "model.npz"
    assert main(["fit", str(data), "--k", "8", "--bayesian", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "effective components (weight > 1%): 3" in printed
    assert type(load(out)) is BayesianGaussianMixture
    assert main(["info", str(out)]) == 0
    assert "BayesianGaussianMixture" in capsys.readouterr().out
