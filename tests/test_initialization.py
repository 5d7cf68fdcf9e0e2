"""Initializers: registry, and the same draws as scikit-learn's building blocks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus

from gmm.initialization import get_initializer, init_methods


def test_registry():
    assert init_methods() == ("kmeans", "k-means++", "random", "random_from_data", "hc")
    with pytest.raises(ValueError, match="Valid init_params are: 'kmeans'"):
        get_initializer("kmeanz")


def test_kmeans_labels_equal_kmeans(moons):
    labels = get_initializer("kmeans")(moons, 5, np.random.RandomState(3), None)
    ref = KMeans(5, n_init=1, random_state=np.random.RandomState(3)).fit(moons).labels_
    np.testing.assert_array_equal(labels, ref)


@pytest.mark.parametrize(
    "shape, dtype", [((3000, 1), np.float64), ((2500, 7), np.float32), ((4001, 20), np.float64)]
)
def test_column_variances_are_numpys_bit_for_bit(shape, dtype):
    """The block-wise variances equal np.var(X, axis=0) exactly, on hard data too."""
    from gmm.initialization import column_variances

    rng = np.random.default_rng(0)
    scales = np.logspace(-4, 4, shape[1])  # features from 1e-4 to 1e4, offset 1e6
    X = (1e6 + rng.standard_normal(shape) * scales).astype(dtype)
    for block_rows in (None, 1, 999):
        got = column_variances(X, block_rows=block_rows)
        assert got.dtype == X.dtype
        np.testing.assert_array_equal(got, np.var(X, axis=0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lean_kmeans_equals_kmeans_with_less_memory(dtype, monkeypatch):
    """Same tolerance, labels and centres as scikit-learn's KMeans; peak memory one copy of X."""
    import tracemalloc

    from sklearn.cluster._kmeans import _tolerance

    import gmm.initialization
    from gmm.initialization import LeanKMeans

    rng = np.random.default_rng(1)
    X = (rng.standard_normal((20000, 40)) + 5 * rng.integers(0, 4, (20000, 1))).astype(dtype)
    w = rng.uniform(0.5, 2, X.shape[0])
    monkeypatch.setattr(gmm.initialization, "VARIANCE_BLOCK_BYTES", X.nbytes // 20)
    peaks = []
    for cls in (KMeans, LeanKMeans):
        tracemalloc.start()
        model = cls(4, n_init=1, random_state=np.random.RandomState(2)).fit(X, sample_weight=w)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        if cls is KMeans:
            ref = model
    assert model._tol == ref._tol == _tolerance(X, 1e-4)
    np.testing.assert_array_equal(model.labels_, ref.labels_)
    np.testing.assert_array_equal(model.cluster_centers_, ref.cluster_centers_)
    assert model.n_iter_ == ref.n_iter_
    # scikit-learn holds its centred copy and np.var's temporary at once; ours the copy
    # and the k-means++ seeding's distances (about 12 floats a row).
    assert peaks[0] > 1.9 * X.nbytes and peaks[1] < X.nbytes + 14 * 8 * X.shape[0]


def test_kmeans_plusplus_one_hot_at_seeds(moons):
    resp = get_initializer("k-means++")(moons, 4, np.random.RandomState(1), None)
    _, idx = kmeans_plusplus(moons, 4, random_state=np.random.RandomState(1))
    expected = np.zeros((moons.shape[0], 4))
    expected[idx, np.arange(4)] = 1
    np.testing.assert_array_equal(resp, expected)


def test_random_rows_sum_to_one(moons):
    resp = get_initializer("random")(moons, 4, np.random.RandomState(0), None)
    np.testing.assert_allclose(resp.sum(axis=1), 1)
    assert np.all(resp > 0)


def test_random_from_data_picks_distinct_rows_with_positive_weight(moons):
    w = np.zeros(moons.shape[0])
    w[:10] = 1.0
    resp = get_initializer("random_from_data")(moons, 4, np.random.RandomState(0), w)
    rows = np.flatnonzero(resp.sum(axis=1))
    assert len(rows) == 4 and np.all(rows < 10)
    np.testing.assert_array_equal(resp.sum(axis=0), np.ones(4))


# ------------------------------------------------------- init_params as a callable
def _kmeans_partition(X, n_components, random_state):
    """What init_params='kmeans' does, written as a user's callable (one-hot rows)."""
    labels = KMeans(n_components, n_init=1, random_state=random_state).fit(X).labels_
    return np.eye(n_components)[labels]


def test_callable_partition_gives_the_registered_kmeans_fit(moons):
    from gmm import GaussianMixture

    ours = GaussianMixture(4, init_params=_kmeans_partition, random_state=7).fit(moons)
    ref = GaussianMixture(4, init_params="kmeans", random_state=7).fit(moons)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-12)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-12)
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_callable_soft_responsibilities_start_with_their_m_step(moons, covariance_type):
    """With max_iter=0 the model is the M-step from the callable's responsibilities."""
    from gmm import GaussianMixture

    resp = np.random.default_rng(0).dirichlet(np.ones(3), size=len(moons))
    model = GaussianMixture(
        3, covariance_type=covariance_type, init_params=lambda X, k, rs: resp, max_iter=0
    ).fit(moons)
    nk = resp.sum(axis=0)
    np.testing.assert_allclose(model.weights_, nk / nk.sum(), rtol=1e-12)
    np.testing.assert_allclose(model.means_, resp.T @ moons / nk[:, None], rtol=1e-12)
    covs = np.array([np.cov(moons, rowvar=False, aweights=resp[:, k], bias=True) for k in range(3)])
    if covariance_type == "diag":
        covs = np.diagonal(covs, axis1=1, axis2=2)
    else:
        covs = covs + 1e-6 * np.eye(2)
    np.testing.assert_allclose(
        model.covariances_, covs + (1e-6 if covariance_type == "diag" else 0), rtol=1e-10
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
@pytest.mark.parametrize("weighted", [False, True])
def test_callable_integer_labels_fit_as_their_one_hot_rows(moons, covariance_type, weighted):
    """A partition as integer labels gives the fit of its one-hot matrix, bit for bit."""
    from gmm import GaussianMixture

    labels = KMeans(3, n_init=1, random_state=0).fit(moons).labels_
    weight = np.random.default_rng(1).integers(1, 4, len(moons)) if weighted else None
    fits = [
        GaussianMixture(
            3, covariance_type=covariance_type, init_params=lambda X, k, rs, r=r: r
        ).fit(moons, sample_weight=weight)
        for r in (labels.astype(np.int32), np.eye(3)[labels])
    ]
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    assert fits[0].n_iter_ == fits[1].n_iter_


def test_callable_labels_in_any_1d_array_like(moons):
    """Labels as a memoryview (or a pandas Series) are labels, not a shape error."""
    from gmm import GaussianMixture

    labels = np.arange(len(moons)) % 2
    ref = GaussianMixture(2, init_params=lambda X, k, rs: labels, max_iter=3).fit(moons)
    view = memoryview(labels.astype(np.int64))
    ours = GaussianMixture(2, init_params=lambda X, k, rs: view, max_iter=3).fit(moons)
    np.testing.assert_array_equal(ours.means_, ref.means_)


def test_callable_receives_the_data_k_and_a_random_state(moons):
    from gmm import GaussianMixture

    seen = {}

    def init(X, n_components, random_state):
        seen.update(shape=X.shape, k=n_components, rs=type(random_state).__name__)
        return _kmeans_partition(X, n_components, random_state)

    GaussianMixture(2, init_params=init, random_state=0).fit(moons)
    assert seen == {"shape": moons.shape, "k": 2, "rs": "RandomState"}


def _one_infinity(X, k):
    """A partition with one infinite entry."""
    resp = np.eye(k)[np.arange(len(X)) % k]
    resp[7, 0] = np.inf
    return resp


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda X, k: np.ones((len(X), k + 1)) / (k + 1), r"returned shape \(200, 4\), expected"),
        (lambda X, k: np.ones(len(X)), "must be integer labels"),
        (lambda X, k: np.arange(len(X) - 1) % k, r"returned 199 labels, expected one per sample"),
        (lambda X, k: np.arange(len(X)) % (k + 1), r"returned label 3 \(row 3\)"),
        (lambda X, k: np.arange(len(X)) - 1, r"returned label -1 \(row 0\)"),
        (lambda X, k: np.full((len(X), k), np.nan), "NaN or infinity"),
        (_one_infinity, "NaN or infinity"),
        # finite entries whose sum overflows: finite, but the rows do not sum to 1
        (lambda X, k: np.full((len(X), k), 1e308), "do not sum to 1"),
        (lambda X, k: np.tile([2.0, -1.0, 0.0], (len(X), 1)), "negative responsibilities"),
        (lambda X, k: np.full((len(X), k), 0.5), "do not sum to 1"),
        (lambda X, k: "labels", "numeric array"),
    ],
)
def test_bad_callable_output_is_refused_and_keeps_the_fitted_model(moons, make, match):
    from gmm import GaussianMixture

    model = GaussianMixture(3, random_state=0).fit(moons)
    before = {name: np.copy(value) for name, value in vars(model).items() if name.endswith("_")}
    model.set_params(init_params=lambda X, k, rs: make(X, k))
    with pytest.raises(ValueError, match=match):
        model.fit(moons)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)


def test_callable_init_params_model_saves_and_loads(moons, tmp_path):
    from gmm import GaussianMixture, load, save

    model = GaussianMixture(3, init_params=_kmeans_partition, random_state=0).fit(moons)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.init_params is None  # the callable is not stored (documented)
    np.testing.assert_array_equal(loaded.predict_proba(moons), model.predict_proba(moons))
    with pytest.raises(ValueError, match="init_params"):
        loaded.fit(moons)  # no initializer until set_params(init_params=...)
    loaded.set_params(init_params="kmeans").fit(moons)


@pytest.mark.parametrize("n_clusters", [1, 2, 7, 30])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("hard", [False, True])
def test_lean_kmeans_plusplus_is_scikit_learns_bit_for_bit(n_clusters, weighted, hard):
    """Same centres and indices as scikit-learn's kmeans_plusplus, on hard data too."""
    from sklearn.utils.extmath import row_norms

    from gmm.initialization import lean_kmeans_plusplus

    rng = np.random.default_rng(n_clusters)
    X = rng.standard_normal((3001, 6)) + 4 * rng.integers(0, 5, (3001, 1))
    if hard:  # offset 1e6, features from 1e-4 to 1e4, a tight cluster of copies
        X = 1e6 + X * np.logspace(-4, 4, 6)
        X[:50] = X[0] + 1e-9 * rng.standard_normal((50, 6))
    w = rng.uniform(0.1, 3, X.shape[0]) if weighted else np.ones(X.shape[0])
    norms = row_norms(X, squared=True)
    ours = lean_kmeans_plusplus(X, n_clusters, norms, w, np.random.RandomState(5))
    ref = kmeans_plusplus(
        X, n_clusters, x_squared_norms=norms, sample_weight=w, random_state=np.random.RandomState(5)
    )
    np.testing.assert_array_equal(ours[1], ref[1])
    np.testing.assert_array_equal(ours[0], ref[0])


def test_lean_kmeans_seeding_holds_less_than_scikit_learns():
    """The seeding's peak: about T + 1 floats a row beyond X, scikit-learn's 2T.

    scikit-learn keeps the previous candidates' (T, n) distances alive (its closest
    distances are a row of them) while it forms the next ones.
    """
    import tracemalloc

    from sklearn.cluster._kmeans import _kmeans_plusplus
    from sklearn.utils.extmath import row_norms

    from gmm.initialization import lean_kmeans_plusplus

    rng = np.random.default_rng(3)
    X = rng.standard_normal((40000, 5))
    norms, w = row_norms(X, squared=True), np.ones(X.shape[0])
    peaks, results = [], []
    for seed in (_kmeans_plusplus, lean_kmeans_plusplus):
        tracemalloc.start()
        results.append(seed(X, 20, norms, w, np.random.RandomState(0)))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    np.testing.assert_array_equal(results[0][0], results[1][0])
    trials = 2 + int(np.log(20))  # 4 candidate rows of distances
    row = 8 * X.shape[0]
    assert peaks[0] > 2 * trials * row
    assert peaks[1] < (trials + 1.5) * row
