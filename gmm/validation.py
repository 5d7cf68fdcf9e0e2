"""Checks at the public boundary. Everything past these functions trusts its input.

Every check raises before any fitted state changes, with a message that says
what is wrong and how to fix it.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from .covariance import CovarianceFamily, get_family
from .initialization import get_initializer

FLOAT_DTYPES = (np.float64, np.float32)
#: The largest count numpy can hold in an index (int64).
MAX_COUNT = int(np.iinfo(np.int64).max)


def check_parameters(est, *, for_fit: bool = True) -> tuple[CovarianceFamily, object]:
    """Validate constructor arguments; return the covariance family and initializer.

    Constructor arguments are read, never written back. With ``for_fit=False``
    (a model read from a file) ``init_params=None`` is accepted, since files
    do not store a callable ``init_params``; the initializer is then None.
    """
    _check_int(est.n_components, "n_components", minimum=1)
    _check_int(est.max_iter, "max_iter", minimum=0)
    _check_int(est.n_init, "n_init", minimum=1)
    _check_int(est.verbose_interval, "verbose_interval", minimum=1)
    _check_number(est.tol, "tol")
    check_convergence(getattr(est, "convergence", "absolute"))
    _check_number(est.reg_covar, "reg_covar")
    if est.init_sample_size is not None:
        _check_int(est.init_sample_size, "init_sample_size", minimum=max(2, est.n_components))
    family = get_family(est.covariance_type)
    if est.init_params is None and not for_fit:
        return family, None
    initializer = get_initializer(est.init_params)
    return family, initializer


def check_convergence(value) -> str:
    """``convergence`` must be 'absolute' or 'relative'; return it."""
    if not isinstance(value, str) or value not in ("absolute", "relative"):
        raise ValueError(
            f"convergence must be 'absolute' (scikit-learn's rule) or 'relative' "
            f"(mclust's), got {value!r}."
        )
    return value


def check_nan_policy(value) -> str:
    """``nan_policy`` must be one of 'raise', 'omit', 'marginalize'; return it."""
    policies = ("raise", "omit", "marginalize")
    if not isinstance(value, str) or value not in policies:
        raise ValueError(f"nan_policy must be one of {policies}, got {value!r}.")
    return value


def _check_int(value, name, minimum, maximum=MAX_COUNT):
    # A plain int skips the abstract-class checks (a few µs per call of partial_fit).
    if type(value) is not int and (
        isinstance(value, bool) or not isinstance(value, numbers.Integral)
    ):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum} (2**63 - 1), got {value}.")


def physical_memory() -> int | None:
    """Bytes of physical memory the OS reports, or None where it reports none."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_array_fits(shape: tuple, dtype, what: str, remedy: str) -> None:
    """Refuse an array of ``shape`` and ``dtype`` larger than the machine's memory.

    Before it is allocated (numpy would raise ``MemoryError`` or an overflow
    in its own words). O(len(shape)).

    >>> check_array_fits((1000, 3), np.float64, "sample(n_samples=1000)", "Draw fewer.")
    >>> try:
    ...     check_array_fits((2**62, 3), np.float64, "sample(n_samples=2**62)", "Draw fewer.")
    ... except ValueError as error:
    ...     print(str(error)[:60])
    sample(n_samples=2**62) would hold 4611686018427387904 x 3 f
    """
    n_bytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    memory = physical_memory()
    if memory is not None and n_bytes > memory:
        sizes = " x ".join(str(int(n)) for n in shape)
        raise ValueError(
            f"{what} would hold {sizes} {np.dtype(dtype).name} values ({n_bytes:.3g} "
            f"bytes), more than this machine's memory ({memory:.3g} bytes). {remedy}"
        )


def _check_number(value, name):
    plain = type(value) is float
    if not plain and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    if not (math.isfinite(value) if plain else np.isfinite(value)) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def shape_entries(value) -> tuple:
    """The entries of a shape-like argument, unchecked: what numpy takes as a shape.

    A 0-d value (a number, or a 0-d array: its Python scalar) is one entry;
    anything with dimensions is its items. The caller checks the entries.
    O(len(value)).

    >>> shape_entries(3), shape_entries(np.array(2)), shape_entries([4, 5])
    ((3,), (2,), (4, 5))
    """
    if np.ndim(value) == 0:
        return (value.item() if isinstance(value, np.ndarray) else value,)
    return tuple(value)


def check_fit_data(X, n_components: int, estimator_name: str) -> np.ndarray:
    """Validate training data: 2-D, numeric, finite, at least 2 rows and K rows.

    Integer and boolean data become float64; float32 stays float32. The
    estimator's name only words the messages; nothing is written anywhere.
    A plain float ndarray of enough rows whose sum is finite is returned as
    it is, as scikit-learn's ``check_array`` would return it
    (:func:`_plain_fit_data`); anything else goes through ``check_array``.
    O(n·D) time.
    """
    if _plain_fit_data(X, n_components):
        return X
    with np.errstate(over="ignore", invalid="ignore"):  # its finiteness test sums X
        X = check_array(
            X,
            dtype=list(FLOAT_DTYPES),
            ensure_min_samples=2,
            estimator=estimator_name,
            input_name="X",
        )
    if X.shape[0] < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = "
            f"{n_components}, n_samples = {X.shape[0]}. Use fewer components "
            "or more data."
        )
    return X


def _plain_fit_data(X, n_components: int) -> bool:
    """Whether X is data ``check_array`` would pass unchanged: a float ndarray, finite.

    A 2-D ndarray (not a subclass) of float64 or float32, with at least
    ``max(2, n_components)`` rows and one column, whose sum is finite (so is
    every value; a sum that overflows sends finite data to ``check_array``,
    which decides). Its validation took a fifth of an online update's fixed
    cost (scikit-learn's dataframe checks, 0.1-0.4 ms, measured), paid by the
    first batch of every stream. O(n·D) time, O(1) memory.
    """
    if not (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in FLOAT_DTYPES
        and X.shape[0] >= max(2, n_components)
        and X.shape[1] >= 1
    ):
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(X)))


def check_predict_data(X, estimator_name: str) -> np.ndarray:
    """Validate data for prediction: 2-D, numeric, finite (features: see ``check_features``)."""
    return check_array(X, dtype=list(FLOAT_DTYPES), estimator=estimator_name, input_name="X")


def check_features(est, X, *, reset: bool) -> None:
    """Record (``reset``) or check the number and names of X's features on ``est``.

    scikit-learn's ``n_features_in_`` and ``feature_names_in_``; X has been
    validated already (its columns are only counted and named).
    """
    validate_data(est, X, skip_check_array=True, reset=reset)


def check_sample_weight(sample_weight, n_samples: int, dtype) -> np.ndarray | None:
    """Non-negative finite weights of shape (n_samples,), not all zero, or None.

    Returned as given (in ``dtype``): criteria count them as observations. Fits
    see them through :func:`fit_weights` first, so only their ratios matter there.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "sample_weight must be numeric, one non-negative weight per sample."
        ) from None
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has shape {w.shape}, expected ({n_samples},): one weight per sample."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity; weights must be finite.")
    if np.any(w < 0):
        raise ValueError("sample_weight contains negative values; weights must be >= 0.")
    if not np.any(w > 0):
        raise ValueError("sample_weight is all zero; at least one sample needs a positive weight.")
    return w.astype(dtype)


def fit_weights(sample_weight):
    """``sample_weight`` as a fit takes it: relative (:func:`relative_weights`), or as given.

    Weights that pass :func:`check_sample_weight`'s value checks are scaled
    (one number becomes 1.0, every row alike); anything else is returned
    unchanged for the data's validation to word its error. Dask weights are
    scaled lazily. O(n).

    >>> fit_weights([1e-300, 3e-300]), fit_weights(7.0), fit_weights(None)
    (array([0.5, 1.5]), 1.0, None)
    """
    if sample_weight is None or hasattr(sample_weight, "dask"):
        return None if sample_weight is None else relative_weights(sample_weight)
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        return 1.0 if np.isfinite(sample_weight) and sample_weight > 0 else sample_weight
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        return sample_weight
    if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        return sample_weight
    return relative_weights(w)


def relative_weights(w):
    """Weights divided by their maximum, then scaled to mean 1 over the positive ones.

    In that order, in float64, neither step can overflow or lose a positive
    weight that matters: after the first the weights lie in [0, 1] with a 1
    among them, so their sum lies in [1, n]. The sum of the result is the
    number of rows with a positive weight: that is the ``n`` of weighted
    criteria and of priors. O(n) time. ``w`` is a validated float64 ndarray
    (finite, non-negative, not all zero) or a dask array (scaled lazily;
    invalid values are left for its validation to report).

    >>> relative_weights(np.array([0.0, 1e-300, 3e-300]))
    array([0. , 0.5, 1.5])
    """
    top = w.max()
    if not hasattr(w, "dask"):
        w = w / top
        return w * (np.count_nonzero(w) / w.sum())
    import dask

    top = float(dask.compute(top)[0])
    if not (np.isfinite(top) and top > 0):
        return w  # NaN, infinity or all zero: the data's validation words the error
    w = w.astype(np.float64) / top
    total, count = dask.compute(w.sum(), (w > 0).sum())
    return w * (float(count) / float(total))


def check_initial_parameters(est, family: CovarianceFamily, n_features: int, dtype):
    """Validate ``weights_init``, ``means_init`` and ``precisions_init``; return arrays."""
    n_components = est.n_components
    weights = means = precisions = None
    if est.weights_init is not None:
        weights = _as_array(est.weights_init, "weights_init", (n_components,), dtype)
        if np.any(weights < 0) or np.any(weights > 1):
            raise ValueError("weights_init must lie in [0, 1]; got values outside that range.")
        if not np.isclose(weights.sum(dtype=np.float64), 1.0, rtol=0, atol=1e-6):
            raise ValueError(
                f"weights_init must sum to 1, but they sum to {weights.sum():.6f}. "
                "Normalise them, e.g. w / w.sum()."
            )
    if est.means_init is not None:
        means = _as_array(est.means_init, "means_init", (n_components, n_features), dtype)
    if est.precisions_init is not None:
        shape = family.shape(n_components, n_features)
        precisions = _as_array(est.precisions_init, "precisions_init", shape, dtype)
        if not family.is_positive_definite(precisions):
            raise ValueError(
                f"precisions_init for covariance_type={family.name!r} must be "
                f"{family.precision_requirement}. "
                "Pass inverse covariances, e.g. np.linalg.inv(cov)."
            )
    return weights, means, precisions


def _as_array(value, name, shape, dtype):
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of shape {shape}.") from None
    if array.shape != tuple(shape):
        raise ValueError(f"{name} has shape {array.shape}, expected {tuple(shape)}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array
