"""Constructor parameters in a model file: JSON in the metadata, arrays as members.

Numbers, strings, None, lists, tuples and ranges go into the metadata (tuples
and ranges tagged, so they come back as they were); numpy arrays (such as
``means_init``) become ``param.<name>.npy`` members. A RandomState is not a
parameter worth keeping and is stored as None.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .file import ModelReader, shown


def encode_params(params: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``params`` as JSON values; array values are added to ``arrays``.

    Raises
    ------
    TypeError
        For a value that cannot be stored.
    """
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
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        # A dict of settings (``prior``); arrays in it are stored as nested lists.
        return {"dict": {key: _encode_value(name, _listed(v)) for key, v in value.items()}}
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


def _listed(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def decode_params(
    reader: ModelReader, encoded, where: str, cls: type
) -> tuple[dict[str, Any], set[str]]:
    """The constructor parameters of ``cls`` stored for ``where``, and the members read.

    Only ``cls``'s own parameter names are accepted; array members are checked
    to hold numbers.
    """
    if not isinstance(encoded, dict):
        reader.fail(f"metadata has no constructor params for {where}")
    valid = set(cls().get_params(deep=False))
    unknown = sorted(set(encoded) - valid)
    if unknown:
        reader.fail(f"unknown {cls.__name__} parameter(s): {', '.join(unknown)}")
    used: set[str] = set()
    params = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and set(value) == {"array"}:
            key = value["array"]
            if key != f"param.{name}":
                reader.fail(f"parameter {name} refers to member {shown(key)}")
            shape, _, dtype = reader.header(key)
            if dtype.kind not in "fiu":
                reader.fail(f"{key} must hold numbers, got {dtype}")
            params[name] = reader.array(key, shape, dtype)
            used.add(key)
        else:
            params[name] = _decode_value(reader, name, value)
    return params, used


def _decode_value(reader: ModelReader, name: str, value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode_value(reader, name, v) for v in value]
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_decode_value(reader, name, v) for v in value["tuple"])
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], dict):
        return {key: _decode_value(reader, name, v) for key, v in value["dict"].items()}
    if isinstance(value, dict) and set(value) == {"range"}:
        bounds = value["range"]
        if (
            isinstance(bounds, list)
            and len(bounds) == 3
            and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            and bounds[2] != 0
        ):
            return range(*bounds)
    reader.fail(f"parameter {name} has a value that cannot be decoded: {shown(value)}")
