"""Online EM (gmm.online, GaussianMixture.partial_fit, gmm.fit_stream).

References: the blend against np.average / np.cov with aweights on the union of
two weighted row sets; two stepwise-EM updates against a plain reimplementation
(scipy.stats densities, np.cov M-steps with each family's constraint written
out); one update with step size 1 against batch EM (``fit(max_iter=1)``) from
the same start, bit for bit; integer weights against repeated rows.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

import gmm
from gmm import GaussianMixture, fit_stream, load, online, save
from gmm.online import blend, step_size
from gmm.statistics import Scatter
from tests.mixture_data import COVARIANCE_TYPES, make_mixture

BUILTIN = ("spherical", "diag", "full", "tied")
PARAMS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def same_parameters(a, b) -> bool:
    return all(
        getattr(a, n).dtype == getattr(b, n).dtype and np.array_equal(getattr(a, n), getattr(b, n))
        for n in PARAMS
    )


def same_state(a, b) -> bool:
    arrays = all(
        np.array_equal(getattr(a.scatter, n), getattr(b.scatter, n))
        for n in ("nk", "means", "covariances")
    )
    return arrays and (a.scale, a.weight_seen, a.log_likelihood) == (
        b.scale,
        b.weight_seen,
        b.log_likelihood,
    )


@pytest.fixture(scope="module")
def stream():
    X, *_ = make_mixture("full", n_samples=1200, n_components=3, d=2, seed=4)
    return X


def start(covariance_type, X, **kwargs):
    """Initial parameters for a start shared by two estimators (one k-means fit)."""
    ref = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X)
    return dict(
        n_components=3,
        covariance_type=covariance_type,
        weights_init=ref.weights_,
        means_init=ref.means_,
        precisions_init=ref.precisions_,
        **kwargs,
    )


# ===================================================================== kernel
def weighted_scatter(X, w, kind):
    """Scatter of rows X with per-component weights w (K, n), by np.average / np.cov."""
    nk = w.sum(axis=1)
    means = np.stack([np.average(X, axis=0, weights=wk) for wk in w])
    full = np.stack([np.cov(X.T, aweights=wk, bias=True) for wk in w])
    if kind == "diagonal":
        return Scatter(nk, means, np.diagonal(full, axis1=1, axis2=2).copy(), kind)
    if kind == "pooled":
        return Scatter(nk, means, np.einsum("k,kij->ij", nk, full) / nk.sum(), kind)
    return Scatter(nk, means, full, kind)


@settings(max_examples=30, deadline=None)
@given(
    rho=st.floats(0.01, 1.0),
    n_old=st.integers(3, 40),
    n_new=st.integers(3, 40),
    kind=st.sampled_from(("full", "diagonal", "pooled")),
    seed=st.integers(0, 2**16),
)
def test_blend_is_the_scatter_of_the_weighted_union(rho, n_old, n_new, kind, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(3, 2, (n_old, 3)), rng.normal(-1, 1, (n_new, 3))
    rA, rB = rng.dirichlet(np.ones(2), n_old).T, rng.dirichlet(np.ones(2), n_new).T
    wA, wB = rng.uniform(0.5, 2, n_old), rng.uniform(0.5, 2, n_new)
    TA, TB = wA.sum(), wB.sum()
    old, new = weighted_scatter(A, rA * wA, kind), weighted_scatter(B, rB * wB, kind)
    # Stepwise EM: (1 - rho) of the old normalised statistics, rho of the new, at scale TB.
    union = np.concatenate([(1 - rho) * rA * wA / TA, rho * rB * wB / TB], axis=1) * TB
    expected = weighted_scatter(np.concatenate([A, B]), union, kind)
    got = blend(old, TA, new, TB, rho)
    for name in ("nk", "means", "covariances"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-10)


def test_blend_with_step_one_returns_the_batch_bit_for_bit():
    rng = np.random.default_rng(1)
    for kind in ("full", "diagonal", "pooled"):
        old = weighted_scatter(rng.normal(size=(20, 3)), rng.uniform(size=(2, 20)), kind)
        new = weighted_scatter(rng.normal(size=(30, 3)), rng.uniform(size=(2, 30)), kind)
        got = blend(old, 7.3, new, 11.9, 1.0)
        for name in ("nk", "means", "covariances"):
            assert np.array_equal(getattr(got, name), getattr(new, name))


def test_step_size_closed_form():
    assert step_size(0, 0.7, 1.0) == 1.0
    assert step_size(9, 0.5, 7.0) == pytest.approx(0.25)  # 16 ** -0.5
    assert step_size(1, 1.0, 1.0) == 0.5  # decay 1, offset 1: a running mean of the batches


# =========================================================== exact references
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_step_one_on_all_data_is_one_batch_em_iteration(stream, covariance_type):
    kwargs = start(covariance_type, stream)
    batch = GaussianMixture(max_iter=1, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch.fit(stream)
    online = GaussianMixture(**kwargs).partial_fit(stream)
    assert same_parameters(online, batch)
    assert online.lower_bound_ == batch.lower_bound_
    # The default start (k-means on the first batch) is fit's start too.
    default = GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        default.fit(stream)
    first = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    assert same_parameters(first.partial_fit(stream), default)


def reference_m_step(X, resp, covariance_type, reg):
    """Plain M-step from responsibilities (K, n): np.cov plus each constraint."""
    nk = resp.sum(axis=1)
    means = resp @ X / nk[:, None]
    full = np.stack([np.cov(X.T, aweights=r, bias=True) for r in resp])
    d = X.shape[1]
    if covariance_type == "full":
        cov = full + reg * np.eye(d)
    elif covariance_type == "tied":
        cov = np.einsum("k,kij->ij", nk, full) / nk.sum() + reg * np.eye(d)
    elif covariance_type == "diag":
        cov = np.diagonal(full, axis1=1, axis2=2) + reg
    else:
        cov = np.diagonal(full, axis1=1, axis2=2).mean(axis=1) + reg
    return nk / nk.sum(), means, cov


def reference_resp(X, weights, means, cov, covariance_type):
    d = X.shape[1]
    dense = {
        "full": lambda k: cov[k],
        "tied": lambda k: cov,
        "diag": lambda k: np.diag(cov[k]),
        "spherical": lambda k: cov[k] * np.eye(d),
    }[covariance_type]
    dens = np.stack(
        [
            w * multivariate_normal(m, dense(k)).pdf(X)
            for k, (w, m) in enumerate(zip(weights, means, strict=True))
        ]
    )
    return dens / dens.sum(axis=0)


@pytest.mark.parametrize("covariance_type", BUILTIN)
def test_two_updates_match_a_plain_stepwise_em(stream, covariance_type):
    """Batch 1 from a given start, then batch 2 blended with rho_1, against scipy + np.cov."""
    X1, X2 = stream[:500], stream[500:800]
    w2 = np.random.default_rng(0).uniform(0.2, 3.0, X2.shape[0])
    kwargs = start(covariance_type, stream, learning_decay=0.6, learning_offset=2.0)
    model = GaussianMixture(**kwargs).partial_fit(X1).partial_fit(X2, sample_weight=w2)

    reg = 1e-6
    cov0 = (
        np.linalg.inv(kwargs["precisions_init"])
        if covariance_type in ("full", "tied")
        else (1 / kwargs["precisions_init"])
    )
    r1 = reference_resp(X1, kwargs["weights_init"], kwargs["means_init"], cov0, covariance_type)
    w, m, c = reference_m_step(X1, r1, covariance_type, reg)
    r2 = reference_resp(X2, w, m, c, covariance_type) * w2
    rho = (1 + 2.0) ** -0.6
    union = np.concatenate([(1 - rho) * r1 / X1.shape[0], rho * r2 / w2.sum()], axis=1)
    weights, means, cov = reference_m_step(np.concatenate([X1, X2]), union, covariance_type, reg)
    np.testing.assert_allclose(model.weights_, weights, rtol=1e-9)
    np.testing.assert_allclose(model.means_, means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.covariances_, cov, rtol=1e-8)
    assert (model.n_batches_seen_, model.n_samples_seen_) == (2, 800)


@pytest.mark.parametrize("covariance_type", BUILTIN)
def test_integer_weights_equal_repeated_rows(stream, covariance_type):
    kwargs = start(covariance_type, stream)
    counts = np.random.default_rng(2).integers(0, 4, 300)
    batch = stream[300:600]
    weighted = GaussianMixture(**kwargs).partial_fit(stream[:300], sample_weight=counts)
    repeated = GaussianMixture(**kwargs).partial_fit(np.repeat(stream[:300], counts, axis=0))
    weighted.partial_fit(batch, sample_weight=counts)
    repeated.partial_fit(np.repeat(batch, counts, axis=0))
    for name in PARAMS:
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-12)


# ============================================================ the estimator
def test_float32_stays_float32_and_statistics_run_in_float64(stream):
    model = GaussianMixture(3, random_state=0)
    for batch in np.array_split(stream.astype(np.float32), 6):
        model.partial_fit(batch)
    assert all(getattr(model, name).dtype == np.float32 for name in PARAMS)
    assert model._online.scatter.covariances.dtype == np.float64
    ref = GaussianMixture(3, random_state=0)
    for batch in np.array_split(stream, 6):
        ref.partial_fit(batch)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-4, atol=1e-4)


def test_batches_of_one_row(stream):
    model = GaussianMixture(3, covariance_type="diag", random_state=0).partial_fit(stream[:100])
    for row in stream[100:130]:
        model.partial_fit(row[None, :])
    assert model.n_batches_seen_ == 31 and model.n_samples_seen_ == 130
    assert np.all(np.isfinite(model.covariances_))


def test_lower_bound_is_the_running_mean_of_the_batches(stream):
    model = GaussianMixture(3, random_state=0)
    scores, sizes = [], []
    for batch in np.array_split(stream, 4):
        if model.__dict__.get("means_") is not None:
            scores.append(model.score(batch))  # the parameters that will score it
        model.partial_fit(batch)
        sizes.append(len(batch))
    assert len(model.lower_bounds_) == model.n_iter_ == 4 and not model.converged_
    np.testing.assert_allclose(model.lower_bounds_[1:], scores, rtol=1e-12)
    expected = np.dot(model.lower_bounds_, sizes) / sum(sizes)
    assert model.lower_bound_ == pytest.approx(expected, rel=1e-12)


def test_fit_after_partial_fit_starts_afresh(stream):
    fresh = GaussianMixture(3, random_state=0).fit(stream)
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:200]).partial_fit(stream[200:])
    model.fit(stream)
    assert same_parameters(model, fresh) and model.n_iter_ == fresh.n_iter_
    assert not hasattr(model, "n_batches_seen_") and not hasattr(model, "_online")
    # A stream after fit starts from the fitted parameters: no new initialisation.
    expected_score = fresh.score(stream[:100])
    model.partial_fit(stream[:100])
    assert model.n_batches_seen_ == 1 and model.lower_bound_ == pytest.approx(expected_score)


def test_warm_start_fit_after_partial_fit_starts_from_the_stream(stream):
    model = GaussianMixture(3, random_state=0, warm_start=True, max_iter=1)
    model.partial_fit(stream[:400])
    expected = GaussianMixture(
        3,
        weights_init=model.weights_,
        means_init=model.means_,
        precisions_init=model.precisions_,
        max_iter=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected.fit(stream)
        model.fit(stream)
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-12)


# ================================================================ bad input
BAD = [
    (lambda X: X[:, :1], ValueError, "features"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), ValueError, "NaN"),
    (lambda X: X.astype(np.float32), TypeError, "float32"),
    (lambda X: X.astype(str).astype(object) + "x", ValueError, "convert"),
    (lambda X: X[:0], ValueError, "0 sample"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), ValueError, "inf"),
    (lambda X: np.hstack([X, X[:, :1]]), ValueError, "features"),
]


@pytest.mark.parametrize("make_bad, error, match", BAD)
def test_bad_batch_leaves_the_stream_unchanged(stream, make_bad, error, match):
    good = stream[:300], stream[300:600], stream[600:900]
    reference = GaussianMixture(3, random_state=0)
    model = GaussianMixture(3, random_state=0)
    for batch in good[:2]:
        reference.partial_fit(batch)
        model.partial_fit(batch)
    with pytest.raises(error, match=match):
        model.partial_fit(make_bad(good[2]))
    assert same_parameters(model, reference) and model.n_batches_seen_ == 2
    assert same_state(model._online, reference._online)
    reference.partial_fit(good[2])
    model.partial_fit(good[2])
    assert same_parameters(model, reference) and model.lower_bound_ == reference.lower_bound_


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"learning_decay": 0.5}, ValueError, r"\(0.5, 1\]"),
        ({"learning_decay": 1.2}, ValueError, "learning_decay"),
        ({"learning_decay": "fast"}, TypeError, "real number"),
        ({"learning_offset": 0.5}, ValueError, ">= 1"),
        ({"learning_offset": np.inf}, ValueError, "finite"),
    ],
)
def test_invalid_learning_parameters(stream, params, error, match):
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
    before = dict(model.__dict__)
    with pytest.raises(error, match=match):
        model.set_params(**params).partial_fit(stream[300:600])
    assert model._online is before["_online"] and model.n_batches_seen_ == 1
    with pytest.raises(error, match=match):
        GaussianMixture(3, **params).partial_fit(stream[:300])


@pytest.mark.parametrize(
    "name, value, error, match",
    [
        ("learning_offset", 2**1100, ValueError, "learning_offset is too large for a float64"),
        ("learning_decay", 2**1100, ValueError, "learning_decay is too large for a float64"),
        ("learning_offset", 10**400 // 3, ValueError, r"\(400 characters\)"),
        ("learning_offset", True, TypeError, "learning_offset must be a real number"),
        ("learning_decay", np.bool_(True), TypeError, "learning_decay must be a real number"),
        ("learning_offset", "2", TypeError, "learning_offset must be a real number"),
        ("learning_decay", np.nan, ValueError, r"learning_decay must lie in \(0.5, 1\]"),
        ("learning_offset", np.nan, ValueError, "learning_offset must be a finite number"),
        ("learning_offset", -np.inf, ValueError, "learning_offset must be a finite number"),
        ("learning_offset", np.longdouble("1e400"), ValueError, "finite number >= 1"),
        ("learning_decay", np.float32(1.5), ValueError, r"\(0.5, 1\]"),
        ("learning_offset", np.int64(0), ValueError, ">= 1"),
    ],
)
def test_learning_parameters_of_every_kind(stream, name, value, error, match):
    """Big ints, bools, numpy scalars, strings, NaN and infinities: a clear error, no change."""
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
    before = dict(model.__dict__)
    with pytest.raises(error, match=match):
        model.set_params(**{name: value}).partial_fit(stream[300:600])
    assert model._online is before["_online"] and model.n_batches_seen_ == 1
    assert model.means_ is before["means_"]
    fresh = GaussianMixture(3, **{name: value})
    with pytest.raises(error, match=match):
        fresh.partial_fit(stream[:300])
    assert not hasattr(fresh, "means_")


@pytest.mark.parametrize(
    "decay, offset, expected",
    [
        (np.float32(0.75), np.int64(4), (0.75, 4.0)),  # 0.75 and 4 are exact in float32
        (1, 10**300, (1.0, 1e300)),  # a big int float64 holds
        (Fraction(3, 4), Fraction(9, 2), (0.75, 4.5)),
    ],
)
def test_learning_parameters_as_numpy_scalars_and_ints(stream, decay, offset, expected):
    assert online.check_learning_parameters(decay, offset) == expected
    model = GaussianMixture(3, learning_decay=decay, learning_offset=offset, random_state=0)
    model.partial_fit(stream[:300]).partial_fit(stream[300:600])
    assert model.n_batches_seen_ == 2


def test_first_batch_smaller_than_n_components(stream):
    model = GaussianMixture(5)
    with pytest.raises(ValueError, match=r"first batch .* at least n_components=5 rows, got 3"):
        model.partial_fit(stream[:3])
    assert not hasattr(model, "means_")


def test_mclust_models_count_rows_on_the_first_batch_only(stream):
    # 'VVV' with 3 components on 2 features: 17 free parameters (15 + 3 - 1 with
    # means and weights). The first batch must weigh more; later batches only blend.
    model = GaussianMixture(3, covariance_type="VVV", random_state=0)
    with pytest.raises(ValueError, match="Too few rows for covariance_type='VVV'"):
        model.partial_fit(stream[:17])
    assert not hasattr(model, "means_") and not hasattr(model, "n_features_in_")
    model.partial_fit(stream[:300])
    for batch in (stream[300:302], stream[302:303], stream[303:310]):
        model.partial_fit(batch)
    assert model.n_batches_seen_ == 4 and np.all(np.isfinite(model.covariances_))


@pytest.mark.parametrize("nan_policy", ["omit", "marginalize"])
def test_partial_fit_refuses_a_nan_policy_by_name(stream, nan_policy):
    model = GaussianMixture(3, nan_policy=nan_policy)
    with pytest.raises(NotImplementedError, match="partial_fit needs complete rows"):
        model.partial_fit(stream[:100])
    assert not hasattr(model, "means_")


def test_nan_under_a_zero_weight_is_still_an_error(stream):
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
    saved = model._online
    batch = stream[300:400].copy()
    batch[7, 1] = np.nan
    weights = np.ones(100)
    weights[7] = 0.0
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(batch, sample_weight=weights)
    assert model._online is saved and model.n_batches_seen_ == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_and_validated_batches_update_alike(stream, dtype):
    """An ndarray batch (fast path) and the same rows as lists (full validation) agree exactly."""
    data = stream.astype(dtype)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, 300)
    fast, slow = (GaussianMixture(3, random_state=0).partial_fit(data[:300]) for _ in range(2))
    fast.partial_fit(data[300:600], sample_weight=weights)
    fast.partial_fit(data[600:900])
    slow.partial_fit(data[300:600].tolist(), sample_weight=weights.tolist())
    slow.partial_fit(data[600:900].tolist())
    assert same_parameters(fast, slow) and same_state(fast._online, slow._online)


def test_finite_rows_whose_sums_overflow_get_an_exact_shift():
    """float32 columns summing past float32's range: the shift is their mean (closed form)."""
    from gmm.online import _later_batch

    model = GaussianMixture(1, random_state=0).partial_fit(np.float32([[0, 0], [1, 1], [2, 0]]))
    big = np.float32([[3e38, 1.0], [3e38, 3.0]])
    data = _later_batch(model, big, None, model._check_parameters()[0])
    assert data.X.dtype == np.float32
    np.testing.assert_allclose(data.shift, [float(np.float32(3e38)), 2.0], rtol=1e-15)


def test_a_model_fitted_on_named_columns_warns_on_an_unnamed_batch(stream):
    pd = pytest.importorskip("pandas")
    model = GaussianMixture(3, random_state=0).partial_fit(
        pd.DataFrame(stream[:300], columns=["a", "b"])
    )
    with pytest.warns(UserWarning, match="feature names"):
        model.partial_fit(stream[300:600])
    assert model.n_batches_seen_ == 2


def test_bad_weights_leave_the_stream_unchanged(stream):
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
    saved = model._online
    with pytest.raises(ValueError, match="negative"):
        model.partial_fit(stream[300:400], sample_weight=-np.ones(100))
    with pytest.raises(ValueError, match="shape"):
        model.partial_fit(stream[300:400], sample_weight=np.ones(3))
    assert model._online is saved and model.n_samples_seen_ == 300


# =============================================================== persistence
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_mid_stream_continues_bit_for_bit(tmp_path, stream, covariance_type, dtype):
    data = stream.astype(dtype)
    batches = np.array_split(data, 8)
    uninterrupted = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    interrupted = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for batch in batches[:3]:
        uninterrupted.partial_fit(batch)
        interrupted.partial_fit(batch)
    save(interrupted, tmp_path / "m.npz")
    resumed = load(tmp_path / "m.npz")
    for batch in batches[3:]:
        uninterrupted.partial_fit(batch)
        resumed.partial_fit(batch)
    assert same_parameters(resumed, uninterrupted)
    assert resumed.lower_bounds_ == uninterrupted.lower_bounds_
    assert resumed.lower_bound_ == uninterrupted.lower_bound_
    assert (resumed.n_batches_seen_, resumed.n_samples_seen_) == (8, data.shape[0])


# =================================================================== streams
def test_fit_stream_reads_arrays_memmaps_and_iterables_alike(tmp_path, stream):
    manual = GaussianMixture(3, random_state=0)
    for start_row in range(0, len(stream), 250):
        manual.partial_fit(stream[start_row : start_row + 250])
    from_array = fit_stream(stream, batch_size=250, n_components=3, random_state=0)
    np.save(tmp_path / "x.npy", stream)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    from_memmap = fit_stream(mapped, batch_size=250, n_components=3, random_state=0)
    pieces = [stream[i : i + 250] for i in range(0, len(stream), 250)]
    from_list = fit_stream(pieces, n_components=3, random_state=0)
    from_pairs = fit_stream(((p, np.ones(len(p))) for p in pieces), n_components=3, random_state=0)
    for model in (from_array, from_memmap, from_list):
        assert same_parameters(model, manual)
    np.testing.assert_allclose(from_pairs.means_, manual.means_, rtol=1e-12)


def test_fit_stream_dask_blocks_once(stream):
    da = pytest.importorskip("dask.array")
    manual = fit_stream(stream, batch_size=300, n_components=3, random_state=0)
    lazy = da.from_array(stream, chunks=300)
    model = fit_stream(lazy, batch_size=300, n_components=3, random_state=0)
    assert same_parameters(model, manual)


def test_fit_stream_continues_a_model_and_shows_progress(stream, capsys):
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
    same = fit_stream([stream[300:600], stream[600:]], model, progress=True)
    assert same is model and model.n_batches_seen_ == 3
    assert "stream" in capsys.readouterr().err
    # Gathered: one update, but the bar counts the batches it read.
    pieces = [stream[i : i + 100] for i in range(0, 400, 100)]
    fit_stream(pieces, model, batch_size=400, progress=True)
    assert model.n_batches_seen_ == 4 and "4/4" in capsys.readouterr().err


def test_fit_stream_errors(stream):
    with pytest.raises(ValueError, match="empty"):
        fit_stream(iter([]), n_components=2)
    with pytest.raises(TypeError, match="only without a model"):
        fit_stream([stream], GaussianMixture(2), n_components=3)
    with pytest.raises(ValueError, match="batch_size"):
        fit_stream(stream, batch_size=0)
    with pytest.raises(TypeError, match="pairs"):
        fit_stream([stream], sample_weight=np.ones(len(stream)))


def test_gathered_batches_update_as_one_batch_of_their_rows(stream):
    """Mini-batch stepwise EM: consecutive batches gathered into one update of their union."""
    pieces = [stream[i : i + 100] for i in range(0, 1000, 100)]  # 10 batches of 100 rows
    weights = [None, np.full(100, 2.0), None, np.arange(100) % 3, None] + [None] * 5
    model = fit_stream(
        list(zip(pieces, weights, strict=True)), batch_size=250, n_components=3, random_state=0
    )
    manual = GaussianMixture(3, random_state=0)
    for lo, hi in ((0, 3), (3, 6), (6, 9), (9, 10)):  # 300, 300, 300 rows, then the rest
        w = [np.ones(100) if weights[i] is None else weights[i] for i in range(lo, hi)]
        union_w = None if all(weights[i] is None for i in range(lo, hi)) else np.concatenate(w)
        manual.partial_fit(np.concatenate(pieces[lo:hi]), sample_weight=union_w)
    assert same_parameters(model, manual) and same_state(model._online, manual._online)
    assert model.n_batches_seen_ == 4 and model.n_samples_seen_ == 1000


def test_gathering_stops_at_a_bad_batch_with_the_rows_before_it_applied(stream):
    bad = stream[200:300].copy()
    bad[5, 0] = np.nan
    pieces = [stream[:100], stream[100:200], bad, stream[300:400]]
    model = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        fit_stream(pieces, model, batch_size=1000)
    expected = GaussianMixture(3, random_state=0).partial_fit(stream[:200])
    assert same_parameters(model, expected) and model.n_batches_seen_ == 1
    # A batch of another width is passed alone, after the gathered rows: partial_fit's error.
    model = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="features"):
        fit_stream([stream[:100], stream[100:200], stream[200:300, :1]], model, batch_size=1000)
    assert same_parameters(model, expected) and model.n_samples_seen_ == 200


@pytest.mark.parametrize("width, dtype", [(2, np.float64), (2, np.float32), (20, np.float64)])
def test_fit_stream_reads_one_array_in_blocks_of_the_default_size(stream, width, dtype):
    from gmm.online import DEFAULT_BATCH_BYTES, DEFAULT_BATCH_SIZE, default_batch_size

    # 10,000 rows, or 1 MiB of rows where that is more (narrow rows: 65,536 of 2 float64).
    size = default_batch_size(width, dtype)
    itemsize = np.dtype(dtype).itemsize
    assert size == max(DEFAULT_BATCH_SIZE, DEFAULT_BATCH_BYTES // (width * itemsize))
    assert default_batch_size(width, np.int64) == default_batch_size(width, np.float64)
    rows = np.tile(stream, (-(-(2 * size + 1) // len(stream)), -(-width // 2)))[:, :width]
    model = fit_stream(rows[: 2 * size + 1].astype(dtype), n_components=3, random_state=0)
    assert model.n_batches_seen_ == 3 and model.n_samples_seen_ == 2 * size + 1
    with pytest.raises(TypeError, match="integer or None"):
        fit_stream(stream, batch_size=2.5)


def test_stationary_stream_reaches_batch_em(stream):
    """A small version of the experiment: one pass of 30,000 rows in batches of 300."""
    X, *_ = make_mixture("full", n_samples=36_000, n_components=3, d=2, seed=7)
    train, held_out = X[:30_000], X[30_000:]
    for covariance_type in BUILTIN:
        kwargs = start(covariance_type, train[:300])
        batch = GaussianMixture(**kwargs, tol=1e-8, max_iter=500).fit(train)
        online = fit_stream(train, batch_size=300, **kwargs)
        gap = batch.score(held_out) - online.score(held_out)
        assert gap < 0.01, (covariance_type, gap)


def test_public_api_exports_fit_stream():
    assert gmm.fit_stream is fit_stream and "fit_stream" in gmm.__all__


# ======================================================================= CLI
def test_cli_fit_online_reads_npy_and_csv_in_batches(tmp_path, stream, capsys):
    from gmm.cli import main

    np.save(tmp_path / "x.npy", stream)
    np.savetxt(tmp_path / "x.csv", stream, delimiter=",", fmt="%.17g")
    expected = fit_stream(stream, batch_size=200, n_components=3, random_state=0)
    for name in ("x.npy", "x.csv"):
        out = tmp_path / f"{name}.npz"
        argv = ["fit", str(tmp_path / name), "--k", "3", "--online", "--batch-size", "200"]
        assert main([*argv, "--out", str(out)]) == 0
        assert f"online: 6 batches, {len(stream)} samples" in capsys.readouterr().out
        assert same_parameters(load(out), expected)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(tmp_path / "x.npy"), "--k", "3", "--online", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "batch-size" in capsys.readouterr().err


def test_interrupt_or_collapse_mid_update_leaves_the_stream_unchanged(stream, monkeypatch):
    import gmm.online

    reference = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
    model = GaussianMixture(3, random_state=0).partial_fit(stream[:300])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gmm.online, "blend", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(stream[300:600])
    monkeypatch.undo()
    assert same_parameters(model, reference) and same_state(model._online, reference._online)
    assert model.lower_bounds_ == reference.lower_bounds_
    for m in (model, reference):
        m.partial_fit(stream[300:600])
    assert same_parameters(model, reference)


def test_collapse_on_the_first_batch_leaves_the_model_unfitted(stream):
    model = GaussianMixture(2, reg_covar=0.0, random_state=0)
    with pytest.raises(ValueError, match="reg_covar"):
        model.partial_fit(np.repeat(stream[:2], 20, axis=0) * [1.0, 0.0])
    assert not hasattr(model, "means_") and not hasattr(model, "_online")
    model.set_params(reg_covar=1e-6).partial_fit(stream[:300])
    assert model.n_batches_seen_ == 1


def test_fit_stream_reads_a_dataframe_in_row_blocks_with_its_names(stream):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(stream, columns=["a", "b"])
    model = fit_stream(frame, batch_size=400, n_components=3, random_state=0)
    expected = fit_stream(stream, batch_size=400, n_components=3, random_state=0)
    # A frame's values may come out Fortran-ordered: the same sums in another order.
    np.testing.assert_allclose(model.covariances_, expected.covariances_, rtol=1e-12)
    assert list(model.feature_names_in_) == ["a", "b"] and model.n_batches_seen_ == 3


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), split=st.integers(3, 299))
def test_row_order_within_a_batch_does_not_matter(stream, seed, split):
    """An update depends on the batch as a set of rows (up to rounding), not on its order."""
    kwargs = start(COVARIANCE_TYPES[seed % len(COVARIANCE_TYPES)], stream)
    batch = stream[300:600]
    order = np.random.default_rng(seed).permutation(len(batch))
    a = GaussianMixture(**kwargs).partial_fit(stream[:split]).partial_fit(batch)
    b = GaussianMixture(**kwargs).partial_fit(stream[:split]).partial_fit(batch[order])
    for name in PARAMS:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12)


def test_each_batchs_weights_are_relative(stream):
    # Weights are relative within a batch (issue 17, class 8): batches whose weights
    # differ by factors from 1e-300 to 1e300 update the model as the same weights at
    # scale 1, and n_samples_seen_ counts rows.
    rng = np.random.default_rng(2)
    weights = rng.uniform(0.5, 2.0, size=len(stream))
    factors = (1e-300, 1.0, 1e300, 1e-14)
    plain = GaussianMixture(3, random_state=0)
    scaled = GaussianMixture(3, random_state=0)
    for i, factor in enumerate(factors):
        rows = slice(300 * i, 300 * (i + 1))
        plain.partial_fit(stream[rows], sample_weight=weights[rows])
        scaled.partial_fit(stream[rows], sample_weight=weights[rows] * factor)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(scaled, name), getattr(plain, name), rtol=1e-10)
    assert scaled.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-12)
    assert scaled.n_samples_seen_ == len(stream)


@pytest.mark.parametrize("covariance_type", ("full", "diag", "VEV"))
@pytest.mark.parametrize("c", (2.0**-500, 1e-100, 1e150))
def test_a_stream_at_any_scale_is_the_unit_stream_mapped_back(stream, covariance_type, c):
    # Batches far from unit size run rescaled (gmm.units); the model is the unit
    # stream's with means · c, covariances · c², lower bounds - D log c.
    plain = GaussianMixture(3, covariance_type=covariance_type, random_state=0, reg_covar=0)
    scaled = GaussianMixture(3, covariance_type=covariance_type, random_state=0, reg_covar=0)
    for rows in np.array_split(np.arange(len(stream)), 4):
        plain.partial_fit(stream[rows])
        scaled.partial_fit(stream[rows] * c)
    np.testing.assert_allclose(scaled.weights_, plain.weights_, rtol=1e-9)
    np.testing.assert_allclose(scaled.means_ / c, plain.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scaled.covariances_ / c**2, plain.covariances_, rtol=1e-9)
    shift = stream.shape[1] * np.log(c)
    np.testing.assert_allclose(np.add(scaled.lower_bounds_, shift), plain.lower_bounds_, rtol=1e-9)


def test_a_batch_beyond_the_model_is_refused_and_the_stream_kept(stream):
    from gmm.em import OutOfRangeError

    model = GaussianMixture(3, random_state=0).partial_fit(stream[:600])
    before = (model.predict_proba(stream).copy(), model.n_batches_seen_)
    with pytest.raises(OutOfRangeError, match="counting from 0"):
        model.partial_fit(stream[600:] * 1e160)
    np.testing.assert_array_equal(model.predict_proba(stream), before[0])
    assert model.n_batches_seen_ == before[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [1, 300, 5000])  # below and above units.SIZE_ROWS
def test_units_of_a_batch_are_those_units_choose_picks(dtype, n_rows, monkeypatch):
    """The update's shortcut decides as gmm.units.choose does, from tiny to huge data."""
    from gmm import units
    from gmm.covariance import get_family
    from gmm.online import _units
    from gmm.scale import TrainingData, column_mean

    rng = np.random.default_rng(n_rows)
    base = rng.normal(size=(n_rows, 3))
    exponents = (-30, -3, 0, 3, 30) if dtype == np.float32 else (-300, -100, 0, 100, 300)
    family = get_family("full")
    for exponent in exponents:
        X = (base * 10.0**exponent).astype(dtype)
        data = TrainingData(X, None, family, 1, column_mean(X, None))
        expected = units.choose(X, data.shift, X.dtype, 1e-6)
        ours = _units(data, 1e-6)
        assert (ours is None) == (expected is None), exponent
        if expected is not None:
            assert ours.scale == expected.scale and np.array_equal(ours.shift, expected.shift)
    if n_rows > 1:  # data of ordinary size never reach units.choose
        X = base.astype(dtype)
        data = TrainingData(X, None, family, 1, column_mean(X, None))
        monkeypatch.setattr(units, "choose", lambda *args: pytest.fail("called units.choose"))
        assert _units(data, 1e-6) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 2, 7, 8, 20])  # column by column below 8, then whole
@pytest.mark.parametrize("n_rows", [1, 300, 5000])  # below and above units.SIZE_ROWS
def test_deviation_is_the_elementwise_maximum_over_the_rows_choose_reads(dtype, n_features, n_rows):
    """The largest |x - shift| in float64, as units.choose forms it elementwise, bit for bit.

    Hard data: an offset of 1e6 and features from 1e-4 to 1e4 (float32 too).
    """
    from gmm import units
    from gmm.online import _deviation

    rng = np.random.default_rng(n_rows * n_features)
    spread = np.logspace(-4, 4, n_features)
    X = (1e6 + rng.normal(size=(n_rows, n_features)) * spread).astype(dtype)
    for shift in (
        X.astype(np.float64).mean(axis=0),
        np.zeros(n_features),
        rng.normal(size=n_features),
    ):
        rows = units.size_rows(n_rows)
        expected = np.max(np.abs(X[rows].astype(np.float64) - shift))
        assert _deviation(X, shift) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [2, 8, 20])  # the bounds from em.NARROW_FEATURES on
@pytest.mark.parametrize("n_rows", [1, 300, 5000])  # below and above units.SIZE_ROWS
def test_within_band_is_the_deviations_decision(dtype, n_features, n_rows):
    """The bounds' shortcut decides as the elementwise deviations do, at the band's edges.

    Reference: the largest |x - shift| over the rows units.choose reads, formed
    elementwise in float64, against units.safe_band. Data at sizes around both
    edges of the band, with an offset of up to the band's top, a first row equal
    to the shift (its deviation 0: the bounds cannot settle it), features from
    1e-4 to 1e4 in size.
    """
    from gmm import units
    from gmm.online import _within_band

    rng = np.random.default_rng(n_rows + n_features)
    low, high = units.safe_band(dtype)
    quarter = int(np.log2(high))
    spread = np.logspace(-4, 4, n_features)
    decisions = set()
    for exponent in (-quarter - 30, -quarter - 2, -quarter + 14, 0, quarter - 14, quarter - 1):
        for offset in (0.0, 2.0 ** (quarter - 2), 2.0 ** (quarter - 1) * 1.5):
            base = rng.normal(size=(n_rows, n_features)) * spread * 2.0**exponent
            X = (offset + base).astype(dtype)
            if not np.all(np.isfinite(X)):
                continue
            for shift in (X.astype(np.float64).mean(axis=0), X[0].astype(np.float64)):
                rows = units.size_rows(n_rows)
                deviation = np.max(np.abs(X[rows].astype(np.float64) - shift))
                expected = bool(low <= deviation <= high)
                assert _within_band(X, shift) == expected, (exponent, offset)
                decisions.add(expected)
    # One row is its own mean (deviation 0): only then is nothing within the band.
    assert decisions == ({False} if n_rows == 1 else {True, False})


def fitted_e_step(X, covariance_type, max_iter):
    """(family, params, log_const) of a short fit on X: what an E-step on X's rows takes."""
    from gmm.covariance import get_family

    model = GaussianMixture(3, covariance_type=covariance_type, max_iter=max_iter, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    family, params = get_family(covariance_type), model._get_parameters()
    return family, params, model._log_const(params, family)


def assert_same_statistics(a, b):
    """Two E-steps' statistics equal bit for bit."""
    assert a.log_likelihood == b.log_likelihood and a.total_weight == b.total_weight
    np.testing.assert_array_equal(a.nk, b.nk)
    for x, y in zip(a.moments, b.moments, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("covariance_type", BUILTIN)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_later_batch_read_once_gives_the_kept_chunks_statistics(
    covariance_type, dtype, monkeypatch
):
    """A later batch forms each chunk's features when the E-step reaches it and keeps none,
    each chunk shifted while its features' columns are copied (em.ReadOnceChunks, as
    partial_fit reads it); its statistics are those of TrainingData's kept chunks, bit for
    bit (several chunks, an offset of 1e6, features from 1e-4 to 1e4, weights)."""
    from gmm import em
    from gmm.scale import TrainingData, column_mean

    monkeypatch.setattr(em, "CHUNK_BYTES", 4096)  # chunks of 256 rows
    rng = np.random.default_rng(3)
    X = (1e6 + rng.normal(size=(1000, 3)) * np.logspace(-4, 4, 3)).astype(dtype)
    w = rng.uniform(0.5, 2, 1000).astype(dtype)
    family, params, log_const = fitted_e_step(X, covariance_type, max_iter=2)
    shift = column_mean(X, w)
    kept = TrainingData(X, w, family, 3, shift)
    once = TrainingData(X, w, family, 3, shift, cache=False)
    assert kept.chunks._cache is not None and once.chunks._cache is None
    assert once.n_samples == 1000 and once.feature_source is X and once.sample_weight is w
    assert once.chunks.rows < 1000  # several chunks
    read_once = em.ReadOnceChunks.of(once.chunks)
    assert read_once._cache is None and read_once.rows == once.chunks.rows
    # Chunks sized by a budget (what later batches read) from a fit's larger chunks: the
    # chunks of that size shifted then turned into features, bit for bit.
    monkeypatch.setattr(em, "SPLIT_ROWS", 100)  # read_once_rows' floor, below chunk_rows'
    monkeypatch.setattr(em, "CHUNK_BYTES", 2**30)
    one_chunk = TrainingData(X, w, family, 3, shift, cache=False).chunks
    assert one_chunk.rows >= 1000
    budgeted = em.ReadOnceChunks.of(one_chunk, 1)
    assert budgeted.rows == 250 and budgeted._cache is None  # 1000 rows in 4 even chunks
    assert budgeted.work == 250 * one_chunk.work / 1000
    assert em.ReadOnceChunks.of(once.chunks, 2**30).rows == once.chunks.rows  # never above
    even = TrainingData(X, w, family, 3, shift, cache=False).chunks  # shifted, then features
    even.rows = 250
    a = kept.expectation(params, log_const)[0]
    for b in (
        once.expectation(params, log_const)[0],
        em.expectation(read_once, params, log_const)[0],
    ):
        assert_same_statistics(a, b)
    assert_same_statistics(
        em.expectation(even, params, log_const)[0], em.expectation(budgeted, params, log_const)[0]
    )


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_first_update_reads_a_fits_chunks_and_later_ones_smaller_chunks(
    stream, covariance_type, monkeypatch
):
    """The first batch, read once (no features kept), is E-stepped in a fit's chunks, so a
    step-1 update over several chunks is fit(max_iter=1) bit for bit; later batches in
    chunks of em.read_once_rows."""
    from gmm import em
    from gmm.covariance import get_family

    monkeypatch.setattr(em, "CHUNK_BYTES", 2**14)  # a fit's chunks: 292 ('full') to 682 rows
    monkeypatch.setattr(em, "SPLIT_ROWS", 100)
    monkeypatch.setattr(em, "READ_ONCE_BYTES", 1)  # later batches: 256 rows a chunk or so
    kwargs = start(covariance_type, stream)
    batch = GaussianMixture(max_iter=1, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch.fit(stream)
    rows = []

    def recorder(e_step):
        def recorded(data, *args):
            rows.append((data.rows, data._cache is None))
            return e_step(data, *args)

        return recorded

    monkeypatch.setattr(em, "expectation", recorder(em.expectation))
    monkeypatch.setattr(em, "read_once_expectation", recorder(em.read_once_expectation))
    online = GaussianMixture(**kwargs).partial_fit(stream)
    assert same_parameters(online, batch) and online.lower_bound_ == batch.lower_bound_
    online.partial_fit(stream[:700])
    fit_rows = em.ChunkedData(stream, None, get_family(covariance_type), np.zeros(2), 3).rows
    assert fit_rows < len(stream) and rows == [(fit_rows, True), (234, True)]  # 700 = 3 x ~234


@pytest.mark.parametrize(
    ("covariance_type", "n_components", "n_features", "n_rows", "chunk_rows"),
    [
        ("full", 3, 2, 65_536, 65_536),  # one chunk in two parts of 32,768, not two in four
        ("full", 3, 2, 131_072, 65_536),  # two chunks in four parts, not four in eight
        ("full", 3, 2, 100_000, 33_334),  # one chunk's parts would exceed PART_BYTES
        ("full", 3, 2, 20_000, 20_000),  # one chunk, not split: nothing to halve
        ("spherical", 7, 8, 131_072, 32_768),  # (7, 32,768) parts would exceed PART_BYTES
        ("full", 8, 2, 65_536, 32_768),  # threaded shape: split from em.SPLIT_ROWS anyway
    ],
)
def test_read_once_budget_halves_the_parts_only_where_they_stay_in_cache(
    covariance_type, n_components, n_features, n_rows, chunk_rows
):
    """online.read_once_budget: twice em.READ_ONCE_BYTES where the budget's chunks run in
    two parts each (a serial shape, em.SPLIT_ROWS_SERIAL rows or more) and the parts of
    the larger chunks keep their (K, rows) log-probabilities within online.PART_BYTES;
    the chunk rows worked out by hand from em.read_once_rows' rule (2 MiB over the
    temporaries' columns, rows shared evenly), and every part within the bound."""
    from gmm import em
    from gmm.covariance import _cost, get_family

    family = get_family(covariance_type)
    X = np.zeros((n_rows, n_features))
    with _cost.forced("expanded"):
        chunks = em.ChunkedData(X, None, family, np.zeros(n_features), n_components, cache=False)
        budget = online.read_once_budget(chunks)
        rows = em.ReadOnceChunks.of(chunks, budget).rows
    assert budget in (em.READ_ONCE_BYTES, 2 * em.READ_ONCE_BYTES)
    assert rows == chunk_rows
    serial = n_components < em.THREAD_COMPONENTS
    part = rows // 2 if serial and rows >= em.SPLIT_ROWS_SERIAL else rows
    if budget != em.READ_ONCE_BYTES:
        assert n_components * part * X.itemsize <= online.PART_BYTES


@pytest.mark.parametrize(("n_components", "n_rows", "parts"), [(3, 10_000, 1), (8, 10_000, 2)])
def test_an_update_sized_chunk_is_split_only_where_threads_may_run_its_parts(
    n_components, n_rows, parts, monkeypatch, chunk_calls
):
    """A chunk of fewer than em.THREAD_COMPONENTS components is one range below
    em.SPLIT_ROWS_SERIAL rows (an update of 10,000 rows pays one chunk's fixed cost);
    its statistics are the split ranges' to rounding, the split ones' sum in row order."""
    from gmm import em
    from gmm.covariance import get_family

    X, *_ = make_mixture("full", n_samples=n_rows, n_components=n_components, d=2, seed=5)
    model = GaussianMixture(n_components, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:2000])
    family, params = get_family("full"), model._get_parameters()
    log_const = model._log_const(params, family)
    calls = chunk_calls

    def run():
        calls.clear()
        data = em.ChunkedData(X, None, family, X.mean(axis=0), n_components)
        assert data.rows >= n_rows  # one chunk
        return em.expectation(data, params, log_const)[0], list(calls)

    ours, ours_calls = run()
    assert len(ours_calls) == parts and sum(ours_calls) == n_rows
    monkeypatch.setattr(em, "SPLIT_ROWS_SERIAL", em.SPLIT_ROWS)  # split as from K = 8
    split, split_calls = run()
    assert len(split_calls) == 2
    assert ours.log_likelihood == pytest.approx(split.log_likelihood, rel=1e-13)
    np.testing.assert_allclose(ours.nk, split.nk, rtol=1e-12)
    for a, b in zip(ours.moments, split.moments, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shifted_chunk_features_are_the_shift_then_the_features_bit_for_bit(covariance_type, dtype):
    """em.shifted_chunk_features (the shift applied while the features' columns are
    copied) against em.shifted then chunk_features: the same arrays, bit for bit, for
    every family, at D below and above em.NARROW_FEATURES, K on both sides of
    Diag.FEATURE_COMPONENTS, both 'full' formulations; an offset of 1e6, features
    from 1e-4 to 1e4."""
    from gmm import em
    from gmm.covariance import _cost, get_family

    family = get_family(covariance_type)
    rng = np.random.default_rng(7)
    for n_features in (1, 2, 9, 20):
        if n_features == 1 and covariance_type not in ("spherical", "diag", "full", "E", "V"):
            continue
        if n_features > 1 and covariance_type in ("E", "V"):
            continue
        scales = np.logspace(-4, 4, n_features)
        X = (1e6 + rng.normal(size=(3000, n_features)) * scales).astype(dtype)
        shift = np.asarray(X.mean(axis=0, dtype=np.float64), dtype=dtype)
        for n_components, plan in ((2, None), (9, None), (3, "whitened"), (3, "expanded")):
            with _cost.forced(plan):
                Xc, feats = em.shifted_chunk_features(family, X, shift, n_components)
                ref_Xc = em.shifted(X, shift)
                ref_feats = family.chunk_features(ref_Xc, n_components)
            assert Xc.dtype == feats.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(Xc, ref_Xc)
            np.testing.assert_array_equal(feats, ref_feats)


def test_only_families_whose_features_the_hook_mirrors_fuse_the_shift():
    """A family that overrides features below the class with the hook (mclust's
    models on their own features) shifts and forms features in two passes."""
    from gmm import em
    from gmm.covariance import get_family
    from gmm.covariance.diag import Diag

    class Renamed(Diag):
        def features(self, X):
            return super().features(X) * 2.0

    assert em._fuses_shift(type(get_family("diag"))) and em._fuses_shift(Renamed) is False
    assert not em._fuses_shift(type(get_family("tied")))
    X = np.random.default_rng(0).normal(size=(50, 3))
    shifted_rows, feats = em.shifted_chunk_features(Renamed(), X, X.mean(axis=0), 9)
    np.testing.assert_array_equal(feats, Diag().features(X - X.mean(axis=0)) * 2.0)
    np.testing.assert_array_equal(shifted_rows, X - X.mean(axis=0))


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "VII"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [3, 20])
def test_axis_aligned_chunks_read_once_give_the_features_statistics(
    covariance_type, dtype, n_features
):
    """A chunk of the diagonal families read once goes to the kernels as its shifted rows
    (Diag.read_once_features, from Diag.PLAIN_MIN_VALUES values, where chunk_features
    reads rows too: K = 4 < FEATURE_COMPONENTS): the rows are X - shift bit for bit, and
    the statistics of 8 components from them those of the kept features to rounding (an
    offset of 1e6, features from 1e-4 to 1e4, weights). With K = 8 (and D <= 49) the
    features are formed, as the measured faster path there."""
    from gmm import em
    from gmm.covariance import get_family
    from gmm.covariance.diag import Diag

    family = get_family(covariance_type)
    rng = np.random.default_rng(11)
    n_rows = Diag.PLAIN_MIN_VALUES // n_features + 500
    scales = np.logspace(-4, 4, n_features)
    X = (1e6 + rng.normal(size=(n_rows, n_features)) * scales).astype(dtype)
    w = rng.uniform(0.5, 2, n_rows).astype(dtype)
    shift = np.asarray(np.average(X, axis=0, weights=w), dtype=dtype)
    Xc, feats = em.read_once_features(family, X, shift, 4)
    assert feats is Xc and Xc.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(Xc, X - shift)
    for rows, k in ((100, 4), (n_rows, 8)):  # small chunks, or K = 8: features, fused
        formed = em.read_once_features(family, X[:rows], shift, k)
        np.testing.assert_array_equal(formed[1], family.features(X[:rows] - shift))

    model = GaussianMixture(8, covariance_type=covariance_type, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:2000])
    params = model._get_parameters()
    log_const = model._log_const(params, family)
    kept = em.ChunkedData(X, w, family, shift.astype(np.float64), 8, cache=True)
    once = em.ReadOnceChunks.of(em.ChunkedData(X, w, family, shift.astype(np.float64), 4))
    assert kept.rows >= n_rows  # one chunk each way: only the features differ
    a, b = em.expectation(kept, params, log_const)[0], em.expectation(once, params, log_const)[0]
    rtol = 1e-11 if dtype == np.float64 else 1e-4
    assert a.total_weight == b.total_weight
    assert b.log_likelihood == pytest.approx(a.log_likelihood, rel=rtol)
    np.testing.assert_allclose(b.nk, a.nk, rtol=rtol, atol=rtol * n_rows)
    for x, y in zip(a.moments, b.moments, strict=True):
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * np.abs(x).max())


def _hard_rows(dtype, n_rows=600, seed=5):
    """Three clusters at an offset of 1e6, features from 1e-4 to 1e4, one of them tight."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-4, 4, 3)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, -3.0, 2.0], [-4.0, 4.0, -1.0]]) * scales
    labels = rng.integers(0, 3, n_rows)
    spread = np.where(labels[:, None] == 2, 1e-3, 1.0) * scales
    return (1e6 + centres[labels] + rng.normal(size=(n_rows, 3)) * spread).astype(dtype)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_once_expectation_is_the_e_step_bit_for_bit(covariance_type, dtype, monkeypatch):
    """em.read_once_expectation (an update's rows in this thread, fewer calls) gives what
    em.expectation gives on the same rows read once, bit for bit, on hard rows (offset
    1e6, features from 1e-4 to 1e4, a tight cluster), with and without weights, in one
    chunk, in several, and in chunks the E-step splits; None where it does not apply
    (the E-step may run on threads, entropy tracked)."""
    from gmm import em
    from gmm.scale import TrainingData, column_mean

    X = _hard_rows(dtype)
    w = np.random.default_rng(1).uniform(0.5, 2, len(X)).astype(dtype)
    family, params, log_const = fitted_e_step(X, covariance_type, max_iter=3)
    batch = X[100:400]
    for weights in (None, w[100:400]):
        data = TrainingData(batch, weights, family, 3, column_mean(batch, weights), cache=False)
        for rows in (None, 70, 150):  # one chunk; five (the last short); two, each split
            chunks = em.ReadOnceChunks.of(data.chunks, em.READ_ONCE_BYTES)
            if rows is not None:
                chunks.rows = rows
            with monkeypatch.context() as patch:
                if rows == 150:  # 3 components: split from 100 rows
                    patch.setattr(em, "SPLIT_ROWS", 50)
                    patch.setattr(em, "SPLIT_ROWS_SERIAL", 100)
                lean = em.read_once_expectation(chunks, params, log_const)
                general = em.expectation(chunks, params, log_const)
            assert_same_statistics(lean[0], general[0])
            assert type(lean[1]) is type(general[1])
    data = TrainingData(batch, None, family, 3, column_mean(batch, None), cache=False)
    with em.tracking_entropy():
        once = em.ReadOnceChunks.of(data.chunks, em.READ_ONCE_BYTES)
        assert em.read_once_expectation(once, params, log_const) is None


@pytest.mark.parametrize(
    ("covariance_type", "formed"), [("full", [75, 75, 75, 75]), ("diag", [150, 150])]
)
def test_read_once_expectation_forms_a_split_chunks_features_part_by_part(
    covariance_type, formed, monkeypatch
):
    """em.read_once_expectation shifts a split chunk's rows and forms their features part
    by part, when each part's E-step reaches them (two chunks of 150 rows, each split in
    two, are four formations of 75 rows), with the numbers of em.expectation on the same
    chunks bit for bit (which forms each chunk's at once); a family whose hook
    read_once_features decides by the chunk's size ('diag') forms each chunk's at once."""
    from gmm import em
    from gmm.scale import TrainingData, column_mean

    X = _hard_rows(np.float64)
    family, params, log_const = fitted_e_step(X, covariance_type, max_iter=3)
    batch = X[100:400]
    data = TrainingData(batch, None, family, 3, column_mean(batch, None), cache=False)
    chunks = em.ReadOnceChunks.of(data.chunks, em.READ_ONCE_BYTES)
    chunks.rows = 150
    monkeypatch.setattr(em, "SPLIT_ROWS", 50)
    monkeypatch.setattr(em, "SPLIT_ROWS_SERIAL", 100)  # 3 components: split from 100 rows
    rows = []
    read_once_features = em.read_once_features

    def recorded(family, X, *args):
        rows.append(X.shape[0])
        return read_once_features(family, X, *args)

    monkeypatch.setattr(em, "read_once_features", recorded)
    lean = em.read_once_expectation(chunks, params, log_const)
    assert rows == formed
    assert_same_statistics(lean[0], em.expectation(chunks, params, log_const)[0])


def test_read_once_expectation_declines_where_threads_may_run_the_parts(stream, monkeypatch):
    """Where em.expectation may run a split chunk's parts on threads (many components, a
    large E-step, two threads), read_once_expectation leaves it the E-step; read_once_rows
    keeps chunks of at least em.SPLIT_ROWS rows (split, so threads may run)."""
    from gmm import em
    from gmm.covariance import get_family
    from gmm.scale import TrainingData, column_mean

    model = GaussianMixture(8, random_state=0).partial_fit(stream[:600])
    family, params = get_family("full"), model._get_parameters()
    batch = stream[:600]
    data = TrainingData(batch, None, family, 8, column_mean(batch, None), cache=False)
    log_const = model._log_const(params, family)
    monkeypatch.setattr(em, "SPLIT_ROWS", 200)
    small = em.ReadOnceChunks.of(data.chunks, 1)  # 256 rows (chunk_rows' floor) by budget
    assert small.rows == 300  # 600 rows in two even chunks
    assert em.read_once_expectation(small, params, log_const) is not None
    monkeypatch.setattr(em, "_e_step_threads", lambda split: 2 if split else 1)
    monkeypatch.setattr(em, "THREAD_WORK", 0)
    assert em.read_once_expectation(small, params, log_const) is None
    monkeypatch.setattr(em, "THREAD_WORK", 1e12)  # an E-step too small for threads
    assert em.read_once_expectation(small, params, log_const) is not None
    monkeypatch.setattr(em, "SPLIT_ROWS", 500)
    assert em.ReadOnceChunks.of(data.chunks, 1).rows == 600  # the floor: one chunk, split


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hard", [False, True])
def test_lean_updates_are_the_general_updates_bit_for_bit(
    stream, covariance_type, dtype, hard, monkeypatch
):
    """A stream of updates taking the lean E-step (em.read_once_expectation) holds, after every batch, the
    parameters and running state of the same stream through em.expectation, bit for bit:
    plain and hard rows, weights on some batches, float32, batches of 1 to 300 rows."""
    from gmm import em

    X = _hard_rows(dtype, n_rows=1200) if hard else stream[:1200].astype(dtype)
    w = np.random.default_rng(2).integers(0, 4, len(X)).astype(np.float64)
    w[300] = 2.0  # the batch of one row
    sizes = [300, 1, 7, 150, 300, 42, 300]
    lean = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    general = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    taken = []
    read_once = em.read_once_expectation

    def spy(*args):
        result = read_once(*args)
        taken.append(result is not None)
        return result

    start = 0
    for i, size in enumerate(sizes):
        rows = slice(start, start + size)
        weights = w[rows] if i % 2 else None
        monkeypatch.setattr(em, "read_once_expectation", spy)
        lean.partial_fit(X[rows], sample_weight=weights)
        monkeypatch.setattr(em, "read_once_expectation", lambda *args: None)
        general.partial_fit(X[rows], sample_weight=weights)
        assert same_parameters(lean, general), (i, size)
        assert same_state(lean._online, general._online)
        assert lean.lower_bound_ == general.lower_bound_
        start += size
    # The lean E-step ran on every batch (the first in a fit's chunks), float32 rows of
    # tight components too (computed in float64 chunk by chunk, as em.expectation does).
    assert taken == [True] * len(sizes)


# ============================================= float32 offsets, fitted models, parameters
def test_float32_batches_far_from_the_origin_keep_their_spread():
    # Every row 1e8: a stream of float32 batches keeps the variance at reg_covar, as fit does
    # (a float32 column sum once put the shift ulps off the mean: variances of about 1.2).
    X = np.full((50, 2), 1e8, np.float32)
    model = GaussianMixture(1, covariance_type="diag")
    for _ in range(3):
        model.partial_fit(X)
        np.testing.assert_array_equal(model.covariances_, np.full((1, 2), 1e-6, np.float32))
    # With step sizes 1/t and one component the running statistics are those of all the
    # rows: the covariance np.cov gives (in float64) plus reg_covar.
    rng = np.random.default_rng(0)
    Y = (1e6 + 0.1 * rng.standard_normal((40_000, 2))).astype(np.float32)
    model = GaussianMixture(1, learning_decay=1.0)
    for rows in range(0, len(Y), 10_000):
        model.partial_fit(Y[rows : rows + 10_000])
    expected = np.cov(Y.astype(np.float64).T, bias=True) + 1e-6 * np.eye(2)
    np.testing.assert_allclose(model.covariances_[0], expected, rtol=1e-3)
    np.testing.assert_allclose(model.means_[0], Y.astype(np.float64).mean(axis=0), rtol=1e-7)


def test_first_update_of_a_fitted_model_with_step_one_needs_a_first_batchs_rows(stream):
    model = GaussianMixture(3, random_state=0).fit(stream)
    before = {n: getattr(model, n).copy() for n in PARAMS}
    with pytest.raises(ValueError, match=r"step size is 1.*at least n_components=3 rows, got 1"):
        model.partial_fit(stream[:1])
    assert all(np.array_equal(getattr(model, n), before[n]) for n in PARAMS)
    assert not hasattr(model, "n_batches_seen_")


@pytest.mark.parametrize("covariance_type", BUILTIN)
def test_a_fitted_model_is_the_running_statistics_before_the_first_update(stream, covariance_type):
    # With learning_offset > 1 the first update blends the batch into the fitted
    # model's statistics at step offset ** -decay; with one component the blend is
    # the pooled mean and covariance of the two weighted row sets (np.cov).
    X = stream[:600]
    offset, decay = 4.0, 0.7
    rho = offset**-decay
    model = GaussianMixture(
        1, covariance_type=covariance_type, learning_offset=offset, learning_decay=decay
    ).fit(X)
    fitted_mean = model.means_[0].copy()
    fitted = np.atleast_2d(
        model.covariances_[0] if covariance_type != "tied" else model.covariances_
    )
    batch = stream[600:700]
    model.partial_fit(batch)
    mean = (1 - rho) * fitted_mean + rho * batch.mean(axis=0)
    np.testing.assert_allclose(model.means_[0], mean, rtol=1e-12)
    d = fitted_mean - batch.mean(axis=0)
    full_fitted = (
        fitted if fitted.shape == (2, 2) else np.diag(np.broadcast_to(fitted.ravel(), (2,)))
    )
    pooled = (
        (1 - rho) * (full_fitted - 1e-6 * np.eye(2))
        + rho * np.cov(batch.T, bias=True)
        + rho * (1 - rho) * np.outer(d, d)
    )
    expected = {
        "full": pooled,
        "tied": pooled,
        "diag": np.diag(pooled),
        "spherical": np.mean(np.diag(pooled)),
    }[covariance_type] + (1e-6 * np.eye(2) if covariance_type in ("full", "tied") else 1e-6)
    got = model.covariances_ if covariance_type == "tied" else model.covariances_[0]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert model.n_batches_seen_ == 1 and model.n_samples_seen_ == 100


def test_a_large_offset_keeps_a_fitted_model_against_a_single_row(stream):
    fitted = GaussianMixture(3, random_state=0).fit(stream)
    model = GaussianMixture(3, random_state=0, learning_offset=1e6).fit(stream)
    model.partial_fit(stream[:1])  # step 1e6 ** -0.7, about 6e-5
    np.testing.assert_allclose(model.means_, fitted.means_, atol=1e-3)
    np.testing.assert_allclose(model.covariances_, fitted.covariances_, atol=1e-3)


@pytest.mark.parametrize(
    "change",
    [
        {"n_components": 4},
        {"covariance_type": "diag"},
        {"covariance_type": "tied"},
        {"covariance_type": "VVV"},
        {"covariance_type": "VVV", "n_components": 2},
    ],
)
@pytest.mark.parametrize("how", ["stream", "fit"])
def test_changed_parameters_between_updates_are_refused_and_the_model_kept(stream, change, how):
    model, clean = GaussianMixture(3, random_state=0), GaussianMixture(3, random_state=0)
    for each in (model, clean):
        getattr(each, "partial_fit" if how == "stream" else "fit")(stream[:400])
    model.set_params(**change)
    with pytest.raises(ValueError, match=r"covariance_type='full' and 3 components.*set_params"):
        model.partial_fit(stream[400:600])
    assert same_parameters(model, clean)
    model.set_params(covariance_type="full", n_components=3)
    model.partial_fit(stream[400:600])
    clean.partial_fit(stream[400:600])
    assert same_parameters(model, clean)


def test_batch_dtypes_compare_by_precision_not_byte_order(stream):
    pd = pytest.importorskip("pandas")
    native = (
        GaussianMixture(3, random_state=0).partial_fit(stream[:400]).partial_fit(stream[400:500])
    )
    swapped = GaussianMixture(3, random_state=0).partial_fit(stream[:400].astype(">f8"))
    swapped.partial_fit(stream[400:500].astype(">f8"))
    assert same_parameters(native, swapped)
    for batch in (stream[:50].astype(np.float32), pd.DataFrame(stream[:50].astype(np.float32))):
        with pytest.raises(TypeError, match="dtype float32, but the model was started on float64"):
            native.partial_fit(batch)
    single = GaussianMixture(3, random_state=0).partial_fit(stream[:400].astype(np.float32))
    with pytest.raises(TypeError, match="dtype float64, but the model was started on float32"):
        single.partial_fit(pd.DataFrame(stream[:50]))


def test_fit_stream_refuses_sources_it_cannot_read_in_rows(stream):
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match=r"shape \(1200,\).*reshape"):
        fit_stream(stream[:, 0], n_components=2)
    with pytest.raises(ValueError, match=r"shape \(1200,\).*reshape"):
        fit_stream(da.from_array(stream[:, 0], chunks=300), n_components=2)
    blocks = da.from_array(stream, chunks=(300, 2))
    with pytest.raises(ValueError, match=r"chunk sizes are unknown.*compute_chunk_sizes"):
        fit_stream(blocks[blocks[:, 0] > -1e9], n_components=2)
    for item in [(stream[:100],), (stream[:100], None, 1)]:
        with pytest.raises(ValueError, match="arrays or \\(X, sample_weight\\) pairs"):
            fit_stream([item], n_components=2)


def test_a_fitted_models_own_reg_covar_comes_off_its_statistics(stream):
    # The first update of a fitted model with learning_offset > 1 takes the reg_covar the
    # fit added off its variances, and the M-step adds the current one: after
    # set_params(reg_covar=...) no variance lies below the new one, and a fit at a large
    # reg_covar does not keep it after a smaller one is set.
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(size=(100, 2)), np.full((50, 2), 7.0), rng.normal(size=(100, 2)) + 20]
    model = GaussianMixture(3, covariance_type="diag", random_state=0, learning_offset=1e4)
    model.fit(X).set_params(reg_covar=1e-2).partial_fit(X[::3])
    assert model.covariances_.min() >= 1e-2
    model = GaussianMixture(3, covariance_type="diag", random_state=0, learning_offset=1e4)
    model.set_params(reg_covar=0.5).fit(X).set_params(reg_covar=1e-6).partial_fit(X[::3])
    assert model.covariances_.min() < 0.01  # the constant rows' component, no longer 0.5


def test_a_malformed_item_applies_the_rows_gathered_before_it(stream):
    model = GaussianMixture(2, random_state=0)
    items = [stream[:40], stream[40:80], (stream[80:120], None, None)]
    with pytest.raises(ValueError, match="got a tuple of 3 item"):
        fit_stream(items, model, batch_size=100)
    assert model.n_samples_seen_ == 80 and model.n_batches_seen_ == 1


def test_fit_stream_refuses_series_and_dask_arrays_other_than_2d(stream):
    pd = pytest.importorskip("pandas")
    da = pytest.importorskip("dask.array")
    for source in (pd.Series(stream[:, 0]), da.from_array(np.zeros((3, 10, 2)), chunks=2)):
        with pytest.raises(ValueError, match="rows of shape \\(n_samples, n_features\\)"):
            fit_stream(source, n_components=2)
    stacked = stream[:1200].reshape(4, 300, 2)  # an ndarray of batches is still an iterable
    assert fit_stream(stacked, n_components=2, random_state=0).n_batches_seen_ == 4


def test_a_dataframes_float_columns_give_its_precision(stream):
    pd = pytest.importorskip("pandas")
    model = GaussianMixture(2, random_state=0).partial_fit(stream[:400].astype(np.float32))
    mixed = pd.DataFrame({"a": stream[:50, 0].astype(np.float32), "b": stream[:50, 1]})
    for frame in (mixed, pd.DataFrame(stream[:50]).astype("Float64")):
        with pytest.raises(TypeError, match="dtype float64, but the model was started on float32"):
            model.partial_fit(frame)
    model.partial_fit(pd.DataFrame(stream[:50]).astype("Float32"))
    assert model.means_.dtype == np.float32 and model.n_batches_seen_ == 2


def test_too_few_rows_for_a_fitted_mclust_model_at_step_one_say_what_to_do(stream):
    model = GaussianMixture(3, covariance_type="VVV", random_state=0).fit(stream)
    with pytest.raises(ValueError, match=r"17 free parameters.*learning_offset above 1"):
        model.partial_fit(stream[:5])
    model.set_params(learning_offset=50.0).partial_fit(stream[:5])
    assert model.n_batches_seen_ == 1
