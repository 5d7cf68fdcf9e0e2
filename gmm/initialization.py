"""Initial responsibilities, resolved by name through one registry.

Each initializer has the signature
``init(X, n_components, random_state, sample_weight) -> resp`` and returns
either hard labels, an int array of shape (n_samples,), or soft
responsibilities of shape (n_samples, n_components). The draws match
scikit-learn's ``GaussianMixture`` for the same ``RandomState`` when no
``sample_weight`` is given.

``init_params`` may also be a user's callable
``init(X, n_components, random_state) -> resp``; :func:`get_initializer` wraps
it so that its output is checked before EM uses it: integer labels (shape,
range) or responsibilities (shape, finite, non-negative, rows summing to 1):

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
from sklearn.utils.extmath import row_norms

from .hierarchical import cached_hc
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

    The result must be either integer labels, an array of shape (n_samples,)
    with values in 0..n_components-1 (a partition: the cheapest start, no
    (n, K) matrix), or responsibilities, an array of shape (n_samples,
    n_components), finite, non-negative, each row summing to 1 (to 1e-6);
    anything else raises a ValueError saying what is wrong. Sample weights are
    not passed to ``func``: they weigh its responsibilities in the M-step that
    follows. O(n) to check labels, O(n·K) responsibilities.
    """

    def init(X, n_components, random_state, sample_weight=None):
        resp = func(X, n_components, random_state)
        return check_responsibilities(resp, X.shape[0], n_components, X.dtype, func)

    init.__wrapped__ = func
    return init


def check_responsibilities(resp, n_samples: int, n_components: int, dtype, func=None):
    """Validate labels or responsibilities from a user's ``init_params`` callable.

    Integer labels of shape (n_samples,) come back as ``intp`` labels; anything
    else is read as responsibilities of shape (n_samples, n_components) and
    comes back in ``dtype``. O(n) time for labels; O(n·K) in a few reductions
    for responsibilities, with no (n, K) temporary unless the values are not
    finite.
    """
    who = f"init_params callable {getattr(func, '__name__', func)!r}"
    try:
        labels = np.asarray(resp)
    except (TypeError, ValueError):  # ragged: refused below
        labels = None
    if labels is not None and labels.ndim == 1:  # a pandas Series, a memoryview, a list...
        return _check_labels(labels, n_samples, n_components, who)
    try:
        resp = np.asarray(resp, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"The {who} must return a numeric array of shape (n_samples, n_components) = "
            f"({n_samples}, {n_components}), or integer labels of shape ({n_samples},); "
            f"got {type(resp).__name__}."
        ) from None
    if resp.shape != (n_samples, n_components):
        raise ValueError(
            f"The {who} returned shape {resp.shape}, expected (n_samples, n_components) = "
            f"({n_samples}, {n_components}): one row of responsibilities per sample."
        )
    # Reductions without (n, K) temporaries: a finite sum has only finite entries
    # (finite entries whose sum overflows take the elementwise check).
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(resp.sum()) or np.all(np.isfinite(resp))
    if not finite:
        raise ValueError(f"The {who} returned NaN or infinity; responsibilities must be finite.")
    if resp.size and resp.min() < 0:
        raise ValueError(
            f"The {who} returned negative responsibilities; they must be >= 0 "
            "(probabilities of each component, rows summing to 1)."
        )
    with np.errstate(over="ignore"):  # finite entries whose sum overflows: not 1 below
        sums = resp.sum(axis=1)  # not a BLAS product: its woken threads slowed the fit
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-6)
    if bad.size:
        raise ValueError(
            f"The {who} returned rows that do not sum to 1 (row {int(bad[0])} sums to "
            f"{sums[bad[0]]:.6g}). Normalise them, e.g. resp / resp.sum(axis=1, keepdims=True), "
            "or return one-hot rows for a partition."
        )
    return resp.astype(dtype, copy=False)


def _check_labels(labels: np.ndarray, n_samples: int, n_components: int, who: str) -> np.ndarray:
    """``labels`` as ``intp`` if they are integers 0..n_components-1, one per row; else raise."""
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"The {who} returned a 1-D array of dtype {labels.dtype}: a 1-D result must be "
            f"integer labels in 0..{n_components - 1} (e.g. labels.astype(int)); soft "
            f"responsibilities have shape (n_samples, n_components) = ({n_samples}, "
            f"{n_components})."
        )
    if labels.shape[0] != n_samples:
        raise ValueError(
            f"The {who} returned {labels.shape[0]} labels, expected one per sample ({n_samples})."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_components):
        bad = int(np.flatnonzero((labels < 0) | (labels >= n_components))[0])
        raise ValueError(
            f"The {who} returned label {labels[bad]} (row {bad}); labels must be in "
            f"0..{n_components - 1} for n_components={n_components}."
        )
    return labels.astype(np.intp, copy=False)


@register("kmeans")
def kmeans(X, n_components, random_state, sample_weight=None):
    """Labels of one k-means run (Lloyd, k-means++ seeding), scikit-learn's to the bit.

    The labels of ``KMeans(n_components, n_init=1, random_state=random_state)``
    (what scikit-learn's ``GaussianMixture`` starts from), computed by
    :class:`LeanKMeans`: its tolerance is read in row blocks instead of through
    a variance temporary as large as X. Time O(n·K·D) per Lloyd iteration;
    memory one centred copy of X (scikit-learn's) plus O(n) (was two copies).
    """
    model = LeanKMeans(n_clusters=n_components, n_init=1, random_state=random_state)
    return model.fit(X, sample_weight=sample_weight).labels_


#: Bytes of X read at once by :func:`column_variances`.
VARIANCE_BLOCK_BYTES = 2 * 2**20


class LeanKMeans(KMeans):
    """scikit-learn's ``KMeans`` without its second copy of X, and a leaner seeding.

    ``KMeans.fit`` holds its centred copy of X and, while it computes the
    relative tolerance ``mean(var(X, axis=0)) · tol``, the temporary
    ``X - mean`` of ``np.var``: the peak of a fit of 2,000,000 × 20 rows was two
    copies of X (614 MB). Here the tolerance comes from :func:`column_variances`
    (the same numbers, bit for bit, in row blocks), and the k-means++ seeding of
    dense float64 data from :func:`lean_kmeans_plusplus` (the same centres, bit
    for bit, holding 5 floats a row where scikit-learn's holds 8 at K = 20);
    everything else is scikit-learn's own ``fit``, so the labels
    and centres are those of ``KMeans`` with the same parameters.
    """

    def _init_centroids(
        self,
        X,
        x_squared_norms,
        init,
        random_state,
        sample_weight,
        init_size=None,
        n_centroids=None,
    ):
        lean = (
            isinstance(init, str)
            and init == "k-means++"
            and (init_size is None or init_size >= X.shape[0])
            and isinstance(X, np.ndarray)
            and X.dtype == np.float64
            and x_squared_norms.dtype == np.float64
        )
        if not lean:  # sparse, float32 (scikit-learn upcasts in chunks), or a subsample
            return super()._init_centroids(
                X, x_squared_norms, init, random_state, sample_weight, init_size, n_centroids
            )
        n_clusters = self.n_clusters if n_centroids is None else n_centroids
        centers, _ = lean_kmeans_plusplus(
            X, n_clusters, x_squared_norms, sample_weight, random_state
        )
        return centers

    def _check_params_vs_input(self, X, *args, **kwargs):
        tol = self.tol
        self.tol = 0  # scikit-learn skips its variance pass for tol == 0
        try:
            super()._check_params_vs_input(X, *args, **kwargs)
        finally:
            self.tol = tol
        if tol != 0 and isinstance(X, np.ndarray) and X.flags.c_contiguous:
            self._tol = np.mean(column_variances(X)) * tol
        elif tol != 0:  # what the validated data never is (sparse, or another layout)
            from sklearn.cluster._kmeans import _tolerance

            self._tol = _tolerance(X, tol)


def lean_kmeans_plusplus(
    X: np.ndarray,
    n_clusters: int,
    x_squared_norms: np.ndarray,
    sample_weight: np.ndarray,
    random_state: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's greedy k-means++ seeding of dense float64 X, bit for bit, leaner.

    The same draws from ``random_state`` and the same arithmetic as
    ``sklearn.cluster.kmeans_plusplus`` (``2 + int(log K)`` candidates a seed;
    squared distances ``(-2 c'x + |c|²) + |x|²`` clipped at 0, the candidates'
    potentials as the same matrix products), so the centres and indices are
    scikit-learn's. The closest distances are copied out of the best
    candidate's into one (1, n) buffer, so the previous candidates' (T, n) distances are not held
    while the next ones are formed.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    n_clusters : int
    x_squared_norms : ndarray of shape (n_samples,), float64
        ``|x|²`` of every row.
    sample_weight : ndarray of shape (n_samples,)
    random_state : RandomState

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
        Rows of X the centres are.

    Time O(n·K·D·log K); memory about (T + 1)·n floats besides X for T
    candidates (scikit-learn's: 2T·n).
    """
    n_samples, n_features = X.shape
    trials = 2 + int(np.log(n_clusters))
    norms = x_squared_norms.reshape(1, -1)

    def squared_distances(rows: np.ndarray) -> np.ndarray:
        candidates = X[rows]
        distances = candidates @ X.T
        distances *= -2
        distances += row_norms(candidates, squared=True)[:, None]
        distances += norms
        return np.maximum(distances, 0, out=distances)

    centers = np.empty((n_clusters, n_features), dtype=X.dtype)
    indices = np.full(n_clusters, -1, dtype=int)
    first = random_state.choice(n_samples, p=sample_weight / sample_weight.sum())
    centers[0], indices[0] = X[first], first
    closest = squared_distances(np.array([first]))  # (1, n)
    potential = closest @ sample_weight
    for c in range(1, n_clusters):
        draws = random_state.uniform(size=trials) * potential
        candidates = np.searchsorted(np.cumsum(sample_weight * closest), draws)
        np.clip(candidates, None, closest.size - 1, out=candidates)  # rounding at the end
        distances = squared_distances(candidates)
        np.minimum(closest, distances, out=distances)
        potentials = distances @ sample_weight.reshape(-1, 1)
        best = np.argmin(potentials)
        potential = potentials[best]
        closest[0] = distances[best]  # copied out, in place
        centers[c], indices[c] = X[candidates[best]], candidates[best]
        del distances  # not held while the next candidates' are formed
    return centers, indices


def column_variances(X: np.ndarray, block_rows: int | None = None) -> np.ndarray:
    """``np.var(X, axis=0)`` of a C-contiguous 2-D X, bit for bit, read in row blocks.

    numpy reduces a C-ordered array of several columns over its first axis row after row (a
    sequential sum per column, no pairwise blocks), so carrying the partial
    sums from one block into the next (as the first row of the next block)
    adds the same numbers in the same order. The mean and the squared
    deviations are in X's dtype, as ``np.var``'s. Time O(n·D), two passes;
    memory O(block_rows·D) (:data:`VARIANCE_BLOCK_BYTES` by default) instead
    of np.var's (n, D) temporary (one column: ``np.var`` itself, which sums it
    pairwise).

    >>> X = np.random.default_rng(0).standard_normal((1000, 3))
    >>> bool(np.array_equal(column_variances(X, block_rows=64), np.var(X, axis=0)))
    True
    """
    n, d = X.shape
    if d == 1:  # one column is contiguous: numpy sums it pairwise, with an (n, 1) temporary
        return np.var(X, axis=0)
    if block_rows is None:
        block_rows = VARIANCE_BLOCK_BYTES // (d * X.dtype.itemsize)
    rows = max(1, block_rows)
    buffer = np.empty((min(rows, n) + 1, d), dtype=X.dtype)

    def total(transform) -> np.ndarray:
        carry = np.zeros(d, dtype=X.dtype)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            block = buffer[: stop - start + 1]
            block[0] = carry
            transform(X[start:stop], block[1:])
            carry = np.add.reduce(block, axis=0)
        return carry

    def copy(rows_in, out):
        out[...] = rows_in

    mean = total(copy) / n

    def squared_deviation(rows_in, out):
        np.subtract(rows_in, mean, out=out)
        np.multiply(out, out, out=out)

    return total(squared_deviation) / n


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


@register("hc")
def hierarchical(X, n_components, random_state, sample_weight=None):
    """mclust's start: the partition at K of its model-based hierarchical clustering.

    As ``mclustBIC`` does it: the tree of :func:`gmm.hierarchical.hc` with model 'VVV'
    ('EII' when there are no more rows than features) on the 'SVD'
    transformation of the data, cut at ``n_components``; on one feature,
    mclust's quantile classes (:func:`quantile_classes`) instead. With more
    than :data:`gmm.hierarchical.SUBSET` rows the tree is built on a random subset of
    that many rows (drawn with ``random_state``): the subset's partition gives
    Gaussian components ('full' covariances, weighted by ``sample_weight``),
    and an E-step with them gives responsibilities for every row. mclust's
    M-step on the subset uses the model being fitted; for exactly that, pass
    ``init_sample_size=2000`` to the estimator, which then runs the subset
    M-step with its own covariance family and the E-step on all rows itself
    (``sweep(covariance_types='mclust')`` does so by default).

    Deterministic for at most 2,000 rows. The tree does not use
    ``sample_weight``. Cost: the tree (O(m²) memory for m = min(n, 2000)
    rows; see :func:`gmm.hierarchical.hc`), reused across calls on the same data (a
    sweep builds it once); with a subset, O(n·K·D²) for the E-step.
    """
    n_samples, n_features = X.shape
    if n_features == 1:
        return quantile_classes(X[:, 0], n_components)
    model = "VVV" if n_samples > n_features else "EII"
    tree = cached_hc(X, model, "SVD", random_state)
    if n_components > tree.n_initial:
        raise ValueError(
            f"init_params='hc' cannot make {n_components} clusters from a tree of "
            f"{tree.n_initial} rows; lower n_components or use another init_params."
        )
    labels = tree.labels(n_components)
    if not tree.subsampled:
        return labels
    w = None if sample_weight is None else sample_weight[tree.rows]
    return _responsibilities_from_partition(X, X[tree.rows], labels, n_components, w).astype(
        X.dtype, copy=False
    )


def quantile_classes(x: np.ndarray, n_classes: int) -> np.ndarray:
    """mclust's ``qclass``: classes between quantiles of one feature, labels 0..K-1.

    The cuts are K + 1 distinct sample quantiles (more are taken until K + 1
    are distinct, then the cuts closing the narrowest gaps are dropped). O(n log n).

    >>> quantile_classes(np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0]), 2).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    x = np.asarray(x, dtype=np.float64)
    if np.unique(x).size < n_classes:
        raise ValueError(
            f"init_params='hc' on one feature needs at least {n_classes} distinct values "
            f"for {n_classes} components; the feature has {np.unique(x).size}."
        )
    eps = np.std(x, ddof=1) * np.sqrt(np.finfo(np.float64).eps)
    count = n_classes
    cuts = np.array([])
    while cuts.size < n_classes + 1:
        count += 1
        cuts = np.unique(np.quantile(x, np.linspace(0, 1, count)))
    if cuts.size > n_classes + 1:
        drop = np.argsort(np.diff(cuts), kind="stable")[: cuts.size - n_classes - 1]
        cuts = np.delete(cuts, drop)
    cuts[0], cuts[-1] = x.min() - eps, x.max() + eps
    return np.clip(np.searchsorted(cuts, x, side="right") - 1, 0, n_classes - 1)


def _responsibilities_from_partition(X, X_part, labels, n_components, sample_weight):
    """M-step ('full', reg 1e-6) on a labelled subset, then an E-step on every row of X.

    O(m·D² + K·D³) for the M-step, O(n·K·D²) time and O(n·K) memory for the E-step.
    """
    X_part = np.asarray(X_part, dtype=np.float64)
    w = np.ones(X_part.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    d = X_part.shape[1]
    log_prob = np.empty((X.shape[0], n_components))
    total = w.sum()
    for k in range(n_components):
        member = labels == k
        wk = w[member]
        nk = wk.sum()
        mean = wk @ X_part[member] / nk
        centred = X_part[member] - mean
        cov = (centred * wk[:, None]).T @ centred / nk + 1e-6 * np.eye(d)
        chol = np.linalg.cholesky(cov)
        z = np.linalg.solve(chol, (np.asarray(X, dtype=np.float64) - mean).T)
        log_det = 2 * np.sum(np.log(np.diag(chol)))
        log_prob[:, k] = np.log(nk / total) - 0.5 * (
            np.sum(z * z, axis=0) + log_det + d * np.log(2 * np.pi)
        )
    log_prob -= log_prob.max(axis=1, keepdims=True)
    resp = np.exp(log_prob)
    return resp / resp.sum(axis=1, keepdims=True)
