"""Safe model files: :func:`save` and :func:`load` without pickle.

A model file is a ``.npz`` archive (a zip of ``.npy`` members, stored without
compression) holding:

- ``metadata.npy``: UTF-8 JSON as a uint8 array. It records the file format and
  its version, the gmm version, the class, the covariance type, K, D, the dtype,
  the constructor parameters, the scalar fitted attributes, and the shape and
  dtype of every other member. A :class:`~gmm.GaussianMixtureIC` also stores its
  sweep table and criterion there.
- ``model.<attribute>.npy``: the fitted arrays of the Gaussian mixture (for a
  ``GaussianMixtureIC``, of its best estimator): ``weights_``, ``means_``,
  ``covariances_``, ``precisions_``, ``precisions_cholesky_``,
  ``lower_bounds_`` and, when fitted on named columns, ``feature_names_in_``.
- ``param.<name>.npy``: constructor parameters given as numpy arrays (such as
  ``means_init``); other values, lists included, are stored in the metadata.
- ``selection.feature_names_in_.npy``: a ``GaussianMixtureIC``'s column names.

:func:`load` never unpickles and never executes code. Before it reads any array
it checks the archive (known members only, stored uncompressed, sizes that fit
in the file) and each member's ``.npy`` header against the shapes and dtypes the
metadata implies, so a file that declares a huge or wrong shape is refused
before anything is allocated. Then it checks the values: finite, weights in
[0, 1] summing to 1, symmetric positive-definite covariances and precisions,
and precision Cholesky factors that are triangular and agree with the
precisions. Anything else raises :class:`ModelFileError` saying what is wrong.
The arrays are stored bit for bit, so a loaded model predicts exactly as the
saved one did.

:func:`save` writes a temporary file in the target folder, fsyncs it and renames
it over the target (``os.replace``), so an interrupted save leaves the previous
file intact. Pickling a model also works, as for any scikit-learn estimator,
but a pickle runs code when loaded: prefer these two functions for files that
travel.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format
from sklearn.utils.validation import check_is_fitted

from . import validation
from .checkpoint import write_atomically
from .covariance import get_family
from .estimator import GaussianMixture
from .selection import (
    COLUMNS,
    GaussianMixtureIC,
    SweepResult,
    SweepTable,
    best_index,
)

FORMAT = "gmm-model"
FORMAT_VERSION = 1

#: Largest metadata member read (the sweep table lives there).
MAX_METADATA_BYTES = 64 * 2**20

_METADATA = "metadata"
_MODEL_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)
_CLASSES = ("GaussianMixture", "GaussianMixtureIC")

#: What zipfile raises on a damaged archive: a bad CRC or local header
#: (BadZipFile), a garbled version or flag field (NotImplementedError), a member
#: marked encrypted (RuntimeError), an offset outside the file (OSError, EOFError),
#: a member name flagged UTF-8 that is not (UnicodeDecodeError).
_ZIP_DAMAGE = (
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    UnicodeDecodeError,
)


class ModelFileError(ValueError):
    """A model file is not a valid gmm model file; the message says what is wrong."""


# ======================================================================= save
def save(model, path: str | os.PathLike) -> None:
    """Write a fitted model to ``path`` as a pickle-free ``.npz`` file.

    Parameters
    ----------
    model : GaussianMixture or GaussianMixtureIC
        Fitted.
    path : str or path
        Written as given (no suffix is added). An existing file is replaced
        atomically: a temporary file in the same folder is written, fsynced and
        renamed over it.

    Raises
    ------
    TypeError
        If ``model`` is not one of the two classes, or a constructor parameter
        cannot be stored (a RandomState instance is stored as None).
    sklearn.exceptions.NotFittedError
        If the model is not fitted.

    Notes
    -----
    O(size of the model) time and extra memory. See :mod:`gmm.persistence` for
    the file layout.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from gmm import GaussianMixture, save, load
    >>> X = np.array([[0.0, 0.1], [0.2, 0.0], [5.0, 5.1], [5.2, 4.9], [0.1, 0.3], [5.1, 5.0]])
    >>> model = GaussianMixture(2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(model, path)
    >>> np.array_equal(load(path).predict_proba(X), model.predict_proba(X))
    True
    """
    arrays, metadata = _encode(model)
    payload = json.dumps(metadata, allow_nan=True, separators=(",", ":")).encode("utf-8")
    arrays = {_METADATA: np.frombuffer(payload, dtype=np.uint8), **arrays}

    def write(file) -> None:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    npy_format.write_array(member, np.ascontiguousarray(array))

    write_atomically(path, write)


def _encode(model) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if isinstance(model, GaussianMixtureIC):
        check_is_fitted(model)
        mixture = model.best_estimator_
    elif isinstance(model, GaussianMixture):
        check_is_fitted(model)
        mixture = model
    else:
        raise TypeError(
            f"save() stores GaussianMixture and GaussianMixtureIC models, got "
            f"{type(model).__name__}. Use pickle or joblib for other objects."
        )
    arrays: dict[str, np.ndarray] = {}
    for name in _MODEL_ARRAYS:
        arrays[f"model.{name}"] = np.asarray(getattr(mixture, name))
    arrays["model.lower_bounds_"] = np.asarray(mixture.lower_bounds_, dtype=np.float64)
    if hasattr(mixture, "feature_names_in_"):
        arrays["model.feature_names_in_"] = _names(mixture.feature_names_in_)
    params = _encode_params(mixture.get_params(deep=False), arrays)
    n_components, n_features = mixture.means_.shape
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gmm_version": _gmm_version(),
        "class": type(model).__name__,
        "model": {
            "covariance_type": mixture.covariance_type,
            "n_components": int(n_components),
            "n_features": int(n_features),
            "dtype": mixture.means_.dtype.name,
            "params": params,
            "converged_": bool(mixture.converged_),
            "n_iter_": int(mixture.n_iter_),
            "lower_bound_": float(mixture.lower_bound_),
            "n_features_in_": int(mixture.n_features_in_),
        },
    }
    if isinstance(model, GaussianMixtureIC):
        if hasattr(model, "feature_names_in_"):
            arrays["selection.feature_names_in_"] = _names(model.feature_names_in_)
        metadata["selection"] = {
            "params": _encode_params(model.get_params(deep=False), arrays),
            "criterion": model.sweep_result_.criterion,
            "n_features_in_": int(model.n_features_in_),
            "table": model.table_.to_records(),
        }
    metadata["arrays"] = {
        name: {"shape": list(array.shape), "dtype": array.dtype.str}
        for name, array in arrays.items()
    }
    return arrays, metadata


def _names(names) -> np.ndarray:
    # Fitted names are an object array of str; a fixed-width str array needs no pickle.
    return np.asarray([str(name) for name in names], dtype=str)


def _encode_params(params: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    encoded = {}
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            key = f"param.{name}"
            arrays[key] = np.asarray(value)
            encoded[name] = {"array": key}
        else:
            encoded[name] = _encode_value(name, value)
    return encoded


def _encode_value(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, range):
        return {"range": [value.start, value.stop, value.step]}
    if isinstance(value, tuple):
        return {"tuple": [_encode_value(name, v) for v in value]}
    if isinstance(value, list):
        return [_encode_value(name, v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        # A generator's state is not a model parameter; the loaded model gets None.
        return None
    if callable(value):
        # Code is never stored in a model file (init_params=callable): the loaded
        # model gets None, and a refit needs set_params(init_params=...).
        return None
    raise TypeError(
        f"Cannot save parameter {name}={value!r} of type {type(value).__name__}: "
        "only numbers, strings, None, sequences and arrays can be stored."
    )


# ======================================================================= load
def load(path: str | os.PathLike):
    """Read a model written by :func:`save`, checking everything first.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    GaussianMixture or GaussianMixtureIC
        Fitted, with the saved arrays bit for bit.

    Raises
    ------
    ModelFileError
        (a ValueError) If the file is not a gmm model file, was written by a
        newer format version, or holds a wrong member, shape, dtype or value;
        the message says which.
    FileNotFoundError
        If there is no such file.

    Notes
    -----
    Never unpickles and never runs code from the file. Memory is bounded by
    the file's size: declared shapes are checked against the member sizes
    before anything is read. Checking positive definiteness costs O(K·D³).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from gmm import GaussianMixture, ModelFileError, save, load
    >>> X = np.array([[0.0, 0.1], [0.2, 0.0], [5.0, 5.1], [5.2, 4.9], [0.1, 0.3], [5.1, 5.0]])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(GaussianMixture(2, random_state=0).fit(X), path)
    >>> load(path).n_components
    2
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model")
    >>> try:
    ...     load(path)
    ... except ModelFileError as error:
    ...     print(str(error).split(": ", 1)[1])
    not a gmm model file (not a .npz archive)
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
            raise ModelFileError(f"{path}: not a gmm model file (not a .npz archive)") from None
        with archive:
            reader = _Reader(path, archive, os.fstat(file.fileno()).st_size)
            return reader.read()


class _Reader:
    """Checks one archive step by step; every failure names the file and the problem."""

    def __init__(self, path: str, archive: zipfile.ZipFile, file_size: int):
        self.path = path
        self.archive = archive
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy") or info.is_dir():
                self.fail(f"unexpected member {name!r} (only .npy members belong here)")
            if name[:-4] in self.members:
                self.fail(f"member {name!r} appears twice")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                self.fail(f"member {name!r} is compressed; gmm.save writes stored members")
            if info.header_offset + info.compress_size > file_size:
                self.fail(f"member {name!r} claims more bytes than the file holds")
            self.members[name[:-4]] = info

    def fail(self, problem: str):
        raise ModelFileError(f"{self.path}: {problem}")

    @contextmanager
    def open(self, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
        """A member's bytes; damage that zipfile detects while reading is refused."""
        try:
            with self.archive.open(info) as member:
                yield member
        except _ZIP_DAMAGE as error:
            self.fail(f"the archive is damaged ({error})")

    # ------------------------------------------------------------ arrays
    def header(self, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
        info = self.members.get(name)
        if info is None:
            self.fail(f"member {name}.npy is missing")
        with self.open(info) as member:
            try:
                version = npy_format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = npy_format.read_array_header_1_0(member)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = npy_format.read_array_header_2_0(member)
                else:
                    self.fail(f"member {name}.npy has unknown .npy version {version}")
            except (ModelFileError, *_ZIP_DAMAGE):
                raise
            except Exception as error:  # ValueError, SyntaxError, TokenError, SystemError...
                self.fail(f"member {name}.npy has a damaged .npy header ({error})")
            offset = member.tell()
        if dtype.hasobject:
            self.fail(
                f"member {name}.npy holds Python objects (it would need pickle to "
                "load); model files hold numbers and strings only"
            )
        declared = math.prod(shape) * dtype.itemsize
        if declared + offset > info.file_size:
            self.fail(
                f"member {name}.npy declares shape {shape} ({declared} bytes) but holds "
                f"only {info.file_size - offset} bytes"
            )
        return shape, fortran, dtype

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """Check the member's header against ``shape`` and ``dtype``, then read it."""
        found_shape, _, found_dtype = self.header(name)
        dtype = np.dtype(dtype)
        if found_dtype != dtype:
            self.fail(f"{name} has dtype {found_dtype}, expected {dtype}")
        if tuple(found_shape) != tuple(shape):
            self.fail(f"{name} has shape {tuple(found_shape)}, expected {tuple(shape)}")
        with self.open(self.members[name]) as member:
            try:
                array = npy_format.read_array(member, allow_pickle=False)
            except (ValueError, OSError, EOFError) as error:
                self.fail(f"member {name}.npy cannot be read ({error})")
        return array

    def names_array(self, name: str, n_features: int) -> np.ndarray:
        shape, _, dtype = self.header(name)
        if dtype.kind != "U" or tuple(shape) != (n_features,):
            self.fail(f"{name} must be {n_features} strings, got {dtype} of shape {shape}")
        names = self.array(name, (n_features,), dtype)
        try:
            # numpy raises SystemError for code points past U+10FFFF; surrogates fail to encode.
            names = names.astype(object)
            for text in names:
                text.encode("utf-8")
        except (SystemError, ValueError):
            self.fail(f"{name} holds characters that are not valid Unicode")
        return names

    # ---------------------------------------------------------- metadata
    def metadata(self) -> dict[str, Any]:
        shape, _, dtype = self.header(_METADATA)
        if dtype != np.uint8 or len(shape) != 1:
            self.fail("metadata must be a 1-D uint8 array of UTF-8 JSON")
        if shape[0] > MAX_METADATA_BYTES:
            self.fail(f"metadata is {shape[0]} bytes, more than the {MAX_METADATA_BYTES} allowed")
        raw = self.array(_METADATA, shape, np.uint8).tobytes()
        try:
            metadata = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            self.fail(f"metadata is not valid UTF-8 JSON ({error})")
        except RecursionError:
            self.fail("metadata nests too deeply to be a gmm model file")
        if not isinstance(metadata, dict):
            self.fail("metadata is not a JSON object")
        if metadata.get("format") != FORMAT:
            self.fail(f"not a gmm model file (format {metadata.get('format')!r})")
        version = metadata.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.fail(f"format_version must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            self.fail(
                f"written with model format version {version} by gmm "
                f"{metadata.get('gmm_version')!r}; this gmm ({_gmm_version()}) reads "
                f"versions up to {FORMAT_VERSION}. Upgrade gmm to load it"
            )
        if metadata.get("class") not in _CLASSES:
            self.fail(f"unknown model class {metadata.get('class')!r}; expected one of {_CLASSES}")
        return metadata

    # ------------------------------------------------------------- model
    def read(self):
        metadata = self.metadata()
        section = self.section(metadata, "model")
        expected = {_METADATA}
        mixture, used = self.mixture(section)
        expected |= used
        model = mixture
        if metadata["class"] == "GaussianMixtureIC":
            model, used = self.selection(self.section(metadata, "selection"), mixture)
            expected |= used
        extra = sorted(set(self.members) - expected)
        if extra:
            self.fail(f"unexpected member(s) {', '.join(m + '.npy' for m in extra)}")
        return model

    def section(self, metadata, key) -> dict[str, Any]:
        section = metadata.get(key)
        if not isinstance(section, dict):
            self.fail(f"metadata has no {key!r} section")
        return section

    def field(self, section, key, kind):
        """``section[key]``, checked to be of ``kind`` (bool is not an int; an int is a float)."""
        value = section.get(key)
        kinds = (int, float) if kind is float else kind
        if not isinstance(value, kinds) or (kind is not bool and isinstance(value, bool)):
            self.fail(f"metadata field {key!r} is {value!r}, expected {kind.__name__}")
        return value

    def mixture(self, section) -> tuple[GaussianMixture, set[str]]:
        covariance_type = self.field(section, "covariance_type", str)
        try:
            family = get_family(covariance_type)
        except ValueError as error:
            self.fail(str(error))
        k = self.field(section, "n_components", int)
        d = self.field(section, "n_features", int)
        if k < 1 or d < 1:
            self.fail(f"n_components and n_features must be >= 1, got {k} and {d}")
        dtype_name = self.field(section, "dtype", str)
        if dtype_name not in ("float32", "float64"):
            self.fail(f"dtype must be float32 or float64, got {dtype_name!r}")
        dtype = np.dtype(dtype_name)
        cov_shape = family.shape(k, d)
        shapes = {
            "weights_": (k,),
            "means_": (k, d),
            "covariances_": cov_shape,
            "precisions_": cov_shape,
            "precisions_cholesky_": cov_shape,
        }
        values = {name: self.array(f"model.{name}", shape, dtype) for name, shape in shapes.items()}
        used = {f"model.{name}" for name in shapes}
        n_iter = self.field(section, "n_iter_", int)
        if n_iter < 0:
            self.fail(f"n_iter_ must be >= 0, got {n_iter}")
        lower_bounds = self.array("model.lower_bounds_", (n_iter,), np.float64)
        used.add("model.lower_bounds_")
        self.check_values(family, values, lower_bounds, dtype)

        params, param_arrays = self.params(section.get("params"), "model", GaussianMixture)
        used |= param_arrays
        # Both must be present: a missing one would take the constructor's default.
        if params.get("n_components") != k:
            self.fail(f"params say n_components={params.get('n_components')!r}, arrays hold {k}")
        if params.get("covariance_type") != covariance_type:
            self.fail(
                f"params say covariance_type={params.get('covariance_type')!r}, "
                f"the model is {covariance_type!r}"
            )
        model = GaussianMixture(**params)
        try:
            validation.check_parameters(model, for_fit=False)
        except (TypeError, ValueError) as error:
            self.fail(f"invalid constructor parameter: {error}")
        for name, value in values.items():
            setattr(model, name, value)
        model.lower_bounds_ = lower_bounds.tolist()
        model.converged_ = self.field(section, "converged_", bool)
        model.n_iter_ = n_iter
        model.lower_bound_ = float(self.field(section, "lower_bound_", float))
        if self.field(section, "n_features_in_", int) != d:
            self.fail(f"n_features_in_ is {section['n_features_in_']}, the means have {d}")
        model.n_features_in_ = d
        # Finite, positive-definite values can still be too large to compute with.
        probe = model.means_[:: max(1, k // 64)]
        try:
            with np.errstate(all="ignore"):
                usable = np.all(np.isfinite(model.score_samples(probe))) and np.all(
                    np.isfinite(model.predict_proba(probe))
                )
        except ValueError:  # gmm.em.OutOfRangeError: the squared distances overflow
            usable = False
        if not usable:
            self.fail(
                "the parameters are too large to compute with (non-finite "
                "log-densities at the model's own means)"
            )
        if "model.feature_names_in_" in self.members:
            model.feature_names_in_ = self.names_array("model.feature_names_in_", d)
            used.add("model.feature_names_in_")
        return model, used

    def check_values(self, family, values, lower_bounds, dtype) -> None:
        for name, value in values.items():
            if not np.all(np.isfinite(value)):
                self.fail(f"{name} contains NaN or infinity")
        if np.any(np.isnan(lower_bounds)):
            self.fail("lower_bounds_ contains NaN")
        weights = values["weights_"]
        # EM's weights carry rounding: a single component's weight can be 1 + eps.
        tolerance = max(1e-6, 4 * weights.size * float(np.finfo(dtype).eps))
        if np.any(weights < 0) or np.any(weights > 1 + tolerance):
            self.fail("weights_ must lie in [0, 1]")
        total = float(np.sum(weights, dtype=np.float64))
        if abs(total - 1.0) > tolerance:
            self.fail(f"weights_ sum to {total!r}, not 1")
        try:
            family.check_fitted(
                values["covariances_"],
                values["precisions_"],
                values["precisions_cholesky_"],
                dtype,
            )
        except ValueError as error:
            self.fail(str(error))

    # ------------------------------------------------------------ params
    def params(self, encoded, where, cls) -> tuple[dict[str, Any], set[str]]:
        if not isinstance(encoded, dict):
            self.fail(f"metadata has no constructor params for {where}")
        valid = set(cls().get_params(deep=False))
        unknown = sorted(set(encoded) - valid)
        if unknown:
            self.fail(f"unknown {cls.__name__} parameter(s): {', '.join(unknown)}")
        used: set[str] = set()
        params = {}
        for name, value in encoded.items():
            if isinstance(value, dict) and set(value) == {"array"}:
                key = value["array"]
                if key != f"param.{name}":
                    self.fail(f"parameter {name} refers to member {key!r}")
                shape, _, dtype = self.header(key)
                if dtype.kind not in "fiu":
                    self.fail(f"{key} must hold numbers, got {dtype}")
                params[name] = self.array(key, shape, dtype)
                used.add(key)
            else:
                params[name] = self.decode_value(name, value)
        return params, used

    def decode_value(self, name, value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.decode_value(name, v) for v in value]
        if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(self.decode_value(name, v) for v in value["tuple"])
        if isinstance(value, dict) and set(value) == {"range"}:
            bounds = value["range"]
            if (
                isinstance(bounds, list)
                and len(bounds) == 3
                and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                and bounds[2] != 0
            ):
                return range(*bounds)
        self.fail(f"parameter {name} has a value that cannot be decoded: {value!r}")

    # --------------------------------------------------------- selection
    def selection(self, section, mixture) -> tuple[GaussianMixtureIC, set[str]]:
        params, used = self.params(section.get("params"), "selection", GaussianMixtureIC)
        criterion = section.get("criterion")
        rows = section.get("table")
        if not isinstance(rows, list) or not rows:
            self.fail("the sweep table is missing or empty")
        for number, row in enumerate(rows):
            if not _valid_row(row):
                self.fail(f"row {number} of the sweep table is malformed")
        table = SweepTable(rows)
        try:
            result = SweepResult(table, criterion, mixture)
        except ValueError as error:
            self.fail(f"the sweep table is unusable: {error}")
        row = table[best_index(table, criterion)]
        if (row["n_components"], row["covariance_type"]) != (
            mixture.n_components,
            mixture.covariance_type,
        ):
            self.fail(
                f"the table's best row (K={row['n_components']}, "
                f"{row['covariance_type']!r}) is not the stored model"
            )
        model = GaussianMixtureIC(**params)
        model._set_result(result)
        if self.field(section, "n_features_in_", int) != mixture.n_features_in_:
            self.fail("n_features_in_ of the selection and of the model differ")
        model.n_features_in_ = mixture.n_features_in_
        if "selection.feature_names_in_" in self.members:
            model.feature_names_in_ = self.names_array(
                "selection.feature_names_in_", mixture.n_features_in_
            )
            used.add("selection.feature_names_in_")
        return model, used


def _valid_row(row) -> bool:
    if not isinstance(row, dict) or set(row) != set(COLUMNS):
        return False

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    return (
        isinstance(row["n_components"], int)
        and isinstance(row["covariance_type"], str)
        and all(number(row[c]) for c in ("log_likelihood", "aic", "bic", "icl", "fit_seconds"))
        and isinstance(row["n_parameters"], int)
        and isinstance(row["converged"], bool)
        and (row["n_iter"] is None or isinstance(row["n_iter"], int))
        and (row["error"] is None or isinstance(row["error"], str))
    )


def _gmm_version() -> str:
    from . import __version__

    return __version__
