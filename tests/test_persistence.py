"""gmm.save and gmm.load: exact round trips, atomic writes, tampered files refused.

Tampered files are made by rewriting a saved file's members with zipfile and
numpy.lib.format directly, so the tests do not go through the code under test.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import stat
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib import format as npy_format
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

from gmm import (
    BayesianGaussianMixture,
    GaussianMixture,
    GaussianMixtureIC,
    ModelFileError,
    load,
    save,
)

TYPES = ("spherical", "diag", "full", "tied")
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(240, centers=3, n_features=3, random_state=3)
    return X


@pytest.fixture(scope="module")
def models(X):
    return {
        (c, dtype): GaussianMixture(3, covariance_type=c, random_state=0).fit(X.astype(dtype))
        for c in TYPES
        for dtype in (np.float32, np.float64)
    }


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_round_trip_is_exact(tmp_path, X, models, covariance_type, dtype):
    model = models[covariance_type, dtype]
    path = tmp_path / "model.npz"
    save(model, path)
    loaded = load(path)
    data = X.astype(dtype)
    assert type(loaded) is GaussianMixture
    assert loaded.get_params() == model.get_params()
    for name in ATTRIBUTES:
        saved, read = getattr(model, name), getattr(loaded, name)
        assert read.dtype == saved.dtype and np.array_equal(read, saved)
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert (loaded.n_iter_, loaded.converged_, loaded.lower_bound_) == (
        model.n_iter_,
        model.converged_,
        model.lower_bound_,
    )
    assert np.array_equal(loaded.predict(data), model.predict(data))
    assert np.array_equal(loaded.predict_proba(data), model.predict_proba(data))
    assert np.array_equal(loaded.score_samples(data), model.score_samples(data))
    for a, b in zip(
        loaded.sample(50, random_state=1), model.sample(50, random_state=1), strict=True
    ):
        assert np.array_equal(a, b)


def test_feature_names_and_array_parameters_survive(tmp_path, X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    means_init = X[:3].copy()
    model = GaussianMixture(3, means_init=means_init, random_state=np.random.RandomState(0))
    model.fit(frame)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    assert np.array_equal(loaded.means_init, means_init)
    # A RandomState comes back in the state it had: both draw the same numbers.
    assert loaded.random_state is not model.random_state
    assert loaded.random_state.randint(2**31, size=5).tolist() == (
        model.random_state.randint(2**31, size=5).tolist()
    )
    assert np.array_equal(loaded.predict(frame), model.predict(frame))


def test_gaussian_mixture_ic_round_trip(tmp_path, X):
    model = GaussianMixtureIC(range(1, 5), covariance_type=("full", "diag"), random_state=0)
    model.fit(X)
    save(model, tmp_path / "ic.npz")
    loaded = load(tmp_path / "ic.npz")
    assert type(loaded) is GaussianMixtureIC
    assert loaded.n_components == range(1, 5)
    assert loaded.covariance_type == ("full", "diag")
    assert loaded.table_.to_records() == model.table_.to_records()
    assert (loaded.n_components_, loaded.covariance_type_) == (
        model.n_components_,
        model.covariance_type_,
    )
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.sweep_result_.best_score_ == model.sweep_result_.best_score_


def test_pickle_still_works(X, models):
    model = models["full", np.float64]
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.predict_proba(X), model.predict_proba(X))


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="GaussianMixture and GaussianMixtureIC"):
        save(object(), tmp_path / "x.npz")
    with pytest.raises(NotFittedError):
        save(GaussianMixture(2), tmp_path / "x.npz")
    assert not os.listdir(tmp_path)


# -------------------------------------------------------------------- atomic
def test_interrupted_save_leaves_the_previous_file(tmp_path, X, models, monkeypatch):
    path = tmp_path / "model.npz"
    old = models["diag", np.float64]
    save(old, path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(npy_format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(models["full", np.float64], path)
    monkeypatch.undo()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError))
    with pytest.raises(OSError):
        save(models["full", np.float64], path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    assert np.array_equal(load(path).predict_proba(X), old.predict_proba(X))


def test_saved_file_has_the_usual_mode(tmp_path, models):
    # The temporary file is private (0o600) until it is renamed; the result must not be.
    path = tmp_path / "model.npz"
    umask = os.umask(0o022)
    os.umask(umask)
    save(models["diag", np.float64], path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    save(models["full", np.float64], path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


# ----------------------------------------------------------------- tampering
def read_members(path):
    with zipfile.ZipFile(path) as archive:
        members = {}
        for name in archive.namelist():
            with archive.open(name) as file:
                members[name[: -len(".npy")]] = npy_format.read_array(file)
    return json.loads(members.pop("metadata").tobytes()), members


def write_members(path, metadata, members, raw=(), compression=zipfile.ZIP_STORED):
    """A model file of ``members``; ``metadata`` a dict, or JSON text written as it is."""
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    payload = np.frombuffer(text.encode(), dtype=np.uint8)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, array in {"metadata": payload, **members}.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as file:
                npy_format.write_array(file, np.asanyarray(array), allow_pickle=True)
        for name, data in raw:
            archive.writestr(name, data)


def huge_npy(shape, descr="<f8"):
    """A .npy member that declares ``shape`` but holds 16 bytes of data."""
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    npy_format.write_array_header_2_0(buffer, header)
    return buffer.getvalue() + bytes(16)


def _scale(members, name, factor):
    members[name] = members[name] * factor


def _set(members, name, index, value):
    array = members[name].copy()
    array[index] = value
    members[name] = array


TAMPERING = {
    "wrong shape": (
        lambda m, a: a.__setitem__("model.means_", a["model.means_"][:, :2]),
        "means_ has shape",
    ),
    "NaN": (lambda m, a: _set(a, "model.means_", (0, 0), np.nan), "means_ contains NaN"),
    "non-PD precision": (
        lambda m, a: _set(a, "model.precisions_", 0, -a["model.precisions_"][0]),
        "precisions_ is not symmetric positive definite",
    ),
    "asymmetric precision": (
        lambda m, a: _set(a, "model.precisions_", (1, 0, 2), a["model.precisions_"][1, 0, 2] + 1),
        "precisions_ is not symmetric positive definite",
    ),
    "non-PD covariance": (
        lambda m, a: _set(a, "model.covariances_", (2, 1, 1), -1.0),
        "covariances_ is not symmetric positive definite",
    ),
    "weights not summing to 1": (
        lambda m, a: _scale(a, "model.weights_", 0.9),
        "weights_ sum to",
    ),
    "negative weight": (
        lambda m, a: _set(a, "model.weights_", 0, -0.1),
        r"weights_ must lie in \[0, 1\]",
    ),
    "Cholesky factor disagrees": (
        lambda m, a: _scale(a, "model.precisions_cholesky_", 1.5),
        "does not agree with precisions_",
    ),
    "Cholesky factor not triangular": (
        lambda m, a: _set(a, "model.precisions_cholesky_", (0, 2, 0), 0.25),
        "upper triangular",
    ),
    "object array": (
        lambda m, a: a.__setitem__("model.means_", np.array([[1, "x"]], dtype=object)),
        "holds Python objects",
    ),
    "wrong dtype": (
        lambda m, a: a.__setitem__("model.means_", a["model.means_"].astype(np.float32)),
        "means_ has dtype float32, expected float64",
    ),
    "format version from the future": (
        lambda m, a: m.__setitem__("format_version", 2),
        "format version 2 .* reads versions up to 1",
    ),
    "other format": (lambda m, a: m.__setitem__("format", "sklearn"), "not a gmm model file"),
    "unknown class": (
        lambda m, a: m.__setitem__("class", "os.system"),
        "unknown model class 'os.system'",
    ),
    "unknown covariance type": (
        lambda m, a: m["model"].__setitem__("covariance_type", "round"),
        "Unknown covariance_type 'round'",
    ),
    "unknown parameter": (
        lambda m, a: m["model"]["params"].__setitem__("__reduce__", 1),
        "unknown GaussianMixture parameter",
    ),
    "invalid parameter": (
        lambda m, a: m["model"]["params"].__setitem__("n_init", "many"),
        "invalid constructor parameter",
    ),
    "undecodable parameter": (
        lambda m, a: m["model"]["params"].__setitem__("tol", {"callable": "os.system"}),
        "cannot be decoded",
    ),
    "params disagree with the arrays": (
        lambda m, a: m["model"]["params"].__setitem__("covariance_type", "diag"),
        "params say covariance_type='diag', the fitted arrays are 'full'",
    ),
    "params lack n_components": (
        lambda m, a: m["model"]["params"].pop("n_components"),
        "params say n_components=None",
    ),
    "missing member": (lambda m, a: a.pop("model.covariances_"), "covariances_.npy is missing"),
    "extra member": (
        lambda m, a: a.__setitem__("payload", np.zeros(3)),
        r"unexpected member\(s\) payload.npy",
    ),
    "n_iter_ and lower_bounds_ disagree": (
        lambda m, a: m["model"].__setitem__("n_iter_", m["model"]["n_iter_"] + 1),
        "lower_bounds_ has shape",
    ),
    "lower_bound_ NaN": (
        lambda m, a: m["model"].__setitem__("lower_bound_", float("nan")),
        "lower_bound_ is nan, not a number below",
    ),
}


def assert_refused_once_edited(path, model, edit, match):
    """Save ``model``, rewrite its file with ``edit(metadata, members) -> (metadata,
    members)``, and check that load refuses it with ``match``."""
    save(model, path)
    write_members(path, *edit(*read_members(path)))
    with pytest.raises(ModelFileError, match=match):
        load(path)


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_file_is_refused(tmp_path, models, case):
    change, match = TAMPERING[case]

    def edit(metadata, members):
        change(metadata, members)
        return metadata, members

    assert_refused_once_edited(tmp_path / "model.npz", models["full", np.float64], edit, match)


@pytest.mark.parametrize("consistent_metadata", [False, True])
def test_huge_declared_shape_is_refused_before_allocation(tmp_path, models, consistent_metadata):
    path = tmp_path / "model.npz"
    save(models["diag", np.float64], path)
    metadata, members = read_members(path)
    huge = 10**12
    if consistent_metadata:
        metadata["model"]["n_components"] = huge
        metadata["model"]["params"]["n_components"] = huge
    del members["model.weights_"]
    write_members(path, metadata, members, raw=[("model.weights_.npy", huge_npy((huge,)))])
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"declares shape \(1000000000000,\)"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_other_files_are_refused(tmp_path, models):
    model = models["tied", np.float64]
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(model))
    with pytest.raises(ModelFileError, match=r"not a \.npz archive"):
        load(pickled)

    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=model.weights_)
    with pytest.raises(ModelFileError, match=r"metadata\.npy is missing"):
        load(plain)

    path = tmp_path / "model.npz"
    save(model, path)
    metadata, members = read_members(path)
    compressed = tmp_path / "compressed.npz"
    write_members(compressed, metadata, members, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFileError, match="compressed"):
        load(compressed)

    not_npy = tmp_path / "script.npz"
    write_members(not_npy, metadata, members, raw=[("run.py", b"import os")])
    with pytest.raises(ModelFileError, match=r"unexpected member 'run\.py'"):
        load(not_npy)

    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["metadata.npy"] = entries["metadata.npy"][:128] + b"\xff{" * 8
    garbled = tmp_path / "garbled.npz"
    with zipfile.ZipFile(garbled, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="metadata"):
        load(garbled)

    deep = tmp_path / "deep.npz"
    payload = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8)
    with zipfile.ZipFile(deep, "w") as archive, archive.open("metadata.npy", "w") as file:
        npy_format.write_array(file, payload)
    with pytest.raises(ModelFileError, match="nests lists or objects more than 32 deep"):
        load(deep)

    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_tampered_selection_table_is_refused(tmp_path, X):
    model = GaussianMixtureIC([1, 2, 3], covariance_type="full", random_state=0).fit(X)
    path = tmp_path / "ic.npz"
    save(model, path)
    metadata, members = read_members(path)
    best = model.sweep_result_.best_index_
    metadata["selection"]["table"][best]["bic"] = 1e300  # another row becomes "best"
    write_members(path, metadata, members)
    with pytest.raises(ModelFileError, match=r"best row .* is not the stored model"):
        load(path)
    metadata["selection"]["table"][0]["bic"] = "low"
    write_members(path, metadata, members)
    with pytest.raises(ModelFileError, match="row 0 of the sweep table is malformed"):
        load(path)


# ------------------------------------------------------------ online streams
def test_mid_stream_model_keeps_its_running_statistics_and_family_state(tmp_path, X):
    """A family whose M-step carries an array state: it is stored, and the stream continues."""
    from gmm.covariance import register, unregister
    from gmm.covariance.diag import Diag

    class CountingDiag(Diag):
        name = "counting_diag"

        def estimate(self, scatter, reg_covar, previous):
            covariances, _ = super().estimate(scatter, reg_covar, previous)
            count = 0.0 if previous is None or previous.state is None else previous.state[0]
            return covariances, np.array([count + 1.0])

    register(CountingDiag())
    try:
        batches = np.array_split(X, 6)
        model = GaussianMixture(3, covariance_type="counting_diag", random_state=0)
        for batch in batches[:3]:
            model.partial_fit(batch)
        save(model, tmp_path / "m.npz")
        loaded = load(tmp_path / "m.npz")
        assert np.array_equal(loaded._family_state, [4.0])  # the initial M-step and 3 updates
        for batch in batches[3:]:
            model.partial_fit(batch)
            loaded.partial_fit(batch)
        assert np.array_equal(loaded._family_state, model._family_state)
        assert np.array_equal(loaded.covariances_, model.covariances_)
        with zipfile.ZipFile(tmp_path / "m.npz") as archive:
            names = set(archive.namelist())
        assert {"model.online.nk.npy", "model.family_state.npy"} <= names
    finally:
        unregister("counting_diag")


@pytest.mark.parametrize("covariance_type", ["VEI", "VEE", "EVE", "VVE", "VEV"])
def test_iterative_mclust_models_continue_after_load_bit_for_bit(tmp_path, X, covariance_type):
    """Their M-steps keep a dict warm start (volumes; orientation and objective):
    it is stored, so a stream or a warm-started fit goes on as if never saved."""
    rng = np.random.default_rng(0)
    batches = np.array_split(X[rng.permutation(len(X))], 6)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    for batch in batches[:3]:
        model.partial_fit(batch)
    assert isinstance(model._family_state, dict)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    for batch in batches[3:]:
        model.partial_fit(batch)
        loaded.partial_fit(batch)
    assert np.array_equal(loaded.covariances_, model.covariances_)
    assert loaded.lower_bound_ == model.lower_bound_
    warm = GaussianMixture(2, covariance_type=covariance_type, random_state=0, warm_start=True)
    warm.set_params(max_iter=2).fit(X)
    save(warm, tmp_path / "w.npz")
    again = load(tmp_path / "w.npz")
    warm.fit(X)
    again.fit(X)
    assert np.array_equal(again.covariances_, warm.covariances_)


def test_a_tampered_family_state_is_refused(tmp_path, X):
    model = GaussianMixture(2, covariance_type="EVE", random_state=0).fit(X)
    path = tmp_path / "m.npz"

    def wrong_shape(metadata, members):
        members["model.family_state.orientation"] = np.eye(2)
        return metadata, members

    def unknown_key(metadata, members):
        metadata["model"]["family_state"]["numbers"]["speed"] = 1.0
        return metadata, members

    def not_finite(metadata, members):
        members["model.family_state.orientation"] = np.full((3, 3), np.nan)
        return metadata, members

    assert_refused_once_edited(path, model, wrong_shape, "orientation has shape")
    assert_refused_once_edited(path, model, unknown_key, "unknown family state number")
    assert_refused_once_edited(path, model, not_finite, "not finite")


def test_tampered_running_statistics_are_refused(tmp_path, X):
    model = GaussianMixture(3, random_state=0).partial_fit(X[:120]).partial_fit(X[120:])
    path = tmp_path / "m.npz"
    save(model, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    bad = np.array([1.0, -2.0, 3.0])
    buffer = io.BytesIO()
    npy_format.write_array(buffer, bad)
    members["model.online.nk.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="online nk must be positive"):
        load(path)


@pytest.mark.parametrize("covariance_type", ["VVV", "EII", "tied"])
def test_prior_values_survive_and_a_tampered_prior_is_refused(tmp_path, X, covariance_type):
    # prior_ is computed from the training data at fit time (gmm.prior); a loaded
    # model holds the same values, in the same shapes, and refits from them.
    model = GaussianMixture(2, covariance_type=covariance_type, prior="default", random_state=0)
    model.fit(X)
    path = tmp_path / "m.npz"
    save(model, path)
    loaded = load(path)
    for name, value in model.prior_.as_dict().items():
        got = loaded.prior_.as_dict()[name]
        assert np.shape(got) == np.shape(value)
        np.testing.assert_array_equal(got, value)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    metadata, members = read_members(path)
    members["model.prior.dof"] = np.array([-1.0])
    write_members(path, metadata, members)
    with pytest.raises(ModelFileError, match="dof > 0"):
        load(path)


# ------------------------------------------------ unbounded metadata (class 6)
def _replaced(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def _nested(opening: str, depth: int) -> str:
    closing = {"[": "]", '{"a":': "}"}[opening]
    return opening * depth + "1" + closing * depth


#: name -> (change to the metadata's JSON text, what the ModelFileError says).
#: The text is edited as text: json.dumps itself cannot write most of these.
UNBOUNDED_METADATA = {
    **{
        f"{kind} nested {depth} deep": (
            lambda text, o=opening, n=depth: _replaced(
                text, '"tol":', f'"deep":{_nested(o, n)},"tol":'
            ),
            "nests lists or objects more than 32 deep",
        )
        for kind, opening in (("list", "["), ("object", '{"a":'))
        for depth in (33, 600, 999, 1000, 5000, 200_000)
    },
    "deep at the top level": (
        lambda text: '{"x":' + _nested("[", 600) + "," + text[1:],
        r"metadata field x\[0\]\[0\].* nests",
    ),
    "deep in the arrays section": (
        lambda text: _replaced(text, '"arrays": {', f'"arrays": {{"z": {_nested("[", 700)},'),
        "nests lists or objects",
    ),
    "integer of 5000 digits": (
        lambda text: _replaced(text, '"tol":', '"n_init":1' + "0" * 5000 + ',"tol":'),
        "integer of 5001 digits; model files hold 64-bit",
    ),
    "integer of a million digits": (
        lambda text: _replaced(text, '"tol":', '"n_init":' + "9" * 10**6 + ',"tol":'),
        "integer of 1000000 digits",
    ),
    "integer of 21 digits": (
        lambda text: _replaced(text, '"tol":', '"n_init":-' + "9" * 21 + ',"tol":'),
        "integer of 21 digits",
    ),
    "repeated key": (
        lambda text: _replaced(text, '"tol":', '"tol":0.5,"tol":'),
        "key 'tol' twice in one object",
    ),
    "repeated top-level key": (
        lambda text: '{"class":"GaussianMixture",' + text[1:],
        "key 'class' twice",
    ),
    "huge string": (
        lambda text: _replaced(text, '"init_params": "kmeans"', f'"init_params": "{"x" * 10**7}"'),
        r"invalid constructor parameter.{0,300}$",  # one short message, not 10 MB
    ),
}


@pytest.mark.parametrize("case", list(UNBOUNDED_METADATA))
def test_unbounded_metadata_is_a_model_file_error(tmp_path, models, case):
    change, match = UNBOUNDED_METADATA[case]

    def edit(metadata, members):
        return change(json.dumps(metadata)), members

    assert_refused_once_edited(tmp_path / "model.npz", models["diag", np.float64], edit, match)


def test_metadata_nested_deeper_than_load_reads_is_refused_by_save(tmp_path, X):
    deep = [0.5]
    for _ in range(40):
        deep = [deep]
    model = GaussianMixture(2, random_state=0).fit(X)
    model.set_params(tol=deep)  # nothing checks it until the next fit
    path = tmp_path / "model.npz"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"Cannot save the model: .*tol.*more than 32 deep"):
        save(model, path)
    assert path.read_bytes() == b"previous"


# ---------------------------------------- save writes only what load accepts (class 5)
# Each case is a fitted model in a state a user can reach. Either it round-trips
# (the loaded model has equal get_params(), fitted arrays bit for bit and the same
# predictions), or save refuses it with the error below and the old file stays.
def _quiet_fit(model, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, **kwargs)


def _frame(X, names):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=names)


def _warm_refit(cls, X):
    model = _quiet_fit(cls(2, warm_start=True, random_state=0), X)
    model.set_params(n_components=3)
    return _quiet_fit(model, X)  # keeps its 2 components, as scikit-learn's does


def _after_fit(model, X, **params):
    return _quiet_fit(model, X).set_params(**params)


class _Tolerance(float):
    pass


def _named(X, names):
    model = GaussianMixture(2, random_state=0)
    _quiet_fit(model, X)
    model.feature_names_in_ = np.asarray(names, dtype=object)  # as scikit-learn stores them
    return model


#: name -> (model from X, None to round-trip or (error type, message))
SAVE_CASES = {
    "warm_start refit after set_params(n_components=3)": (
        lambda X: _warm_refit(GaussianMixture, X),
        None,
    ),
    "BayesianGaussianMixture warm_start refit": (
        lambda X: _warm_refit(BayesianGaussianMixture, X),
        None,
    ),
    "n_components changed after the fit": (
        lambda X: _after_fit(GaussianMixture(2, random_state=0), X, n_components=5),
        None,
    ),
    "prior=None set after a fit with a prior": (
        lambda X: _after_fit(GaussianMixture(2, prior="default", random_state=0), X, prior=None),
        None,
    ),
    "nan_policy changed after an 'omit' fit": (
        lambda X: _after_fit(
            GaussianMixture(2, nan_policy="omit", random_state=0),
            np.vstack([X, [[np.nan, 0.0, 0.0]]]),
            nan_policy="raise",
        ),
        None,
    ),
    "prior with an array inside": (
        lambda X: _quiet_fit(
            GaussianMixture(2, prior={"shrinkage": 0.5, "scale": np.eye(3)}, random_state=0), X
        ),
        None,
    ),
    "numpy scalar parameters": (
        lambda X: _quiet_fit(
            GaussianMixture(
                np.int64(2),
                tol=np.float32(0.01),
                max_iter=np.int32(50),
                warm_start=np.bool_(False),
                random_state=0,
            ),
            X,
        ),
        None,
    ),
    "float subclass parameter": (
        lambda X: _quiet_fit(GaussianMixture(2, tol=_Tolerance(0.01), random_state=0), X),
        None,
    ),
    "largest 64-bit integer": (
        lambda X: _after_fit(GaussianMixture(2, random_state=0), X, max_iter=2**63 - 1),
        None,
    ),
    "tuple and list parameters": (
        lambda X: _quiet_fit(
            GaussianMixture(2, weights_init=(0.5, 0.5), means_init=[[0, 0, 0], [5, 5, 5]]), X
        ),
        None,
    ),
    "float32 array parameter": (
        lambda X: _quiet_fit(
            GaussianMixture(2, means_init=np.array([[0, 0, 0], [5, 5, 5]], np.float32)), X
        ),
        None,
    ),
    "RandomState": (
        lambda X: _quiet_fit(GaussianMixture(2, random_state=np.random.RandomState(7)), X),
        None,
    ),
    "RandomState of a selection": (
        lambda X: _quiet_fit(
            GaussianMixtureIC(
                [1, 2], covariance_type="diag", random_state=np.random.RandomState(1)
            ),
            X,
        ),
        None,
    ),
    "long feature names": (lambda X: _named(X, ["a" * 10_000, "b", "c"]), None),
    "numpy str_ feature names": (
        lambda X: _named(X, [np.str_("a"), np.str_("b"), np.str_("c")]),
        None,
    ),
    "non-ASCII feature names": (lambda X: _named(X, ["hé", "日本", "\U0001f600"]), None),
    "NUL in a feature name": (
        lambda X: _quiet_fit(GaussianMixture(2, random_state=0), _frame(X, ["a\0", "a", "b"])),
        (ValueError, r"feature name 0 \('a\\x00'\) holds a NUL character"),
    ),
    "NUL at the end of a name of a selection": (
        lambda X: _quiet_fit(
            GaussianMixtureIC([1, 2], covariance_type="diag", random_state=0),
            _frame(X, ["x", "y", "z\0"]),
        ),
        (ValueError, "feature name 2 .* holds a NUL character"),
    ),
    "unpaired surrogate in a feature name": (
        lambda X: _quiet_fit(GaussianMixture(2, random_state=0), _frame(X, ["a\ud800", "x", "b"])),
        (ValueError, "feature name 0 .* holds an unpaired surrogate"),
    ),
    "non-str feature name": (
        lambda X: _named(X, ["a", 1, "b"]),
        (ValueError, "feature name 1 is a int, not a str"),
    ),
    "integer beyond 64 bits": (
        lambda X: _after_fit(GaussianMixture(2, random_state=0), X, max_iter=10**30),
        (ValueError, r"params\.max_iter holds an integer of 100 bits"),
    ),
    "NaN tolerance set after the fit": (
        lambda X: _after_fit(GaussianMixture(2, random_state=0), X, tol=float("nan")),
        (ValueError, "would not load back .*tol must be a finite number"),
    ),
    "covariance_type changed after the fit": (
        lambda X: _after_fit(GaussianMixture(2, covariance_type="diag"), X, covariance_type="full"),
        (ValueError, "fitted arrays are of covariance_type='diag'.*set_params"),
    ),
    "numpy Generator": (
        lambda X: _after_fit(GaussianMixture(2), X, random_state=np.random.default_rng(0)),
        (TypeError, "random_state: a numpy Generator"),
    ),
    "object parameter": (
        lambda X: _after_fit(GaussianMixture(2), X, tol=object()),
        (TypeError, "Cannot save parameter tol=<object object"),
    ),
    "object array parameter": (
        lambda X: _after_fit(GaussianMixture(2), X, means_init=np.array([[1, "x"]], dtype=object)),
        (TypeError, "means_init: an array of object"),
    ),
    "complex array parameter": (
        lambda X: _after_fit(GaussianMixture(2), X, means_init=np.zeros((2, 3), complex)),
        (TypeError, "means_init: an array of complex128"),
    ),
}


def _same_params(a: dict, b: dict) -> bool:
    """Equal constructor parameters, by an independent rule: RandomState by its state."""
    if a.keys() != b.keys():
        return False
    for name, value in a.items():
        other = b[name]
        if isinstance(value, np.random.RandomState):
            ours, theirs = value.get_state(), other.get_state()
            if not (ours[0] == theirs[0] and np.array_equal(ours[1], theirs[1])):
                return False
            if ours[2:] != theirs[2:]:
                return False
        elif isinstance(value, np.ndarray):
            if not (value.dtype == other.dtype and np.array_equal(value, other)):
                return False
        elif isinstance(value, dict):
            if not _same_params(value, other):
                return False
        elif type(value) in (list, tuple) and type(other) is not type(value):
            return False
        elif not (value == other or (value != value and other != other)):
            return False
    return True


def _assert_round_trip(model, loaded, X):
    assert _same_params(model.get_params(deep=False), loaded.get_params(deep=False))
    best = getattr(model, "best_estimator_", model)
    for name in ATTRIBUTES:
        ours, theirs = (
            getattr(best, name),
            getattr(getattr(loaded, "best_estimator_", loaded), name),
        )
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes(), name
    rows = (
        X if not hasattr(model, "feature_names_in_") else _frame(X, list(model.feature_names_in_))
    )
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    np.testing.assert_array_equal(loaded.score_samples(rows), model.score_samples(rows))
    for name in ("prior_", "n_rows_omitted_"):
        assert hasattr(loaded, name) == hasattr(model, name)


@pytest.mark.parametrize("case", list(SAVE_CASES))
def test_save_writes_only_what_load_gives_back(tmp_path, X, case):
    build, refusal = SAVE_CASES[case]
    model = build(X)
    path = tmp_path / "model.npz"
    path.write_bytes(b"the previous file")
    os.chmod(path, 0o640)
    if refusal is None:
        save(model, path)
        _assert_round_trip(model, load(path), X)
        return
    error, match = refusal
    with pytest.raises(error, match=match):
        save(model, path)
    assert path.read_bytes() == b"the previous file"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.listdir(tmp_path) == ["model.npz"]


def test_warm_start_model_continues_after_load_as_before(tmp_path, X):
    model = _warm_refit(GaussianMixture, X)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.n_components == 3 and loaded.means_.shape[0] == 2
    _quiet_fit(loaded, X)  # warm start again: from the loaded components
    _quiet_fit(model, X)
    np.testing.assert_array_equal(loaded.means_, model.means_)


def test_callable_init_params_is_the_one_parameter_stored_as_none(tmp_path, X):
    model = _quiet_fit(
        GaussianMixture(2, init_params=lambda X, k, rs: np.eye(k)[np.arange(len(X)) % k]), X
    )
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.init_params is None  # files hold no code (documented)
    params = model.get_params()
    params["init_params"] = None
    assert _same_params(params, loaded.get_params())


_ANY_TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=6
)
_PARAMETER_VALUES = {
    "tol": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(0, 1).map(np.float32),
        st.integers(-(2**70), 2**70),
        st.text(max_size=3),
        st.none(),
        st.lists(st.floats(), max_size=3).map(tuple),
    ),
    "max_iter": st.one_of(st.integers(-(2**70), 2**70), st.integers(0, 10).map(np.int64)),
    "random_state": st.one_of(
        st.none(), st.integers(0, 2**32 - 1), st.integers(0, 100).map(np.random.RandomState)
    ),
    "n_components": st.integers(1, 4),
    "warm_start": st.one_of(st.booleans(), st.booleans().map(np.bool_)),
    "means_init": st.one_of(
        st.none(),
        st.sampled_from([np.float32, np.float64, np.int16, np.complex64, object]).map(
            lambda dtype: np.ones((2, 3), dtype=dtype)
        ),
    ),
}


_FITTED_BASES: dict = {}


def _fitted_base(kind: str, X):
    """A fitted model of ``kind``, fitted once and copied for each example."""
    if kind not in _FITTED_BASES:
        if kind == "GaussianMixtureIC":
            model = GaussianMixtureIC([1, 2], covariance_type="diag", random_state=0)
        elif kind == "BayesianGaussianMixture":
            model = BayesianGaussianMixture(2, random_state=0)
        else:
            model = GaussianMixture(2, random_state=0)
        if kind == "online":
            for batch in np.array_split(X, 3):
                model.partial_fit(batch)
        else:
            _quiet_fit(model, X)
        _FITTED_BASES[kind] = model
    return copy.deepcopy(_FITTED_BASES[kind])


@given(
    kind=st.sampled_from(
        ["GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureIC", "online"]
    ),
    changes=st.dictionaries(
        st.sampled_from(sorted(_PARAMETER_VALUES)), st.none(), max_size=4
    ).flatmap(lambda keys: st.fixed_dictionaries({key: _PARAMETER_VALUES[key] for key in keys})),
    names=st.none() | st.lists(_ANY_TEXT, min_size=3, max_size=3, unique=True),
)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_saved_model_loads_back_equal_or_is_refused(tmp_path, X, kind, changes, names):
    """save -> load gives equal params and identical predictions, or save refuses and the
    old file is unchanged. Parameters are changed after the fit (set_params checks
    nothing), so any value a user can put there is tried."""
    model = _fitted_base(kind, X)
    if names is not None:
        for holder in (model, getattr(model, "best_estimator_", model)):
            holder.feature_names_in_ = np.asarray(names, dtype=object)
    model.set_params(**{k: v for k, v in changes.items() if k in model.get_params()})
    path = tmp_path / "model.npz"
    path.write_bytes(b"the previous file")
    try:
        save(model, path)
    except (TypeError, ValueError) as error:
        assert str(error).startswith("Cannot save"), error
        assert path.read_bytes() == b"the previous file"
        return
    _assert_round_trip(model, load(path), X)


def test_a_covariance_type_changed_after_the_fit_is_refused_at_save(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 2))
    model = GaussianMixture(2, random_state=0).fit(X).set_params(covariance_type="EEV")
    path = tmp_path / "changed.gmm"
    with pytest.raises(ValueError, match=r"fitted arrays are of covariance_type='full'.*'EEV'"):
        save(model, path)
    assert not path.exists()
    save(model.set_params(covariance_type="full"), path)
    loaded = load(path)
    loaded.set_params(covariance_type="VVV")
    with pytest.raises(ValueError, match="covariance_type='full' and 2 components"):
        loaded.partial_fit(X[:50])
