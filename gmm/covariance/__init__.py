"""Covariance families, resolved by name through one registry.

>>> from gmm.covariance import get_family
>>> get_family("diag").n_parameters(n_components=3, n_features=2)
6
"""

from __future__ import annotations

from .base import CollapsedComponentError, CovarianceFamily
from .diag import Diag
from .full import Full
from .spherical import Spherical
from .tied import Tied

_REGISTRY: dict[str, CovarianceFamily] = {}


def register(family: CovarianceFamily) -> CovarianceFamily:
    """Add a covariance family to the registry under ``family.name``."""
    _REGISTRY[family.name] = family
    return family


for _family in (Spherical(), Diag(), Full(), Tied()):
    register(_family)


def covariance_types() -> tuple[str, ...]:
    """Names of all registered covariance families."""
    return tuple(_REGISTRY)


def get_family(name: str) -> CovarianceFamily:
    """Return the registered family called ``name``.

    Raises
    ------
    ValueError
        If no family has that name; the message lists the valid names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in _REGISTRY)
        raise ValueError(
            f"Unknown covariance_type {name!r}. Valid covariance types are: {valid}."
        ) from None


__all__ = [
    "CollapsedComponentError",
    "CovarianceFamily",
    "covariance_types",
    "get_family",
    "register",
]
