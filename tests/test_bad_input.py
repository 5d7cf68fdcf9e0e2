"""Bad input: one table of cases. Each names the call, the exception type and a
message fragment that names the problem. After every failed call on a fitted
model, that model must still predict bit-for-bit as before."""

from __future__ import annotations

import io
import itertools
import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.lib import format as npy_format
from sklearn.exceptions import NotFittedError

from gmm import GaussianMixture, GaussianMixtureIC, ModelFileError, load, save, sweep
from gmm.checkpoint import CheckpointError
from gmm.cli import main
from gmm.writing import OutputPathError

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


# ============================================================ more prediction
# Each extra input goes through every prediction method, on the fitted model.
MORE_PREDICT_CASES = [
    (f"{method} {name}", method, X, exc, match)
    for method in ("predict", "predict_proba", "score_samples", "score", "aic", "bic", "icl")
    for name, X, exc, match in [
        ("inf", X_INF, ValueError, "infinity"),
        ("3d", X_GOOD[None], ValueError, "dim 3"),
        ("empty", np.empty((0, 2)), ValueError, "0 sample"),
        ("complex", X_GOOD + 1j, ValueError, "[Cc]omplex"),
        ("strings", np.array([["a", "b"]] * 3), ValueError, "could not convert|dtype"),
    ]
]


@pytest.mark.parametrize("case", MORE_PREDICT_CASES, ids=[c[0] for c in MORE_PREDICT_CASES])
def test_more_bad_predict_input(fitted, case):
    _, method, X, exc, match = case
    with pytest.raises(exc, match=match):
        getattr(fitted, method)(X)


def test_predict_with_other_column_names_is_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_GOOD, columns=["a", "b"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    before = model.predict_proba(frame)
    for method in ("predict", "predict_proba", "score_samples"):
        with pytest.raises(ValueError, match="feature names should match"):
            getattr(model, method)(pd.DataFrame(X_GOOD, columns=["x", "y"]))
    np.testing.assert_array_equal(model.predict_proba(frame), before)


# ================================================================== sample
SAMPLE_CASES = [
    ("sample zero", lambda m: m.sample(0), ValueError, "n_samples must be an integer >= 1"),
    ("sample negative", lambda m: m.sample(-3), ValueError, "n_samples must be an integer >= 1"),
    ("sample float", lambda m: m.sample(2.0), ValueError, "n_samples must be an integer >= 1"),
    ("sample bool", lambda m: m.sample(True), ValueError, "n_samples must be an integer >= 1"),
    ("sample string", lambda m: m.sample("3"), ValueError, "n_samples must be an integer >= 1"),
    ("sample None", lambda m: m.sample(None), ValueError, "n_samples must be an integer >= 1"),
    (
        "sample bad random_state",
        lambda m: m.sample(3, random_state="seed"),
        ValueError,
        "cannot be used to seed",
    ),
]


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=[c[0] for c in SAMPLE_CASES])
def test_bad_sample_call(fitted, case):
    _, call, exc, match = case
    draws = fitted.sample(5, random_state=1)
    with pytest.raises(exc, match=match):
        call(fitted)
    for after, before in zip(fitted.sample(5, random_state=1), draws, strict=True):
        np.testing.assert_array_equal(after, before)


# =================================================================== sweep
def sweep_call(X=X_GOOD, **kwargs):
    return lambda tmp_path: sweep(X, **{"n_components": [1, 2], "progress": False, **kwargs})


# (id, call(tmp_path), exception, message regex); test_selection.py holds others.
SWEEP_CASES = [
    ("sweep nan", sweep_call(X_NAN), ValueError, "NaN"),
    ("sweep inf", sweep_call(X_INF), ValueError, "infinity"),
    ("sweep 1d", sweep_call(X_GOOD[:, 0]), ValueError, "Expected 2D array"),
    ("sweep one sample", sweep_call(X_GOOD[:1]), ValueError, "minimum of 2"),
    ("sweep sparse", sweep_call(sp.csr_matrix(X_GOOD)), TypeError, "[Ss]parse"),
    ("sweep criterion", sweep_call(criterion="BIC"), ValueError, "Unknown criterion 'BIC'"),
    ("sweep K bool", sweep_call(n_components=True), TypeError, "int or an iterable of ints"),
    ("sweep K text", sweep_call(n_components=["2"]), TypeError, "must hold integers"),
    ("sweep no types", sweep_call(covariance_types=[]), ValueError, "No covariance type"),
    ("sweep types int", sweep_call(covariance_types=5), TypeError, "covariance_type must be"),
    ("sweep max_iter", sweep_call(max_iter=-1), ValueError, "max_iter must be >= 0"),
    ("sweep n_init", sweep_call(n_init=0), ValueError, "n_init must be >= 1"),
    ("sweep reg_covar nan", sweep_call(reg_covar=float("nan")), ValueError, "reg_covar must be"),
    ("sweep n_jobs", sweep_call(n_jobs="two"), ValueError, "n_jobs must be"),
    (
        "sweep weight length",
        sweep_call(sample_weight=np.ones(3)),
        ValueError,
        r"sample_weight has shape \(3,\), expected \(80,\)",
    ),
    (
        "sweep weight negative",
        sweep_call(sample_weight=-np.ones(80)),
        ValueError,
        "negative",
    ),
    (
        "sweep K above the rows",
        sweep_call(n_components=[100]),
        ValueError,
        "goes up to 100, but the data have 80 rows.*largest K the data allow is 80",
    ),
    (
        "sweep K 10**12 (a range, never listed)",
        sweep_call(n_components=range(1, 10**12 + 1)),
        ValueError,
        "goes up to 1000000000000, but the data have 80 rows.*allow is 80",
    ),
    (
        "sweep K above the weighted rows",
        sweep_call(n_components=[1, 3], sample_weight=np.r_[1.0, 1.0, np.zeros(78)]),
        ValueError,
        "goes up to 3, but the data have 2 rows with positive weight.*allow is 2",
    ),
    (
        "sweep K from an endless iterator",
        sweep_call(n_components=itertools.cycle([1, 2])),
        ValueError,
        "more than 1,000,000 values",
    ),
    (
        "sweep checkpoint is a folder",
        lambda tmp_path: sweep(X_GOOD, [1], checkpoint=tmp_path, progress=False),
        OutputPathError,
        "is a folder, not a file",
    ),
    (
        "sweep checkpoint of other data",
        lambda tmp_path: sweep(
            X_GOOD + 1, [1], checkpoint=tmp_path / "other.jsonl", progress=False
        ),
        CheckpointError,
        "written for different data",
    ),
]


@pytest.mark.filterwarnings("ignore:4 of 4 fits failed:UserWarning")
@pytest.mark.parametrize("case", SWEEP_CASES, ids=[c[0] for c in SWEEP_CASES])
def test_bad_sweep_call(tmp_path, case):
    _, call, exc, match = case
    # A checkpoint written for X_GOOD; a refused call must leave it byte for byte.
    sweep(X_GOOD, [1], "diag", checkpoint=tmp_path / "other.jsonl", progress=False)
    before = (tmp_path / "other.jsonl").read_bytes()
    with pytest.raises(exc, match=match):
        call(tmp_path)
    assert (tmp_path / "other.jsonl").read_bytes() == before


# ===================================================== GaussianMixtureIC
@pytest.fixture
def fitted_ic():
    model = GaussianMixtureIC([1, 2], covariance_type=("full", "diag"), random_state=0)
    model.fit(X_GOOD)
    before = (model.predict_proba(X_GOOD), model.score_samples(X_GOOD))
    yield model
    np.testing.assert_array_equal(model.predict_proba(X_GOOD), before[0])
    np.testing.assert_array_equal(model.score_samples(X_GOOD), before[1])


X_THREE = np.random.default_rng(1).normal(size=(50, 3))

IC_CASES = [
    ("ic criterion", dict(criterion="aicc"), X_THREE, ValueError, "Unknown criterion"),
    ("ic no K", dict(n_components=[]), X_THREE, ValueError, "n_components is empty"),
    ("ic tol", dict(tol=-1.0), X_THREE, ValueError, "tol must be"),
    ("ic nan", {}, np.r_[X_THREE, [[np.nan] * 3]], ValueError, "NaN"),
    ("ic K too large", dict(n_components=[60]), X_THREE, ValueError, "allow is 50"),
    (
        "ic K 10**12",
        dict(n_components=range(1, 10**12)),
        X_THREE,
        ValueError,
        "goes up to 999999999999, but the data have 50 rows",
    ),
    ("ic checkpoint folder", dict(checkpoint="."), X_THREE, OutputPathError, "is a folder"),
]


@pytest.mark.filterwarnings("ignore:2 of 2 fits failed:UserWarning")
@pytest.mark.parametrize("case", IC_CASES, ids=[c[0] for c in IC_CASES])
def test_bad_ic_fit_keeps_the_fitted_selection(fitted_ic, case):
    _, params, X, exc, match = case
    saved = fitted_ic.get_params()
    fitted_ic.set_params(**params)
    with pytest.raises(exc, match=match):
        fitted_ic.fit(X)
    fitted_ic.set_params(**saved)
    assert fitted_ic.n_features_in_ == 2


def test_bad_ic_predict_and_sample(fitted_ic):
    with pytest.raises(ValueError, match="2 features"):
        fitted_ic.predict(X_THREE)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        fitted_ic.sample(0)
    with pytest.raises(NotFittedError):
        GaussianMixtureIC([1, 2]).predict(X_GOOD)


def test_keyboard_interrupt_during_ic_fit_keeps_the_fitted_selection(fitted_ic, monkeypatch):
    from gmm.selection import search as selection

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(selection, "fit_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fitted_ic.fit(X_THREE)
    monkeypatch.undo()
    assert fitted_ic.n_features_in_ == 2


def test_keyboard_interrupt_during_sweep_keeps_finished_fits(tmp_path, monkeypatch):
    """An interrupted sweep keeps every finished fit in its checkpoint; the rerun
    fits only the rest and gives the uninterrupted table. (A SIGKILL is tested in
    test_checkpoint.py::test_sweep_killed_with_sigkill_resumes_to_the_same_table.)"""
    from gmm.selection import search as selection

    path = tmp_path / "sweep.jsonl"
    real = selection.fit_point
    calls = []

    def interrupted_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[2:4])  # fit_point(X, w, k, covariance_type, params)
        return real(*args, **kwargs)

    monkeypatch.setattr(selection, "fit_point", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        sweep(X_GOOD, [1, 2, 3], "diag", checkpoint=path, progress=False)
    monkeypatch.undo()
    assert len(path.read_text().splitlines()) == 1 + 2  # header and the two finished fits

    refitted = []

    def counting(*args, **kwargs):
        refitted.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(selection, "fit_point", counting)
    resumed = sweep(X_GOOD, [1, 2, 3], "diag", checkpoint=path, progress=False)
    monkeypatch.undo()
    missing = {(k, "diag") for k in (1, 2, 3)} - set(calls)
    # Only the unfinished point is fitted, then the best model if its row was read.
    assert set(refitted[: len(missing)]) == missing
    best = (resumed.best_params_["n_components"], "diag")
    assert refitted[len(missing) :] in ([], [best])
    direct = sweep(X_GOOD, [1, 2, 3], "diag", progress=False)
    drop = ("fit_seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.table] == [
        {k: v for k, v in r.items() if k not in drop} for r in direct.table
    ]


# ==================================================================== load
def _saved(tmp_path):
    path = tmp_path / "model.npz"
    save(GaussianMixture(2, random_state=0).fit(X_GOOD), path)
    return path


def _flip_bit_in(tmp_path, needle: bytes):
    """A saved model with one bit flipped inside the stored bytes of ``needle``."""
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(needle) + 2] ^= 0x04
    path.write_bytes(bytes(data))
    return path


def _truncated(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _archive(tmp_path, members: dict):
    """A zip of .npy members written with numpy directly, not with gmm.save."""
    path = tmp_path / "made.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in members.items():
            with archive.open(name, "w") as file:
                npy_format.write_array(file, np.asarray(array))
    return path


def _metadata(value) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def _write(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _flip_weights(tmp_path):
    """A saved model with one bit of its stored weights_ flipped (the CRC no longer fits)."""
    model = GaussianMixture(2, random_state=0).fit(X_GOOD)
    path = tmp_path / "model.npz"
    save(model, path)
    data = bytearray(path.read_bytes())
    data[data.index(model.weights_.tobytes())] ^= 0x01
    path.write_bytes(bytes(data))
    return path


# (id, make(tmp_path) -> path, exception, message regex)
LOAD_CASES = [
    ("load missing file", lambda t: t / "none.npz", FileNotFoundError, "No such file"),
    ("load folder", lambda t: t, IsADirectoryError, "Is a directory"),
    ("load None", lambda t: None, TypeError, "PathLike"),
    ("load empty file", lambda t: _write(t, "e.npz", b""), ModelFileError, "not a .npz archive"),
    (
        "load text file",
        lambda t: _write(t, "t.npz", b"weights: 0.5, 0.5\n"),
        ModelFileError,
        "not a .npz archive",
    ),
    (
        "load a .npy file",
        lambda t: _write(t, "a.npz", _npy_bytes(np.ones(3))),
        ModelFileError,
        "not a .npz archive",
    ),
    ("load truncated", _truncated, ModelFileError, "not a .npz archive"),
    (
        "load bit flip in metadata",
        lambda t: _flip_bit_in(t, b'"format"'),
        ModelFileError,
        "damaged",
    ),
    ("load bit flip in weights", _flip_weights, ModelFileError, "damaged"),
    (
        "load metadata not an object",
        lambda t: _archive(t, {"metadata.npy": _metadata([1, 2])}),
        ModelFileError,
        "metadata is not a JSON object",
    ),
    (
        "load metadata not uint8",
        lambda t: _archive(t, {"metadata.npy": np.zeros(3)}),
        ModelFileError,
        "metadata must be a 1-D uint8 array",
    ),
    (
        "load version as text",
        lambda t: _archive(
            t, {"metadata.npy": _metadata({"format": "gmm-model", "format_version": "1"})}
        ),
        ModelFileError,
        "format_version must be a positive integer",
    ),
    (
        "load names past U+10FFFF",
        lambda t: _names_replaced(t, [0x110000, 0x62]),
        ModelFileError,
        "not valid Unicode",
    ),
    (
        "load names with a surrogate",
        lambda t: _names_replaced(t, [0xDC80, 0x62]),
        ModelFileError,
        "not valid Unicode",
    ),
    (
        "load selection missing",
        lambda t: _selection_removed(t),
        ModelFileError,
        "no 'selection' section",
    ),
    (
        "load params without covariance_type",
        lambda t: _params_without(t, "covariance_type"),
        ModelFileError,
        "params say covariance_type=None",
    ),
    (
        "load params without n_components",
        lambda t: _params_without(t, "n_components"),
        ModelFileError,
        "params say n_components=None",
    ),
    ("load member name not UTF-8", lambda t: _bad_local_name(t), ModelFileError, "damaged"),
    (
        "load covariances not the precisions' inverse",
        lambda t: _member_scaled(t, "model.covariances_", 4.0),
        ModelFileError,
        "covariances_ is not the inverse of precisions_",
    ),
]


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _names_replaced(tmp_path, code_points):
    """A model fitted on named columns whose stored names hold ``code_points``."""
    pd = pytest.importorskip("pandas")
    path = tmp_path / "named.npz"
    save(GaussianMixture(2, random_state=0).fit(pd.DataFrame(X_GOOD, columns=["a", "b"])), path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    names = np.frombuffer(np.array(code_points, dtype="<u4").tobytes(), dtype="<U1")
    members["model.feature_names_in_.npy"] = _npy_bytes(names)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _params_without(tmp_path, name):
    """A 'diag' model whose stored constructor parameters lack ``name``."""
    path = tmp_path / "diag.npz"
    save(GaussianMixture(2, covariance_type="diag", random_state=0).fit(X_GOOD), path)
    with zipfile.ZipFile(path) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    metadata = json.loads(npy_format.read_array(io.BytesIO(members["metadata.npy"])).tobytes())
    del metadata["model"]["params"][name]
    members["metadata.npy"] = _npy_bytes(_metadata(metadata))
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _member_scaled(tmp_path, name, factor):
    """A saved model whose member ``name`` is multiplied by ``factor``."""
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    values = npy_format.read_array(io.BytesIO(members[f"{name}.npy"]))
    members[f"{name}.npy"] = _npy_bytes(values * factor)
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _bad_local_name(tmp_path):
    """A model file whose first member's local header claims a UTF-8 name that is not."""
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    start = data.index(b"PK\x03\x04")
    data[start + 7] |= 0x08  # general purpose flag bit 11: the name is UTF-8
    data[start + 30] = 0xC7  # a lead byte followed by ASCII: invalid UTF-8
    path.write_bytes(bytes(data))
    return path


def _selection_removed(tmp_path):
    path = tmp_path / "ic.npz"
    save(GaussianMixtureIC([1, 2], covariance_type="diag", random_state=0).fit(X_GOOD), path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = npy_format.read_array(io.BytesIO(members["metadata.npy"]))
    content = json.loads(metadata.tobytes())
    del content["selection"]
    members["metadata.npy"] = _npy_bytes(_metadata(content))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("case", LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_bad_model_file_is_refused(tmp_path, case):
    _, make, exc, match = case
    with pytest.raises(exc, match=match):
        load(make(tmp_path))


# ================================================================= the CLI
def _cli_files(tmp_path):
    np.savetxt(tmp_path / "data.csv", X_GOOD, delimiter=",", header="a,b", comments="")
    (tmp_path / "one_row.csv").write_text("a,b\n1,2\n")
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "long_field.csv").write_text("a,b\n" + "1" * 200_000 + ",2\n")
    np.save(tmp_path / "flat.npy", np.arange(6.0))
    huge = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    npy_format.write_array_header_2_0(huge, header)
    (tmp_path / "huge.npy").write_bytes(huge.getvalue() + bytes(16))
    (tmp_path / "folder").mkdir()
    save(GaussianMixture(2, random_state=0).fit(X_GOOD), tmp_path / "model.npz")
    data = bytearray((tmp_path / "model.npz").read_bytes())
    data[data.index(b'"format"') + 2] ^= 0x04
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    sweep(X_GOOD + 1, [1], "diag", checkpoint=tmp_path / "other.jsonl", progress=False)


# (id, argv, exit status, message fragment)
CLI_CASES = [
    ("cli unknown command", ["train", "data.csv"], 2, "invalid choice: 'train'"),
    ("cli K zero", ["fit", "data.csv", "--k", "0"], 2, "expected a positive integer"),
    ("cli K text", ["sweep", "data.csv", "--k", "many"], 2, "expected K like 5"),
    ("cli criterion", ["sweep", "data.csv", "--criterion", "aicc"], 2, "invalid choice: 'aicc'"),
    ("cli max_iter", ["fit", "data.csv", "--k", "2", "--max-iter", "-1"], 2, "from 0 to"),
    ("cli tol nan", ["fit", "data.csv", "--k", "2", "--tol", "nan"], 1, "tol must be a finite"),
    ("cli reg_covar", ["fit", "data.csv", "--k", "2", "--reg-covar", "-1"], 1, "reg_covar must"),
    ("cli jobs", ["sweep", "data.csv", "--k", "1:2", "--jobs", "0"], 2, r"-1 \(every core\)"),
    # Sizes without bounds (issue 17, class 7): each one line, before any fit.
    (
        "cli K 10**12",
        ["sweep", "data.csv", "--k", "1:1000000000000", "--out", "new.npz"],
        1,
        "--k goes up to 1000000000000, but the data have 80 rows.*largest K the data allow is 80",
    ),
    ("cli K above rows", ["sweep", "data.csv", "--k", "2,81"], 1, "largest K the data allow is 80"),
    ("cli jobs huge", ["sweep", "data.csv", "--jobs", "1000000"], 2, r"-1 \(every core\)"),
    ("cli seed negative", ["fit", "data.csv", "--k", "2", "--seed", "-1"], 2, r"0 to 2\*\*32"),
    ("cli seed 2**64", ["sample", "model.npz", "--seed", str(2**64)], 2, r"0 to 2\*\*32"),
    ("cli n_init 10**9", ["fit", "data.csv", "--k", "2", "--n-init", str(10**9)], 2, "1 to 10000"),
    ("cli max_iter 10**30", ["sweep", "data.csv", "--max-iter", str(10**30)], 2, "from 0 to"),
    ("cli n 2**63", ["sample", "model.npz", "-n", str(2**63)], 1, "-n 9223372036854775808 needs"),
    # Outputs checked before the first fit (issue 17, classes 1 and 4).
    (
        "cli plot format",
        ["sweep", "data.csv", "--plot", "bic.xyz"],
        1,
        "ends in .xyz, which is not",
    ),
    ("cli plot no extension", ["sweep", "data.csv", "--plot", "bic"], 1, "has no extension"),
    (
        "cli table folder missing",
        ["sweep", "data.csv", "--out", "keep.npz", "--table", "missing/t.csv"],
        1,
        "--table: cannot write 'missing/t.csv': the folder .* does not exist",
    ),
    ("cli out is a folder", ["fit", "data.csv", "--k", "2", "--out", "folder"], 1, "is a folder"),
    (
        "cli out is DATA",
        ["fit", "data.csv", "--k", "2", "--out", "data.csv"],
        1,
        "is the DATA file",
    ),
    (
        "cli two outputs one file",
        ["sweep", "data.csv", "--out", "model.npz", "--table", "./model.npz"],
        1,
        "--out and --table name the same file",
    ),
    (
        "cli checkpoint is a folder",
        ["sweep", "data.csv", "--checkpoint", "folder"],
        1,
        "--checkpoint: cannot write 'folder': it is a folder",
    ),
    ("cli one row", ["fit", "one_row.csv", "--k", "1"], 1, "minimum of 2"),
    ("cli n zero", ["sample", "model.npz", "-n", "0"], 2, "expected a positive integer"),
    ("cli missing model", ["sample", "none.npz"], 1, "no such file: 'none.npz'"),
    ("cli flipped model", ["predict", "flipped.npz", "data.csv"], 1, "damaged"),
    ("cli model is data", ["info", "data.csv"], 1, "not a gmm model file"),
    ("cli data folder", ["predict", "model.npz", "folder"], 1, "is a folder"),
    ("cli binary data", ["predict", "model.npz", "garbage.csv"], 1, "not a UTF-8 text file"),
    ("cli long field", ["score", "model.npz", "long_field.csv"], 1, "long_field.csv: .*field"),
    ("cli 1-D npy", ["score", "model.npz", "flat.npy"], 1, "expected a 2-D array"),
    ("cli huge npy", ["fit", "huge.npy", "--k", "1"], 1, r"huge.npy: .*declares shape"),
    (
        "cli checkpoint of other data",
        ["sweep", "data.csv", "--k", "1", "--covariance", "diag", "--checkpoint", "other.jsonl"],
        1,
        "written for different data",
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_command_line(tmp_path, monkeypatch, capsys, case):
    import re

    _, argv, status, match = case
    _cli_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    assert code == status and out == ""
    assert err.startswith("gmm: error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err
    # Nothing on disk changed: no model or checkpoint lost, no file left behind.
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


# ================================================================== faults
# Also elsewhere: a sweep killed with SIGKILL resumes with nothing lost
# (test_checkpoint.py::test_sweep_killed_with_sigkill_resumes_to_the_same_table),
# and a save interrupted by KeyboardInterrupt or a failed rename leaves the
# previous file (test_persistence.py::test_interrupted_save_leaves_the_previous_file).
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_save_killed_with_sigkill_leaves_a_whole_file(tmp_path):
    """A process killed mid-save leaves the old or the new model, never a torn file."""
    import os
    import signal
    import time

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 12))
    models = [
        GaussianMixture(k, max_iter=2, init_params="random_from_data", random_state=0).fit(X)
        for k in (20, 21)
    ]
    target = tmp_path / "model.npz"
    save(models[0], target)
    for delay in (0.01, 0.05, 0.13):
        pid = os.fork()  # the child has gmm imported already: no interpreter start-up
        if pid == 0:
            try:
                i = 1
                while True:
                    save(models[i % 2], target)
                    i += 1
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        loaded = load(target)
        original = models[loaded.n_components - 20]
        np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
