"""Initial responsibilities, resolved by name through one registry.

Each initializer has the signature
``init(X, n_components, random_state, sample_weight) -> resp`` and returns
either hard labels, an int array of shape (n_samples,), or soft
responsibilities of shape (n_samples, n_components). The draws match
scikit-learn's ``GaussianMixture`` for the same ``RandomState`` when no
``sample_weight`` is given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

Initializer = Callable[[np.ndarray, int, np.random.RandomState, "np.ndarray | None"], np.ndarray]

_REGISTRY: dict[str, Initializer] = {}


def register(name: str) -> Callable[[Initializer], Initializer]:
    """Decorator adding an initializer to the registry under ``name``."""

    def add(func: Initializer) -> Initializer:
        _REGISTRY[name] = func
        return func

    return add


def init_methods() -> tuple[str, ...]:
    """Names of all registered initializers."""
    return tuple(_REGISTRY)


def get_initializer(name: str) -> Initializer:
    """Return the initializer called ``name``; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in _REGISTRY)
        raise ValueError(f"Unknown init_params {name!r}. Valid init_params are: {valid}.") from None


@register("kmeans")
def kmeans(X, n_components, random_state, sample_weight=None):
    """Labels of one k-means run (Lloyd, k-means++ seeding). O(n·K·D) per iteration."""
    model = KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
    return model.fit(X, sample_weight=sample_weight).labels_


@register("k-means++")
def kmeans_plus_plus(X, n_components, random_state, sample_weight=None):
    """One-hot rows at the k-means++ seeds; all other rows start with no weight."""
    _, indices = kmeans_plusplus(
        X, n_components, random_state=random_state, sample_weight=sample_weight
    )
    return _one_hot_at(indices, X.shape[0], n_components, X.dtype)


@register("random")
def random(X, n_components, random_state, sample_weight=None):
    """Uniform random responsibilities, normalised per row. O(n·K) memory."""
    resp = random_state.uniform(size=(X.shape[0], n_components)).astype(X.dtype)
    resp /= resp.sum(axis=1)[:, None]
    return resp


@register("random_from_data")
def random_from_data(X, n_components, random_state, sample_weight=None):
    """One-hot rows at K distinct random rows (drawn in proportion to the weight)."""
    p = None
    if sample_weight is not None:
        p = sample_weight / sample_weight.sum()
    indices = random_state.choice(X.shape[0], size=n_components, replace=False, p=p)
    return _one_hot_at(indices, X.shape[0], n_components, X.dtype)


def _one_hot_at(indices, n_samples, n_components, dtype):
    resp = np.zeros((n_samples, n_components), dtype=dtype)
    resp[indices, np.arange(n_components)] = 1
    return resp
