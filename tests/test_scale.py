"""Scale-out: dask arrays on a local cluster, memory-mapped files, folders of parts.

The reference everywhere is the in-memory NumPy fit of the same data from the
same start: a dask fit only changes the order in which the per-chunk statistics
are added (a tree instead of a loop), so it must agree to rounding (rtol 1e-8
after 8 EM iterations); a memory-mapped fit reads the same rows in the same
chunks, so it agrees to 1e-12.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gmm import GaussianMixture, initialization
from gmm.initialization import kmeans
from gmm.scale import FileRows
from gmm.scale.dask_arrays import DaskTrainingData
from gmm.scale.parts import read_parts

from .mixture_data import COVARIANCE_TYPES, make_mixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

#: Uneven row chunks of the 2,000-row data, with two chunks of one row.
CHUNKS = (1, 700, 1, 450, 848)
#: Attributes that must agree between two fits.
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bounds_")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on loopback, shared by the module."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _data(covariance_type, n_samples=2000, seed=3):
    X, *_ = make_mixture(covariance_type, n_samples=n_samples, n_components=3, d=3, seed=seed)
    w = np.random.default_rng(seed).uniform(0.1, 3.0, n_samples)
    return X, w


def _start(X, covariance_type) -> dict:
    """Initial parameters: one EM step from k-means, as constructor arguments."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, random_state=0)
        model.fit(X)
    return {
        "weights_init": model.weights_,
        "means_init": model.means_,
        "precisions_init": model.precisions_,
    }


def _model(covariance_type, **params) -> GaussianMixture:
    return GaussianMixture(
        3, covariance_type=covariance_type, tol=0, max_iter=8, random_state=0, **params
    )


def _fit(model, X, sample_weight=None) -> GaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, sample_weight=sample_weight)


def _assert_same_model(a, b, rtol, atol=0.0):
    for name in FITTED:
        np.testing.assert_allclose(
            getattr(b, name), getattr(a, name), rtol=rtol, atol=atol, err_msg=name
        )
    assert b.n_iter_ == a.n_iter_


# ====================================================================== dask
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_dask_fit_equals_numpy_fit(client, covariance_type, weighted):
    X, w = _data(covariance_type)
    start = _start(X, covariance_type)
    expected = _fit(_model(covariance_type, **start), X, w if weighted else None)
    Xd = da.from_array(X, chunks=(CHUNKS, 3))
    # The weights come chunked differently from X: fit aligns them.
    wd = da.from_array(w, chunks=500) if weighted else None
    got = _fit(_model(covariance_type, **start), Xd, wd)
    _assert_same_model(expected, got, rtol=1e-8)
    assert isinstance(got.predict(Xd), da.Array)


def test_dask_fit_in_float32_stays_float32_and_equals_numpy(client):
    """float32 chunks are summed in float32 within a chunk, so agreement is to
    float32 rounding (the chunk boundaries differ)."""
    X, _ = _data("full")
    X = X.astype(np.float32)
    start = _start(X, "full")
    expected = _fit(_model("full", **start), X)
    got = _fit(_model("full", **start), da.from_array(X, chunks=(CHUNKS, 3)))
    assert got.means_.dtype == np.float32
    # atol for entries near 0 (an off-diagonal precision factor of 2e-3).
    _assert_same_model(expected, got, rtol=1e-4, atol=1e-5)


def test_dask_fit_with_numpy_weights_and_default_init(client):
    """Fewer rows than init_sample_size: k-means sees all of them, as in memory."""
    X, w = _data("full")
    expected = _fit(_model("full"), X, w)
    got = _fit(_model("full"), da.from_array(X, chunks=(CHUNKS, 3)), w)
    _assert_same_model(expected, got, rtol=1e-8)


def test_dask_predictions_are_lazy_and_equal(client):
    X, _ = _data("full")
    model = _fit(_model("full"), X)
    Xd = da.from_array(X, chunks=(CHUNKS, 3))
    labels, proba, log_prob = model.predict(Xd), model.predict_proba(Xd), model.score_samples(Xd)
    for lazy in (labels, proba, log_prob):
        assert isinstance(lazy, da.Array)
        assert lazy.chunks[0] == CHUNKS
    np.testing.assert_array_equal(labels.compute(), model.predict(X))
    np.testing.assert_allclose(proba.compute(), model.predict_proba(X), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(log_prob.compute(), model.score_samples(X), rtol=1e-12)
    score = model.score(Xd)
    assert isinstance(score, float)
    assert score == pytest.approx(model.score(X), rel=1e-12)
    for criterion in ("aic", "bic", "icl"):
        assert getattr(model, criterion)(Xd) == pytest.approx(
            getattr(model, criterion)(X), rel=1e-10
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted_labels = _model("full").fit_predict(Xd)
    assert isinstance(fitted_labels, da.Array)
    np.testing.assert_array_equal(fitted_labels.compute(), labels.compute())


def test_subsample_init_shows_the_initializer_only_the_subsample(client, monkeypatch):
    """The initializer gets an in-memory subsample; the dask and NumPy fits that
    draw the same subsample (same random_state) are the same model."""
    seen = []

    def spy(X, n_components, random_state, sample_weight=None):
        seen.append((type(X), X.shape))
        return kmeans(X, n_components, random_state, sample_weight)

    monkeypatch.setitem(initialization._REGISTRY, "spy", spy)
    X, w = _data("diag", n_samples=3000)
    params = {"init_params": "spy", "init_sample_size": 400}
    expected = _fit(_model("diag", **params), X, w)
    got = _fit(_model("diag", **params), da.from_array(X, chunks=700), da.from_array(w, chunks=700))
    assert seen == [(np.ndarray, (400, 3))] * 2
    _assert_same_model(expected, got, rtol=1e-8)


def test_subsample_init_reaches_the_optimum_of_the_full_init():
    """k-means on 300 of 20,000 rows, then EM to convergence: the same optimum as
    k-means on all rows."""
    X, *_ = make_mixture("full", n_samples=20_000, n_components=3, d=2, seed=0)
    params = {"random_state": 0, "tol": 1e-10, "max_iter": 1000}
    sub = GaussianMixture(3, init_sample_size=300, **params).fit(X)
    full = GaussianMixture(3, **params).fit(X)
    assert sub.lower_bound_ == pytest.approx(full.lower_bound_, rel=1e-9)
    order, full_order = np.argsort(sub.means_[:, 0]), np.argsort(full.means_[:, 0])
    np.testing.assert_allclose(sub.means_[order], full.means_[full_order], atol=1e-5)


def test_killing_a_worker_mid_fit_gives_the_same_model(client, monkeypatch):
    X, w = _data("full")
    start = _start(X, "full")
    expected = _fit(_model("full", **start), X, w)
    pids = client.run(os.getpid)
    victim = pids[sorted(pids)[0]]
    calls = []
    original = DaskTrainingData.expectation

    def expectation(self, params, log_const):
        calls.append(1)
        if len(calls) == 3:
            # The worker holds persisted blocks of X: the cluster must recompute them.
            os.kill(victim, signal.SIGKILL)
        return original(self, params, log_const)

    monkeypatch.setattr(DaskTrainingData, "expectation", expectation)
    Xd = da.from_array(X, chunks=(CHUNKS, 3))
    got = _fit(_model("full", **start), Xd, da.from_array(w, chunks=(CHUNKS,)))
    _assert_same_model(expected, got, rtol=1e-8)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda X: X[:, 0], "2-D dask array"),
        (lambda X: X.astype(str), "must hold numbers"),
        (lambda X: da.where(X > 4, np.nan, X), "NaN or infinity"),
        (lambda X: X[:1], "minimum of 2"),
    ],
    ids=["1-D", "strings", "NaN", "one row"],
)
def test_dask_bad_input_is_refused(make, match):
    X, _ = _data("diag", n_samples=200)
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3).fit(make(da.from_array(X, chunks=50)))


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (lambda n: da.ones(n + 1, chunks=50), r"shape \(201,\), expected \(200,\)"),
        (lambda n: -da.ones(n, chunks=50), "negative"),
        (lambda n: da.zeros(n, chunks=50), "all zero"),
        (lambda n: np.full(n, np.nan), "NaN or infinity"),
    ],
    ids=["length", "negative", "zero", "NaN"],
)
def test_dask_bad_weights_are_refused(weights, match):
    X, _ = _data("diag", n_samples=200)
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3).fit(da.from_array(X, chunks=50), sample_weight=weights(200))


def test_dask_column_chunks_and_integer_data_are_accepted():
    X = np.random.default_rng(0).integers(0, 50, (300, 4))
    expected = _fit(GaussianMixture(2, max_iter=5, random_state=0), X)
    got = _fit(GaussianMixture(2, max_iter=5, random_state=0), da.from_array(X, chunks=(100, 2)))
    assert got.means_.dtype == np.float64
    np.testing.assert_allclose(got.means_, expected.means_, rtol=1e-8)


def test_dask_prediction_checks_features_and_nan():
    X, _ = _data("diag", n_samples=200)
    model = GaussianMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        model.predict(da.from_array(X[:, :2], chunks=50))
    lazy = model.score_samples(da.where(da.arange(200)[:, None] == 120, np.nan, X).rechunk(50))
    with pytest.raises(ValueError, match="row 120"):
        lazy.compute()


# ===================================================================== files
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_memmap_fit_equals_in_memory(tmp_path, covariance_type):
    X, w = _data(covariance_type)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for weights in (None, w):
        expected = _fit(_model(covariance_type), X, weights)
        got = _fit(_model(covariance_type), mapped, weights)
        _assert_same_model(expected, got, rtol=1e-12)
    np.testing.assert_allclose(got.predict_proba(mapped), expected.predict_proba(X), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = got.fit_predict(mapped, sample_weight=w)
    np.testing.assert_array_equal(labels, expected.predict(X))


def _resident_bytes_of(path) -> int:
    """Resident bytes of this process's mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                inside = fields[-1] == os.fspath(path)
            elif inside and fields[0] == "Rss:":
                total += int(fields[1]) * 1024
    return total


def test_memmap_pages_are_released_after_each_block(tmp_path, monkeypatch):
    """Validation, the NaN check, EM and prediction copy rows out of the user's
    mapping a block at a time (1 MiB here) and release the pages, so none of the
    9.6 MB file stays resident through the map."""
    from gmm.scale import files

    monkeypatch.setattr(files, "BLOCK_BYTES", 2**20)
    X, w = _data("diag", n_samples=400_000)
    path = tmp_path / "x.npy"
    np.save(path, X)
    del X
    mapped = np.load(path, mmap_mode="r")
    model = GaussianMixture(3, covariance_type="diag", max_iter=3, init_sample_size=1000)
    _fit(model, mapped, w)
    model.score(mapped)
    assert mapped.nbytes > 9e6
    assert _resident_bytes_of(path) <= 8192
    # Reading the map directly, as check_array would, makes it resident.
    float(np.sum(mapped))
    assert _resident_bytes_of(path) > mapped.nbytes // 2


def test_memmap_nan_is_found_while_streaming(tmp_path):
    X, _ = _data("diag", n_samples=300)
    X[250, 1] = np.nan
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="row 250"):
        GaussianMixture(2).fit(mapped)
    model = GaussianMixture(2, random_state=0).fit(X[:200])
    with pytest.raises(ValueError, match="row 250"):
        model.predict(mapped)


@pytest.mark.parametrize(
    "view",
    [
        lambda m: m[100:],
        lambda m: m[:, :],
        lambda m: np.asfortranarray(m),
    ],
    ids=["row slice", "full slice", "in memory"],
)
def test_memmap_views_and_integer_files(tmp_path, view):
    X = np.random.default_rng(0).integers(-40, 40, (1200, 3)).astype(">i4")
    np.save(tmp_path / "x.npy", X)
    mapped = view(np.load(tmp_path / "x.npy", mmap_mode="r"))
    expected = GaussianMixture(2, random_state=0).fit(np.asarray(view(X), dtype=np.float64))
    got = GaussianMixture(2, random_state=0).fit(mapped)
    np.testing.assert_allclose(got.means_, expected.means_, rtol=1e-12)


def test_file_rows_of_fortran_and_copy_on_write_maps_are_not_used(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((4, 3))))
    assert FileRows.from_memmap(np.load(tmp_path / "f.npy", mmap_mode="r")) is None
    assert FileRows.from_memmap(np.load(tmp_path / "f.npy", mmap_mode="c")) is None
    with pytest.raises(ValueError, match="Fortran order"):
        FileRows.from_npy(tmp_path / "f.npy")


# ======================================================= memory maps as given
# Class 3 of issue 17: the rows read are those of the array the user passed,
# whatever happens to its file's path afterwards. The reference is always the
# same call on an in-memory copy of the user's array, taken before the path changed.
def _two_clusters(holes: bool = False) -> np.ndarray:
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.normal(0, 1, (150, 3)), rng.normal(6, 1, (150, 3))])
    if holes:
        X[rng.choice(300, 20, replace=False), rng.integers(0, 3, 20)] = np.nan
    return X


def _raw_map(path, X, mode="r"):
    """X behind 5000 bytes of other data: an offset past the mapping granularity."""
    raw = os.fspath(path) + ".raw"
    with open(raw, "wb") as file:
        file.write(b"\xff" * 5000 + X.tobytes())
    return raw, np.memmap(raw, dtype=X.dtype, mode=mode, offset=5000, shape=X.shape)


#: name -> (path, X) -> (path of the mapped file, the memory map the user holds)
MAP_SOURCES = {
    "mode r": lambda path, X: (path, np.load(path, mmap_mode="r")),
    "mode r+": lambda path, X: (path, np.load(path, mmap_mode="r+")),
    "mode c": lambda path, X: (path, np.load(path, mmap_mode="c")),
    "row slice": lambda path, X: (path, np.load(path, mmap_mode="r")[30:]),
    "offset 5000": _raw_map,
}


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, 'omit' dropping rows
        return call()


def _fitted(holes: bool = False) -> GaussianMixture:
    policy = "omit" if holes else "raise"
    return _quiet(
        lambda: GaussianMixture(2, random_state=0, nan_policy=policy).fit(_two_clusters(holes))
    )


def _sweep_bic(X):
    from gmm import sweep

    return _quiet(lambda: sweep(X, [1, 2], "diag", progress=False).table.column("bic"))


def _ic_means(X):
    from gmm import GaussianMixtureIC

    return _quiet(
        lambda: GaussianMixtureIC([1, 2], covariance_type="diag", random_state=0).fit(X)
    ).best_estimator_.means_


def _stream_means(X):
    from gmm import fit_stream

    return _quiet(lambda: fit_stream(X, GaussianMixture(2, random_state=0), batch_size=100)).means_


#: name -> (data with holes?, call on X returning numbers)
MAP_ENTRIES = {
    "fit": (False, lambda X: _quiet(lambda: GaussianMixture(2, random_state=0).fit(X)).means_),
    "fit_predict": (
        False,
        lambda X: _quiet(lambda: GaussianMixture(2, random_state=0).fit_predict(X)),
    ),
    "predict": (False, lambda X: _fitted().predict(X)),
    "predict_proba": (False, lambda X: _fitted().predict_proba(X)),
    "score_samples": (False, lambda X: _fitted().score_samples(X)),
    "score": (False, lambda X: _fitted().score(X)),
    "bic": (False, lambda X: _fitted().bic(X)),
    "sweep": (False, _sweep_bic),
    "GaussianMixtureIC": (False, _ic_means),
    "fit_stream": (False, _stream_means),
    "partial_fit": (False, lambda X: GaussianMixture(2, random_state=0).partial_fit(X).means_),
    "marginalize fit": (
        True,
        lambda X: (
            _quiet(
                lambda: GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(X)
            ).means_
        ),
    ),
    "omit fit": (
        True,
        lambda X: (
            _quiet(lambda: GaussianMixture(2, random_state=0, nan_policy="omit").fit(X)).means_
        ),
    ),
    "omit bic": (True, lambda X: _fitted(holes=True).bic(X)),
    "marginalize score_samples": (
        True,
        lambda X: _quiet(
            lambda: GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(X)
        ).score_samples(X),
    ),
}


def _replace_by_rename(path):
    """Another file of the same size, its numbers moved, renamed over ``path``."""
    content = bytearray(open(path, "rb").read())
    n_bytes = _two_clusters().nbytes  # the data end every file these tests map
    numbers = np.frombuffer(bytes(content[-n_bytes:]), dtype=np.float64) * 3.0 + 100.0
    content[-n_bytes:] = numbers.tobytes()
    other = os.fspath(path) + ".new"
    with open(other, "wb") as file:
        file.write(content)
    os.replace(other, path)


MAP_FATES = {"replaced by rename": _replace_by_rename, "deleted": os.remove}


@pytest.mark.parametrize("fate", MAP_FATES, ids=list(MAP_FATES))
@pytest.mark.parametrize("source", MAP_SOURCES, ids=list(MAP_SOURCES))
@pytest.mark.parametrize("entry", MAP_ENTRIES, ids=list(MAP_ENTRIES))
def test_memory_map_is_read_as_given_whatever_happens_to_its_path(tmp_path, entry, source, fate):
    holes, call = MAP_ENTRIES[entry]
    np.save(tmp_path / "x.npy", _two_clusters(holes))
    path, mapped = MAP_SOURCES[source](tmp_path / "x.npy", _two_clusters(holes))
    given = np.array(mapped)  # what the user's array holds
    expected = call(given)
    MAP_FATES[fate](path)
    np.testing.assert_allclose(call(mapped), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.array(mapped), given)


#: partial_fit reads a memory map as an in-memory array (gmm.online): a truncated
#: file kills the process with SIGBUS there, as it does for numpy itself.
TRUNCATION_ENTRIES = [name for name in MAP_ENTRIES if name != "partial_fit"]


@pytest.mark.parametrize("source", ["mode r", "mode c", "offset 5000"])
@pytest.mark.parametrize("entry", TRUNCATION_ENTRIES)
def test_truncated_map_is_a_clear_error_and_the_model_is_kept(tmp_path, entry, source):
    """Touching the lost pages would kill the process (SIGBUS), as numpy itself does."""
    holes, call = MAP_ENTRIES[entry]
    np.save(tmp_path / "x.npy", _two_clusters(holes))
    path, mapped = MAP_SOURCES[source](tmp_path / "x.npy", _two_clusters(holes))
    model = _fitted(holes)
    before = model.predict_proba(_two_clusters())
    os.truncate(path, 2048)  # keeps the header and a few rows
    # A sweep stops at the first fit's OSError (the file's state, not the fit's): it
    # no longer records it for every fit and then says that all of them failed.
    with pytest.raises(OSError, match=r"truncated to 2048 bytes.*rows from row \d+ on \(counted"):
        if entry in ("fit", "omit fit", "marginalize fit"):
            _quiet(lambda: model.fit(mapped))
        else:
            call(mapped)
    np.testing.assert_array_equal(model.predict_proba(_two_clusters()), before)


def test_fortran_ordered_map_is_read_as_given_in_memory(tmp_path):
    """A Fortran-ordered map is used as an in-memory array: still the user's data."""
    X = _two_clusters()
    np.save(tmp_path / "f.npy", np.asfortranarray(X))
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    expected = GaussianMixture(2, random_state=0).fit(X).means_
    _replace_by_rename(tmp_path / "f.npy")
    np.testing.assert_allclose(
        GaussianMixture(2, random_state=0).fit(mapped).means_, expected, rtol=1e-12
    )


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score", "bic"])
@pytest.mark.parametrize("policy", ["raise", "marginalize"])
def test_empty_map_is_refused_as_an_empty_array_is(tmp_path, method, policy):
    np.save(tmp_path / "e.npy", np.zeros((0, 3)))
    model = _quiet(
        lambda: GaussianMixture(2, random_state=0, nan_policy=policy).fit(_two_clusters())
    )
    before = model.predict_proba(_two_clusters())
    for empty in (np.zeros((0, 3)), np.load(tmp_path / "e.npy", mmap_mode="r")):
        with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\)"):
            getattr(model, method)(empty)
    np.testing.assert_array_equal(model.predict_proba(_two_clusters()), before)


def test_init_sample_size_is_checked():
    with pytest.raises(ValueError, match="init_sample_size must be >= 3"):
        GaussianMixture(3, init_sample_size=2).fit(np.random.default_rng(0).random((20, 2)))


# ===================================================================== parts
def test_read_parts_of_npy_files_equals_the_stacked_array(tmp_path, client):
    X, _ = _data("full")
    for i, (a, b) in enumerate([(0, 1), (1, 1200), (1200, 2000)]):
        np.save(tmp_path / f"part-{i * 5}.npy", X[a:b])  # part-10 sorts after part-5
    stacked = read_parts(tmp_path, rows_per_block=300)
    assert stacked.chunks[0] == (1, 300, 300, 300, 299, 300, 300, 200)
    np.testing.assert_array_equal(stacked.compute(), X)
    start = _start(X, "full")
    _assert_same_model(
        _fit(_model("full", **start), X), _fit(_model("full", **start), stacked), 1e-8
    )


def test_read_parts_of_csv_files_with_and_without_header(tmp_path, client):
    X, _ = _data("diag", n_samples=500)
    np.savetxt(tmp_path / "a.csv", X[:200], delimiter=",", header="x,y,z", comments="")
    np.savetxt(tmp_path / "b.csv", X[200:], delimiter=",")
    stacked = read_parts(tmp_path)
    np.testing.assert_allclose(stacked.compute(), X, rtol=1e-15)
    start = _start(X, "diag")
    got = _fit(_model("diag", **start), stacked)
    _assert_same_model(_fit(_model("diag", **start), X), got, 1e-8)


def test_read_parts_refuses_unclear_folders(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="No such file"):
        read_parts(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no \.npy or \.csv parts"):
        read_parts(tmp_path)
    np.save(tmp_path / "a.npy", np.zeros((3, 2)))
    np.save(tmp_path / "b.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"different numbers of columns \(\[2, 4\]\), e.g. b.npy"):
        read_parts(tmp_path)
    np.savetxt(tmp_path / "c.csv", np.zeros((3, 2)), delimiter=",")
    with pytest.raises(ValueError, match=r"both \.npy and \.csv"):
        read_parts(tmp_path)
    store = tmp_path / "data.zarr"
    store.mkdir()
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(ImportError, match="pip install zarr"):
        read_parts(store)


# ============================================================ without dask
def test_without_dask_a_dask_array_gets_a_clear_error(monkeypatch, tmp_path):
    data = np.random.default_rng(0).random((50, 2))
    X = da.from_array(data, chunks=10)
    model = GaussianMixture(2, random_state=0).fit(data)
    for name in ("dask", "dask.array", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    install = r'pip install "gmm\[dask\]"'
    with pytest.raises(ImportError, match=install):
        GaussianMixture(2).fit(X)
    with pytest.raises(ImportError, match=install):
        model.predict(X)
    with pytest.raises(ImportError, match=install):
        read_parts(tmp_path)
    # Plain arrays need no dask.
    assert model.predict(data).shape == (50,)


def test_importing_gmm_does_not_import_dask():
    code = "import sys, gmm, gmm.scale, gmm.scale.parts; print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ==================================================================== sweeps
def test_sweep_on_the_cluster_through_joblib_with_a_checkpoint(client, tmp_path):
    import joblib

    from gmm import sweep

    X, _ = _data("diag", n_samples=400)
    grid = dict(n_components=[1, 2, 3], covariance_types=["diag", "full"], progress=False)
    serial = sweep(X, **grid)
    checkpoint = tmp_path / "sweep.jsonl"
    with distributed.get_task_stream(client) as tasks, joblib.parallel_config(backend="dask"):
        on_cluster = sweep(X, n_jobs=-1, checkpoint=checkpoint, **grid)
    workers = set(client.scheduler_info()["workers"])
    assert tasks.data and {task["worker"] for task in tasks.data} <= workers
    columns = ("n_components", "covariance_type", "aic", "bic", "icl", "n_iter")
    rows = lambda result: [[row[c] for c in columns] for row in result.table]  # noqa: E731
    assert rows(on_cluster) == rows(serial)
    assert len(checkpoint.read_text().splitlines()) == 1 + 6  # header and one line per fit
    with joblib.parallel_config(backend="dask"):
        resumed = sweep(X, n_jobs=-1, checkpoint=checkpoint, **grid)
    assert resumed.table.to_records() == on_cluster.table.to_records()


@pytest.mark.parametrize("source", ["mode r", "row slice", "offset 5000"])
def test_private_copy_gives_other_processes_the_data_as_given(tmp_path, source):
    """joblib sends an np.memmap to its workers as a file name: they would map the
    replaced file. A private copy sends them the user's data (for sweep(n_jobs>1))."""
    joblib = pytest.importorskip("joblib")
    from gmm.scale.files import private_copy

    np.save(tmp_path / "x.npy", _two_clusters())
    path, mapped = MAP_SOURCES[source](tmp_path / "x.npy", _two_clusters())
    given = np.array(mapped)
    _replace_by_rename(path)
    with private_copy(mapped, folder=tmp_path) as copy:
        assert copy.dtype == mapped.dtype and copy.shape == mapped.shape
        sums = joblib.Parallel(n_jobs=2)(joblib.delayed(np.sum)(copy, axis=0) for _ in range(2))
        for total in sums:
            np.testing.assert_array_equal(total, given.sum(axis=0))
        copied = copy.filename
    assert not os.path.exists(copied)


def test_private_copy_keeps_the_byte_order(tmp_path):
    from gmm.scale.files import private_copy

    X = np.arange(12, dtype=">i4").reshape(4, 3)
    np.save(tmp_path / "x.npy", X)
    with private_copy(np.load(tmp_path / "x.npy", mmap_mode="r")) as copy:
        assert copy.dtype == np.dtype(">i4")
        np.testing.assert_array_equal(copy, X)


def test_out_of_range_names_the_row_in_the_whole_data(tmp_path):
    """A row far out in a later block of a file or a dask array, or among the complete
    rows of data with holes, is named by its index in the data given, not in its block."""
    from gmm.em import OutOfRangeError

    rng = np.random.default_rng(0)
    model = GaussianMixture(2, random_state=0).fit(rng.normal(size=(200, 2)))
    X = rng.normal(size=(300_000, 2))  # 4.8 MB: a file read in more than one block
    far = 280_000
    X[far] = 1e200
    path = tmp_path / "x.npy"
    np.save(path, X)
    sources = {
        "memory": X,
        "memmap": np.load(path, mmap_mode="r"),
        "dask": da.from_array(X, chunks=(50_000, 2)),
    }
    for name, source in sources.items():
        for method in ("predict", "score_samples", "score"):
            with pytest.raises(OutOfRangeError, match=f"Row {far} \\(counting from 0\\)") as error:
                result = getattr(model, method)(source)
                if hasattr(result, "compute"):
                    result.compute()
            assert error.value.row == far, (name, method)
    holes = GaussianMixture(2, nan_policy="marginalize", random_state=0).fit(X[:200])
    Y = X[270_000:].copy()
    Y[:5, 0] = np.nan  # the rows with holes come first; the far row is complete
    with pytest.raises(OutOfRangeError, match=f"Row {far - 270_000} ") as error:
        holes.predict(Y)
    assert error.value.row == far - 270_000


@pytest.mark.parametrize("n_samples, size", [(20_000, 2_000), (1_000, 600)])
def test_kept_draws_equal_fresh_draws_and_leave_the_same_state(n_samples, size):
    # Both branches of the draw (rejection, and a choice without replacement).
    from gmm.scale import sources

    sources._DRAWS.clear()
    fresh = np.random.RandomState(3)
    reference = sources._draw_rows(n_samples, size, fresh)
    after = fresh.randint(0, 2**31, size=5)
    for _ in range(3):  # the first call draws, the next ones reuse the kept draw
        state = np.random.RandomState(3)
        rows = sources.draw_rows(n_samples, size, state)
        np.testing.assert_array_equal(rows, reference)
        np.testing.assert_array_equal(state.randint(0, 2**31, size=5), after)
        assert not rows.flags.writeable
    assert len(rows) == size and np.all(np.diff(rows) > 0)
    # Another state is another draw, not the kept one.
    other = sources.draw_rows(n_samples, size, np.random.RandomState(4))
    np.testing.assert_array_equal(
        other, sources._draw_rows(n_samples, size, np.random.RandomState(4))
    )
    assert not np.array_equal(other, reference)


@pytest.mark.parametrize("dtype, offset", [(np.float64, 0.0), (np.float64, 1e6), (np.float32, 0.0)])
def test_known_rows_fit_equals_the_checked_fit(dtype, offset):
    # Hard data too: a large offset (the shift matters), and float32 staying float32.
    from gmm import scale

    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(0, 1, (150, 3)), rng.normal(6, 0.5, (150, 3))]) + offset
    X = X.astype(dtype)

    def fit(data, weights=None):
        return GaussianMixture(
            2, covariance_type="VVV", init_params="hc", random_state=0, max_iter=20
        ).fit(data, sample_weight=weights)

    checked = fit(X)
    seen = []
    original = scale.column_mean
    with scale.known_rows(X):
        scale.column_mean = lambda *args, **kw: seen.append(1) or original(*args, **kw)
        try:
            known = fit(X)
            other = fit(X.copy())  # an equal copy is not the known object: checked
            weighted = fit(X, np.ones(X.shape[0]))  # weights: checked
        finally:
            scale.column_mean = original
    assert len(seen) == 2  # the copy and the weighted fit summed their columns; X did not
    assert known.means_.dtype == dtype
    for model in (known, other):
        np.testing.assert_array_equal(model.means_, checked.means_)
        np.testing.assert_array_equal(model.covariances_, checked.covariances_)
        assert model.lower_bound_ == checked.lower_bound_
    np.testing.assert_allclose(weighted.means_, checked.means_, rtol=1e-10)
    with pytest.raises(ValueError, match="n_components"), scale.known_rows(X):
        GaussianMixture(X.shape[0] + 1).fit(X)
