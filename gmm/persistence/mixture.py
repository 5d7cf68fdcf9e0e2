"""The :class:`~gmm.GaussianMixture` codec: its arrays, scalars and parameters.

Members ``model.<attribute>.npy`` hold the fitted arrays, bit for bit; the
metadata section ``"model"`` holds the covariance type, K, D, the dtype, the
scalar fitted attributes and the constructor parameters. A model in the middle
of a stream (:meth:`~gmm.GaussianMixture.partial_fit`) also stores its running
statistics, bit for bit (members ``model.online.<name>.npy`` and the field
``"online"``: the stream's counters and totals, floats written by JSON's exact
round trip), and a covariance family's state when it is an array (member
``model.family_state.npy``), so a loaded model continues the stream exactly. Reading checks every
array's shape and dtype against K, D and the family before reading it, then
the values: finite, weights in [0, 1] summing to 1, and the family's own checks
of covariances, precisions and their Cholesky factors
(``CovarianceFamily.check_fitted``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import online, validation
from ..covariance import get_family
from ..covariance._matrices import is_spd
from ..estimator import GaussianMixture
from ..prior import MATRIX_SCALE, ConjugatePrior, prior_model
from ..statistics import KINDS, Scatter
from .file import Codec, ModelReader, cut, names_array, shown
from .params import decode_params, encode_params

_MODEL_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)


def encode(model: GaussianMixture, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``"model"`` section of a fitted GaussianMixture; its arrays go to ``arrays``."""
    check_is_fitted(model)
    return {"model": encode_section(model, arrays)}


def encode_section(mixture: GaussianMixture, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``"model"`` section of a fitted mixture (no fitted check: the caller made it)."""
    fitted = getattr(mixture, "_fitted_covariance_type", mixture.covariance_type)
    if fitted != mixture.covariance_type:  # load would refuse the file (check_params_match)
        raise ValueError(
            f"This model's fitted arrays are of covariance_type={fitted!r}, but its parameter "
            f"now says {mixture.covariance_type!r} (changed by set_params after the fit). Set "
            f"it back with set_params(covariance_type={fitted!r}), or refit, before saving."
        )
    for name in _MODEL_ARRAYS:
        arrays[f"model.{name}"] = np.asarray(getattr(mixture, name))
    arrays["model.lower_bounds_"] = np.asarray(mixture.lower_bounds_, dtype=np.float64)
    if hasattr(mixture, "feature_names_in_"):
        arrays["model.feature_names_in_"] = names_array(mixture.feature_names_in_)
    params = encode_params(mixture.get_params(deep=False), arrays)
    n_components, n_features = mixture.means_.shape
    state = getattr(mixture, "_family_state", None)
    extra = {}
    if isinstance(state, np.ndarray) and state.dtype.kind == "f":
        arrays["model.family_state"] = state
    elif isinstance(state, dict):  # an iterative mclust M-step's warm start
        extra["family_state"] = _encode_state(state, arrays)
    if getattr(mixture, "prior_", None) is not None:
        for name, value in mixture.prior_.as_dict().items():
            # Numbers as (1,): the container stores no 0-d arrays.
            arrays[f"model.prior.{name}"] = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if getattr(mixture, "_online", None) is not None:
        extra["online"] = _encode_online(mixture, arrays)
    if hasattr(mixture, "n_rows_omitted_"):  # also after set_params(nan_policy=...)
        extra["n_rows_omitted_"] = int(mixture.n_rows_omitted_)
    return {
        **extra,
        "covariance_type": str(mixture.covariance_type),
        "n_components": int(n_components),
        "n_features": int(n_features),
        "dtype": mixture.means_.dtype.name,
        "params": params,
        "converged_": bool(mixture.converged_),
        "n_iter_": int(mixture.n_iter_),
        "lower_bound_": float(mixture.lower_bound_),
        "n_features_in_": int(mixture.n_features_in_),
    }


def read_fitted(reader: ModelReader, section: dict[str, Any]):
    """The header and fitted arrays every mixture's ``"model"`` section holds, checked.

    Returns ``(covariance_type, family, n_components, n_features, values,
    lower_bounds, used)``: ``values`` maps the five fitted array names to their
    arrays, ``used`` the members read. O(K·D³) time for the checks of 'full'.
    """
    covariance_type = reader.field(section, "covariance_type", str)
    try:
        family = get_family(covariance_type)
    except ValueError as error:
        reader.fail(str(error))
    k = reader.field(section, "n_components", int)
    d = reader.field(section, "n_features", int)
    if k < 1 or d < 1:
        reader.fail(f"n_components and n_features must be >= 1, got {k} and {d}")
    dtype_name = reader.field(section, "dtype", str)
    if dtype_name not in ("float32", "float64"):
        reader.fail(f"dtype must be float32 or float64, got {shown(dtype_name)}")
    dtype = np.dtype(dtype_name)
    cov_shape = family.shape(k, d)
    shapes = {
        "weights_": (k,),
        "means_": (k, d),
        "covariances_": cov_shape,
        "precisions_": cov_shape,
        "precisions_cholesky_": cov_shape,
    }
    values = {name: reader.array(f"model.{name}", shape, dtype) for name, shape in shapes.items()}
    used = {f"model.{name}" for name in shapes}
    n_iter = reader.field(section, "n_iter_", int)
    if n_iter < 0:
        reader.fail(f"n_iter_ must be >= 0, got {n_iter}")
    lower_bounds = reader.array("model.lower_bounds_", (n_iter,), np.float64)
    used.add("model.lower_bounds_")
    _check_values(reader, family, values, lower_bounds, dtype)
    return covariance_type, family, k, d, values, lower_bounds, used


def set_fitted(reader: ModelReader, section: dict[str, Any], model, values, lower_bounds) -> None:
    """Give ``model`` the arrays of :func:`read_fitted` and the section's fitted scalars."""
    for name, value in values.items():
        setattr(model, name, value)
    d = values["means_"].shape[1]
    model.lower_bounds_ = lower_bounds.tolist()
    model.converged_ = reader.field(section, "converged_", bool)
    model.n_iter_ = len(lower_bounds)
    model.lower_bound_ = float(reader.field(section, "lower_bound_", float))
    if not model.lower_bound_ < np.inf:  # NaN or +inf; -inf is a fit of max_iter=0
        reader.fail(f"lower_bound_ is {model.lower_bound_}, not a number below +inf")
    if reader.field(section, "n_features_in_", int) != d:
        reader.fail(f"n_features_in_ is {section['n_features_in_']}, the means have {d}")
    model.n_features_in_ = d


def check_params_match(reader: ModelReader, params: dict[str, Any], covariance_type: str):
    """The stored constructor parameters must name the family of the fitted arrays.

    Both ``n_components`` and ``covariance_type`` must be stored (a missing one
    would take the constructor's default). ``n_components`` may differ from
    the fitted K: a ``warm_start`` refit after ``set_params(n_components=...)``
    keeps the components it started from, as scikit-learn does, and the
    parameter takes effect at the next fit from scratch.
    """
    if params.get("n_components") is None:
        reader.fail("params say n_components=None; a model file stores the parameter")
    if params.get("covariance_type") != covariance_type:
        reader.fail(
            f"params say covariance_type={shown(params.get('covariance_type'))}, the fitted "
            f"arrays are {covariance_type!r} (changed by set_params after the fit? refit, "
            "or set it back, before saving)"
        )


def read_feature_names(reader: ModelReader, model, n_features: int) -> set[str]:
    """``feature_names_in_`` when the file holds it; the members read."""
    if "model.feature_names_in_" not in reader.members:
        return set()
    model.feature_names_in_ = reader.names_array("model.feature_names_in_", n_features)
    return {"model.feature_names_in_"}


def decode(reader: ModelReader, metadata: dict[str, Any]) -> tuple[GaussianMixture, set[str]]:
    """The fitted GaussianMixture of the ``"model"`` section, checked; and the members read.

    O(K·D³) time for the checks of 'full' covariances.
    """
    section = reader.section(metadata, "model")
    covariance_type, family, k, d, values, lower_bounds, used = read_fitted(reader, section)
    params, param_arrays = decode_params(reader, section.get("params"), "model", GaussianMixture)
    used |= param_arrays
    check_params_match(reader, params, covariance_type)
    model = GaussianMixture(**params)
    try:
        validation.check_parameters(model, for_fit=False)
    except (TypeError, ValueError) as error:
        reader.fail(f"invalid constructor parameter: {cut(str(error))}")
    set_fitted(reader, section, model, values, lower_bounds)
    model._fitted_covariance_type = model.covariance_type
    model._fitted_reg_covar = model.reg_covar
    if "model.family_state" in reader.members:
        shape, _, state_dtype = reader.header("model.family_state")
        if state_dtype.kind != "f":
            reader.fail(f"model.family_state must hold floats, got {state_dtype}")
        model._family_state = reader.array("model.family_state", shape, state_dtype)
        used.add("model.family_state")
    if "family_state" in section:
        model._family_state, state_members = _decode_state(reader, section["family_state"], k, d)
        used |= state_members
    if "model.prior.mean" in reader.members:
        used |= _decode_prior(reader, model, family, d)
    if "online" in section:
        used |= _decode_online(reader, section["online"], model, family, k, d)
    if "n_rows_omitted_" in section:
        omitted = reader.field(section, "n_rows_omitted_", int)
        if omitted < 0:
            reader.fail(f"n_rows_omitted_ must be >= 0, got {omitted}")
        model.n_rows_omitted_ = omitted
    _check_usable(reader, model, k)
    used |= read_feature_names(reader, model, d)
    return model, used


def _decode_prior(reader: ModelReader, model, family, d: int) -> set[str]:
    """``prior_``, the conjugate prior's values the fit computed from its data."""
    # prior_ is fitted state: a set_params(prior=None) after the fit keeps it.
    matrix = prior_model(family) in MATRIX_SCALE
    shapes = {"shrinkage": (1,), "mean": (d,), "dof": (1,), "scale": (d, d) if matrix else (1,)}
    values = {
        name: reader.array(f"model.prior.{name}", shape, np.float64)
        for name, shape in shapes.items()
    }
    if not all(np.all(np.isfinite(v)) for v in values.values()):
        reader.fail("the prior's values must be finite")
    if values["shrinkage"] < 0 or values["dof"] <= 0:
        reader.fail("the prior needs shrinkage >= 0 and dof > 0")
    scale = values["scale"]
    if (matrix and not is_spd(scale[None])) or (not matrix and scale <= 0):
        reader.fail("the prior's scale must be positive (definite)")
    model.prior_ = ConjugatePrior(
        float(values["shrinkage"][0]),
        values["mean"],
        float(values["dof"][0]),
        scale if matrix else scale.reshape(()),
    )
    return {f"model.prior.{name}" for name in shapes}


_ONLINE_ARRAYS = ("nk", "means", "covariances")


#: The warm start an iterative mclust M-step keeps between iterations (a dict):
#: its arrays' shapes from (n_components, n_features), and its numbers.
_STATE_ARRAYS = {"volumes": lambda k, d: (k,), "orientation": lambda k, d: (d, d)}
_STATE_NUMBERS = ("objective",)


def _encode_state(state: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """A family's dict state: arrays to ``arrays``, finite numbers returned.

    The state only warm-starts the next M-step (``partial_fit``, ``warm_start``);
    a key this format does not know is refused here, at save, rather than lost.
    """
    numbers = {}
    for key, value in state.items():
        if key in _STATE_ARRAYS:
            arrays[f"model.family_state.{key}"] = np.asarray(value)
        elif key in _STATE_NUMBERS:
            if value is not None and math.isfinite(value):
                numbers[key] = float(value)
        else:
            raise ValueError(
                f"The covariance family's state holds {key!r}, which the model file "
                f"format does not know (known: {sorted([*_STATE_ARRAYS, *_STATE_NUMBERS])})."
            )
    return {"arrays": sorted(key for key in state if key in _STATE_ARRAYS), "numbers": numbers}


def _decode_state(reader: ModelReader, section, k: int, d: int) -> tuple[dict, set[str]]:
    """A family's dict state, checked (known keys, shapes, finite floats), and its members."""
    if not isinstance(section, dict) or set(section) != {"arrays", "numbers"}:
        reader.fail("metadata field 'family_state' must hold 'arrays' and 'numbers'")
    names, numbers = section["arrays"], section["numbers"]
    if not isinstance(names, list) or not isinstance(numbers, dict):
        reader.fail("metadata field 'family_state' must hold a list and an object")
    state: dict[str, Any] = {}
    used = set()
    for key in names:
        if key not in _STATE_ARRAYS or key in state:
            reader.fail(f"unknown or repeated family state array {shown(key)}")
        name = f"model.family_state.{key}"
        _, _, dtype = reader.header(name)
        if dtype not in (np.float32, np.float64):
            reader.fail(f"{name} must hold float32 or float64, got {dtype}")
        value = reader.array(name, _STATE_ARRAYS[key](k, d), dtype)
        if not np.all(np.isfinite(value)):
            reader.fail(f"{name} holds values that are not finite")
        state[key] = value
        used.add(name)
    for key in numbers:
        if key not in _STATE_NUMBERS:
            reader.fail(f"unknown family state number {shown(key)}")
        state[key] = float(reader.field(numbers, key, float))
    return state, used


def _encode_online(mixture: GaussianMixture, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The running statistics of stepwise EM: arrays to ``arrays``, the rest returned."""
    state = mixture._online
    for name in _ONLINE_ARRAYS:
        arrays[f"model.online.{name}"] = np.asarray(getattr(state.scatter, name))
    return {
        "kind": state.scatter.kind,
        "scale": float(state.scale),
        "weight_seen": float(state.weight_seen),
        "log_likelihood": float(state.log_likelihood),
        "n_batches_seen_": int(mixture.n_batches_seen_),
        "n_samples_seen_": int(mixture.n_samples_seen_),
    }


def _decode_online(reader: ModelReader, section, model, family, k: int, d: int) -> set[str]:
    """Check and restore the running statistics on ``model``; return the members read."""
    if not isinstance(section, dict):
        reader.fail("metadata field 'online' is not a JSON object")
    kind = reader.field(section, "kind", str)
    if kind not in KINDS or kind != family.scatter_kind:
        reader.fail(
            f"online statistics of kind {shown(kind)}, but {family.name!r} uses "
            f"{family.scatter_kind!r}"
        )
    covariance_shape = {"full": (k, d, d), "diagonal": (k, d), "pooled": (d, d)}[kind]
    shapes = {"nk": (k,), "means": (k, d), "covariances": covariance_shape}
    values = {
        name: reader.array(f"model.online.{name}", shape, np.float64)
        for name, shape in shapes.items()
    }
    totals = {name: float(reader.field(section, name, float)) for name in ("scale", "weight_seen")}
    log_likelihood = float(reader.field(section, "log_likelihood", float))
    counts = {
        name: reader.field(section, name, int) for name in ("n_batches_seen_", "n_samples_seen_")
    }
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            reader.fail(f"online {name} contains NaN or infinity")
    if np.any(values["nk"] <= 0):
        reader.fail("online nk must be positive")
    if not all(np.isfinite(v) and v > 0 for v in totals.values()) or np.isnan(log_likelihood):
        reader.fail("online scale and weight_seen must be finite and positive")
    if counts["n_batches_seen_"] < 1 or counts["n_samples_seen_"] < counts["n_batches_seen_"]:
        reader.fail(f"online counters are inconsistent: {counts}")
    if counts["n_batches_seen_"] != model.n_iter_:
        reader.fail("n_iter_ must equal n_batches_seen_ for a model fitted online")
    scatter = Scatter(values["nk"], values["means"], values["covariances"], kind)
    model._online = online.OnlineState(
        scatter, totals["scale"], totals["weight_seen"], log_likelihood
    )
    model.n_batches_seen_ = counts["n_batches_seen_"]
    model.n_samples_seen_ = counts["n_samples_seen_"]
    return {f"model.online.{name}" for name in shapes}


def _check_values(reader: ModelReader, family, values, lower_bounds, dtype) -> None:
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            reader.fail(f"{name} contains NaN or infinity")
    if np.any(np.isnan(lower_bounds)):
        reader.fail("lower_bounds_ contains NaN")
    weights = values["weights_"]
    # EM's weights carry rounding: a single component's weight can be 1 + eps.
    tolerance = max(1e-6, 4 * weights.size * float(np.finfo(dtype).eps))
    if np.any(weights < 0) or np.any(weights > 1 + tolerance):
        reader.fail("weights_ must lie in [0, 1]")
    total = float(np.sum(weights, dtype=np.float64))
    if abs(total - 1.0) > tolerance:
        reader.fail(f"weights_ sum to {total!r}, not 1")
    try:
        family.check_fitted(
            values["covariances_"],
            values["precisions_"],
            values["precisions_cholesky_"],
            dtype,
        )
    except ValueError as error:
        reader.fail(str(error))


def _check_usable(reader: ModelReader, model: GaussianMixture, k: int) -> None:
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
        reader.fail(
            "the parameters are too large to compute with (non-finite "
            "log-densities at the model's own means)"
        )


#: GaussianMixture: encoder and decoder.
CODEC = Codec(GaussianMixture, encode, decode)
