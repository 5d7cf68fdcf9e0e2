"""The chunked, fused EM pass: chunking must not change the answer."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from gmm import GaussianMixture, em
from gmm.covariance._cost import FORMULATIONS, forced

from .mixture_data import COVARIANCE_TYPES, make_mixture


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunk_size_does_not_change_the_fit(covariance_type, monkeypatch):
    X, *_ = make_mixture(covariance_type, n_samples=2000, n_components=3, d=3, seed=2)
    params = dict(covariance_type=covariance_type, random_state=0, max_iter=15, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = GaussianMixture(3, **params).fit(X)
        monkeypatch.setattr(em, "CHUNK_BYTES", 1)  # 256-row chunks
        monkeypatch.setattr(em, "FEATURE_CACHE_BYTES", 0)  # no cache: stream every pass
        chunked = GaussianMixture(3, **params).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-10)
    np.testing.assert_allclose(chunked.score_samples(X), whole.score_samples(X), rtol=1e-12)


def test_chunk_budget_is_read_when_the_chunks_are_sized(monkeypatch):
    """The tests above shrink CHUNK_BYTES; chunk_rows must see it (at least 256 rows)."""
    monkeypatch.setattr(em, "CHUNK_BYTES", 1)
    assert em.chunk_rows(10, 8) == 256
    monkeypatch.setattr(em, "CHUNK_BYTES", 8000 * 10 * 8)
    assert em.chunk_rows(10, 8) == 8000
    assert em.chunk_rows(10, 8, budget=1000 * 10 * 8) == 1000


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_full_chunks_are_sized_for_the_formulation(formulation, monkeypatch):
    """The whitened formulation keeps K whitened copies of a chunk, the expanded one
    its D(D+1)/2 + D features: each chunk's largest temporary stays near the budget."""
    from gmm.covariance import get_family

    monkeypatch.setattr(em, "CHUNK_BYTES", 2**22)
    X = np.zeros((10_000, 40))
    with forced(formulation):
        data = em.ChunkedData(X, None, get_family("full"), np.zeros(40), 3, cache=False)
        _, feats, _ = next(iter(data))
    columns = 4 * 40 if formulation == "whitened" else 40 * 41 // 2 + 2 * 40
    assert data.rows == 2**22 // (columns * 8)
    assert feats.shape == (data.rows, 40 if formulation == "whitened" else 40 * 41 // 2 + 40)


def test_statistics_add_up_over_row_splits():
    X, *_ = make_mixture("full", n_samples=500, n_components=2, d=2, seed=3)
    model = GaussianMixture(2, random_state=0).fit(X)
    from gmm.covariance import get_family

    family = get_family("full")
    params = em.Parameters(
        model.weights_, model.means_, model.covariances_, model.precisions_cholesky_
    )
    shift = X.mean(axis=0)
    coefs, const = em.prepare(params, family, shift, _ml_log_const(params, family))

    def stats(rows):
        Xc = X[rows] - shift
        return em.chunk_statistics(Xc, family.features(Xc), None, family, coefs, const)

    whole = stats(slice(0, 500))
    parts = stats(slice(0, 123)) + stats(slice(123, 500))
    np.testing.assert_allclose(parts.nk, whole.nk, rtol=1e-12)
    for a, b in zip(parts.moments, whole.moments, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    assert whole.total_weight == 500
    # nk sums to the number of rows: responsibilities are normalised.
    assert whole.nk.sum() == pytest.approx(500, rel=1e-12)


def test_memmapped_data_fit_equals_in_memory(tmp_path):
    X, *_ = make_mixture("diag", n_samples=3000, n_components=3, d=4, seed=5)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    a = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    b = GaussianMixture(3, covariance_type="diag", random_state=0).fit(mapped)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-12)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-12)


# ------------------------------------------------------------------ hard data
def _blobs(rng, n=2000, d=5, k=4, std=1.0, spread=10.0):
    centres = rng.uniform(-spread / 2, spread / 2, (k, d))
    return centres[rng.integers(0, k, n)] + std * rng.standard_normal((n, d))


def _hard_data(name):
    rng = np.random.default_rng(0)
    if name == "offset 1e6":
        return _blobs(rng) + 1e6
    if name == "features 1e-4..1e4":
        return _blobs(rng) * np.logspace(-4, 4, 5)
    if name == "tight std 1e-3":
        return _blobs(rng, std=1e-3)
    # near-singular: a 3-D cloud rotated into 5-D, plus 1e-7 noise
    flat = np.hstack([_blobs(rng, d=3), np.zeros((2000, 2))])
    rotation = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    return flat @ rotation + 1e-7 * rng.standard_normal((2000, 5))


HARD = ["offset 1e6", "features 1e-4..1e4", "tight std 1e-3", "near-singular"]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", HARD)
def test_hard_data_matches_sklearn_to_1e8(name, covariance_type):
    """Mean log-likelihood after 10 iterations from the same start, float64.

    The reference is scikit-learn on the same data translated by its mean (an
    equivalent problem: the log-likelihood is translation invariant), because
    scikit-learn's own expanded 'diag'/'spherical' formulas lose digits on data
    offset by 1e6. gmm shifts the data itself, so it needs no such help.
    """
    _check_hard_data(name, covariance_type)


@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("name", HARD)
def test_hard_data_matches_sklearn_for_every_full_formulation(name, formulation):
    """As above for 'full', with each formulation of its E-step forced (private
    override gmm.covariance._cost.forced), against scikit-learn."""
    with forced(formulation):
        _check_hard_data(name, "full")


def _check_hard_data(name, covariance_type):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = _hard_data(name)
    shift = X.mean(axis=0)
    start = SkGaussianMixture(4, covariance_type=covariance_type, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X - shift)
        init = dict(weights_init=start.weights_, precisions_init=start.precisions_)
        params = dict(covariance_type=covariance_type, tol=0, max_iter=10, **init)
        ours = GaussianMixture(4, means_init=start.means_ + shift, **params).fit(X)
        ref = SkGaussianMixture(4, means_init=start.means_, **params).fit(X - shift)
        ours32 = GaussianMixture(4, means_init=start.means_ + shift, **params).fit(
            X.astype(np.float32)
        )
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-8)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    # float32 stays finite and close to float64, except where float32 cannot even
    # represent the data (1e6 + N(0, 1) keeps ~1 significant digit of the noise).
    assert np.isfinite(ours32.lower_bound_)
    if name != "offset 1e6":
        assert ours32.lower_bound_ == pytest.approx(ours.lower_bound_, rel=1e-3)


def test_full_switches_to_centred_path_on_tight_data(monkeypatch):
    """Show which formulation runs: the expansion on ordinary data, the centred one
    on tight components."""
    from gmm.covariance import get_family

    family = get_family("full")
    seen = []
    original = family.coefficients

    def spy(*args):
        coefs = original(*args)
        seen.append((coefs.fast.size, coefs.centred.size))
        return coefs

    monkeypatch.setattr(family, "coefficients", spy)
    monkeypatch.setenv("GMM_FULL_FORMULATION", "expanded")  # not the shape's choice
    GaussianMixture(4, max_iter=3, tol=0, random_state=0).fit(_blobs(np.random.default_rng(1)))
    assert seen and all(centred == 0 for _, centred in seen)
    seen.clear()
    GaussianMixture(4, max_iter=3, tol=0, random_state=0).fit(_hard_data("tight std 1e-3"))
    assert seen and all(fast == 0 for fast, _ in seen)


def _ml_log_const(params, family):
    """Maximum likelihood's E-step constant, log(weight) + log normaliser."""
    from gmm.em import LOG_2PI, log_det_precision

    d = params.means.shape[1]
    return np.log(params.weights) + log_det_precision(params, family) - 0.5 * d * LOG_2PI


def test_chunk_budget_is_within_its_documented_bounds():
    assert 8 * 2**20 <= em.CHUNK_BYTES <= 32 * 2**20
    assert em._last_level_cache() >= 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 2, 4, 7, 8, 12])  # either side of NARROW_FEATURES
def test_shifted_rows_are_numpy_broadcast_subtraction_bit_for_bit(dtype, n_features):
    rng = np.random.default_rng(n_features)
    X = (rng.normal(size=(257, n_features)) * 1e3 + 5).astype(dtype)
    shift = X.mean(axis=0, dtype=np.float64).astype(dtype)
    out = em.shifted(X, shift)
    assert out.shape == X.shape and out.dtype == dtype
    np.testing.assert_array_equal(out, X - shift)
    assert not np.shares_memory(out, X)


# ----------------------------------------------- normalisation, split chunks, threads
def test_normalize_gives_exact_zeros_below_the_floor_and_matches_scipy():
    """Entries more than ~708 below their row's maximum (float64) become exactly 0,
    never subnormal; the rest are scipy's softmax, the normalisers its logsumexp."""
    from scipy.special import logsumexp, softmax

    rng = np.random.default_rng(0)
    log_prob = rng.normal(-50, 5, (4, 300))
    log_prob[1, :100] -= 800  # underflows: gap > 708
    log_prob[2, 100:200] -= 600  # representable: e^-600 is a normal number
    log_prob[:, 250] = [-np.inf, -3.0, -np.inf, -np.inf]  # a row with one finite entry
    expected_resp = softmax(log_prob, axis=0)
    expected_norm = logsumexp(log_prob, axis=0)
    resp, log_norm = em.normalize_log_prob(log_prob.copy(), first_row=0)
    assert np.all(resp[1, :100] == 0)
    assert np.all(resp[2, 100:200] > 0)
    tiny = np.finfo(np.float64).tiny
    assert np.all((resp == 0) | (resp >= tiny))  # no subnormals
    np.testing.assert_allclose(resp, expected_resp, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(log_norm, expected_norm, rtol=1e-14)
    np.testing.assert_allclose(resp.sum(axis=0), 1, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_names_the_first_unrepresentable_row(dtype):
    log_prob = np.zeros((3, 50), dtype=dtype)
    log_prob[:, 17] = -np.inf
    log_prob[0, 30] = np.nan
    log_prob[:, 40] = -np.inf
    with pytest.raises(em.OutOfRangeError, match=r"Row 117 \(counting from 0\)") as caught:
        em.normalize_log_prob(log_prob.copy(), first_row=100)
    assert caught.value.row == 117
    log_prob[:, 17] = 0
    with pytest.raises(em.OutOfRangeError) as caught:
        em.normalize_log_prob(log_prob.copy(), first_row=0)
    assert caught.value.row == 30  # NaN, from inf - inf in an expanded form
    # Without first_row nothing is checked (callers that check themselves).
    resp, _ = em.normalize_log_prob(np.zeros((3, 5), dtype=dtype))
    assert resp.dtype == dtype


def _split_case(covariance_type, n=2 * em.SPLIT_ROWS + 100, d=3, k=3):
    from gmm.covariance import get_family

    X, *_ = make_mixture(covariance_type, n_samples=n, n_components=k, d=d, seed=11)
    model = GaussianMixture(k, covariance_type=covariance_type, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:500])
    family = get_family(covariance_type)
    params = em.Parameters(
        model.weights_, model.means_, model.covariances_, model.precisions_cholesky_
    )
    return X, family, params, _ml_log_const(params, family)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied", "VVI"])
def test_split_chunks_equal_the_whole_chunk_and_do_not_depend_on_threads(
    covariance_type, monkeypatch
):
    X, family, params, log_const = _split_case(covariance_type)
    w = np.random.default_rng(0).uniform(0.5, 2, X.shape[0])

    def run(threads, split_rows):
        monkeypatch.setattr(em, "E_STEP_THREADS", threads)
        monkeypatch.setattr(em, "SPLIT_ROWS", split_rows)
        monkeypatch.setattr(em, "THREAD_WORK", 0)  # threads even for this small case
        monkeypatch.setattr(em, "THREAD_COMPONENTS", 1)
        data = em.ChunkedData(X, w, family, X.mean(axis=0), 3)
        with threadpool_limits(2, user_api="blas"):
            assert em._e_step_threads(True) == threads
            return em.expectation(data, params, log_const)[0]

    whole = run(1, 10**9)
    serial, threaded = run(1, 1000), run(2, 1000)
    assert threaded.log_likelihood == serial.log_likelihood  # same parts, same order
    np.testing.assert_array_equal(threaded.nk, serial.nk)
    for a, b in zip(threaded.moments, serial.moments, strict=True):
        np.testing.assert_array_equal(a, b)
    assert serial.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-13)
    np.testing.assert_allclose(serial.nk, whole.nk, rtol=1e-12)
    for a, b in zip(serial.moments, whole.moments, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-9)


def test_e_step_threads_follow_the_blas_limit(monkeypatch):
    """One BLAS thread (a sweep's worker, a user's threadpool_limits(1)): no E-step
    threads either; and none for chunks too small to split."""
    monkeypatch.setattr(em, "E_STEP_THREADS", 2)
    with threadpool_limits(1, user_api="blas"):
        assert em._e_step_threads(True) == 1
    with threadpool_limits(2, user_api="blas"):
        assert em._e_step_threads(True) == 2
        assert em._e_step_threads(False) == 1
    assert em._parts(em.SPLIT_ROWS - 1) == [slice(0, em.SPLIT_ROWS - 1)]
    assert em._parts(9001) == [slice(0, 4500), slice(4500, 9001)]


def test_wide_rows_of_few_components_split_and_thread_except_tied(monkeypatch, chunk_calls):
    """Few components on rows of em.THREAD_ROW_BYTES or more: chunks split as from
    em.SPLIT_ROWS and their parts may run on threads, for every family but 'tied'
    (its O(n·K·D) E-step); narrower rows keep the rule of the component count."""
    from gmm.covariance import get_family

    spherical, tied = get_family("spherical"), get_family("tied")
    wide = em.THREAD_ROW_BYTES // 8
    assert em.threaded_shape(spherical, 2, wide, np.float64)
    assert not em.threaded_shape(spherical, 2, wide - 1, np.float64)
    assert not em.threaded_shape(spherical, 2, wide, np.float32)  # half the bytes
    assert em.threaded_shape(spherical, 2, 2 * wide, np.float32)
    assert not em.threaded_shape(tied, 2, 2 * wide, np.float64)
    assert em.threaded_shape(tied, em.THREAD_COMPONENTS, 2, np.float64)
    for name in ("VVI", "EII", "VVV"):  # mclust's families follow the kernels they use
        assert em.threaded_shape(get_family(name), 2, wide, np.float64)
    assert not em.threaded_shape(get_family("EEE"), 2, wide, np.float64)

    monkeypatch.setattr(em, "E_STEP_THREADS", 2)
    monkeypatch.setattr(em, "THREAD_WORK", 0)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(em.SPLIT_ROWS, wide))
    X[: len(X) // 2] += 3
    model = GaussianMixture(2, covariance_type="spherical", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:500])
    family, params = spherical, model._get_parameters()
    log_const = model._log_const(params, family)
    chunk_calls.clear()
    data = em.ChunkedData(X, None, family, X.mean(axis=0), 2)
    assert data.rows >= len(X)  # one chunk, below em.SPLIT_ROWS_SERIAL
    with threadpool_limits(2, user_api="blas"):
        assert em._threads_for(data) == 2
        threaded = em.expectation(data, params, log_const)[0]
    assert sorted(chunk_calls) == [len(X) // 2] * 2
    monkeypatch.setattr(em, "E_STEP_THREADS", 1)
    serial = em.expectation(data, params, log_const)[0]
    assert threaded.log_likelihood == serial.log_likelihood  # same parts, same order
    for a, b in zip(threaded.moments, serial.moments, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 2])
def test_far_row_is_named_in_whichever_part_of_a_split_chunk(threads, monkeypatch):
    """A row ~1e200 away overflows its squared distance: OutOfRangeError names it,
    and the first of two such rows, whichever part and thread finds it."""
    monkeypatch.setattr(em, "E_STEP_THREADS", threads)
    monkeypatch.setattr(em, "SPLIT_ROWS", 1000)
    X, family, params, log_const = _split_case("diag")
    n = X.shape[0]
    for rows, first in (([n - 7], n - 7), ([5, n - 7], 5)):
        bad = X.copy()
        bad[rows, 1] = 1e200
        data = em.ChunkedData(bad, None, family, X.mean(axis=0), 3)
        assert data.rows >= n  # one chunk, split in parts
        with threadpool_limits(2, user_api="blas"), pytest.raises(em.OutOfRangeError) as caught:
            assert em._e_step_threads(True) == threads
            em.expectation(data, params, log_const)
        assert caught.value.row == first


# ------------------------------------------------------- the start from a partition
def _hard_start_case(dtype, seed=0):
    """Hard data: offset 1e6, feature scales 1e-4..1e4, a tight component, a
    one-point component, rows of zero weight (one of them far)."""
    rng = np.random.default_rng(seed)
    n, d, k = 600, 4, 5
    scales = np.array([1e-4, 1.0, 1e2, 1e4])
    labels = rng.integers(0, k - 1, n)
    X = rng.normal(size=(n, d)) * scales + 1e6 + labels[:, None] * scales
    X[labels == 1] = 1e6 + 1e-9 * rng.normal(size=((labels == 1).sum(), d)) * scales  # tight
    labels[7] = k - 1  # the one-point component
    X[7] = 1e6 + 50 * scales
    w = rng.uniform(0.5, 2.0, n)
    w[[3, 11]] = 0
    X[11] = 1e6 + 1e12 * scales  # far, but weighs nothing
    return X.astype(dtype), labels, w.astype(dtype), k


def _scatter_reference(X, labels, w, k):
    """Per component, the weighted mean and biased covariance of its rows, written
    out directly in extended precision (np.longdouble) from the raw data."""
    X, w = X.astype(np.longdouble), w.astype(np.longdouble)
    nk, means, covs = [], [], []
    for j in range(k):
        rows, weights = X[labels == j], w[labels == j]
        mean = (weights[:, None] * rows).sum(axis=0) / weights.sum()
        dev = rows - mean
        nk.append(weights.sum())
        means.append(mean)
        covs.append((weights[:, None, None] * dev[:, :, None] * dev[:, None, :]).sum(axis=0))
        covs[-1] /= weights.sum()
    return tuple(np.array(a, dtype=np.float64) for a in (nk, means, covs))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied", "EII", "VEI"])
@pytest.mark.parametrize("form", ["labels", "one-hot"])
def test_start_from_a_partition_equals_the_soft_path_and_numpy(covariance_type, dtype, form):
    """A partition (1-D labels or one-hot rows) takes the hard path
    (statistics.HardLabels): the same Scatter as the per-component soft path on
    the same one-hot matrix, and as numpy's weighted mean and covariance of each
    component's rows; the one-point component keeps its digits (variance ~0)."""
    from gmm import statistics
    from gmm.covariance import get_family

    X, labels, w, k = _hard_start_case(dtype)
    family = get_family(covariance_type)
    shift = np.average(X.astype(np.float64), axis=0, weights=w)  # as scale.column_mean
    data = em.ChunkedData(X, w, family, shift, k, cache=False)
    data.rows = 256  # several chunks
    one_hot = np.eye(k, dtype=dtype)[labels]
    resp = labels if form == "labels" else one_hot
    assert statistics.hard_labels(resp, k) is not None
    hard = em.scatter_from_resp(data, resp, k)

    def soft_chunks():  # the dense (K, rows) path on the same matrix
        start = 0
        for Xc, cw in data.shifted_rows():
            stop = start + Xc.shape[0]
            yield Xc.astype(np.float64), one_hot[start:stop].T.astype(np.float64) * cw, cw
            start = stop

    soft = statistics.from_responsibilities(soft_chunks, family.scatter_kind, k, data.shift, dtype)
    assert hard.kind == soft.kind == family.scatter_kind
    np.testing.assert_array_equal(hard.nk, soft.nk)
    np.testing.assert_allclose(hard.means, soft.means, rtol=1e-15)
    np.testing.assert_allclose(hard.covariances, soft.covariances, rtol=1e-12, atol=0)
    ref_nk, ref_means, ref_covs = _scatter_reference(X, labels, w, k)
    np.testing.assert_allclose(hard.nk, statistics.guarded_counts(ref_nk, dtype), rtol=1e-12)
    np.testing.assert_allclose(hard.means, ref_means, rtol=1e-14, atol=1e-14 * np.abs(X).max())
    # One point: about its own mean, only the count's guard (nk = w + 10 eps) is left.
    guard = (20 * np.finfo(dtype).eps * np.abs(X[7] - shift)) ** 2
    if hard.kind == "diagonal":
        expected = np.diagonal(ref_covs, axis1=1, axis2=2)
        assert np.all(hard.covariances[k - 1] <= guard)
    elif hard.kind == "full":
        expected = ref_covs
        assert np.all(np.abs(np.diagonal(hard.covariances[k - 1])) <= guard)
    else:
        expected = np.tensordot(ref_nk, ref_covs, axes=1) / ref_nk.sum()
    # Rounding of the shifted rows (about eps |x - shift|) is all a float64 method can
    # keep, and the reference's own mean rounds at about 1e-19 |x| (long double); the
    # counts' guard, 10 eps(dtype), moves a mean by 10 eps / nk of its distance to the
    # shift and S_k = W_k / nk by 10 eps / nk relative.
    guarded = 1e-9 + 20 * np.finfo(dtype).eps / ref_nk.min()
    reach = np.max(np.abs(X[w > 0] - shift), axis=0) + 1e-7 * np.max(np.abs(X[w > 0]), axis=0)
    reach *= max(1e-12, guarded)
    atol = reach**2 if expected.ndim == 2 else np.outer(reach, reach)
    np.testing.assert_array_less(
        np.abs(hard.covariances - expected), guarded * np.abs(expected) + atol
    )


def test_soft_responsibilities_do_not_take_the_hard_path():
    """One row with two positive entries (however small) keeps the exact soft path."""
    from gmm import statistics

    resp = np.eye(3)[[0, 1, 2, 1]]
    assert statistics.hard_labels(resp, 3) is not None
    resp[2, 0] = 1e-300
    assert statistics.hard_labels(resp, 3) is None
    zero_row = np.eye(3)[[0, 1, 2, 1]]
    zero_row[1] = 0
    for layout in (zero_row, np.asfortranarray(zero_row * 0.5)):  # any layout, any weight
        hard = statistics.hard_labels(layout, 3)
        np.testing.assert_array_equal(hard.labels, [0, 0, 2, 1])
        np.testing.assert_array_equal(hard.weights, np.array([1, 0, 1, 1]) * layout.max())
        np.testing.assert_array_equal(hard.counts(), np.array([1, 1, 1]) * layout.max())


def test_normalize_without_entries_below_the_floor_skips_the_clamp_with_the_same_numbers():
    """A block with no entry below the floor is normalised without the clamping
    passes; its columns equal, bit for bit, the same columns in a block that
    needs them (rows are independent), and scipy's softmax."""
    from scipy.special import softmax

    rng = np.random.default_rng(1)
    near = rng.normal(-20, 30, (5, 200))  # gaps well under 708
    far = near[:, :10] - np.array([0, 2000, 0, 1500, 0])[:, None]  # clamped entries
    alone, _ = em.normalize_log_prob(near.copy(), first_row=0)
    both, _ = em.normalize_log_prob(np.hstack([near, far]), first_row=0)
    np.testing.assert_array_equal(alone, both[:, :200])
    assert np.all(both[[1, 3], 200:] == 0)
    np.testing.assert_allclose(alone, softmax(near, axis=0), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("entropy", [False, True])
def test_normalize_exponentiates_only_representable_entries_with_the_clamps_numbers(dtype, entropy):
    """Rows with finite maxima take exp only where an entry is at or above the floor,
    into zeros: the same numbers, bit for bit, as clamping every entry at the floor,
    exponentiating and zeroing the clamped ones (the direct formula here), with or
    without -inf entries; a row with a NaN (no first_row: nothing is checked) stays
    NaN as the clamp leaves it."""
    rng = np.random.default_rng(3)
    log_prob = rng.normal(-40, 300, (7, 500)).astype(dtype)  # many gaps beyond the floor
    floor = em.exp_floor(np.dtype(dtype))

    def direct(lp):
        shifted = lp - lp.max(axis=0)
        e = np.exp(np.maximum(shifted, floor)) * (shifted >= floor)
        total = e.sum(axis=0)
        return e / total, np.log(total) + lp.max(axis=0)

    run = em.normalize_log_prob_entropy if entropy else em.normalize_log_prob
    for case in (log_prob, np.where(rng.random(log_prob.shape) < 0.1, -np.inf, log_prob)):
        case[:, 0] = case[:, 0].max()  # a row with every entry finite and equal
        resp, log_norm, *rest = run(case.copy(), first_row=0)
        expected_resp, expected_norm = direct(case)
        assert resp.dtype == dtype and np.any(resp == 0)
        np.testing.assert_array_equal(resp, expected_resp)
        np.testing.assert_array_equal(log_norm, expected_norm)
        if entropy:
            assert np.all(np.isfinite(rest[0])) and np.all(rest[0] >= -1e-5)
    with_nan = log_prob.copy()
    with_nan[2, 5] = np.nan
    with np.errstate(all="ignore"):  # the unshifted NaN row may overflow exp: undefined
        resp = run(with_nan, first_row=None)[0]
    assert np.all(np.isnan(resp[:, 5]))
    np.testing.assert_array_equal(
        np.delete(resp, 5, axis=1), np.delete(direct(log_prob)[0], 5, axis=1)
    )


def test_kept_bytes_counts_the_kept_chunks_once():
    from gmm import em
    from gmm.covariance import get_family

    X = np.random.default_rng(0).normal(size=(500, 3))
    shift = X.mean(axis=0)
    kept = em.ChunkedData(X, None, get_family("full"), shift, 2)
    # 'full' D = 3 keeps 6 + 3 feature columns; X - shift is a view of the last 3
    assert kept.kept_bytes == 500 * 9 * 8
    # 'tied' reads the shifted rows themselves: kept once
    assert em.ChunkedData(X, None, get_family("tied"), shift, 2).kept_bytes == X.nbytes
    assert em.ChunkedData(X, None, get_family("full"), shift, 2, cache=False).kept_bytes == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normalize_with_entropy_equals_normalize_and_scipys_entropy(dtype):
    """The entropy variant gives normalize_log_prob's responsibilities and normalisers
    bit for bit, and each row's entropy as scipy's entr of the softmax, clamped
    entries (responsibility 0) and -inf entries included."""
    from scipy.special import entr, softmax

    rng = np.random.default_rng(2)
    log_prob = rng.normal(-40, 20, (6, 400))
    log_prob[1, :100] -= 3000  # below the floor in both dtypes: clamped to 0
    log_prob[:, 300] = [-np.inf, -3.0, -np.inf, -np.inf, -np.inf, -np.inf]
    log_prob[:, 301] = 5.0  # uniform row: entropy log 6
    log_prob = log_prob.astype(dtype)
    resp, log_norm = em.normalize_log_prob(log_prob.copy(), first_row=0)
    resp2, log_norm2, entropy = em.normalize_log_prob_entropy(log_prob.copy(), first_row=0)
    np.testing.assert_array_equal(resp, resp2)
    np.testing.assert_array_equal(log_norm, log_norm2)
    assert entropy.dtype == dtype
    expected = entr(softmax(log_prob.astype(np.float64), axis=0)).sum(axis=0)
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (2e-5, 1e-6)
    np.testing.assert_allclose(entropy, expected, rtol=rtol, atol=atol)
    assert entropy[300] == 0 and abs(entropy[301] - np.log(6)) < 10 * np.finfo(dtype).eps


@pytest.mark.parametrize("covariance_type", ["full", "VII", "EEE"])
@pytest.mark.parametrize("weighted", [False, True])
def test_tracked_e_step_sums_the_entropy_and_changes_nothing_else(covariance_type, weighted):
    """Under tracking_entropy an E-step's Statistics carry sum_i w_i H_i, equal to
    scipy's entropy of predict_proba's rows (hard data: offset 1e6),
    and its other statistics are those of an untracked E-step, bit for bit."""
    from scipy.special import entr

    from gmm import scale

    X = make_mixture("full", n_samples=20_000, n_components=3, d=3, seed=5)[0] + 1e6
    w = np.random.default_rng(0).integers(0, 3, X.shape[0]).astype(float) if weighted else None
    model = GaussianMixture(3, covariance_type=covariance_type, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    family = model._check_parameters()[0]
    data = scale.fit_data(X, w, family, 3, "test")
    params = model._get_parameters()
    log_const = model._log_const(params, family)
    plain, _ = data.expectation(params, log_const)
    with em.tracking_entropy():
        tracked, _ = data.expectation(params, log_const)
    assert plain.entropy is None
    assert tracked.log_likelihood == plain.log_likelihood
    np.testing.assert_array_equal(tracked.nk, plain.nk)
    for a, b in zip(tracked.moments, plain.moments, strict=True):
        np.testing.assert_array_equal(a, b)
    rows = entr(model.predict_proba(X)).sum(axis=1)
    expected = float(rows @ w) if weighted else float(rows.sum())
    assert tracked.entropy == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("far", [[1500], [40, 1500]])
def test_far_row_is_named_when_the_e_step_drops_the_shared_term(far, monkeypatch):
    """'tied' drops -|U'x|²/2 in the fitting E-step. A row ~1e160 away overflows
    |U'x|² but not x'Pm; one ~1e300 away (later) overflows x'Pm too. The chunk is
    computed again per row, and the first far row is named, as by the per-row path."""
    X, family, params, log_const = _split_case("tied")
    bad = X.copy()
    bad[far[0]] = [1e160, -1e160, 1e160]
    bad[far[-1] + 10] = 1e300

    def far_row():
        data = em.ChunkedData(bad, None, family, X.mean(axis=0), 3)
        with pytest.raises(em.OutOfRangeError) as caught:
            em.expectation(data, params, log_const)
        return caught.value.row

    assert em._drops_shared(type(family))
    assert far_row() == far[0]
    monkeypatch.setattr(em, "_drops_shared", lambda cls: False)
    assert far_row() == far[0]


def test_moment_blocks_share_rows_evenly_and_only_plain_features():
    feats = np.zeros((20_000, 65))
    resp = np.zeros((9, 20_000))
    blocks = em.moment_blocks(feats, resp, None)
    sizes = [b.stop - b.start for b in blocks]
    assert blocks[0].start == 0 and blocks[-1].stop == 20_000
    assert all(a.stop == b.start for a, b in itertools.pairwise(blocks))
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= em.MOMENT_BLOCK_MIN_ROWS
    # As many blocks as whole blocks of the budget's rows fit: none is a small remainder.
    assert em.MOMENT_BLOCK_WORK // (9 * 65) >= em.MOMENT_BLOCK_MIN_ROWS
    assert len(blocks) == 20_000 // (em.MOMENT_BLOCK_WORK // (9 * 65))
    # Products too wide for blocks of MOMENT_BLOCK_MIN_ROWS rows stay whole ('full',
    # D = 20, K = 20: 230 feature columns).
    wide = em.moment_blocks(np.zeros((20_000, 230)), np.zeros((20, 20_000)), None)
    assert list(wide) == [slice(0, 20_000)]
    whole = [slice(0, 20_000)]
    assert list(em.moment_blocks(feats, resp, work=object())) == whole  # the E-step's own work
    assert list(em.moment_blocks(object(), resp, None)) == whole  # not a plain feature array
    assert list(em.moment_blocks(feats[:300], resp[:, :300], None)) == [slice(0, 300)]
    # A shape whose E-step may run on threads (em.threaded_shape): one product.
    assert list(em.moment_blocks(feats, resp, None, threaded=True)) == whole


@pytest.mark.parametrize(
    ("covariance_type", "k", "dtype"),
    [
        ("full", 5, np.float64),
        ("VVV", 9, np.float64),
        ("full", 3, np.float32),
        ("diag", 9, np.float64),
    ],
)
def test_moments_by_row_blocks_equal_one_product_per_chunk(
    covariance_type, k, dtype, monkeypatch, estep_inputs
):
    """The moments summed over row blocks (MOMENT_BLOCK_WORK) equal one product per
    chunk to rounding, on hard data: offset 1e6, features from 1e-4 to 1e4, a tight
    component; float32 stays float32 in the products (the sums are float64)."""

    rng = np.random.default_rng(7)
    X = make_mixture("full", n_samples=6000, n_components=k, d=4, seed=3)[0]
    X = X * np.array([1e-4, 1.0, 1e2, 1e4]) + 1e6
    X[:40] = X[40] + rng.normal(scale=1e-6, size=(40, 4)) * np.array([1e-4, 1.0, 1e2, 1e4])
    X = X.astype(dtype)
    family, params, log_const = estep_inputs(X, k, covariance_type)

    def run(budget):
        monkeypatch.setattr(em, "MOMENT_BLOCK_WORK", budget)
        monkeypatch.setattr(em, "MOMENT_BLOCK_MIN_ROWS", 64)
        data = em.ChunkedData(X, None, family, X.astype(np.float64).mean(axis=0), k)
        return em.expectation(data, params, log_const)[0]

    whole, blocked = run(0), run(2**14)  # blocks of a few hundred rows
    assert whole.log_likelihood == blocked.log_likelihood
    np.testing.assert_array_equal(whole.nk, blocked.nk)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    for a, b in zip(whole.moments, blocked.moments, strict=True):
        assert a.dtype == b.dtype == np.float64
        assert a.shape == b.shape
        if not a.size:  # every component centred: 'full' sums no raw feature moments
            continue
        scale = np.abs(a).max() + 1e-300
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
