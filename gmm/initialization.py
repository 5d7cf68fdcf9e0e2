"""Initial responsibilities, resolved by name through one registry.

Each initializer has the signature
``init(X, n_components, random_state, sample_weight) -> resp`` and returns
either hard labels, an int array of shape (n_samples,), or soft
responsibilities of shape (n_samples, n_components). The draws match
scikit-learn's ``GaussianMixture`` for the same ``RandomState`` when no
``sample_weight`` is given.

``init_params`` may also be a user's callable
``init(X, n_components, random_state) -> resp``; :func:`get_initializer` wraps
it so that its output is checked (shape, finite, non-negative, rows summing to
1) before EM uses it:

>>> import numpy as np
>>> init = get_initializer(lambda X, k, rs: np.eye(k)[np.arange(len(X)) % k])
>>> init(np.zeros((4, 1)), 2, np.random.RandomState(0), None)[:2]
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

from .registry import Registry

Initializer = Callable[[np.ndarray, int, np.random.RandomState, "np.ndarray | None"], np.ndarray]

_REGISTRY = Registry(
    "init_params", "init_params", ", or a callable init(X, n_components, random_state) -> resp"
)


def register(name: str) -> Callable[[Initializer], Initializer]:
    """Decorator adding an initializer to the registry under ``name``."""

    def add(func: Initializer) -> Initializer:
        _REGISTRY[name] = func
        return func

    return add


def init_methods() -> tuple[str, ...]:
    """Names of all registered initializers."""
    return _REGISTRY.names()


def get_initializer(name: str | Callable) -> Initializer:
    """Return the initializer called ``name``; the error lists the valid names.

    A callable ``init(X, n_components, random_state) -> resp`` is wrapped by
    :func:`from_callable`.
    """
    if callable(name):
        return from_callable(name)
    if name is None:
        raise ValueError(
            "init_params is None: this model was probably loaded from a file and fitted "
            "with a callable init_params, which files do not store. Set one with "
            "set_params(init_params=...) (a name such as 'kmeans', or the callable) to refit."
        )
    return _REGISTRY.lookup(name)


def from_callable(func: Callable) -> Initializer:
    """An initializer that calls ``func(X, n_components, random_state)`` and checks its result.

    The result must be an array of shape (n_samples, n_components), finite,
    non-negative, each row summing to 1 (to 1e-6); anything else raises a
    ValueError saying what is wrong. Sample weights are not passed to ``func``:
    they weigh its responsibilities in the M-step that follows. O(n·K) to check.
    """

    def init(X, n_components, random_state, sample_weight=None):
        resp = func(X, n_components, random_state)
        return check_responsibilities(resp, X.shape[0], n_components, X.dtype, func)

    init.__wrapped__ = func
    return init


def check_responsibilities(resp, n_samples: int, n_components: int, dtype, func=None):
    """Validate responsibilities from a user's ``init_params`` callable; return an array."""
    who = f"init_params callable {getattr(func, '__name__', func)!r}"
    try:
        resp = np.asarray(resp, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"The {who} must return a numeric array of shape (n_samples, n_components) = "
            f"({n_samples}, {n_components}), got {type(resp).__name__}."
        ) from None
    if resp.shape != (n_samples, n_components):
        raise ValueError(
            f"The {who} returned shape {resp.shape}, expected (n_samples, n_components) = "
            f"({n_samples}, {n_components}): one row of responsibilities per sample."
        )
    if not np.all(np.isfinite(resp)):
        raise ValueError(f"The {who} returned NaN or infinity; responsibilities must be finite.")
    if np.any(resp < 0):
        raise ValueError(
            f"The {who} returned negative responsibilities; they must be >= 0 "
            "(probabilities of each component, rows summing to 1)."
        )
    sums = resp.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-6)
    if bad.size:
        raise ValueError(
            f"The {who} returned rows that do not sum to 1 (row {int(bad[0])} sums to "
            f"{sums[bad[0]]:.6g}). Normalise them, e.g. resp / resp.sum(axis=1, keepdims=True), "
            "or return one-hot rows for a partition."
        )
    return resp.astype(dtype, copy=False)


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
