"""Covariance families, resolved by name through one registry.

>>> from gmm.covariance import get_family
>>> get_family("diag").n_parameters(n_components=3, n_features=2)
6
"""

from __future__ import annotations

from ..registry import Registry
from .base import CollapsedComponentError, CovarianceFamily
from .diag import Diag
from .full import Full
from .mclust import MODELS as MCLUST_MODELS
from .mclust import MULTIVARIATE as MCLUST_MULTIVARIATE
from .mclust import UNIVARIATE as MCLUST_UNIVARIATE
from .spherical import Spherical
from .tied import Tied

_REGISTRY = Registry("covariance_type", "covariance types")


def register(family: CovarianceFamily) -> CovarianceFamily:
    """Add a covariance family to the registry under ``family.name``.

    From then on ``covariance_type=family.name`` works in every estimator,
    :func:`gmm.sweep`, model files and the command line. Raises TypeError for
    an object that is not a :class:`CovarianceFamily` (abstract methods left
    unimplemented raise when it is instantiated) and ValueError for a name
    already taken.
    """
    if not isinstance(family, CovarianceFamily):
        raise TypeError(
            f"register() takes a CovarianceFamily instance, got {type(family).__name__}."
        )
    if not isinstance(family.name, str) or not family.name:
        raise ValueError("A covariance family needs a non-empty string `name` to be registered.")
    if family.name in _REGISTRY:
        raise ValueError(
            f"A covariance family named {family.name!r} is already registered; "
            "choose another name or unregister it first."
        )
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> CovarianceFamily:
    """Remove the family called ``name`` from the registry and return it."""
    get_family(name)  # the error lists the valid names
    return _REGISTRY.pop(name)


for _family in (Spherical(), Diag(), Full(), Tied()):
    register(_family)
# mclust's 14 models and its one-feature 'E', 'V', under mclust's names.
for _model in MCLUST_MODELS.values():
    register(_model())


def covariance_types(*, include_mclust: bool = False) -> tuple[str, ...]:
    """Names of the registered covariance families.

    By default scikit-learn's four and any family a user registered: what
    ``'all'`` means in :func:`gmm.sweep`. mclust's 16 models (see
    :func:`mclust_types`) are registered too and work everywhere by name;
    ``include_mclust=True`` lists them as well.
    """
    names = _REGISTRY.names()
    if include_mclust:
        return names
    builtin = set(MCLUST_MODELS)
    return tuple(name for name in names if name not in builtin)


def mclust_types(n_features: int | None = None) -> tuple[str, ...]:
    """mclust's model names, in mclust's order.

    The 14 multivariate models for ``n_features > 1``, the one-feature models
    'E' and 'V' for ``n_features == 1``, all 16 for None.

    >>> mclust_types(1)
    ('E', 'V')
    """
    if n_features is None:
        return MCLUST_MULTIVARIATE + MCLUST_UNIVARIATE
    return MCLUST_UNIVARIATE if n_features == 1 else MCLUST_MULTIVARIATE


def get_family(name: str) -> CovarianceFamily:
    """Return the registered family called ``name``.

    Raises
    ------
    ValueError
        If no family has that name; the message lists the valid names.
    """
    return _REGISTRY.lookup(name)


__all__ = [
    "CollapsedComponentError",
    "CovarianceFamily",
    "covariance_types",
    "get_family",
    "mclust_types",
    "register",
    "unregister",
]
