"""The statistics step: summed moments or responsibilities → ``(nk, means, S_k)``.

Every M-step starts from the same three things: the weighted count ``nk`` of
each component, its weighted mean, and the scatter of its rows about that new
mean, ``W_k = sum_n r_nk (x_n - m_k)(x_n - m_k)'``. A :class:`Scatter` carries
them, with the scatter divided by ``nk`` (``S_k = W_k / nk``: the unconstrained
maximum-likelihood covariance, what scikit-learn's M-step computes before
``reg_covar``). Covariance families turn a :class:`Scatter` into covariances
under their constraint (:meth:`gmm.covariance.CovarianceFamily.estimate`).

What a family needs of the scatter is one of three *kinds*:

- ``'full'``: ``S_k`` for every component, shape (K, D, D);
- ``'diagonal'``: the diagonal of every ``S_k``, shape (K, D);
- ``'pooled'``: the pooled scatter ``sum_k W_k / sum_k nk``, shape (D, D).

The functions here compute each kind from the moments that the E-step kernels
sum over row chunks, and, for the start of EM, from given responsibilities in
two exact passes. They are written once and shared by every family.

Everything here is a kernel: inputs are trusted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .blas_threads import blas_threads_for

#: The kinds of scatter a family may ask for.
KINDS = ("full", "diagonal", "pooled")


@dataclass
class Scatter:
    """Counts, means and scatter of the components: the input of every M-step.

    Attributes
    ----------
    nk : ndarray of shape (n_components,)
        Weighted counts, plus ``10 · eps`` of the working dtype (scikit-learn's
        guard against empty components), in float64.
    means : ndarray of shape (n_components, n_features)
        Weighted means, in the data's coordinates, float64.
    covariances : ndarray
        ``S_k = W_k / nk``: shape (K, D, D) for kind 'full', (K, D) for
        'diagonal', (D, D) for 'pooled' (``sum_k W_k / sum_k nk``). float64,
        without regularisation.
    kind : str
        One of :data:`KINDS`.
    """

    nk: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    kind: str

    @property
    def scatter(self) -> np.ndarray:
        """``W_k = nk · S_k`` (the pooled ``W = sum_k nk · S``), unnormalised."""
        if self.kind == "pooled":
            return self.covariances * self.nk.sum()
        return self.covariances * self.nk.reshape((-1,) + (1,) * (self.covariances.ndim - 1))


def guarded_counts(nk: np.ndarray, dtype) -> np.ndarray:
    """``nk + 10 · eps(dtype)``: no component divides by zero."""
    return nk + 10 * np.finfo(dtype).eps


# ------------------------------------------------------------- from moments
def diagonal_from_moments(
    stat: np.ndarray, nk: np.ndarray, shift: np.ndarray, dtype=None
) -> tuple[np.ndarray, np.ndarray]:
    """Means and diagonal ``S_k`` from ``sum r [x², x]`` (shape (K, 2D)), shifted data.

    ``E[x²] - m²`` cancels. With ``dtype`` (the dtype the moments were summed
    in), a variance within its rounding error of 0, at most ``(10 / nk + 2) ·
    eps · E[x²]`` (the counts' guard, :func:`guarded_counts`, leaves ``10 eps /
    nk`` of it for a component of one point), is exactly 0: a component of one
    point, or a feature constant within a component, has variance 0 there, not
    rounding noise. O(K·D).
    """
    d = stat.shape[1] // 2
    means = stat[:, d:] / nk[:, None]
    second = stat[:, :d] / nk[:, None]
    variances = second - means * means
    if dtype is not None:
        eps = float(np.finfo(dtype).eps)
        variances[variances <= (10 / nk[:, None] + 2) * eps * second] = 0
    return means + shift, variances


def full_from_moments(
    raw: np.ndarray, nk: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Means and ``S_k`` from ``sum r [x_i x_j (i<=j), x]`` (shape (K, D(D+1)/2 + D)).

    The (D, D) second moments are one gather of the pair sums
    (:func:`symmetric_pairs`), divided by the counts in place. O(K·D²).
    """
    n_components, d = raw.shape[0], shift.shape[0]
    n_pairs = d * (d + 1) // 2
    means = raw[:, n_pairs:] / nk[:, None]
    second = raw.take(symmetric_pairs(d), axis=1).reshape(n_components, d, d)
    second /= nk[:, None, None]
    second -= means[:, :, None] * means[:, None, :]
    return means + shift, second


@functools.lru_cache(maxsize=64)
def symmetric_pairs(n_features: int) -> np.ndarray:
    """Index of the pair ``(min(i, j), max(i, j))`` in :func:`upper_triangle`'s order, for
    every entry of a row-major (D, D) matrix: shape (D²,), read-only.

    >>> symmetric_pairs(2).tolist()
    [0, 1, 1, 2]
    """
    rows, cols = upper_triangle(n_features)
    index = np.empty((n_features, n_features), dtype=np.intp)
    index[rows, cols] = index[cols, rows] = np.arange(rows.size)
    index = index.ravel()
    index.flags.writeable = False
    return index


@functools.lru_cache(maxsize=64)
def upper_triangle(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n_features)``, made once per size (read-only arrays).

    >>> [a.tolist() for a in upper_triangle(2)]
    [[0, 0, 1], [0, 1, 1]]
    """
    rows, cols = np.triu_indices(n_features)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def full_from_whitened(
    first: np.ndarray,
    gram: np.ndarray,
    nk: np.ndarray,
    centres: np.ndarray,
    inverses: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Means and ``S_k`` from moments of whitened deviations ``y = (x - c) @ U``.

    ``first = sum r y`` (G, D) and ``gram = sum r y'y`` (G, D, D) about centres
    ``c`` (G, D), all shifted: no digits cancel for a component that is tight or
    far from the shift. ``inverses`` (G, D, D) are the factors' inverses ``U⁻¹``
    (triangular inversions, :func:`gmm.covariance._matrices.upper_inverse`).
    O(G·D³).
    """
    inv = inverses
    # gram = U' S_c U with S_c the scatter about c: S_c = U⁻' gram U⁻¹.
    scatter = np.swapaxes(inv, 1, 2) @ (gram / nk[:, None, None]) @ inv
    # The mean moves by delta = E[y] @ U⁻¹ from c.
    delta = np.einsum("gd,gde->ge", first / nk[:, None], inv)
    covariances = scatter - delta[:, :, None] * delta[:, None, :]
    return centres + delta, 0.5 * (covariances + np.swapaxes(covariances, 1, 2))


def pooled_from_moments(
    sum_x: np.ndarray, second: np.ndarray, nk: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Means and pooled ``S`` from ``sum r x`` (K, D) and ``sum w x x'`` (D, D). O(K·D²)."""
    means = sum_x / nk[:, None]
    between = (nk[:, None] * means).T @ means
    return means + shift, (second - between) / nk.sum()


# ------------------------------------------------------- from responsibilities
@dataclass(frozen=True)
class HardLabels:
    """Responsibilities with at most one positive entry per row, held as labels.

    The (K, rows) matrix whose column ``i`` is ``weights[i]`` at row
    ``labels[i]`` and 0 elsewhere (a k-means or hierarchical start), so the
    statistics cost O(rows·D) instead of O(rows·K·D).

    Attributes
    ----------
    labels : ndarray of shape (rows,), intp
    weights : ndarray of shape (rows,), float64
        Non-negative; already multiplied by the sample weights.
    n_components : int
    """

    labels: np.ndarray
    weights: np.ndarray
    n_components: int

    def __getitem__(self, rows: slice) -> HardLabels:
        return HardLabels(self.labels[rows], self.weights[rows], self.n_components)

    def counts(self) -> np.ndarray:
        """``nk``, (K,), float64: the weights summed per component. O(rows)."""
        return np.bincount(self.labels, self.weights, minlength=self.n_components)

    def matrix(self) -> scipy.sparse.csc_matrix:
        """The (K, rows) matrix, sparse: one entry per row of positive weight.

        Rows of zero weight are left out (as :func:`_rows_of` does), so a
        far row that weighs nothing adds no ``0 · inf``. A product with it sums
        each component's rows in row order. O(rows).
        """
        n_rows = self.labels.shape[0]
        keep = self.weights != 0
        if keep.all():
            labels, weights, starts = self.labels, self.weights, np.arange(n_rows + 1)
        else:
            labels, weights = self.labels[keep], self.weights[keep]
            starts = np.concatenate([[0], np.cumsum(keep)])
        shape = (self.n_components, n_rows)
        return scipy.sparse.csc_matrix((weights, labels, starts), shape=shape)


def hard_labels(resp: np.ndarray, n_components: int) -> HardLabels | None:
    """``resp`` as :class:`HardLabels` if no row has two positive entries, else None.

    ``resp`` is (n, K), non-negative, or 1-D integer labels (weight 1 each).
    The weights are ``resp``'s entries at the labels, float64. O(n·K), no
    (n, K) temporary.
    """
    if resp.ndim == 1:
        return HardLabels(resp.astype(np.intp), np.ones(resp.shape[0]), n_components)
    labels = np.argmax(resp.T, axis=0)  # faster than along rows of a few entries
    if resp.flags.c_contiguous:  # one gather from the flat array: half take_along_axis's time
        weights = resp.reshape(-1)[np.arange(resp.shape[0]) * resp.shape[1] + labels]
    else:
        weights = np.take_along_axis(resp, labels[:, None], axis=1)[:, 0]
    # argmax picks a positive entry wherever a row has one: the rows are hard
    # when the matrix holds no more positive entries than those.
    if np.count_nonzero(resp) > np.count_nonzero(weights):
        return None
    return HardLabels(labels, weights.astype(np.float64), n_components)


def _rows_of(resp_k: np.ndarray) -> np.ndarray | slice:
    """The rows a component weighs (all of them unless some have zero weight)."""
    rows = np.flatnonzero(resp_k)
    return slice(None) if rows.size == resp_k.size else rows


def _label_order(resp: HardLabels) -> tuple[np.ndarray, np.ndarray]:
    """The rows of positive weight grouped by component, in row order within each,
    and where each component's group starts ((K + 1,) bounds). O(rows log rows).
    """
    keep = np.flatnonzero(resp.weights)
    order = keep[np.argsort(resp.labels[keep], kind="stable")]
    counts = np.bincount(resp.labels[keep], minlength=resp.n_components)
    return order, np.concatenate([[0], np.cumsum(counts)])


def _component_rows(resp, n_components: int) -> Iterator[tuple[np.ndarray | slice, np.ndarray]]:
    """``(rows, weights)`` of each component's rows of positive weight, in row order.

    :class:`HardLabels` are grouped by one stable sort (O(n log n)); a (K, n)
    array is searched component by component (O(n·K)).
    """
    if isinstance(resp, HardLabels):
        order, bounds = _label_order(resp)
        for k in range(n_components):
            rows = order[bounds[k] : bounds[k + 1]]
            yield rows, resp.weights[rows]
        return
    for k in range(n_components):
        rows = _rows_of(resp[k])
        yield rows, resp[k, rows]


def full_scatter(X: np.ndarray, resp, means: np.ndarray) -> np.ndarray:
    """``W_k``, (K, D, D), about given means; ``resp`` (K, n) is non-negative.

    Rows with zero responsibility are skipped, so hard labels (a k-means start)
    cost O(n·D²) in all, soft ones O(n·K·D²); each component's scatter is one
    product of ``sqrt(r)·(x - m)`` with itself, on one BLAS thread when small.
    ``resp`` may be :class:`HardLabels`: the rows are then grouped by one
    stable sort (O(n log n)) instead of K searches of the responsibilities,
    with the same numbers.
    """
    n_components, d = means.shape[0], X.shape[1]
    scatter = np.zeros((n_components, d, d))
    with blas_threads_for(float(X.shape[0]) * d * d, rows=True):
        for k, (rows, weight) in enumerate(_component_rows(resp, n_components)):
            dev = X[rows] - means[k]
            dev *= np.sqrt(weight)[:, None]
            scatter[k] = dev.T @ dev
    return scatter


def diagonal_scatter(X: np.ndarray, resp, means: np.ndarray) -> np.ndarray:
    """Diagonal of ``W_k``, (K, D), about given means; ``resp`` is (K, n). O(n·K·D).

    Rows with zero responsibility are skipped, as in :func:`full_scatter`.
    ``resp`` may be :class:`HardLabels`: then each row's deviation from its
    own component's mean, squared, and one sparse product, O(n·D).
    """
    if isinstance(resp, HardLabels):
        dev = np.take(means, resp.labels, axis=0)
        np.subtract(X, dev, out=dev)
        dev *= dev
        return np.asarray(resp.matrix() @ dev)
    scatter = np.empty(means.shape)
    for k, (rows, weight) in enumerate(_component_rows(resp, means.shape[0])):
        dev = X[rows] - means[k]
        scatter[k] = weight @ (dev * dev)
    return scatter


_CENTRED_SCATTER = {"full": full_scatter, "diagonal": diagonal_scatter, "pooled": full_scatter}


def from_responsibilities(
    chunks, kind: str, n_components: int, shift: np.ndarray, dtype
) -> Scatter:
    """The exact :class:`Scatter` of given responsibilities, in two passes.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` yields ``(Xc, resp_c, w_c)`` with ``Xc`` shifted rows in
        float64, ``resp_c`` of shape (K, rows) already multiplied by the weights
        ``w_c`` (or None), or :class:`HardLabels` (their weights multiplied
        likewise); it is called twice.
    kind : {'full', 'diagonal', 'pooled'}
    n_components : int
    shift : ndarray of shape (n_features,)
        What was subtracted from the rows; added back to the means.
    dtype : numpy dtype
        The working dtype (for the guard on ``nk``).

    Returns
    -------
    Scatter
        The first pass finds each component's mean,
        the second sums the scatter about it, so a component of one point, or
        far from the rest, keeps its digits. O(n·K·D²) for 'full' and 'pooled',
        O(n·K·D) for 'diagonal'; for :class:`HardLabels` O(n·D²) (plus a sort)
        and O(n·D).
    """
    nk = np.zeros(n_components)
    sum_x = np.zeros((n_components, shift.shape[0]))
    for Xc, resp, _ in chunks():
        if isinstance(resp, HardLabels):
            nk += resp.counts()
            sum_x += resp.matrix() @ Xc
        else:
            nk += resp.sum(axis=1)
            sum_x += resp @ Xc
    nk = guarded_counts(nk, dtype)
    means = sum_x / nk[:, None]
    scatter = None
    for Xc, resp, _ in chunks():
        part = _CENTRED_SCATTER[kind](Xc, resp, means)
        scatter = part if scatter is None else scatter + part
    if kind == "pooled":
        covariances = scatter.sum(axis=0) / nk.sum()
    else:
        covariances = scatter / nk.reshape((-1,) + (1,) * (scatter.ndim - 1))
    return Scatter(nk, means + shift, covariances, kind)


def from_matrices(nk: np.ndarray, means: np.ndarray, matrices: np.ndarray, kind: str) -> Scatter:
    """A :class:`Scatter` of ``kind`` from each component's covariance matrix (K, D, D).

    'full' keeps the matrices, 'diagonal' their diagonals, 'pooled' their
    mean weighted by ``nk`` (for a pooled family all matrices are the same).
    float64 copies. O(K·D²).

    >>> import numpy as np
    >>> s = from_matrices(np.ones(2), np.zeros((2, 2)), np.stack([np.eye(2), 3 * np.eye(2)]),
    ...                   "pooled")
    >>> s.covariances.tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    nk = np.asarray(nk, dtype=np.float64)
    if kind == "diagonal":
        covariances = np.diagonal(matrices, axis1=1, axis2=2).copy()
    elif kind == "pooled":
        covariances = np.einsum("k,kij->ij", nk / nk.sum(), matrices)
    else:
        covariances = matrices.copy()
    return Scatter(nk, np.asarray(means, dtype=np.float64), covariances, kind)


# ------------------------------------------------------------ incomplete rows
def merge_incomplete(
    scatter: Scatter,
    complete_nk: np.ndarray,
    nk: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    centres: np.ndarray,
    dtype,
) -> Scatter:
    """The :class:`Scatter` of complete rows and incomplete rows together.

    ``scatter`` holds the complete rows (``complete_nk`` their unguarded
    counts, possibly 0). The incomplete rows give ``nk`` (K,), ``first = sum r
    d`` (K, D) and ``second = sum r (d d' + C)`` (K, D, D) about ``centres``
    (K, D, data coordinates), with ``d`` the deviation whose holes hold their
    conditional expectation and ``C`` the conditional covariance of the holes
    (Ghahramani & Jordan, 1994). Two groups combine by the parallel-axis rule,
    ``W = W_1 + W_2 + n_1 n_2 / n (m_1 - m_2)(m_1 - m_2)'``, so the result has
    the scatter's kind and the family's constraint step is unchanged. O(K·D²).
    """
    guarded = guarded_counts(nk, dtype)
    delta = first / guarded[:, None]
    means_2 = centres + delta
    scatter_2 = second - guarded[:, None, None] * delta[:, :, None] * delta[:, None, :]
    total = guarded_counts(complete_nk + nk, dtype)
    gap = scatter.means - means_2
    between = (complete_nk * nk / total)[:, None, None] * gap[:, :, None] * gap[:, None, :]
    means = (complete_nk[:, None] * scatter.means + nk[:, None] * means_2) / total[:, None]
    added = scatter_2 + between
    if scatter.kind == "pooled":
        covariances = (scatter.scatter + added.sum(axis=0)) / total.sum()
    elif scatter.kind == "diagonal":
        added = np.diagonal(added, axis1=1, axis2=2)
        covariances = (scatter.scatter + added) / total[:, None]
    else:
        covariances = (scatter.scatter + added) / total[:, None, None]
    return Scatter(total, means, covariances, scatter.kind)
