"""The :class:`~gmm.BayesianGaussianMixture` codec.

The ``"model"`` section and its ``model.*`` members are those of a
:class:`~gmm.GaussianMixture` (:func:`gmm.persistence.mixture.encode_section`);
the ``"posterior"`` section adds the scalar priors and the prior type, and the
``posterior.*`` members the posterior's arrays (``weight_concentration_``,
``mean_precision_``, ``degrees_of_freedom_`` except for 'tied', where it is a
scalar in the metadata) and the prior arrays (``mean_prior_``,
``covariance_prior_``). Reading checks the shapes before reading, then the
values: the posterior's counts positive and finite, ``nu > D - 1``, the prior
covariance positive definite, and every check of a GaussianMixture's arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..bayesian import BayesianGaussianMixture, component_shape
from .file import Codec, ModelReader, cut
from .mixture import (
    _check_usable,
    check_params_match,
    encode_section,
    read_feature_names,
    read_fitted,
    set_fitted,
)
from .params import decode_params

_SCALAR_PRIORS = (
    "weight_concentration_prior_",
    "mean_precision_prior_",
    "degrees_of_freedom_prior_",
)


def encode(model: BayesianGaussianMixture, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``"model"`` and ``"posterior"`` sections; arrays go to ``arrays``."""
    check_is_fitted(model)
    section = encode_section(model, arrays)
    posterior: dict[str, Any] = {name: float(getattr(model, name)) for name in _SCALAR_PRIORS}
    concentration = model.weight_concentration_
    if isinstance(concentration, tuple):
        concentration = np.stack(concentration)
    arrays["posterior.weight_concentration_"] = np.asarray(concentration, dtype=np.float64)
    arrays["posterior.mean_precision_"] = np.asarray(model.mean_precision_, dtype=np.float64)
    if np.ndim(model.degrees_of_freedom_) == 0:
        posterior["degrees_of_freedom_"] = float(model.degrees_of_freedom_)
    else:
        arrays["posterior.degrees_of_freedom_"] = np.asarray(model.degrees_of_freedom_, np.float64)
    arrays["posterior.mean_prior_"] = np.asarray(model.mean_prior_, dtype=np.float64)
    # At least 1-D: the archive writes a 0-d array (spherical) as shape (1,).
    arrays["posterior.covariance_prior_"] = np.atleast_1d(
        np.asarray(model.covariance_prior_, dtype=np.float64)
    )
    return {"model": section, "posterior": posterior}


def decode(
    reader: ModelReader, metadata: dict[str, Any]
) -> tuple[BayesianGaussianMixture, set[str]]:
    """The fitted model, checked; and the members read. O(K·D³) for 'full'."""
    section = reader.section(metadata, "model")
    covariance_type, family, k, d, values, lower_bounds, used = read_fitted(reader, section)

    params, param_arrays = decode_params(
        reader, section.get("params"), "model", BayesianGaussianMixture
    )
    used |= param_arrays
    check_params_match(reader, params, covariance_type)
    model = BayesianGaussianMixture(**params)
    try:
        model._check_parameters(for_fit=False)
    except (TypeError, ValueError) as error:
        reader.fail(f"invalid constructor parameter: {cut(str(error))}")

    posterior = reader.section(metadata, "posterior")
    sticks = model.weight_concentration_prior_type == "dirichlet_process"
    component = component_shape(family, d)
    arrays = {
        "weight_concentration_": ((2, k) if sticks else (k,), np.float64),
        "mean_precision_": ((k,), np.float64),
        "mean_prior_": ((d,), np.float64),
        "covariance_prior_": (np.atleast_1d(np.zeros(component)).shape, np.float64),
    }
    tied = family.scatter_kind == "pooled"  # one shared Wishart: a scalar nu
    if not tied:
        arrays["degrees_of_freedom_"] = ((k,), np.float64)
    read = {name: reader.array(f"posterior.{name}", *spec) for name, spec in arrays.items()}
    used |= {f"posterior.{name}" for name in arrays}
    scalars = {name: float(reader.field(posterior, name, float)) for name in _SCALAR_PRIORS}
    nu = reader.field(posterior, "degrees_of_freedom_", float) if tied else None
    _check_posterior(reader, read, scalars, nu, family, d)

    set_fitted(reader, section, model, values, lower_bounds)
    for name, value in scalars.items():
        setattr(model, name, value)
    concentration = read.pop("weight_concentration_")
    model.weight_concentration_ = (concentration[0], concentration[1]) if sticks else concentration
    model.mean_precision_ = read.pop("mean_precision_")
    model.degrees_of_freedom_ = float(nu) if tied else read.pop("degrees_of_freedom_")
    model.mean_prior_ = read.pop("mean_prior_")
    prior = read.pop("covariance_prior_")
    model.covariance_prior_ = prior.reshape(component)[()]  # a float for 'spherical'
    _check_usable(reader, model, k)
    used |= read_feature_names(reader, model, d)
    return model, used


def _check_posterior(reader, read, scalars, nu, family, n_features) -> None:
    for name, value in {**read, **scalars}.items():
        if not np.all(np.isfinite(value)):
            reader.fail(f"{name} contains NaN or infinity")
    for name in ("weight_concentration_", "mean_precision_"):
        if np.any(read[name] <= 0):
            reader.fail(f"{name} must be > 0")
    if scalars["weight_concentration_prior_"] <= 0 or scalars["mean_precision_prior_"] <= 0:
        reader.fail("weight_concentration_prior_ and mean_precision_prior_ must be > 0")
    dof = read.get("degrees_of_freedom_", nu)
    if np.any(np.asarray(dof) <= n_features - 1) or scalars["degrees_of_freedom_prior_"] <= (
        n_features - 1
    ):
        reader.fail(f"degrees of freedom must be > n_features - 1 = {n_features - 1}")
    one = family.shape(1, n_features)
    if not family.is_positive_definite(np.reshape(read["covariance_prior_"], one)):
        reader.fail(f"covariance_prior_ must be {family.precision_requirement}")


#: BayesianGaussianMixture: encoder and decoder.
CODEC = Codec(BayesianGaussianMixture, encode, decode)
