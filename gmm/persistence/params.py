"""Constructor parameters in a model file: JSON in the metadata, arrays as members.

Numbers, strings, None, lists, tuples and ranges go into the metadata (tuples
and ranges tagged, so they come back as they were; numpy numbers and strings
come back as Python ones of the same value); numpy arrays of numbers (such as
``means_init``) become ``param.<name>.npy`` members. A RandomState is stored
with its state (its 624 words a ``param.<name>.npy`` member), so the loaded
model draws the same numbers. A callable (``init_params``) is stored as None:
files hold no code."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .file import MAX_METADATA_DEPTH, ModelReader, shown


def encode_params(params: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``params`` as JSON values; arrays (also inside a dict or list) are added to ``arrays``.

    An array at the top level becomes member ``param.<name>``, one inside a
    parameter ``param.<name>.<key or index>...``.

    Raises
    ------
    TypeError
        For a value that cannot be stored.
    """
    return {
        name: _encode_value(name, value, f"param.{name}", arrays, 0)
        for name, value in params.items()
    }


def _encode_value(name: str, value: Any, key: str, arrays: dict, depth: int) -> Any:
    if depth > MAX_METADATA_DEPTH:  # before Python's recursion limit could be reached
        raise ValueError(
            f"Cannot save the model: parameter {name} nests lists or objects more than "
            f"{MAX_METADATA_DEPTH} deep. Nothing was written."
        )
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # numpy's str_ too
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise TypeError(
                f"Cannot save parameter {name}: an array of {value.dtype}; model files "
                "hold arrays of numbers (integers or floats) only."
            )
        arrays[key] = np.asarray(value)
        return {"array": key}
    if isinstance(value, np.random.RandomState):
        return _encode_random_state(name, value, key, arrays)
    if isinstance(value, range):
        return {"range": [value.start, value.stop, value.step]}
    if isinstance(value, (tuple, list)):
        items = [
            _encode_value(name, v, f"{key}.{i}", arrays, depth + 1) for i, v in enumerate(value)
        ]
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        # A dict of settings (``prior``).
        return {
            "dict": {
                k: _encode_value(name, v, f"{key}.{k}", arrays, depth + 1) for k, v in value.items()
            }
        }
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.random.Generator):
        raise TypeError(
            f"Cannot save parameter {name}: a numpy Generator (scikit-learn estimators take an "
            "int or a RandomState); pass random_state=<int> or a RandomState."
        )
    if callable(value):
        # Code is never stored in a model file (init_params=callable): the loaded
        # model gets None, and a refit needs set_params(init_params=...).
        return None
    raise TypeError(
        f"Cannot save parameter {name}={shown(value)} of type {type(value).__name__}: "
        "only numbers, strings, None, sequences, dicts, arrays and RandomState can be stored."
    )


def _encode_random_state(name: str, value: np.random.RandomState, key: str, arrays: dict):
    """The MT19937 state: its 624 words as member ``key``, the rest in the metadata."""
    state = value.get_state(legacy=False)
    if state["bit_generator"] != "MT19937":
        raise TypeError(f"Cannot save parameter {name}: a {state['bit_generator']} state.")
    arrays[key] = np.asarray(state["state"]["key"], dtype=np.uint32)
    return {
        "RandomState": {
            "array": key,
            "pos": int(state["state"]["pos"]),
            "has_gauss": int(state["has_gauss"]),
            "gauss": float(state["gauss"]),
        }
    }


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
    params = {
        name: _decode_value(reader, name, value, f"param.{name}", used)
        for name, value in encoded.items()
    }
    return params, used


def _decode_value(reader: ModelReader, name: str, value, key: str, used: set[str]):
    """One stored value; ``key`` is the member an array here must be (the metadata's depth
    is bounded by the reader, so the recursion is)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode_value(reader, name, v, f"{key}.{i}", used) for i, v in enumerate(value)]
    tag = next(iter(value)) if isinstance(value, dict) and len(value) == 1 else None
    if tag == "array":
        return _decode_array(reader, name, value["array"], key, used)
    if tag == "RandomState":
        return _decode_random_state(reader, name, value["RandomState"], key, used)
    if tag == "tuple" and isinstance(value["tuple"], list):
        items = enumerate(value["tuple"])
        return tuple(_decode_value(reader, name, v, f"{key}.{i}", used) for i, v in items)
    if tag == "dict" and isinstance(value["dict"], dict):
        return {
            k: _decode_value(reader, name, v, f"{key}.{k}", used) for k, v in value["dict"].items()
        }
    if tag == "range":
        bounds = value["range"]
        if (
            isinstance(bounds, list)
            and len(bounds) == 3
            and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            and bounds[2] != 0
        ):
            return range(*bounds)
    reader.fail(f"parameter {name} has a value that cannot be decoded: {shown(value)}")


def _decode_array(reader: ModelReader, name: str, stored, key: str, used: set[str]):
    if stored != key:
        reader.fail(f"parameter {name} refers to member {shown(stored)}, expected {key}")
    shape, _, dtype = reader.header(key)
    if dtype.kind not in "fiu":
        reader.fail(f"{key} must hold numbers, got {dtype}")
    used.add(key)
    return reader.array(key, shape, dtype)


def _decode_random_state(reader: ModelReader, name: str, state, key: str, used: set[str]):
    """A RandomState in the stored MT19937 state (its 624 words the member ``key``)."""
    fields = {"array": str, "pos": int, "has_gauss": int, "gauss": float}
    if not isinstance(state, dict) or set(state) != set(fields):
        reader.fail(f"parameter {name} has a malformed RandomState: {shown(state)}")
    for field, kind in fields.items():
        reader.field(state, field, kind)
    if state["array"] != key:
        reader.fail(f"parameter {name} refers to member {shown(state['array'])}, expected {key}")
    words = reader.array(key, (624,), np.uint32)
    used.add(key)
    generator = np.random.RandomState()
    try:
        generator.set_state(("MT19937", words, state["pos"], state["has_gauss"], state["gauss"]))
    except (ValueError, TypeError) as error:
        reader.fail(f"parameter {name} has an invalid RandomState ({error})")
    return generator
