"""What :func:`gmm.save` promises: the file it writes loads back to an equal model.

``save`` builds the file's bytes in memory, reads them back with the same
checks :func:`gmm.load` runs, and compares the result with the model
(:func:`problem`): every constructor parameter and every public fitted
attribute, arrays bit for bit, and the predictions at the model's own means.
Only then is the target file touched. So a model that ``save`` accepts loads
back, predicts identically and has equal ``get_params()``; anything the file
cannot hold losslessly is refused with the attribute and the reason.

The one documented exception: a callable ``init_params`` is stored as None
(files hold no code; the loaded model needs ``set_params(init_params=...)``
before it is refitted).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from .file import shown

#: Parameters whose value may come back as None: code is never stored.
_CODE_PARAMETERS = ("init_params",)


def problem(model, loaded) -> str | None:
    """The first parameter or fitted attribute of ``model`` that ``loaded`` lacks; or None.

    O(size of the model) time, plus one prediction at the K means.

    >>> problem(1, 1) is None
    True
    """
    return _estimator_problem(model, loaded, "")


def _estimator_problem(model, loaded, prefix: str) -> str | None:
    if type(model) is not type(loaded):
        return f"{prefix}the model would load back as a {type(loaded).__name__}"
    if not hasattr(model, "get_params"):
        return None if same(model, loaded) else f"{prefix} would load back as {shown(loaded)}"
    ours, theirs = model.get_params(deep=False), loaded.get_params(deep=False)
    for name, value in ours.items():
        back = theirs.get(name)
        if name in _CODE_PARAMETERS and callable(value) and back is None:
            continue
        if not same(value, back):
            return (
                f"parameter {prefix}{name}={shown(value)} would load back as {shown(back)} "
                f"({type(back).__name__}); use a value of a plain type (number, string, "
                "None, list, tuple, array or RandomState)"
            )
    for name in sorted(_fitted_names(model)):
        value, back = getattr(model, name), getattr(loaded, name, _MISSING)
        if hasattr(value, "get_params"):
            found = _estimator_problem(value, back, f"{prefix}{name}.")
            if found is not None:
                return found
        elif _plain(value) and not same(value, back):
            return (
                f"fitted attribute {prefix}{name}={shown(value)} would load back as "
                f"{shown(back)}: a model file cannot hold it as it is"
            )
    return _prediction_problem(model, loaded, prefix)


def _prediction_problem(model, loaded, prefix: str) -> str | None:
    means = getattr(model, "means_", None)
    if means is None or not hasattr(model, "predict_proba"):
        return None
    rows = np.asarray(means)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # A model fitted on named columns warns about an unnamed array; no
        # data frame library is needed to compare the two models.
        warnings.simplefilter("ignore", UserWarning)
        for method in ("score_samples", "predict_proba"):
            if not same(getattr(model, method)(rows), getattr(loaded, method)(rows)):
                return f"{prefix}{method} of the loaded model would differ from the model's"
    return None


_MISSING = object()


def _fitted_names(model) -> set[str]:
    return {
        name
        for name in vars(model)
        if name.endswith("_") and not name.startswith("_") and not name.endswith("__")
    }


def _plain(value: Any) -> bool:
    """Values a model file stores as they are: arrays, numbers, strings, containers of them."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic, np.ndarray)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, np.random.RandomState)


def same(a: Any, b: Any) -> bool:
    """Whether ``b`` is ``a`` as a model file gives it back: arrays bit for bit.

    Numbers compare by value (``np.float32(0.5)`` comes back as the float
    0.5, a fitted count of 3 may come back as 3.0; NaN equals NaN); strings
    by value; arrays keep their dtype and bits; a RandomState compares by its
    state; lists and tuples stay apart.

    >>> same([1.0, float("nan")], [1.0, float("nan")]), same((1,), [1])
    (True, False)
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind == "O":
            return all(same(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
        return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    if isinstance(a, np.random.RandomState):
        return isinstance(b, np.random.RandomState) and same(a.get_state(), b.get_state())
    if isinstance(a, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and a == b
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return bool(a == b) or (a != a and b != b)
    return a is b or (type(a) is type(b) and isinstance(a, range) and a == b)
