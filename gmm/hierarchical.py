"""Model-based agglomerative hierarchical clustering, as mclust's ``hc``.

Fraley (1998), "Algorithms for model-based Gaussian hierarchical clustering":
start from one cluster per distinct row and repeatedly merge the two clusters
whose merge loses the least classification likelihood under a Gaussian model.
The models and their per-cluster terms (``n_k`` rows, scatter ``W_k`` about the
cluster mean, ``t_k = tr W_k``; the merge cost is ``term(i ∪ j) - term(i) -
term(j)``):

- ``'EII'``: ``t_k`` (Ward's criterion);
- ``'VII'``: ``n_k log((t_k + α) / n_k)``;
- ``'VVV'``: ``n_k log(det(W_k / n_k) + β (t_k + α) / n_k)``, the determinant
  left out while ``n_k <= d`` (where it is zero);
- ``'EEE'``: ``log det(Σ_k W_k)`` of the pooled scatter, reached in mclust's
  three stages (the pooled trace while the pooled scatter has rank below d, then
  the determinant guarded by the trace, then the determinant alone).

``α = tr(W) / (n d)`` of the whole (transformed) data and ``β = 1``, mclust's
defaults, keep the terms finite for small clusters. Ties go where mclust's
sequential scan sends them: clusters sit in slots ``0..g-1``, a merge of slots
``i < j`` puts the union in slot ``i`` and moves the last slot into slot ``j``,
and among equal costs the pair ``(i, j)`` with the largest ``j``, then the
largest ``i``, is merged.

The data are first transformed as mclust's ``hcUse`` says (:func:`transform`):
'VARS' (as they are), 'STD' (standardised), 'PCR' (principal components of the
standardised data), 'PCS' (principal components of the centred data), 'SPH'
(sphered by the ML covariance), 'SVD' (standardised, rotated by the right
singular vectors and scaled by the inverse square roots of the singular
values; mclust's default). For more than :data:`SUBSET` rows a uniform random
subset of :data:`SUBSET` rows builds the tree (mclust's
``mclust.options('subset')``, drawn once per call of ``mclustBIC``).

Duplicate rows: mclust's documentation says ``hc`` starts from
``dupPartition(data)`` (equal rows in one cluster), but in mclust 6.0 ``hc``
does not pass that default on, so ``hc(X)`` (and ``mclustBIC``) start from one
cluster per row; tests/reference/mclust/hc.R records both, and on Old Faithful
(16 duplicated rows) they differ. We follow what mclust computes by default
(``merge_duplicates=False``; equal rows still merge first, at the lowest cost)
and offer the documented start as ``merge_duplicates=True``.

Written from the published algorithm and mclust's documented behaviour; no code
is taken from mclust.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

#: Models of the merge criterion, as mclust names them.
MODELS = ("VVV", "VII", "EII", "EEE")
#: Data transformations, as mclust's ``hcUse`` names them.
USES = ("VARS", "STD", "SPH", "PCS", "PCR", "SVD")
#: Rows above which the tree is built on a random subset of this many rows.
SUBSET = 2000

_FLOAT_EPS = np.finfo(np.float64).eps
_EPS_MIN = _FLOAT_EPS / 2  # mclust's EPSMIN


@dataclass(frozen=True)
class HCTree:
    """The merges of a model-based hierarchical clustering; see :func:`hc`.

    Attributes
    ----------
    merges : ndarray of shape (n_initial - 1, 2)
        Merge ``m`` joins the clusters labelled ``merges[m, 0] < merges[m, 1]``
        (labels of :attr:`initial`, the union keeps the smaller label), in
        order; mclust's ``hcPairs`` up to label numbering.
    costs : ndarray of shape (n_initial - 1,)
        The criterion change of each merge (for 'EEE', the criterion after it).
    initial : ndarray of shape (n_rows,)
        The starting partition, labels ``0..n_initial-1`` in order of first
        appearance: ``arange(n_rows)``, or equal rows sharing a label with
        ``merge_duplicates=True``.
    rows : ndarray of shape (n_rows,)
        Indices into the data given to :func:`hc` of the rows in the tree
        (``arange(n_samples)`` without a subset).
    n_samples : int
        Rows of the data given to :func:`hc`.
    model, use : str
    """

    merges: np.ndarray
    costs: np.ndarray
    initial: np.ndarray
    rows: np.ndarray
    n_samples: int
    model: str
    use: str

    @property
    def n_initial(self) -> int:
        """Clusters before the first merge (rows, or distinct rows with ``merge_duplicates``)."""
        return int(self.initial.max()) + 1

    @property
    def subsampled(self) -> bool:
        """Whether the tree holds a subset of the rows."""
        return self.rows.shape[0] < self.n_samples

    def labels(self, n_components: int) -> np.ndarray:
        """The partition into ``n_components`` clusters, as mclust's ``hclass``.

        Parameters
        ----------
        n_components : int
            From 1 to :attr:`n_initial`.

        Returns
        -------
        labels : ndarray of shape (n_rows,)
            For the rows of :attr:`rows`, labels ``0..n_components-1`` in order
            of first appearance. O(n_rows + n_initial) time.
        """
        if not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool):
            raise TypeError(f"n_components must be an int, got {n_components!r}.")
        if not 1 <= n_components <= self.n_initial:
            raise ValueError(
                f"n_components={n_components} is outside the tree: it starts from "
                f"{self.n_initial} clusters, so n_components must be in 1..{self.n_initial}."
            )
        parent = np.arange(self.n_initial)
        # Each merge points the larger label at the smaller (a label is the larger
        # of one merge at most: it is gone after it); follow the chains by pointer
        # jumping, O(log n_initial) passes.
        done = self.merges[: self.n_initial - n_components]
        parent[done[:, 1]] = done[:, 0]
        for _ in range(self.n_initial):
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        raw = parent[self.initial]
        return first_appearance(raw)


def first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel ``labels`` as ``0, 1, ...`` in order of first appearance (mclust's ``partconv``)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse.reshape(-1)]


# ==================================================================== public
def hc(
    X,
    model: str = "VVV",
    use: str = "SVD",
    *,
    merge_duplicates: bool = False,
    subset: int = SUBSET,
    random_state=None,
):
    """Model-based agglomerative hierarchical clustering (mclust's ``hc``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite values; at least 2 rows.
    model : {'VVV', 'VII', 'EII', 'EEE'}, default='VVV'
        The Gaussian model whose classification likelihood the merges keep
        highest (see the module docstring).
    use : {'VARS', 'STD', 'SPH', 'PCS', 'PCR', 'SVD'}, default='SVD'
        The transformation of the data the tree is built on (:func:`transform`).
    merge_duplicates : bool, default=False
        Start with equal rows in one cluster (mclust's ``hc(X, partition =
        dupPartition(X))``) rather than one cluster per row (what mclust's
        ``hc(X)`` computes; see the module docstring).
    subset : int, default=2000
        With more rows than this, a uniform random subset of ``subset`` rows
        (drawn with ``random_state``) builds the tree, as mclust does; the tree's
        ``rows`` says which. With at most ``subset`` rows the result is
        deterministic.
    random_state : int, RandomState or None, default=None
        Draws the subset; unused otherwise.

    Returns
    -------
    HCTree
        ``tree.labels(G)`` is the partition into G clusters.

    Notes
    -----
    Cost, for m rows in the tree (``min(n, subset)``), g starting clusters (m,
    or the distinct rows) and d columns: **O(g²) memory** (the g × g matrix of merge costs, 32 MB at
    g = 2000) plus O(g·d²) for 'VVV', whose deferred determinants (below) keep
    16 bytes a pair, at worst as much again as the cost matrix. Time: one pass
    over pairs to start, O(g²·d), then per merge O(g²) to find the cheapest
    pair and O(g·d) to update the costs of the new cluster. 'VVV' adds O(d³)
    for each pair with more than d rows (whose determinant counts) only when
    that pair comes first on a lower bound without its determinant, at most
    once per pair (286 of the 125,912 such pairs on a 2,000 × 10 subset of
    ``experiments.bench_mclust``'s data). 'EEE' recomputes every pair's cost
    at each merge: O(g³·d) in all.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import hc
    >>> X = np.array([[0.0, 0.1], [0.2, 0.0], [0.1, 0.3], [5.0, 5.1], [5.2, 4.9], [5.1, 5.3]])
    >>> hc(X, "VVV", "VARS").labels(2)
    array([0, 0, 0, 1, 1, 1])
    """
    model = _check_choice(model, MODELS, "model")
    use = _check_choice(use, USES, "use")
    if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 2:
        raise ValueError(f"subset must be an int >= 2, got {subset!r}.")
    X = check_array(X, dtype=np.float64, ensure_min_samples=2, ensure_all_finite=False)
    if not np.all(np.isfinite(X)):
        raise ValueError(
            "hc needs finite data: X holds NaN or infinity. Impute or drop those rows."
        )
    rows = _rows_for_tree(X.shape[0], subset, random_state)
    return _tree(X[rows], model, use, rows, X.shape[0], merge_duplicates)


def transform(X: np.ndarray, use: str) -> np.ndarray:
    """The data as mclust's ``hcUse`` transformation gives them to the tree.

    Columns that come out non-finite (a constant column standardised) are
    dropped, as mclust drops them; 'SVD' and 'SPH' also drop the directions
    the data do not span (singular values below numpy's rank tolerance), where
    mclust would divide rounding noise by a near-zero scale. O(n·d²) time.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    use : {'VARS', 'STD', 'SPH', 'PCS', 'PCR', 'SVD'}

    Returns
    -------
    Z : ndarray of shape (n_samples, n_columns)
    """
    use = _check_choice(use, USES, "use")
    X = np.asarray(X, dtype=np.float64)
    if use == "VARS":
        return X.copy()
    centred = X - X.mean(axis=0)
    if use in ("STD", "PCR", "SVD"):
        with np.errstate(divide="ignore", invalid="ignore"):
            data = _finite_columns(centred / X.std(axis=0, ddof=1))
        if use == "STD" or data.shape[1] == 0:
            return data
        _, singular, vt = np.linalg.svd(data, full_matrices=False)
        if use == "PCR":
            return data @ vt.T
        keep = _numerical_rank(singular, data.shape)
        return data @ vt[keep].T / np.sqrt(singular[keep])
    if use == "PCS":
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return _finite_columns(centred @ vt.T)
    # SPH: sphered by the ML covariance.
    sigma = centred.T @ centred / X.shape[0]
    eigen, vectors = np.linalg.eigh(sigma)
    order = np.argsort(eigen)[::-1]
    eigen, vectors = eigen[order], vectors[:, order]
    keep = _numerical_rank(np.maximum(eigen, 0), sigma.shape)  # the rank of sigma
    return centred @ vectors[:, keep] / np.sqrt(eigen[keep])


def duplicate_partition(X: np.ndarray) -> np.ndarray:
    """Equal rows share a label; labels in order of first appearance (mclust's ``dupPartition``)."""
    _, inverse = np.unique(np.ascontiguousarray(X), axis=0, return_inverse=True)
    return first_appearance(inverse.reshape(-1))


# ================================================================ the tree
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 4


def cached_hc(X: np.ndarray, model: str, use: str, random_state) -> HCTree:
    """:func:`hc` with the last few trees kept, keyed by the data's bytes.

    A sweep asks for the same tree once per grid point; the key is a hash of
    the rows (and the subset drawn), so different data never share a tree.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    rows = _rows_for_tree(X.shape[0], SUBSET, random_state)
    digest = hashlib.blake2b(X.tobytes(), digest_size=16)
    digest.update(rows.tobytes())
    key = (digest.hexdigest(), X.shape, model, use)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    tree = _tree(X[rows], model, use, rows, X.shape[0], merge_duplicates=False)
    _CACHE[key] = tree
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return tree


def clear_cache() -> None:
    """Forget the trees :func:`cached_hc` keeps, so the next one is computed afresh.

    The kept trees outlive a sweep: a second sweep (or ``init_params='hc'``
    fit) on the same rows reuses its tree, and pays nothing for it. A timing
    of a first call, as another session or R would make it, clears them
    before each repeat (``experiments/bench_mclust.py`` does).

    >>> import numpy as np
    >>> from gmm.hierarchical import cached_hc, clear_cache
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> first = cached_hc(X, "VVV", "SVD", 0)
    >>> cached_hc(X, "VVV", "SVD", 0) is first
    True
    >>> clear_cache()
    >>> cached_hc(X, "VVV", "SVD", 0) is first
    False
    """
    _CACHE.clear()


def _rows_for_tree(n: int, subset: int, random_state) -> np.ndarray:
    """All rows, or a sorted uniform random subset of ``subset`` of them when ``n > subset``."""
    if n <= subset:
        return np.arange(n)
    return np.sort(check_random_state(random_state).choice(n, size=subset, replace=False))


def _tree(
    X: np.ndarray, model: str, use: str, rows: np.ndarray, n_samples: int, merge_duplicates: bool
) -> HCTree:
    if not np.all(np.isfinite(X)):
        raise ValueError(
            "hc needs finite data: X holds NaN or infinity. Impute or drop those rows."
        )
    initial = duplicate_partition(X) if merge_duplicates else np.arange(X.shape[0])
    Z = transform(X, use)
    if Z.shape[1] == 0:
        raise ValueError(
            f"hc with use={use!r} left no column: every column of X is constant. "
            "Use 'VARS', or give data that vary."
        )
    n_groups = int(initial.max()) + 1
    if n_groups < 2:
        raise ValueError("hc needs at least 2 distinct rows; every row of X is the same.")
    if model == "EEE":
        merges, costs = _merge_eee(Z, initial, n_groups)
    else:
        merges, costs = _merge_by_terms(Z, initial, n_groups, model)
    return HCTree(merges, costs, initial, rows, n_samples, model, use)


class _Clusters:
    """Per-slot statistics of the current clusters: size, mean, scatter, trace, term.

    For 'VVV', ``scatter`` holds what mclust keeps of each cluster's scatter
    between merges. mclust stores a merged cluster's scatter as rows of its
    triangular factor ``R`` (``W = RᵀR``), but fills every stored row ``k``
    with the first row of ``R`` (from column ``k`` on): the scatter it reads
    back later is ``ŨᵀŨ`` with ``Ũ[k, k:] = R[0, k:]`` for ``k < min(n - 1, d)``.
    Only the cluster just formed is costed against the others with its true
    scatter (``fresh``). We keep the same two matrices, so that the merges,
    hence the partitions, are mclust's (:func:`_stored_scatter`).
    """

    #: Whether a merged cluster's row defers its determinants (:meth:`_bounds`);
    #: False computes every one at once (the tests compare the two).
    defer = True

    def __init__(self, Z, initial, n_groups, model):
        d = Z.shape[1]
        self.model = model
        self.d = d
        self.size = np.bincount(initial, minlength=n_groups).astype(np.float64)
        first = np.unique(initial, return_index=True)[1]
        self.mean = Z[first].copy()  # duplicates: every member is the same row
        self.trace = np.zeros(n_groups)
        self.scatter = np.zeros((n_groups, d, d)) if model == "VVV" else None
        self.first_row = np.zeros((n_groups, d))  # first row of the stored factor
        self.fresh: tuple[int, np.ndarray] | None = None  # (slot, true scatter)
        # 'VVV', for the deferred determinants (see _merge_by_terms): each slot's
        # true scatter when it was formed, an id no other cluster ever takes, and,
        # per id of a cluster formed by a merge, the ids of the partners whose
        # determinant is deferred and each pair's log((t + α) / n) (NaN once paid).
        self.true = np.zeros((n_groups, d, d)) if model == "VVV" else None
        self.uid = np.arange(n_groups)
        self.next_uid = n_groups
        self.deferred: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        centred = Z - Z.mean(axis=0)
        # mclust's α = tr(W) / (n d) of the whole data (floored at machine epsilon).
        self.alpha = max(float(np.sum(centred * centred)) / (Z.shape[0] * d), _FLOAT_EPS)
        self.label = np.arange(n_groups)  # smallest initial label in each slot
        self.term = self.terms(self.size, self.trace)  # no spread yet: no determinant

    def determinant_counts(self, size, trace):
        """Which clusters' terms hold a determinant ('VVV': more than d rows, some spread)."""
        return (size > self.d) & (trace > 0)

    def terms(self, size, trace, big_scatter=None, big=None):
        """Each cluster's term of the criterion (vectorised over clusters).

        ``big_scatter`` holds the scatters of the clusters ``big`` selects
        (:meth:`determinant_counts`; 'VVV' only), in that order, or is None
        when there are none. It is divided in place.
        """
        if self.model == "EII":
            return trace.copy()
        if self.model == "VII":
            return size * np.log((trace + self.alpha) / size)
        base = np.log((trace + self.alpha) / size)  # β = 1
        if big_scatter is None:
            return size * base
        big_scatter /= size[big][:, None, None]
        sign, logdet = np.linalg.slogdet(big_scatter)
        logdet = np.where(sign > 0, logdet, -np.inf)
        base[big] = np.logaddexp(logdet, base[big])
        return size * base

    def _scatter_of(self, slot):
        if self.fresh is not None and self.fresh[0] == slot:
            return self.fresh[1]
        return self.scatter[slot]

    def costs(self, first, columns: slice):
        """Merge costs of the slots ``first`` against the slots ``columns``.

        ``first`` is one slot (then the result has one entry per column) or a
        column of slots, shape (p, 1) (then a (p, columns) rectangle). Views of
        the slots' statistics and one broadcast, no gathered copies; a pair of
        a slot with itself gets a number that means nothing (the caller
        overwrites it). O(pairs·d), plus O(d³) per pair whose determinant
        counts ('VVV')."""
        n1, n2 = self.size[first], self.size[columns]
        size = n1 + n2
        delta = self.mean[columns] - self.mean[first]
        factor = n1 * n2 / size
        trace = (
            self.trace[first]
            + self.trace[columns]
            + factor * np.einsum("...d,...d->...", delta, delta)
        )
        if self.defer and self.scatter is not None and np.ndim(first) == 0 and self.fresh:
            return self._bounds(first, columns, size, trace)
        big_scatter = big = None
        if self.scatter is not None:
            big = self.determinant_counts(size, trace)
            if np.ndim(first) == 0:
                big[first - (columns.start or 0)] = False  # the slot with itself
            if np.any(big):
                where = np.nonzero(big)
                if np.ndim(first) == 0:
                    own = self._scatter_of(first)
                else:
                    own = self.scatter[first[where[0], 0]]
                dk = delta[big]
                # W_second + own + factor δδ', in place: the same sums, fewer passes.
                big_scatter = self.scatter[(columns.start or 0) + where[-1]]
                big_scatter += own
                big_scatter += (factor[big][:, None] * dk)[:, :, None] * dk[:, None, :]
        return self.terms(size, trace, big_scatter, big) - self.term[first] - self.term[columns]

    def _bounds(self, i, columns: slice, size, trace):
        """The new cluster ``i``'s costs with every determinant deferred ('VVV').

        A pair whose determinant counts costs ``n log(det(W/n) + e^b) - term_i -
        term_k`` with ``b = log((t + α) / n)``; ``n·b - term_i - term_k``, the
        same operations with the determinant left out, is not larger in floating
        point (``logaddexp(x, b) >= b`` as computed, and rounding keeps order).
        That bound is returned in its place and the pair's ``b`` kept under the
        clusters' ids for :meth:`settle`. O(g) beyond the caller's O(g·d).
        """
        big = self.determinant_counts(size, trace)
        big[i - (columns.start or 0)] = False  # the slot with itself
        base = np.log((trace + self.alpha) / size)  # the eager path's numbers exactly
        where = np.flatnonzero(big)
        if where.size:
            partners = self.uid[(columns.start or 0) + where]
            self.deferred[int(self.uid[i])] = (partners, base[where])
        return size * base - self.term[i] - self.term[columns]

    def settle(self, i: int, j: int) -> float | None:
        """The exact cost of slots ``i``, ``j`` if :meth:`_bounds` deferred it, else None.

        Computed as :meth:`costs` would have when the newer of the two was formed
        (its true scatter, the other's stored one; the kept ``b``): the same
        elementwise operations in the same order and numpy's ``slogdet`` of the
        same matrix, each matrix of a stack factored on its own, so the same
        number. O(d³) once per pair at most.
        """
        new, other = (i, j) if self.uid[i] > self.uid[j] else (j, i)
        entry = self.deferred.get(int(self.uid[new]))
        if entry is None:
            return None
        partners, bases = entry
        hit = np.flatnonzero(partners == self.uid[other])
        if hit.size == 0 or np.isnan(bases[hit[0]]):
            return None
        base = bases[hit[:1]].copy()
        bases[hit[0]] = np.nan
        n1, n2 = self.size[[new]], self.size[[other]]
        size = n1 + n2
        dk = self.mean[[other]] - self.mean[[new]]
        factor = n1 * n2 / size
        scatter = self.scatter[[other]]  # a copy
        scatter += self.true[new]
        scatter += (factor[:, None] * dk)[:, :, None] * dk[:, None, :]
        scatter /= size[:, None, None]
        sign, logdet = np.linalg.slogdet(scatter)
        logdet = np.where(sign > 0, logdet, -np.inf)
        total = size * np.logaddexp(logdet, base) - self.term[[new]] - self.term[[other]]
        return float(total[0])

    def _first_row(self, i, j, true, v):
        """First row of the union's triangular factor, as mclust's Givens updates leave it.

        ``W[0] / sqrt(W[0, 0])`` when ``W[0, 0] > 0`` (then it is unique up to
        sign). With a zero first column no rotation touches the first row, so
        it stays the first row loaded: the cluster just formed (whose factor
        mclust loads first), else the later slot ``j``, else ``i``; for two
        single rows, the scaled difference ``v``.
        """
        if true[0, 0] > 0:
            return true[0] / np.sqrt(true[0, 0])
        loaded = [slot for slot in (i, j) if self.size[slot] > 1]
        if not loaded:
            return v
        if self.fresh is not None and self.fresh[0] in loaded:
            return self.first_row[self.fresh[0]]
        return self.first_row[loaded[-1]]

    def merge(self, i, j, last, cost):
        """Put the union of slots i < j in slot i and move slot ``last`` into slot j.

        The union's term is ``cost + term_i + term_j``, as mclust carries it.
        """
        ni, nj = self.size[i], self.size[j]
        size = ni + nj
        delta = self.mean[j] - self.mean[i]
        factor = ni * nj / size
        if self.scatter is not None:
            true = self._scatter_of(i) + self._scatter_of(j) + factor * np.outer(delta, delta)
            self.first_row[i] = self._first_row(i, j, true, np.sqrt(factor) * delta)
            self.scatter[i] = _stored_scatter(self.first_row[i], int(size))
            self.fresh = (i, true)
            self.true[i] = true
            self.deferred.pop(int(self.uid[i]), None)
            self.deferred.pop(int(self.uid[j]), None)
        self.uid[i] = self.next_uid
        self.next_uid += 1
        self.trace[i] += self.trace[j] + factor * float(delta @ delta)
        self.term[i] = cost + self.term[i] + self.term[j]
        self.mean[i] = (ni * self.mean[i] + nj * self.mean[j]) / size
        self.size[i] = size
        self.label[i] = min(self.label[i], self.label[j])
        if j != last:
            for array in (
                self.size,
                self.mean,
                self.trace,
                self.term,
                self.label,
                self.first_row,
                self.uid,
            ):
                array[j] = array[last]
            if self.scatter is not None:
                self.scatter[j] = self.scatter[last]
                self.true[j] = self.true[last]


def _stored_scatter(first: np.ndarray, size: int) -> np.ndarray:
    """The scatter mclust reads back for a merged cluster (see :class:`_Clusters`).

    Each of the ``min(size - 1, d)`` stored rows ``k`` of the factor is its
    first row ``first`` from column ``k`` on. O(d²).
    """
    d = first.shape[0]
    rows = min(size - 1, d)
    factor = np.where(_upper_triangle(d)[:rows], first, 0.0)  # np.triu's numbers, no mask built
    return factor.T @ factor


@lru_cache(maxsize=16)
def _upper_triangle(d: int) -> np.ndarray:
    """Read-only (d, d) mask of the entries on and above the diagonal."""
    mask = np.triu(np.ones((d, d), dtype=bool))
    mask.flags.writeable = False
    return mask


def _last_minimum(cost: np.ndarray) -> tuple[int, int]:
    """Slots ``i < j`` of the smallest entry of a symmetric matrix (inf on the diagonal).

    Among equal entries, the largest ``j``, then the largest ``i``: the pair
    mclust's scan (``j`` ascending, ``i < j`` ascending, ``<=``) keeps.
    """
    best = cost.min()
    rows, cols = np.nonzero(cost == best)
    high = np.maximum(rows, cols)
    low = np.minimum(rows, cols)
    pick = np.lexsort((low, high))[-1]
    return int(low[pick]), int(high[pick])


def _merge_by_terms(Z, initial, n_groups, model):
    """Merges for the models whose criterion is a sum of per-cluster terms.

    ``cost[r, c]`` for ``c < r`` is the merge cost of slots ``c`` and ``r``
    (only this lower triangle is kept: the entries on and above the diagonal
    mean nothing); ``best`` keeps, for each slot ``r``, the cheapest partner
    ``c < r`` (the largest such ``c`` among equals) so that finding the merge is
    O(g), not O(g²).
    """
    clusters = _Clusters(Z, initial, n_groups, model)
    cost = np.empty((n_groups, n_groups))
    slots = np.arange(n_groups)
    block = max(1, 1_000_000 // (n_groups * Z.shape[1]))
    for start in range(0, n_groups - 1, block):  # each block of slots against the later slots
        stop = min(start + block, n_groups - 1)
        # Costs of slots start..stop-1 (first) against start+1..g-1, written to the
        # columns start..stop-1 below the diagonal; what lands on or above it means nothing.
        cost[start + 1 :, start:stop] = clusters.costs(
            slots[start:stop, None], slice(start + 1, n_groups)
        ).T
    best = _RowMinima(cost)
    merges = np.empty((n_groups - 1, 2), dtype=np.intp)
    costs = np.empty(n_groups - 1)
    g = n_groups
    for step in range(n_groups - 1):
        i, j = best.pick(g)
        while (exact := clusters.settle(i, j)) is not None:
            # A deferred determinant's pair came first on its lower bound: put in
            # its exact cost and look again. Every other entry is exact or a lower
            # bound, so the pair picked on exact costs is the one the eager
            # computation picks, ties included.
            cost[j, i] = exact
            best.recompute(cost, np.array([j]), g)
            i, j = best.pick(g)
        costs[step] = cost[j, i]
        merges[step] = sorted((int(clusters.label[i]), int(clusters.label[j])))
        last = g - 1
        clusters.merge(i, j, last, costs[step])
        if j != last:  # slot last moves to j: its row prefix, and its later pairs to column j
            cost[j, :j] = cost[last, :j]
            cost[j + 1 : last, j] = cost[last, j + 1 : last]
        g -= 1
        if g > 1:
            values = clusters.costs(i, slice(0, g))
            cost[i, :i] = values[:i]
            cost[i + 1 : g, i] = values[i + 1 :]
            changes = [(i, values[i + 1 :])]
            if j < g:  # row last (= g now) still holds the moved slot's pairs
                changes.append((j, cost[g, j + 1 : g]))
            best.refresh(cost, g, changes)
    return merges, costs


#: Rows :meth:`_RowMinima.recompute` rescans one by one (a merge rescans its two
#: slots and the few rows whose minimum it raised); more are rescanned as one block.
FEW_ROWS = 4


class _RowMinima:
    """For each slot r, the minimum of ``cost[r, :r]`` (the lower triangle) and where.

    Among equal entries the largest column is kept, so that :meth:`pick`
    returns the pair mclust's scan keeps (see :func:`_last_minimum`).
    """

    def __init__(self, cost: np.ndarray):
        g = cost.shape[0]
        self.value = np.full(g, np.inf)
        self.where = np.zeros(g, dtype=np.intp)
        self.recompute(cost, np.arange(1, g), g)

    def recompute(self, cost, rows, g):
        """Full rescan of ``rows`` (O(len(rows)·g))."""
        if rows.size == 0:
            return
        if rows.size <= FEW_ROWS:  # each row's own prefix: no gathered copy, no mask
            for r in rows.tolist():
                prefix = cost[r, :r]
                value = prefix.min()
                self.value[r] = value
                self.where[r] = r - 1 - int(np.argmax(prefix[::-1] == value))
            return
        block = cost[rows, :g]  # advanced indexing: a copy
        np.copyto(block, np.inf, where=np.arange(g)[None, :] >= rows[:, None])
        value = block.min(axis=1)
        last = g - 1 - np.argmax((block == value[:, None])[:, ::-1], axis=1)
        self.value[rows], self.where[rows] = value, last

    def pick(self, g) -> tuple[int, int]:
        value = self.value[1:g]
        best = value.min()
        row = 1 + int(np.flatnonzero(value == best)[-1])
        return int(self.where[row]), row

    def refresh(self, cost, g, changes):
        """After slots got new costs: update the rows after them, rescan the rest.

        ``changes`` lists ``(c, new)``, ``new`` the costs of slot ``c`` with the
        slots ``c+1..g-1`` (their column ``c``), in increasing ``c``. Slot ``c``'s
        own row and every row whose minimum was at ``c`` and went up are rescanned.
        """
        rescan = [c for c, _ in changes]
        for c, new in changes:
            value, where = self.value[c + 1 : g], self.where[c + 1 : g]  # views
            stale = (where == c) & (new > value)
            # Lower, or equal with the partner c not left of the kept one (c itself
            # included: the same partner at a cost not higher keeps its place).
            take = (new < value) | ((new == value) & (where <= c))
            np.copyto(value, new, where=take)
            where[take] = c
            if stale.any():
                rescan.extend((c + 1 + np.flatnonzero(stale)).tolist())
        rows = np.array(sorted(set(rescan)), dtype=np.intp)
        self.recompute(cost, rows[(rows > 0) & (rows < g)], g)


def _merge_eee(Z, initial, n_groups):
    """Merges for 'EEE': the pooled scatter's trace, then its determinant (mclust's stages)."""
    n, d = Z.shape
    Z = Z / np.sqrt(n)  # mclust works on X / sqrt(n)
    centred = Z - Z.mean(axis=0)
    # The stage threshold: log of the total trace / d (of the scaled data).
    delog = np.log(np.sum(centred * centred) / d + _EPS_MIN)
    size = np.bincount(initial, minlength=n_groups).astype(np.float64)
    first = np.unique(initial, return_index=True)[1]
    mean = Z[first].copy()
    label = np.arange(n_groups)
    pooled = np.zeros((d, d))
    trace = 0.0
    # mclust counts rank-one updates of the pooled factor: 1, plus 2 per
    # duplicate row absorbed, plus 1 per merge; 'full rank' means count >= d.
    count = 1 + 2 * (n - n_groups)
    logdet = -np.inf if count < d else _logdet(pooled)
    stage = 1
    merges = np.empty((n_groups - 1, 2), dtype=np.intp)
    costs = np.empty(n_groups - 1)
    g = n_groups
    for step in range(n_groups - 1):
        if count >= d:
            stage = 2 if (stage <= 2 and logdet < delog) else 3
        m, s = mean[:g], size[:g]
        factor = s[:, None] * s[None, :] / (s[:, None] + s[None, :])
        pair_trace = trace + _ward_increase(m, s)
        if stage == 1:
            criterion = np.maximum(pair_trace, _EPS_MIN)
            np.fill_diagonal(criterion, np.inf)
            i, j = _last_minimum(criterion)
            new_logdet = logdet
        else:
            pair_logdet = _pair_logdets(pooled, m, factor)
            np.fill_diagonal(pair_logdet, np.inf)
            di, dj = _last_minimum(pair_logdet)
            if stage == 2:
                with np.errstate(divide="ignore"):
                    guard = np.logaddexp(pair_logdet, np.log(np.maximum(pair_trace, _EPS_MIN)))
                guard[pair_trace == 0] = -np.inf
                np.fill_diagonal(guard, np.inf)
                zi, zj = _last_minimum(guard)
                i, j = (zi, zj) if pair_logdet[di, dj] < delog else (di, dj)
            else:
                i, j = di, dj
            new_logdet = pair_logdet[i, j]
        costs[step] = new_logdet if stage > 1 else pair_trace[i, j]
        merges[step] = sorted((int(label[i]), int(label[j])))
        delta = mean[j] - mean[i]
        c = size[i] * size[j] / (size[i] + size[j])
        pooled += c * np.outer(delta, delta)
        trace = float(pair_trace[i, j])
        if stage > 1:
            logdet = new_logdet
        count += 1
        mean[i] = (size[i] * mean[i] + size[j] * mean[j]) / (size[i] + size[j])
        size[i] += size[j]
        label[i] = min(label[i], label[j])
        last = g - 1
        if j != last:
            mean[j], size[j], label[j] = mean[last], size[last], label[last]
        g -= 1
    return merges, costs


def _ward_increase(means: np.ndarray, size: np.ndarray) -> np.ndarray:
    """``n_i n_j / (n_i + n_j) ‖m_i - m_j‖²`` for every pair, from explicit differences.

    Differences rather than ``‖m_i‖² + ‖m_j‖² - 2 m_i·m_j``, which cancels:
    near-equal costs (data on a grid) must be ordered as mclust orders them.
    Formed as mclust does, ``sqrt(n_j/n_ij) h_i - sqrt(n_i/n_ij) h_j`` with
    ``h = sqrt(n) m``. O(g²·d) time, O(block·g·d) memory.
    """
    g, d = means.shape
    heads = np.sqrt(size)[:, None] * means
    out = np.empty((g, g))
    block = max(1, 2_000_000 // max(1, g * d))
    for start in range(0, g, block):
        stop = min(g, start + block)
        total = size[start:stop, None] + size[None, :]
        si = np.sqrt(size[start:stop, None] / total)[:, :, None]
        sj = np.sqrt(size[None, :] / total)[:, :, None]
        v = sj * heads[start:stop, None, :] - si * heads[None, :, :]
        out[start:stop] = np.einsum("abk,abk->ab", v, v)
    return out


def _logdet(matrix: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(matrix)
    return float(value) if sign > 0 else -np.inf


def _pair_logdets(pooled: np.ndarray, means: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``log det(pooled + c_ij δ_ij δ_ijᵀ)`` for every pair of clusters, O(g²·d).

    With a positive definite ``pooled = L Lᵀ`` this is ``log det pooled +
    log(1 + c_ij ‖L⁻¹ δ_ij‖²)``; a singular one falls back to one determinant
    per pair (O(g²·d³), in blocks of pairs).
    """
    try:
        chol = np.linalg.cholesky(pooled)
    except np.linalg.LinAlgError:
        chol = None
    if chol is not None and np.all(np.diag(chol) > 0):
        white = np.linalg.solve(chol, means.T).T
        sq = np.sum(white * white, axis=1)
        dist = np.maximum(sq[:, None] + sq[None, :] - 2 * white @ white.T, 0.0)
        return 2 * np.sum(np.log(np.diag(chol))) + np.log1p(factor * dist)
    g, d = means.shape
    out = np.full((g, g), -np.inf)
    rows, cols = np.triu_indices(g, 1)
    step = max(1, 4_000_000 // (d * d))
    for start in range(0, rows.size, step):
        i, j = rows[start : start + step], cols[start : start + step]
        delta = means[j] - means[i]
        mats = pooled + factor[i, j, None, None] * delta[:, :, None] * delta[:, None, :]
        sign, value = np.linalg.slogdet(mats)
        out[i, j] = out[j, i] = np.where(sign > 0, value, -np.inf)
    return out


def _numerical_rank(singular: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mask of the singular values above numpy's rank tolerance (``max(shape)·eps·s_max``).

    'SVD' and 'SPH' divide by them: a direction the data do not span (collinear
    columns) would otherwise become a column of amplified rounding noise, so it
    is dropped (mclust keeps it; its partition then depends on that noise).
    """
    return singular > max(shape) * np.finfo(np.float64).eps * singular.max()


def _finite_columns(Z: np.ndarray) -> np.ndarray:
    return Z[:, np.all(np.isfinite(Z), axis=0)]


def _check_choice(value, choices, what):
    if isinstance(value, str) and value.upper() in choices:
        return value.upper()
    raise ValueError(
        f"Unknown hc {what} {value!r}. Valid values are: {', '.join(repr(c) for c in choices)}."
    )
