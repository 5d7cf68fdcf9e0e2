"""The EM driver: its hooks are declared, and a second estimator can subclass it.

Reference: a numpy/scipy EM step written below for a mixture whose weights stay
fixed at 1/K (responsibilities from scipy.stats.multivariate_normal, weighted
means and np.cov), an estimator the driver must support by overriding one hook.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_triangular
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gmm import GaussianMixture, em, fit_stream
from gmm.covariance import get_family
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


# ------------------------------------------------ sizes without bounds (issue 17, class 7)
def _sizes_model():
    X = np.random.default_rng(0).normal(size=(60, 3))
    return X, GaussianMixture(2, random_state=0).fit(X)


SIZE_CASES = {
    # name: (call on (model, X), error type, words of the message)
    "sample 2**63": (lambda m, X: m.sample(2**63), ValueError, r"more than this machine's memory"),
    "sample 2**40": (lambda m, X: m.sample(2**40), ValueError, r"Draw fewer samples"),
    "sample 10**30": (lambda m, X: m.sample(10**30), ValueError, r"would hold 10{30} x 3"),
    "n_components 2**63": (
        lambda m, X: m.set_params(n_components=2**63).fit(X),
        ValueError,
        r"n_components must be at most",
    ),
    "n_init 2**70": (
        lambda m, X: m.set_params(n_init=2**70).fit(X),
        ValueError,
        r"n_init must be at most",
    ),
    "max_iter 2**64": (
        lambda m, X: m.set_params(max_iter=2**64).fit(X),
        ValueError,
        r"max_iter must be at most",
    ),
    "covariances beyond memory": (
        lambda m, X: m.set_params(n_components=40).fit(np.tile(X, (1, 10**4))),
        ValueError,
        r"covariances of n_components=40 would hold 40 x 30000 x 30000",
    ),
    "impute n_draws 2**50": (
        lambda m, X: m.impute(np.where(np.eye(60, 3) > 0, np.nan, X), n_draws=2**50),
        ValueError,
        r"impute\(n_draws=1125899906842624\) would hold",
    ),
    "impute n_draws 2**63": (
        lambda m, X: m.impute(np.where(np.eye(60, 3) > 0, np.nan, X), n_draws=2**63),
        ValueError,
        r"n_draws must be at most",
    ),
    "fit_stream batch_size": (  # a virtual array of 2**40 rows: no memory behind it
        lambda m, X: fit_stream(np.broadcast_to(X[:1], (2**40, 3)), m, batch_size=2**40),
        ValueError,
        r"batch_size=1099511627776 rows would hold 1099511627776 x 3",
    ),
}


@pytest.mark.parametrize("case", list(SIZE_CASES))
def test_sizes_beyond_the_machine_get_one_clear_error_and_keep_the_model(case):
    call, error, words = SIZE_CASES[case]
    X, model = _sizes_model()
    before = (model.get_params(), model.predict_proba(X).copy(), model.means_.copy())
    with pytest.raises(error, match=words):
        call(model, X)
    model.set_params(**before[0])
    np.testing.assert_array_equal(model.predict_proba(X), before[1])
    np.testing.assert_array_equal(model.means_, before[2])


# ---------------------------------------------------------- threads (issue 17, class 9)
@pytest.mark.parametrize("second", ("fit", "partial_fit"))
def test_a_second_fit_from_another_thread_fails_loudly_and_the_first_finishes(second):
    # The issue: two threads fitting one estimator left n_features_in_ = 5 with
    # 3-feature means. Now the second call raises at once; the first fit ends whole.
    import threading

    rng = np.random.default_rng(0)
    X3, X5 = rng.normal(size=(400, 3)), rng.normal(size=(400, 5))
    model = GaussianMixture(2, random_state=0, max_iter=50, tol=0)
    inside, release = threading.Barrier(2), threading.Event()
    original = model._m_step

    def slow_m_step(*args):  # holds the first fit inside EM until the second has tried
        if not release.is_set():
            inside.wait()
            release.wait(timeout=30)
        return original(*args)

    model._m_step = slow_m_step
    errors = []
    worker = threading.Thread(target=lambda: model.fit(X3))
    with pytest.warns(ConvergenceWarning):
        worker.start()
        inside.wait(timeout=30)
        try:
            getattr(model, second)(X5)
        except RuntimeError as error:
            errors.append(str(error))
        finally:
            release.set()
        worker.join(timeout=60)
    assert errors and "in progress in another thread" in errors[0]
    del model._m_step
    assert model.n_features_in_ == 3 and model.means_.shape == (2, 3)
    reference = GaussianMixture(2, random_state=0, max_iter=50, tol=0)
    with pytest.warns(ConvergenceWarning):
        reference.fit(X3)
    np.testing.assert_array_equal(model.means_, reference.means_)
    with pytest.warns(ConvergenceWarning):
        model.fit(X5)  # once the first has finished, a fit works again
    assert model.means_.shape == (2, 5)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_warm_start_into_a_family_that_cannot_hold_the_fit_is_refused(covariance_type):
    """scikit-learn fails here with a broadcasting error; the fitted model stays as it was."""
    X = np.random.default_rng(0).normal(size=(100, 3))
    model = GaussianMixture(2, warm_start=True, random_state=0).fit(X)
    before = model.predict_proba(X)
    model.set_params(covariance_type=covariance_type)
    with pytest.raises(ValueError, match=r"warm_start=True continues the fitted model.*Set warm"):
        model.fit(X)
    model.set_params(covariance_type="full")
    assert np.array_equal(model.predict_proba(X), before)


def test_relative_convergence_is_mclusts_rule_on_the_total_log_likelihood():
    """convergence='relative' stops at the first iteration whose total log-likelihood L
    changed by at most tol (1 + |L|), found here from an unstopped run's curve."""
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(2.5, 1, (300, 2))])
    n, tol = X.shape[0], 1e-5
    start = dict(n_components=2, covariance_type="VVV", init_params="random", random_state=0)
    with pytest.warns(ConvergenceWarning):
        curve = GaussianMixture(tol=0, max_iter=200, **start).fit(X).lower_bounds_
    total = n * np.asarray(curve)
    stops = [
        i for i in range(1, len(total)) if abs(total[i] - total[i - 1]) <= tol * (1 + abs(total[i]))
    ]
    fit = GaussianMixture(tol=tol, convergence="relative", max_iter=200, **start).fit(X)
    assert fit.converged_ and fit.n_iter_ == stops[0] + 1
    assert fit.lower_bound_ == curve[stops[0]]
    absolute = GaussianMixture(tol=tol, max_iter=200, **start).fit(X)
    assert absolute.n_iter_ > fit.n_iter_  # |mean| is about 3 here: the absolute rule is tighter
    with pytest.raises(ValueError, match="convergence must be 'absolute'"):
        GaussianMixture(convergence="mclust").fit(X)


# ------------------------------------------------------------ one component
# With one component the E-step's statistics do not depend on the parameters: the
# driver reads the rows once and gets every later log-likelihood from them
# (em.one_component_statistics). References: the data pass every iteration
# (em.REUSE_ONE_COMPONENT = False), a direct log-density at the parameters each
# E-step saw, and scikit-learn's fit.
ONE_COMPONENT_FAMILIES = ("full", "tied", "diag", "spherical", "VII", "EEI", "VEI", "EEE", "VEV")
ONE_COMPONENT_DATA = {
    "plain": (np.ones(4), 0.0),
    # hard data: an offset of 1e6, and features from 1e-4 to 1e4 (correlated)
    "offset 1e6": (np.ones(4), 1e6),
    "1e-4 to 1e4": (np.array([1e-4, 1.0, 1e2, 1e4]), 0.0),
}


def _one_component_data(name, dtype=np.float64):
    scale, offset = ONE_COMPONENT_DATA[name]
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((600, 4)) @ rng.standard_normal((4, 4))
    return (Z * scale + offset).astype(dtype), rng.random(600)


def _fit_one(X, w, reuse, monkeypatch, **settings):
    monkeypatch.setattr(em, "REUSE_ONE_COMPONENT", reuse)
    with pytest.warns(ConvergenceWarning):
        return GaussianMixture(1, tol=0, random_state=0, **settings).fit(X, sample_weight=w)


def _direct_mean_log_density(model, X, w):
    cov = model.covariances_.reshape(-1)
    d = X.shape[1]
    cov = cov.reshape(d, d) if cov.size == d * d else np.diag(np.broadcast_to(cov, (d,)))
    # Directly by a Cholesky factor of the covariance (scipy's eigh-based logpdf calls
    # the 1e-4 to 1e4 covariances singular).
    factor = np.linalg.cholesky(cov)
    z = solve_triangular(factor, (X.astype(np.float64) - model.means_[0]).T, lower=True)
    log_density = -0.5 * np.sum(z * z, axis=0) - np.sum(np.log(np.diag(factor)))
    return float(np.dot(w, log_density) / np.sum(w)) - 0.5 * d * np.log(2 * np.pi)


@pytest.mark.parametrize("data", list(ONE_COMPONENT_DATA))
@pytest.mark.parametrize("covariance_type", ONE_COMPONENT_FAMILIES)
@pytest.mark.parametrize("prior", [None, "default"])
def test_one_component_bounds_are_the_data_pass_and_the_direct_density(
    covariance_type, data, prior, monkeypatch
):
    """Each lower bound is the weighted mean log-density (direct) at the parameters its
    E-step saw (those of the fit stopped one iteration earlier), on either path; the
    two paths give the same fit (the iterative VEI and VEV M-steps take slightly
    different steps from scatters equal to rounding, so their bounds agree to 1e-9)."""
    X, w = _one_component_data(data)
    settings = dict(covariance_type=covariance_type, prior=prior, max_iter=4)
    old = _fit_one(X, w, False, monkeypatch, **settings)
    new = _fit_one(X, w, True, monkeypatch, **settings)
    for n in range(2, 5):
        settings["max_iter"] = n - 1
        before = _fit_one(X, w, True, monkeypatch, **settings)
        reference = _direct_mean_log_density(before, X, w)
        assert new.lower_bounds_[n - 1] == pytest.approx(reference, rel=1e-13, abs=0)
    iterative = covariance_type in ("VEI", "VEV")
    rtol = 1e-9 if iterative else 1e-13
    np.testing.assert_allclose(new.lower_bounds_, old.lower_bounds_, rtol=rtol, atol=0)
    np.testing.assert_allclose(new.means_, old.means_, rtol=1e-13, atol=0)
    span = np.abs(old.covariances_).max()
    np.testing.assert_allclose(new.covariances_, old.covariances_, rtol=0, atol=1e-9 * span)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_one_component_fit_is_scikit_learns(covariance_type):
    """On plain data: at an offset of 1e6 scikit-learn's own numbers cancel (its tied
    scatter sum x x' - n mu mu' to 1e-5), where ours match the direct density above."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X, _ = _one_component_data("plain")
    ours = GaussianMixture(1, covariance_type=covariance_type, tol=1e-10, max_iter=5).fit(X)
    sk = SkGaussianMixture(1, covariance_type=covariance_type, tol=1e-10, max_iter=5).fit(X)
    assert ours.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-13)
    np.testing.assert_allclose(ours.means_, sk.means_, rtol=1e-13)
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, rtol=1e-12)
    assert ours.n_iter_ == sk.n_iter_ == 2


@pytest.mark.parametrize(
    "settings",
    [
        {"n_init": 3},
        {"dtype": np.float32},
        {"scale": 1e80},  # rescaled by gmm.units
        {"estimator": "bayesian"},
    ],
    ids=["n_init", "float32", "units", "bayesian"],
)
def test_one_component_reuse_matches_the_data_pass(settings, monkeypatch):
    from gmm import BayesianGaussianMixture

    settings = dict(settings)
    X, w = _one_component_data("1e-4 to 1e4", settings.pop("dtype", np.float64))
    X = X * settings.pop("scale", 1.0)
    cls = BayesianGaussianMixture if settings.pop("estimator", None) else GaussianMixture
    fits = []
    for reuse in (False, True):
        monkeypatch.setattr(em, "REUSE_ONE_COMPONENT", reuse)
        model = cls(n_components=1, covariance_type="full", tol=0, max_iter=4, random_state=0)
        with pytest.warns(ConvergenceWarning):
            fits.append(model.set_params(**settings).fit(X, sample_weight=w))
    old, new = fits
    rtol = 1e-6 if X.dtype == np.float32 else 1e-13  # float32: the pass sums float32 rows
    np.testing.assert_allclose(new.lower_bounds_, old.lower_bounds_, rtol=rtol, atol=0)
    np.testing.assert_allclose(new.means_, old.means_, rtol=rtol, atol=0)
    assert new.means_.dtype == X.dtype


def test_one_component_reads_the_rows_once_and_warm_start_continues(monkeypatch):
    """One pass over the rows per fit (also across n_init); rows with holes
    (nan_policy='marginalize') keep the pass every iteration, and both agree."""
    calls = []
    expectation = em.expectation
    monkeypatch.setattr(
        em, "expectation", lambda *args: calls.append(1) or expectation(*args), raising=True
    )
    X, w = _one_component_data("offset 1e6")
    start = dict(means_init=X[:1], weights_init=[1.0], precisions_init=np.eye(4)[None])
    model = GaussianMixture(1, tol=0, max_iter=6, n_init=2, warm_start=True, **start)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, sample_weight=w)
    assert len(calls) == 1
    calls.clear()
    with pytest.warns(ConvergenceWarning):
        model.fit(X, sample_weight=w)  # the warm start: one pass again
    assert len(calls) == 1
    holes = X.copy()
    holes[::7, 1] = np.nan
    bounds = []
    for reuse in (False, True):
        monkeypatch.setattr(em, "REUSE_ONE_COMPONENT", reuse)
        calls.clear()
        missing = GaussianMixture(1, tol=0, max_iter=3, nan_policy="marginalize", **start)
        with pytest.warns(ConvergenceWarning):
            bounds.append(missing.fit(holes).lower_bounds_)
        assert len(calls) >= 3
    assert bounds[0] == bounds[1]
    # Rows read once are not kept (their copy's first touch would be all it cost);
    # the complete rows beside rows with holes are read every iteration, so kept.
    family = get_family("full")
    kept = [em.ChunkedData(X, w, family, X.mean(axis=0), k).kept_bytes for k in (1, 2)]
    assert kept[0] == 0 and kept[1] >= X.nbytes
    from gmm.scale.incomplete import IncompleteTrainingData, observed_mean

    beside = IncompleteTrainingData(holes, w, family, 1, observed_mean(holes, w))
    assert beside.complete.chunks.kept_bytes > 0


@pytest.mark.parametrize("covariance_type", ["EEE", "VEV", "full", "diag"])
def test_one_component_nearly_collinear_features_read_the_rows(covariance_type, monkeypatch):
    """A correlation of 1 - 1e-12 and no regularisation (mclust's settings): the
    scatter would carry eps times the correlations' condition number into each
    bound (8e-4 a row, found by review), so the driver reads the rows there; the
    bounds are the pass's and never decrease."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((1000, 4)) @ rng.standard_normal((4, 4))
    X[:, 3] = X[:, 0] + 1e-6 * rng.standard_normal(1000)
    settings = dict(reg_covar=0, tol=1e-5, convergence="relative", random_state=0)
    bounds = []
    for reuse in (True, False):
        monkeypatch.setattr(em, "REUSE_ONE_COMPONENT", reuse)
        bounds.append(GaussianMixture(1, covariance_type=covariance_type, **settings).fit(X))
    np.testing.assert_allclose(bounds[0].lower_bounds_, bounds[1].lower_bounds_, rtol=1e-13)
    assert np.all(np.diff(bounds[0].lower_bounds_) >= -1e-12)


@pytest.mark.parametrize("n_components", [1, 2])
def test_one_feature_names_are_checked_before_the_start_whatever_is_kept(n_components):
    """The family's feature check runs when the rows are wrapped, also when nothing is
    kept (one component, or data beyond em.FEATURE_CACHE_BYTES): before any M-step."""
    X = np.linspace(0, 3, 40)[:, None]
    with pytest.raises(ValueError, match="one feature"):
        GaussianMixture(n_components, covariance_type="EVE").fit(X)


@pytest.mark.parametrize("covariance_type", ["VVV", "EVE", "diag"])
def test_relative_rule_keeps_the_parameters_whose_log_likelihood_met_it(covariance_type):
    """mclust's order: under convergence='relative' EM stops at the E-step that meets
    the rule, with no M-step after it, so the fitted parameters are those of that
    E-step: the same, bit for bit, as a run of one iteration fewer without a stop,
    and their log-likelihood (score, an independent pass) is lower_bound_."""
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.normal(0, 1, (400, 3)), rng.normal(3, 0.5, (300, 3))]) + 1e4
    start = dict(
        n_components=2, covariance_type=covariance_type, init_params="random", random_state=0
    )
    fit = GaussianMixture(tol=1e-6, convergence="relative", max_iter=500, **start).fit(X)
    assert fit.converged_ and fit.n_iter_ > 2
    with pytest.warns(ConvergenceWarning):
        shorter = GaussianMixture(tol=0, max_iter=fit.n_iter_ - 1, **start).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(fit, name), getattr(shorter, name))
    assert fit.score(X) == pytest.approx(fit.lower_bound_, rel=1e-12)


def test_relative_rule_warm_start_on_new_data_runs_an_m_step():
    """Under 'relative' a warm start tests its own E-steps only: the last fit's bound
    (on other data) must not stop the refit before any M-step."""
    from gmm import GaussianMixture

    rng = np.random.default_rng(0)
    X1 = np.vstack([rng.normal(0, 1, (5000, 2)), rng.normal(4, 1, (5000, 2))])
    X2 = X1 + np.r_[np.zeros(5000), np.full(5000, 0.03)][:, None]
    params = {"convergence": "relative", "tol": 1e-3, "random_state": 0}
    model = GaussianMixture(2, warm_start=True, **params).fit(X1)
    old = model.means_.copy()
    model.fit(X2)
    assert model.n_iter_ >= 2
    assert not np.array_equal(model.means_, old)
    fresh = GaussianMixture(2, **params).fit(X2)
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), np.sort(fresh.means_[:, 0]), atol=5e-3)
