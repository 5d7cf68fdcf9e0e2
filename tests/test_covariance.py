"""Covariance families against independent references (np.cov, np.linalg, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from gmm import statistics
from gmm.covariance import CollapsedComponentError, _cost, covariance_types, get_family
from gmm.covariance._cost import FORMULATIONS, forced
from gmm.covariance.full import whiten, whitened_moments
from gmm.em import Parameters, prepare, weighted_log_prob

from .mixture_data import component_matrix, precisions_of, random_covariances


def test_registry_lists_valid_names_on_unknown():
    assert set(covariance_types()) == {"spherical", "diag", "full", "tied"}
    with pytest.raises(ValueError, match="Valid covariance types are: 'spherical'"):
        get_family("banana")


@pytest.mark.parametrize(
    "name, expected",
    # Closed forms: free parameters of the covariances alone, K=3, D=4.
    [("full", 3 * 4 * 5 // 2), ("tied", 4 * 5 // 2), ("diag", 3 * 4), ("spherical", 3)],
)
def test_n_parameters_closed_form(name, expected):
    assert get_family(name).n_parameters(3, 4) == expected


@pytest.mark.parametrize("name", covariance_types())
@pytest.mark.parametrize("d", [1, 3, 7])
def test_factor_roundtrips_against_numpy_inverse(name, d):
    rng = np.random.default_rng(d)
    family = get_family(name)
    cov = random_covariances(rng, name, 3, d)
    factor = family.precision_cholesky(cov)
    prec = family.precisions(factor)
    np.testing.assert_allclose(prec, precisions_of(cov, name), rtol=1e-10)
    np.testing.assert_allclose(family.covariances(factor), cov, rtol=1e-10)
    np.testing.assert_allclose(family.precision_cholesky_from_precisions(prec), factor, rtol=1e-10)
    if factor.ndim >= 2 and name in ("full", "tied"):
        # Upper triangular, as scikit-learn's precisions_cholesky_.
        assert np.allclose(np.tril(factor, -1), 0)


@pytest.mark.parametrize("name", covariance_types())
@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("d", [1, 2, 5, 20])
def test_log_density_equals_scipy(name, offset, d):
    rng = np.random.default_rng(d)
    family = get_family(name)
    K = 4
    cov = random_covariances(rng, name, K, d)
    means = rng.normal(offset, 3, size=(K, d))
    X = rng.normal(offset, 4, size=(300, d))
    weights = np.full(K, 1 / K)
    params = Parameters(weights, means, cov, family.precision_cholesky(cov))
    shift = X.mean(axis=0)
    coefs, const = prepare(params, family, shift, _ml_log_const(params, family))
    Xc = X - shift
    log_prob, _ = weighted_log_prob(Xc, family.features(Xc), family, coefs, const)
    expected = np.column_stack(
        [
            np.log(weights[k])
            + multivariate_normal(means[k], component_matrix(cov, name, k, d)).logpdf(X)
            for k in range(K)
        ]
    )
    np.testing.assert_allclose(log_prob.T, expected, rtol=1e-9)


@pytest.mark.parametrize("name", ["full", "EVV"])
@pytest.mark.parametrize(
    "case", ["offset 1e6", "features 1e-1..1e1", "tight std 1e-2", "float32", "far rows"]
)
def test_full_folded_log_prob_equals_mahalanobis_then_halving(name, case):
    """Full.log_prob (the halving and the constant folded into one product and one
    pass) against the default CovarianceFamily.log_prob (mahalanobis, then
    -maha/2 + constant) on the same coefficients, and against scipy on hard
    data, in the expanded plan (every component expandable)."""
    from gmm.covariance.base import CovarianceFamily

    rng = np.random.default_rng(3)
    K, d = 3, 5
    # Wider feature scales put the components on the centred path (whose log_prob
    # is the default's), so the folded product is tested where it runs.
    scales = np.logspace(-1, 1, d) if case == "features 1e-1..1e1" else np.ones(d)
    offset = 1e6 if case == "offset 1e6" else 0.0
    cov = random_covariances(rng, "full", K, d) * np.outer(scales, scales)
    if case == "tight std 1e-2":  # a hundredth of the others' spread: still expandable
        cov[0] *= 1e-4
    means = offset + rng.normal(0, 3, (K, d)) * scales
    X = offset + rng.normal(0, 4, (300, d)) * scales
    if case == "far rows":  # log-probabilities far below e^-708 against some components
        X[:10] += 200 * scales
    dtype = np.float32 if case == "float32" else np.float64
    family = get_family(name)
    weights = np.full(K, 1 / K)
    factors = family.precision_cholesky(cov)
    params = Parameters(*(np.asarray(v, dtype=dtype) for v in (weights, means, cov, factors)))
    shift = X.astype(dtype).mean(axis=0)
    Xc = X.astype(dtype) - shift
    with forced("expanded"):
        coefs, const = prepare(params, family, shift, _ml_log_const(params, family))
        assert coefs.centred.size == 0
        feats = family.chunk_features(Xc, K)
        folded, _ = family.log_prob(Xc, feats, coefs, const)
        default, _ = CovarianceFamily.log_prob(family, Xc, feats, coefs, const)
    assert folded.dtype == default.dtype == dtype
    # Halving is exact, so the two differ by the rounding of the sums with the
    # constants: a few ulps of the largest term.
    terms = np.abs(coefs.linear @ feats.T) + np.abs(coefs.const) + np.abs(const)[:, None]
    np.testing.assert_array_less(np.abs(folded - default), 4 * np.finfo(dtype).eps * terms)
    if dtype == np.float64 and case != "far rows":
        m64, c64 = params.means.astype(np.float64), params.covariances.astype(np.float64)
        expected = np.column_stack(
            [np.log(1 / K) + multivariate_normal(m64[k], c64[k]).logpdf(X) for k in range(K)]
        )
        np.testing.assert_allclose(folded.T, expected, rtol=1e-7)


def test_full_uses_centred_path_for_tight_components_and_stays_accurate():
    # Tight components (std 1e-3 in a range of 10): the expansion would cancel.
    rng = np.random.default_rng(0)
    family = get_family("full")
    d, K = 5, 3
    means = rng.uniform(-5, 5, size=(K, d))
    cov = np.stack([1e-6 * np.eye(d) + 1e-7 * np.ones((d, d)) for _ in range(K)])
    X = np.vstack(
        [rng.multivariate_normal(m, c, size=100) for m, c in zip(means, cov, strict=True)]
    )
    params = Parameters(np.full(K, 1 / K), means, cov, family.precision_cholesky(cov))
    shift = X.mean(axis=0)
    coefs, const = prepare(params, family, shift, _ml_log_const(params, family))
    assert coefs.centred.size == K and coefs.fast.size == 0
    Xc = X - shift
    log_prob, _ = weighted_log_prob(Xc, family.features(Xc), family, coefs, const)
    expected = np.column_stack(
        [np.log(1 / K) + multivariate_normal(means[k], cov[k]).logpdf(X) for k in range(K)]
    )
    np.testing.assert_allclose(log_prob.T, expected, rtol=1e-9)


def test_full_uses_fast_path_for_well_conditioned_components():
    rng = np.random.default_rng(1)
    family = get_family("full")
    cov = random_covariances(rng, "full", 4, 6)
    means = rng.normal(0, 3, size=(4, 6))
    params = Parameters(np.full(4, 0.25), means, cov, family.precision_cholesky(cov))
    with forced("expanded"):  # the shape's choice could be either on another machine
        coefs, _ = prepare(params, family, np.zeros(6), _ml_log_const(params, family))
    assert coefs.fast.size == 4 and coefs.centred.size == 0
    with forced("whitened"):
        coefs, _ = prepare(params, family, np.zeros(6), _ml_log_const(params, family))
    assert coefs.fast.size == 0 and coefs.centred.size == 4


@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_full_log_density_equals_scipy_in_every_formulation(formulation, dtype, offset):
    """Both formulations, through the features the EM pass builds for them."""
    rng = np.random.default_rng(7)
    family = get_family("full")
    K, d = 3, 7
    cov = random_covariances(rng, "full", K, d)
    means = rng.normal(offset, 3, size=(K, d))
    X = rng.normal(offset, 4, size=(200, d))
    params = Parameters(np.full(K, 1 / K), means, cov, family.precision_cholesky(cov))
    shift = X.mean(axis=0).astype(dtype).astype(np.float64)  # the same in both dtypes
    Xc = (X - shift).astype(dtype)
    cast = Parameters(*(np.asarray(v, dtype=dtype) for v in vars(params).values() if v is not None))
    with forced(formulation):
        coefs, const = prepare(cast, family, shift.astype(dtype), _ml_log_const(params, family))
        feats = family.chunk_features(Xc, K)
        log_prob, _ = weighted_log_prob(Xc, feats, family, coefs, const)
    assert log_prob.dtype == dtype
    # The reference sees the parameters as rounded to dtype (1e6 + 3 loses digits in float32).
    m64, c64 = cast.means.astype(np.float64), cast.covariances.astype(np.float64)
    expected = np.column_stack(
        [np.log(1 / K) + multivariate_normal(m64[k], c64[k]).logpdf(X) for k in range(K)]
    )
    # float32: distances of ~d·(4/1)² keep ~6 digits; the log density is ~-30.
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(log_prob.T, expected, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whitening_kernels_equal_numpy(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4)).astype(dtype)
    centres = rng.standard_normal((3, 4)).astype(dtype)
    factors = np.triu(rng.standard_normal((3, 4, 4))).astype(dtype)
    white = whiten(X, centres, factors)
    expected = np.stack([(X - c) @ U for c, U in zip(centres, factors, strict=True)])
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(white, expected, rtol=rtol, atol=rtol)
    resp = rng.random((3, 50)).astype(dtype)
    first, gram = whitened_moments(white.copy(), resp)
    np.testing.assert_allclose(first, np.einsum("gn,gnd->gd", resp, expected), rtol=rtol * 10)
    np.testing.assert_allclose(
        gram, np.einsum("gn,gni,gnj->gij", resp, expected, expected), rtol=rtol * 10, atol=rtol
    )


def test_cost_model_constants_from_exact_times():
    """Times generated from known constants give those constants back (closed form)."""
    truth = {"a": 2e-9, "b": 3e-10, "c": 4e-11, "e": 5e-9}
    measured = {}
    for name, d, k in _cost.CALIBRATION_SHAPES:
        measured[name, d, k] = _cost.predicted_seconds(d, k, truth)[name]
    fitted = _cost.fit_constants(measured)
    for key, value in truth.items():
        assert fitted[key] == pytest.approx(value, rel=1e-6)


def test_cost_model_choice_and_overrides(monkeypatch):
    # Unit constants: expanded costs F (1 + K), whitened K (D² + D), F = D(D+1)/2 + D.
    monkeypatch.setattr(_cost, "_constants", None)
    _cost.set_constants({"a": 1.0, "b": 1.0, "c": 1.0, "e": 1.0})
    monkeypatch.delenv("GMM_FULL_FORMULATION", raising=False)
    assert _cost.choose(100, 1, np.float64) == "whitened"  # 5150·2 > 10100
    assert _cost.choose(2, 32, np.float64) == "expanded"  # 5·33 < 32·6
    with forced("expanded"):
        assert _cost.choose(100, 1, np.float64) == "expanded"
    monkeypatch.setenv("GMM_FULL_FORMULATION", "whitened")
    assert _cost.choose(2, 32, np.float64) == "whitened"
    monkeypatch.setenv("GMM_FULL_FORMULATION", "fastest")
    with pytest.raises(ValueError, match=r"GMM_FULL_FORMULATION='fastest'.*expanded, whitened"):
        _cost.choose(2, 32, np.float64)
    with pytest.raises(ValueError, match="missing"):
        _cost.set_constants({"a": 1.0})
    with pytest.raises(ValueError, match="unknown formulation"):
        with forced("fastest"):
            pass


def test_calibration_measures_positive_constants():
    constants = _cost.calibrate(rows=256)
    assert set(constants) == {"a", "b", "c", "e"}
    assert all(np.isfinite(v) and v > 0 for v in constants.values())


@pytest.mark.parametrize("name", ["full", "diag", "spherical"])
def test_collapse_names_the_component(name):
    family = get_family(name)
    cov = random_covariances(np.random.default_rng(0), name, 4, 3)
    if name == "full":
        cov[2] = np.zeros((3, 3))
    else:
        cov[2] = 0
    with pytest.raises(CollapsedComponentError, match="component 2 ") as info:
        family.precision_cholesky(cov)
    assert info.value.component == 2
    assert "reg_covar" in str(info.value)


def test_tied_collapse_names_shared_covariance():
    with pytest.raises(CollapsedComponentError, match="shared covariance"):
        get_family("tied").precision_cholesky(np.zeros((3, 3)))


def test_float32_collapse_message_suggests_float64():
    with pytest.raises(CollapsedComponentError, match="float64"):
        get_family("diag").precision_cholesky(np.zeros((2, 2), dtype=np.float32))


def _ml_log_const(params, family):
    """Maximum likelihood's E-step constant, log(weight) + log normaliser."""
    from gmm.em import LOG_2PI, log_det_precision

    d = params.means.shape[1]
    return np.log(params.weights) + log_det_precision(params, family) - 0.5 * d * LOG_2PI


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["full", "VVV", "EEV"])
def test_both_full_formulations_fit_alike_and_like_sklearn(name):
    """mclust's models on full's kernels and 'full' itself: the two formulations
    give the same fit; 'full' also equals scikit-learn from the same start."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from gmm import GaussianMixture

    rng = np.random.default_rng(0)
    X = np.vstack(
        [rng.standard_normal((200, 4)) + 3, rng.standard_normal((200, 4)) * [1, 2, 0.5, 1] - 2]
    )
    fits = {}
    for formulation in FORMULATIONS:
        with forced(formulation):
            model = GaussianMixture(2, covariance_type=name, random_state=0, tol=0, max_iter=15)
            fits[formulation] = model.fit(X)
    expanded, whitened = fits["expanded"], fits["whitened"]
    assert whitened.lower_bound_ == pytest.approx(expanded.lower_bound_, rel=1e-12)
    np.testing.assert_allclose(whitened.covariances_, expanded.covariances_, atol=1e-11)
    np.testing.assert_allclose(whitened.means_, expanded.means_, atol=1e-11)
    if name == "full":
        init = dict(
            weights_init=[0.5, 0.5],
            means_init=X[[0, -1]],
            precisions_init=np.stack([np.eye(4)] * 2),
        )
        ref = SkGaussianMixture(2, tol=0, max_iter=15, **init).fit(X)
        for formulation in FORMULATIONS:
            with forced(formulation):
                ours = GaussianMixture(2, tol=0, max_iter=15, **init).fit(X)
            assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)
            np.testing.assert_allclose(ours.covariances_, ref.covariances_, atol=1e-9)


@pytest.mark.parametrize("formulation", ("expanded", "whitened"))
def test_a_component_without_a_condition_estimate_takes_the_centred_path(formulation):
    # Issue 17: a NaN condition estimate (a precision factor whose Gram matrix
    # overflows float64) made a 'full' component neither expanded nor centred, so
    # the E-step dropped it. Every component must be on exactly one path.
    family = get_family("full")
    d = 3
    prec_chol = np.stack([np.eye(d), np.eye(d) * 1e200, np.eye(d) * 2.0])
    means = np.zeros((3, d))
    weights = np.full(3, 1 / 3)
    with _cost.forced(formulation):
        coefs = family.coefficients(weights, means, prec_chol)
    on_a_path = np.sort(np.concatenate([coefs.fast, coefs.centred]))
    np.testing.assert_array_equal(on_a_path, np.arange(3))
    assert 1 in coefs.centred


def _reference_condition(weights, means, factors):
    """``kappa_k`` from the definition: eigenvalues of P_k, tr S_k by a general inverse."""
    prec = factors @ np.swapaxes(factors, 1, 2)
    top = np.linalg.eigvalsh(prec)[:, -1]
    traces = np.trace(np.linalg.inv(prec), axis1=1, axis2=2)
    norms = np.linalg.norm(means, axis=1)
    spread = np.sqrt(weights @ (traces + norms**2))
    return top * (spread + norms) ** 2 / means.shape[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 6, 20])
def test_full_expansion_decision_is_the_eigenvalues_decision(dtype, d):
    """The trace/Gershgorin shortcut never changes which path a component takes.

    Components from well conditioned to far past kappa_max (precisions scaled
    from 1e-3 to 1e9 against means of spread 3): the decision equals the one
    of the exact condition from eigvalsh and a general inverse, and the
    estimate is never below the exact value (a bound, where it is not exact).
    """
    from gmm.covariance.base import kappa_max

    rng = np.random.default_rng(d)
    family = get_family("full")
    k = 12
    cov = random_covariances(rng, "full", k, d)
    cov *= np.logspace(-9, 3, k)[:, None, None]  # precisions from 1e-3 to 1e9
    factors = family.precision_cholesky(cov)
    means = rng.normal(0, 3, size=(k, d))
    weights = rng.dirichlet(np.ones(k))
    limit = kappa_max(dtype)
    ours = family.expansion_condition(weights, means, factors, limit=limit)
    exact = _reference_condition(weights, means, factors)
    np.testing.assert_array_equal(ours <= limit, exact <= limit)
    assert 0 < (exact <= limit).sum() < k  # both paths are exercised
    assert np.all(ours >= exact * (1 - 1e-9))
    # Without a limit every estimate is the exact one.
    np.testing.assert_allclose(
        family.expansion_condition(weights, means, factors), exact, rtol=1e-9
    )


@pytest.mark.parametrize("k", [3, 40])  # one LAPACK call each, and the batched solve
@pytest.mark.parametrize("d", [1, 4, 30])
def test_precision_factor_is_the_upper_factor_of_the_inverse(k, d):
    """U upper triangular with positive diagonal and U U' = inv(cov) (np.linalg.inv)."""
    rng = np.random.default_rng(k * d)
    family = get_family("full")
    cov = random_covariances(rng, "full", k, d)
    factor = family.precision_cholesky(cov)
    assert np.all(np.tril(factor, -1) == 0) and np.all(np.diagonal(factor, 0, 1, 2) > 0)
    expected = np.linalg.inv(cov)
    np.testing.assert_allclose(factor @ np.swapaxes(factor, 1, 2), expected, rtol=1e-9, atol=0)
    # And it is the one scipy's Cholesky of the precision gives, reversed (unique factor).
    flipped = np.linalg.cholesky(expected[:, ::-1, ::-1])[:, ::-1, ::-1]
    np.testing.assert_allclose(factor, flipped, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("k", [3, 40])
def test_precision_factor_names_the_collapsed_component(k):
    family = get_family("full")
    cov = np.broadcast_to(np.eye(3), (k, 3, 3)).copy()
    cov[k - 2] = np.ones((3, 3))  # rank one: not positive definite
    with pytest.raises(CollapsedComponentError, match="not positive definite") as info:
        family.precision_cholesky(cov)
    assert info.value.component == k - 2


@pytest.mark.parametrize("k", [3, 40])
def test_lower_inverse_against_numpy_and_a_singular_matrix(k):
    """Triangular inverses equal np.linalg.inv; a singular one is non-finite, the rest exact."""
    from gmm.covariance._matrices import lower_inverse

    rng = np.random.default_rng(k)
    lower = np.tril(rng.normal(size=(k, 5, 5))) + 4 * np.eye(5)
    np.testing.assert_allclose(lower_inverse(lower), np.linalg.inv(lower), rtol=1e-12, atol=1e-15)
    lower[1, 2, 2] = 0.0
    inverse = lower_inverse(lower)
    assert not np.all(np.isfinite(inverse[1]))
    others = np.arange(k) != 1
    np.testing.assert_allclose(
        inverse[others], np.linalg.inv(lower[others]), rtol=1e-12, atol=1e-15
    )


# ------------------------------------------------- axis-aligned E-step in one product
AXIS_ALIGNED = ["diag", "spherical", "EII", "VII", "EEI", "VVI"]


def _axis_aligned_covariances(rng, name, k, scales):
    """Per-component variances (K, D) that model ``name`` can hold, times ``scales²``
    (times the largest scale² for the isotropic models, which cannot follow them)."""
    d = scales.size
    if name in ("spherical", "EII", "VII"):
        scales = np.full(d, scales.max())
    if name in ("spherical", "EII", "VII"):
        variances = np.repeat(rng.uniform(0.3, 2.0, (k, 1)), d, axis=1)
        variances[:] = variances[:1] if name == "EII" else variances
    elif name == "EEI":
        variances = np.repeat(rng.uniform(0.3, 2.0, (1, d)), k, axis=0)
    else:
        variances = rng.uniform(0.3, 2.0, (k, d))
    return variances * scales**2


def _family_covariances(name, variances):
    if name == "diag":
        return variances
    if name == "spherical":
        return variances[:, 0]
    return np.stack([np.diag(v) for v in variances])


@pytest.mark.parametrize("kernels", ["features", "plain"])
@pytest.mark.parametrize("name", AXIS_ALIGNED)
@pytest.mark.parametrize(
    "case", ["offset 1e6", "features 1e-4..1e4", "tight std 1e-3", "float32", "far rows"]
)
def test_axis_aligned_log_prob_equals_scipy_on_hard_data(name, case, kernels):
    """The one-product E-step on [x², x, 1] (on [x, ||x||², 1] for the spherical
    models), and the plain one on X and its squares (``feats`` is X itself, see
    Diag.chunk_features), against scipy's log-density of the raw, unshifted
    float64 rows."""
    rng = np.random.default_rng(7)
    k, d = 3, 5
    scales = np.logspace(-4, 4, d) if case == "features 1e-4..1e4" else np.ones(d)
    if case == "tight std 1e-3":
        scales = np.full(d, 1e-3)
    offset = 1e6 if case == "offset 1e6" else 0.0
    variances = _axis_aligned_covariances(rng, name, k, scales)
    spread = 3.0 if case != "tight std 1e-3" else 3e-3  # means a few stds apart
    means = offset + rng.normal(0, spread, (k, d)) * (scales if case != "tight std 1e-3" else 1)
    labels = rng.integers(0, k, 400)
    X = means[labels] + rng.standard_normal((400, d)) * np.sqrt(variances[labels])
    if case == "far rows":  # 30 stds from every component: log-probs far below e^-708
        X[:20] += 30 * np.sqrt(variances.max(axis=0)) * rng.choice([-1, 1], (20, d))
    family = get_family(name)
    cov = _family_covariances(name, variances)
    weights = rng.dirichlet(np.ones(k))
    dtype = np.float32 if case == "float32" else np.float64
    params = Parameters(
        weights.astype(dtype),
        means.astype(dtype),
        cov.astype(dtype),
        family.precision_cholesky(cov).astype(dtype),
    )
    shift = X.astype(dtype).mean(axis=0)
    coefs, const = prepare(params, family, shift, _ml_log_const(params, family))
    Xc = X.astype(dtype) - shift
    feats = family.features(Xc) if kernels == "features" else Xc
    log_prob, _ = weighted_log_prob(Xc, feats, family, coefs, const)
    assert log_prob.dtype == dtype
    # scipy's univariate densities, summed over the features: the covariances are
    # diagonal, and multivariate_normal refuses a condition number of 1e16.
    expected = np.column_stack(
        [
            np.log(weights[j]) + norm.logpdf(X, means[j], np.sqrt(variances[j])).sum(axis=1)
            for j in range(k)
        ]
    )
    # float32: distances of O(d) lose ~1e-6 of the largest term (spread² / variance).
    tol = dict(rtol=1e-5, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(log_prob.T, expected, **tol)
    # The product reads [x, ||x||², 1] for spherical components, else [x², x, 1].
    assert coefs.matrix.shape == (k, d + 2 if name in ("spherical", "EII", "VII") else 2 * d + 1)


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("name", ["diag", "spherical"])
def test_axis_aligned_mahalanobis_equals_the_fused_log_prob(name, plain):
    """mahalanobis (the family interface other modules call) and log_prob (the EM
    pass's one product) give the same distances."""
    rng = np.random.default_rng(5)
    k, d = 3, 4
    variances = _axis_aligned_covariances(rng, name, k, np.ones(d))
    family = get_family(name)
    cov = _family_covariances(name, variances)
    means = rng.normal(0, 2, (k, d))
    params = Parameters(np.full(k, 1 / k), means, cov, family.precision_cholesky(cov))
    X = rng.normal(0, 3, (300, d))
    coefs, const = prepare(params, family, np.zeros(d), _ml_log_const(params, family))
    feats = X if plain else family.features(X)
    maha, _ = family.mahalanobis(X, feats, coefs)
    direct = np.stack([np.sum((X - means[j]) ** 2 / variances[j], axis=1) for j in range(k)])
    np.testing.assert_allclose(maha, direct, rtol=1e-10)
    log_prob, _ = weighted_log_prob(X, feats, family, coefs, const)
    np.testing.assert_allclose(log_prob, -0.5 * maha + const[:, None], rtol=1e-12)


@pytest.mark.parametrize("name", ["spherical", "EII", "VII"])
@pytest.mark.parametrize("case", ["offset 1e6", "tight std 1e-3", "float32", "far rows"])
def test_spherical_e_step_equals_the_diagonal_kernels_on_hard_data(name, case):
    """The spherical models' E-step on [x, ||x||², 1] gives the statistics of the
    diagonal family's [x², x, 1] kernels with the same precision in every feature:
    log-likelihood, counts and moments; entries that underflow are exact zeros."""
    from gmm import em

    rng = np.random.default_rng(3)
    k, d, n = 3, 6, 3000
    scale = 1e-3 if case == "tight std 1e-3" else 1.0
    offset = 1e6 if case == "offset 1e6" else 0.0
    variances = np.repeat(rng.uniform(0.3, 2.0, (k, 1)), d, axis=1) * scale**2
    if name == "EII":
        variances[:] = variances[:1]
    means = offset + rng.normal(0, 3 * scale, (k, d))
    labels = rng.integers(0, k, n)
    X = means[labels] + rng.standard_normal((n, d)) * np.sqrt(variances[labels])
    if case == "far rows":  # log-probabilities of other components below e^-708
        X[:20] += 60 * np.sqrt(variances.max()) * rng.choice([-1, 1], (20, d))
    dtype = np.float32 if case == "float32" else np.float64
    weights = rng.dirichlet(np.ones(k))
    family, diag = get_family(name), get_family("diag")
    cov = _family_covariances(name, variances)
    prec_chol = family.precision_cholesky(cov)
    params = Parameters(weights, means, cov, prec_chol)
    twin = Parameters(weights, means, variances, 1 / np.sqrt(variances))
    X = X.astype(dtype)
    shift = X.mean(axis=0, dtype=np.float64)
    results = []
    for fam, par in ((family, params), (diag, twin)):
        cast = Parameters(
            *(np.asarray(v, dtype=dtype) for v in vars(par).values() if v is not None)
        )
        data = em.ChunkedData(X, None, fam, shift, k)
        results.append(em.expectation(data, cast, _ml_log_const(par, fam))[0])
    ours, reference = results
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert ours.log_likelihood == pytest.approx(reference.log_likelihood, rel=tol)
    np.testing.assert_allclose(ours.nk, reference.nk, rtol=tol, atol=tol * n)
    np.testing.assert_allclose(ours.moments[0], reference.moments[0], rtol=tol, atol=tol)
    if case == "far rows":
        resp = em.normalize_log_prob(
            weighted_log_prob(
                X - shift.astype(dtype),
                family.features(X - shift.astype(dtype)),
                family,
                *prepare(params, family, shift.astype(dtype), _ml_log_const(params, family)),
            )[0]
        )[0]
        assert np.count_nonzero(resp == 0) > 0  # exact zeros, no subnormals
        assert np.all((resp == 0) | (resp >= np.finfo(dtype).tiny))


def test_axis_aligned_scatter_gives_a_one_point_component_variance_zero():
    """Moments of a component that holds one point (or identical points): the trace
    cancels to rounding noise, which is 0; other components keep the diagonal
    family's per-feature variances."""
    spherical, diag = get_family("spherical"), get_family("diag")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)) * [1.0, 2.0, 3.0]
    X[-1] = [40.3, -17.1, 9.9]
    shift = X[:-1].mean(axis=0)
    Xc = X - shift
    resp = np.zeros((2, 40))
    resp[0, :-1] = 1
    resp[1, -1] = 1
    nk = resp.sum(axis=1) + 10 * np.finfo(float).eps
    coefs = spherical.coefficients(np.ones(2) / 2, np.zeros((2, 3)), np.ones(2))
    moments = spherical.moments(Xc, spherical.features(Xc), resp, coefs, None)
    ours = spherical.scatter(moments, nk, shift, coefs)
    reference = diag.scatter(moments, nk, shift, coefs)
    _, raw = statistics.diagonal_from_moments(moments[0], nk, shift)  # without the clamp
    assert np.all(raw[1] > 0)  # the uncentred formula's noise
    assert np.all(ours.covariances[1] == 0)
    assert np.all(reference.covariances[1] == 0)  # the diagonal family clamps it too
    np.testing.assert_array_equal(ours.covariances[0], reference.covariances[0])
    np.testing.assert_allclose(ours.covariances[0], X[:-1].var(axis=0), rtol=1e-12)
    # Without coefficients (no E-step made the moments) the clamp reads the moments' dtype.
    for family in (spherical, diag):
        bare = family.scatter(moments, nk, shift, None)
        np.testing.assert_array_equal(
            bare.covariances, family.scatter(moments, nk, shift, coefs).covariances
        )


@pytest.mark.parametrize("name", ["EII", "VII"])
def test_spherical_mclust_models_refuse_a_non_spherical_precisions_init(name):
    from gmm import GaussianMixture

    X = np.random.default_rng(0).normal(size=(60, 2))
    precisions = np.stack([np.diag([1.0, 2.0])] * 2)
    with pytest.raises(ValueError, match="must be spherical"):
        GaussianMixture(2, covariance_type=name, precisions_init=precisions).fit(X)
    GaussianMixture(2, covariance_type=name, precisions_init=np.stack([np.eye(2)] * 2)).fit(X)


def _expectation(X, family, params, shift, kept):
    """One E-step with the kept features (``kept``) or the plain kernels on X."""
    from gmm import em

    k, d = params.means.shape
    data = em.ChunkedData(X, None, family, shift, k)
    assert (next(iter(data))[1].shape[1] > d) == kept  # the path asked for is the one run
    return em.expectation(data, params, _ml_log_const(params, family))


@pytest.mark.parametrize("name", AXIS_ALIGNED)
@pytest.mark.parametrize(
    "case",
    ["offset 1e6", "features 1e-4..1e4", "tight std 1e-3", "float32", "far rows", "one point"],
)
def test_axis_aligned_plain_kernels_give_the_kept_features_statistics(name, case, monkeypatch):
    """The EM pass on X and its squares (few components, Diag.chunk_features) gives
    the statistics of the kept features [x², x, 1] / [x, ||x||², 1] on hard data:
    log-likelihood, counts, moments and the scatter (a one-point component's
    variance exactly 0 in both)."""
    from gmm import em
    from gmm.covariance.diag import Diag

    rng = np.random.default_rng(11)
    k, d, n = 2, 5, 2000
    scales = np.logspace(-4, 4, d) if case == "features 1e-4..1e4" else np.ones(d)
    if case == "tight std 1e-3":
        scales = np.full(d, 1e-3)
    offset = 1e6 if case == "offset 1e6" else 0.0
    variances = _axis_aligned_covariances(rng, name, k, scales)
    spread = 3.0 if case != "tight std 1e-3" else 3e-3
    means = offset + rng.normal(0, spread, (k, d)) * (scales if case != "tight std 1e-3" else 1)
    labels = rng.integers(0, k, n)
    X = means[labels] + rng.standard_normal((n, d)) * np.sqrt(variances[labels])
    if case == "far rows":
        X[:20] += 60 * np.sqrt(variances.max(axis=0)) * rng.choice([-1, 1], (20, d))
    if case == "one point":  # component 1 holds the last row alone
        X[-1] = means[1] = offset + 40.0
    dtype = np.float32 if case == "float32" else np.float64
    family = get_family(name)
    cov = _family_covariances(name, variances)
    factor = family.precision_cholesky(cov)
    params = Parameters(
        *(np.asarray(v, dtype=dtype) for v in (np.full(k, 1 / k), means, cov, factor))
    )
    X = X.astype(dtype)
    shift = X.mean(axis=0, dtype=np.float64)
    results = {}
    for kept in (True, False):
        monkeypatch.setattr(Diag, "FEATURE_COMPONENTS", 0 if kept else 10**6)
        monkeypatch.setattr(Diag, "PLAIN_MIN_VALUES", 0)
        stats, coefs = _expectation(X, family, params, shift, kept)
        scatter = em.scatter(stats, family, shift, coefs, dtype) if name == "diag" else None
        results[kept] = stats, scatter
    (ours, plain_scatter), (reference, kept_scatter) = results[False], results[True]
    tol = 1e-5 if dtype == np.float32 else 1e-11
    assert ours.log_likelihood == pytest.approx(reference.log_likelihood, rel=tol)
    np.testing.assert_allclose(ours.nk, reference.nk, rtol=tol, atol=tol * n)
    scale = np.abs(reference.moments[0]).max(axis=0)
    error = np.abs(ours.moments[0] - reference.moments[0]) / scale  # per column's largest
    assert error.max() <= tol, error.max()
    if case == "one point" and name == "diag":
        assert np.all(plain_scatter.covariances[1] == 0)
        assert np.all(kept_scatter.covariances[1] == 0)


@pytest.mark.parametrize("name", ["diag", "spherical", "VVI"])
@pytest.mark.parametrize("kept", [True, False])
def test_one_component_far_row_is_named_by_either_kernels(name, kept, monkeypatch):
    """K = 1: a row whose squared distance overflows raises OutOfRangeError naming
    it, with the kept features and with the plain kernels."""
    from gmm import em
    from gmm.covariance.diag import Diag

    monkeypatch.setattr(Diag, "FEATURE_COMPONENTS", 0 if kept else 10**6)
    monkeypatch.setattr(Diag, "PLAIN_MIN_VALUES", 0)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 4))
    X[123] = 1e200
    family = get_family(name)
    cov = np.ones((1, 4)) if name != "spherical" else np.ones(1)
    cov = np.stack([np.diag(c) for c in cov]) if name == "VVI" else cov
    params = Parameters(np.ones(1), np.zeros((1, 4)), cov, family.precision_cholesky(cov))
    with pytest.raises(em.OutOfRangeError) as error:
        _expectation(X, family, params, np.zeros(4), kept)
    assert error.value.row == 123


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "VVI", "EII"])
def test_axis_rows_read_as_they_are_are_kept_within_the_budget(covariance_type, monkeypatch):
    """Few components and many features: the kernels read the shifted rows and
    square them per chunk, so what a kept pass holds is the rows (D columns),
    not the features; rows that fit the budget are kept, and the fit equals the
    one that shifts them again every iteration."""
    from gmm import em

    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 60)) * np.logspace(-2, 2, 60) + 1e3
    family = get_family(covariance_type)
    assert family.chunk_columns(60, 2, X.dtype) == 60
    budget = 3000 * 60 * 8  # the rows (squared in blocks); not the features' 121 + 60 columns
    monkeypatch.setattr(em, "FEATURE_CACHE_BYTES", budget)
    data = em.ChunkedData(X, None, family, X.mean(axis=0), 2)
    assert data.kept_bytes == X.nbytes

    def fit():
        from gmm import GaussianMixture

        model = GaussianMixture(2, covariance_type=covariance_type, random_state=0, max_iter=5)
        return model.fit(X)

    kept = fit()
    monkeypatch.setattr(em, "FEATURE_CACHE_BYTES", 0)
    streamed = fit()
    np.testing.assert_allclose(kept.means_, streamed.means_, rtol=1e-12)
    np.testing.assert_allclose(kept.covariances_, streamed.covariances_, rtol=1e-12)
    assert kept.lower_bound_ == pytest.approx(streamed.lower_bound_, rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["unit", "offset 1e6, scales 1e-4..1e4", "tight"])
def test_full_feature_moments_within_the_dot_product_error_bound(dtype, case):
    """``feature_moments`` (each dtype's own orientation of ``resp @ feats``) against
    the same sums in float64 by ``np.einsum`` (a different order of the sums) on the
    float64 inputs: within the standard bound of a length-n dot product,
    ``|err| <= gamma_n · (|r| @ |f|)``, ``gamma_n = n·u / (1 - n·u)``, whatever the
    order of the sums (the reference's own bound added); float64 is numpy's
    ``resp @ feats`` exactly."""
    from gmm.covariance.full import feature_moments

    rng = np.random.default_rng(11)
    n, d, k = 3000, 6, 20
    X = rng.normal(size=(n, d))
    if case == "offset 1e6, scales 1e-4..1e4":
        X = X * np.logspace(-4, 4, d) + 1e6
    elif case == "tight":
        X = 1e-3 * X + rng.normal(size=d)
    X = (X - X.mean(axis=0)).astype(dtype)  # the EM pass's shifted rows
    feats = get_family("full").features(X)
    logits = rng.normal(scale=5.0, size=(k, n))
    resp = np.exp(logits - logits.max(axis=0))
    resp[:, ::7] = 0.0
    resp[3, ::7] = 1.0  # rows with one responsible component
    resp = (resp / resp.sum(axis=0)).astype(dtype)
    ours = feature_moments(resp, feats)
    assert ours.dtype == dtype and ours.shape == (k, feats.shape[1]) and ours.flags.c_contiguous
    r64, f64 = resp.astype(np.float64), feats.astype(np.float64)
    exact = np.einsum("kn,nf->kf", r64, f64)

    def gamma(dt):
        unit = np.finfo(dt).eps / 2
        return n * unit / (1 - n * unit)

    # Ours and the reference each within their bound of the exact sums.
    bound = (gamma(dtype) + gamma(np.float64)) * (np.abs(r64) @ np.abs(f64))
    assert np.all(np.abs(ours - exact) <= bound)
    if dtype == np.float64:
        np.testing.assert_array_equal(ours, resp @ feats)


@pytest.mark.parametrize("n_features", [1, 2, 5, 48, 49, 64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_full_gram_without_the_blas_limit_is_the_limited_product(n_features, dtype):
    """full._gram (no BLAS limit up to DIRECT_GRAM_FEATURES features) gives what
    _matrices.gram gives, bit for bit, on one BLAS thread or two; 'full' precisions_ are
    U U' (checked against a per-matrix np.dot) and the coefficients use the same matrices."""
    from threadpoolctl import threadpool_limits

    from gmm.covariance import _matrices
    from gmm.covariance.full import DIRECT_GRAM_FEATURES, _gram

    rng = np.random.default_rng(n_features)
    factor = np.triu(rng.normal(size=(3, n_features, n_features))).astype(dtype)
    factor[:, range(n_features), range(n_features)] = rng.uniform(0.5, 2, (3, n_features))
    with threadpool_limits(1):
        limited = _matrices.gram(factor)
    for threads in (1, 2):
        with threadpool_limits(threads):
            direct = _gram(factor)
            precisions = get_family("full").precisions(factor)
        if n_features <= DIRECT_GRAM_FEATURES:
            np.testing.assert_array_equal(direct, limited)
            np.testing.assert_array_equal(precisions, limited)
        assert direct.dtype == precisions.dtype == dtype
    reference = np.stack([np.dot(u, u.T) for u in factor.astype(np.float64)])
    # Sums of D products: their rounding error is within D·eps of the largest entry.
    tolerance = n_features * np.finfo(dtype).eps * np.abs(reference).max()
    np.testing.assert_allclose(precisions, reference, rtol=0, atol=tolerance)
