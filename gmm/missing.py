"""Conditional Gaussians for rows with missing entries (Ghahramani & Jordan, 1994).

A row ``x`` with observed coordinates ``o`` and missing ones ``m`` has, under
component ``k`` with mean ``mu`` and precision ``P = Sigma^-1``:

- the marginal density of its observed entries, ``N(x_o | mu_o, Sigma_oo)``;
- the conditional distribution of its holes, ``N(x_m | c, P_mm^-1)`` with
  ``c = mu_m - P_mm^-1 P_mo (x_o - mu_o)``.

Both come from the precision: with ``d`` the deviation ``x - mu`` whose missing
entries are filled with ``c - mu_m``, ``(x_o - mu_o)' Sigma_oo^-1 (x_o - mu_o)
= d' P d`` and ``log det Sigma_oo = log det Sigma + log det P_mm``. So a row
costs one m × m Cholesky factorisation per component besides the
complete-data work, never a D × D one: O(K·(m³ + D²)) per row, and rows with
the same missingness pattern share the m × m work.

Rows are grouped into :class:`Block` s: rows with the same number ``m`` of
missing entries, sorted by pattern, so every step of the m × m work is one
vectorised operation over all the block's patterns and components
(:func:`cholesky_factor`, :func:`cholesky_inverse`) and every step of the
per-row work one over all its rows (no Python loop over rows or patterns;
per block, loops over the m holes and the D columns). With many distinct
patterns (at D = 20 and 20 % missing, most rows with m >= 5 have a pattern
of their own) the m × m work is per row. The expanded path (the usual one)
bounds every (row, component) pair's log-probability from ``a' P a`` and
``|(P a)_m|²`` with the extreme eigenvalues of the precision
(:func:`screen_pairs`, O(K) a row); only the pairs whose responsibility may
reach :data:`NEGLIGIBLE` get ``P_mm`` factored (m³/6 multiply-adds,
:func:`pair_factors`) and solved with (m²/2), and only those whose
responsibility is not negligible (:func:`drop_negligible`) their holes'
conditional expectations and covariances (m³/3 more): with K separated
components, about one pair a row (1.001 at 100,000 × 20, K = 20, 20 %
missing, from scikit-learn's one-iteration start). The precision, its
factor and the means are the family's public representation made dense
(:func:`dense_components`), so the same code serves every covariance
family, including families registered later.

Everything here is a kernel: inputs are trusted. Computations are in float64.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .covariance import CovarianceFamily, get_family
from .em import exp_floor

#: log(2 pi).
LOG_2PI = np.log(2 * np.pi)
#: Target size in bytes of a block's largest temporary, (K, rows, D) float64.
#: 4 MB: fewer blocks (Python calls, normalisations) than at 2 MB, about 10 %
#: faster at 100,000 × 20, K = 20 (experiments/bench_missing.py); 8 MB no faster,
#: 16 MB slower (measured again with the statistics on the kept pairs only:
#: 224, 226, 282 ms an E-step, one BLAS thread).
BLOCK_BYTES = 4 * 2**20
#: :data:`BLOCK_BYTES` of the blocks of a fit's expanded path, whose largest
#: temporaries are (m, rows, K), (K, rows) and (m, m, pairs), not (K, rows, D):
#: about 5,000 rows a block at D = 20, K = 20 with up to 4 holes. Once the
#: E-step computed only the pairs its screen keeps, fewer and larger blocks
#: paid: 122 ms an E-step at 16 MB against 153 ms at 8 MB and 120 ms at 32 MB
#: (100,000 × 20, K = 20, 20 % missing, one BLAS thread, medians of 7
#: alternating), whose pairs, when the screen keeps them all, take up to
#: twice the memory of 16 MB (a fit's peak 30 MB higher).
EXPANDED_BLOCK_BYTES = 16 * 2**20
#: A block with more patterns than this fraction of its rows takes each row as
#: a pattern of its own: the m × m work grows by the rows that share a pattern,
#: but the expanded E-step gathers no factors or log-determinants from patterns
#: to rows. At D = 20 and 20 % missing, the blocks of rows with 5 holes or more
#: have about 0.9 patterns a row.
OWN_PATTERNS = 0.75


@dataclass
class DenseComponents:
    """Every component as dense float64 arrays, whatever its family.

    Attributes
    ----------
    means : ndarray of shape (K, D)
        Shifted by the caller's reference point.
    precisions : ndarray of shape (K, D, D)
    factors : ndarray of shape (K, D, D)
        Upper-triangular ``U`` with ``precisions = U @ U.T``.
    precisions_last : ndarray of shape (D, D, K)
        The precisions with the components last (batches of m × m blocks).
    """

    means: np.ndarray
    precisions: np.ndarray
    factors: np.ndarray
    precisions_last: np.ndarray


def dense_components(
    means, precisions_cholesky, family: CovarianceFamily, shift
) -> DenseComponents:
    """Dense means, precisions and precision factors from the family's factors.

    ``family.component_covariance`` reads component ``k`` of the family's
    precision factors ``U`` (``U U' = Sigma^-1``, upper triangular) as a
    matrix, a vector (diagonal) or a scalar, the same shapes as its
    covariances. The factors are the ones the complete rows' E-step uses: a
    covariance stored in float32 is not factored again (rounded to float32,
    a nearly singular one can lose its positive definiteness). O(K·D³).
    """
    means = np.asarray(means, dtype=np.float64)
    n_components, n_features = means.shape
    eye = np.eye(n_features)
    factors = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        factor = np.asarray(family.component_covariance(precisions_cholesky, k), np.float64)
        if factor.ndim == 0:
            factor = factor * eye
        elif factor.ndim == 1:
            factor = np.diag(factor)
        factors[k] = factor
    precisions = factors @ np.swapaxes(factors, 1, 2)
    shifted = means - np.asarray(shift, dtype=np.float64)
    last = np.ascontiguousarray(precisions.transpose(1, 2, 0))
    return DenseComponents(shifted, precisions, factors, last)


@dataclass
class Block:
    """Rows with the same number of missing entries, sorted by pattern.

    Attributes
    ----------
    rows : ndarray of shape (n,)
        Indices of the rows in the array the blocks were made from.
    values : ndarray of shape (n, D)
        The rows in float64, minus the shift, with 0 in place of each hole.
    missing : ndarray of shape (p, m)
        Missing columns of each of the block's ``p`` patterns, ascending.
    pattern : ndarray of shape (n,)
        Each row's pattern, an index into ``missing`` (non-decreasing).
    starts : ndarray of shape (p,)
        First row of each pattern (for sums over a pattern's rows).
    embedding : scipy.sparse CSC matrix of shape (D², m²·p)
        Sums m × m matrices, one per pattern and laid out (m, m, p), each
        into its place in a D × D matrix. Compressed by column (one entry
        a column): the product reads the values in order and adds them into
        a D² × K result that stays in cache.
    hole_rows : ndarray of shape (H,)
        The row of each of the block's ``H = n·m`` holes, the holes sorted by
        column (stably, from their places ``i·n + row`` in an (m, n) array,
        slot ``i`` among the row's holes), for the expanded path
        (:func:`expanded_log_prob`).
    columns : list of (int, int, int)
        ``(j, start, stop)``: the holes at column ``j`` are positions
        ``start:stop`` of that order.
    hole_places : ndarray of shape (H,)
        For place ``i·n + row``, where that hole stands among the holes sorted
        by column (the inverse of the sort).
    places : ndarray of shape (m, m, p)
        ``(a_i·D + a_j)·K`` for the missing columns ``a`` of each pattern:
        where its ``P_mm`` of component 0 stands in the precisions laid out
        (D, D, K) (:func:`pair_factors`; add ``k`` for component ``k``).
    products : tuple of ndarray or None
        What the expanded path reads of the rows, kept across iterations by
        :func:`keep_products` (None: formed each time); see :func:`block_products`.
    """

    rows: np.ndarray
    values: np.ndarray
    missing: np.ndarray
    pattern: np.ndarray
    starts: np.ndarray
    embedding: sparse.csc_matrix
    hole_rows: np.ndarray
    columns: list
    hole_places: np.ndarray
    places: np.ndarray
    products: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_missing(self) -> int:
        return self.missing.shape[1]


def make_blocks(X: np.ndarray, shift, n_components: int, budget: int | None = None) -> list[Block]:
    """Group the rows of X (NaN marks a hole) into :class:`Block` s.

    Rows without NaN are left out: they take the complete-data path. A block
    of rows with m holes holds at most about ``budget / (8·K·max(D, m²))``
    rows (a pattern may span blocks), so the per-iteration temporaries of a
    block, (K, n, D) and (m², n, K) float64, take about ``budget`` bytes.

    O(n·D + n log n) time, once per fit; the blocks keep O(n·(D + m²)) numbers
    (the rows, their hole indices, the sparse embeddings and the places of
    the m × m blocks).
    """
    budget = BLOCK_BYTES if budget is None else budget
    n_features = X.shape[1]
    mask = np.isnan(X)
    incomplete = np.flatnonzero(mask.any(axis=1))
    if incomplete.size == 0:
        return []
    mask = mask[incomplete]
    packed = np.packbits(mask, axis=1)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, pattern_id = np.unique(keys, return_inverse=True)
    n_missing = mask.sum(axis=1)
    order = np.lexsort((pattern_id.ravel(), n_missing))
    incomplete, mask, pattern_id, n_missing = (
        incomplete[order],
        mask[order],
        pattern_id.ravel()[order],
        n_missing[order],
    )
    blocks = []
    bounds = np.flatnonzero(np.diff(n_missing)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, incomplete.size], strict=True):
        width = max(n_features, int(n_missing[lo]) ** 2)
        size = max(64, budget // (8 * max(1, n_components) * width))
        for start in range(lo, hi, size):
            stop = min(start + size, hi)
            ids = pattern_id[start:stop]
            first = np.r_[0, np.flatnonzero(np.diff(ids)) + 1]
            pattern = np.cumsum(np.r_[0, np.diff(ids) != 0])
            if first.size > OWN_PATTERNS * (stop - start):  # each row its own pattern
                first = pattern = np.arange(stop - start)
            m = int(n_missing[start])
            missing = np.nonzero(mask[start:stop][first])[1].reshape(first.size, m)
            values = np.asarray(X[incomplete[start:stop]], dtype=np.float64) - shift
            values[mask[start:stop]] = 0.0
            # Entry (i, j) of pattern q, laid out (m, m, p), goes to D × D place (a_i, a_j).
            flat = (missing.T[:, None, :] * n_features + missing.T[None, :, :]).ravel()
            embedding = sparse.csc_matrix(
                (np.ones(flat.size), (flat, np.arange(flat.size))),
                shape=(n_features**2, flat.size),
            )
            holes = missing[pattern]  # (n, m)
            hole_order = np.argsort(holes.T.ravel(), kind="stable")  # by column
            hole_places = np.empty_like(hole_order)
            hole_places[hole_order] = np.arange(hole_order.size)
            columns_at = holes.T.ravel()[hole_order]
            cuts = np.flatnonzero(np.diff(columns_at)) + 1
            columns = [
                (int(columns_at[a]), int(a), int(b))
                for a, b in zip(np.r_[0, cuts], np.r_[cuts, columns_at.size], strict=True)
            ]
            blocks.append(
                Block(
                    incomplete[start:stop],
                    *(values, missing, pattern, first, embedding),
                    *(hole_order % (stop - start), columns),
                    hole_places,
                    flat.reshape(m, m, -1) * n_components,
                )
            )
    return blocks


def cholesky_inverse(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-determinants and inverses of a batch of small SPD matrices, batch last.

    ``matrices`` has shape (m, m, B). The Cholesky factor ``L``, its inverse
    and ``L^-T L^-1`` are built entry by entry, each step one vectorised
    operation over the whole batch, in place where numpy allows: for the many
    tiny systems of a block (m a few, B = K · patterns in the thousands) this
    is far faster than one LAPACK call per matrix. Returns ``log det`` (B,) and
    the inverses (m, m, B). About m³/2 multiply-adds per matrix, O(m²·B)
    memory. A matrix that is not positive definite gives NaN.
    """
    with np.errstate(invalid="ignore"):  # not positive definite: NaN
        chol = cholesky_factor(matrices)
    return factor_log_det(chol), factor_inverse(chol)


def factor_log_det(chol: np.ndarray, determinant: np.ndarray | None = None) -> np.ndarray:
    """``log det (L L')`` (B,) of a batch of lower Cholesky factors (m, m, B). O(m·B).

    One logarithm a matrix (of ``determinant``, the product of the pivots as
    :func:`cholesky_factor` gives it, else of the diagonal's product squared),
    unless that product leaves the normal range: then the sum of logarithms
    of the diagonal for that matrix. Only the final product is checked: a
    partial product that falls below 1e-308 and comes back (pivots of
    1e-160, 1e-160 and 1e200) loses digits unnoticed. The expanded path,
    which alone passes ``determinant``, bounds its matrices' condition
    numbers (:func:`expanded_ok`), far below that.
    """
    m = chol.shape[0]
    if determinant is None:
        with np.errstate(over="ignore"):  # out of range: the sum of logarithms below
            determinant = np.square(np.prod(chol[np.arange(m), np.arange(m)], axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_det = np.log(determinant)
    odd = ~((determinant > 1e-300) & (determinant < 1e300))
    if odd.any():
        diagonal = chol[np.arange(m), np.arange(m)][:, odd]  # (m, odd)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_det[odd] = 2 * np.sum(np.log(diagonal), axis=0)
    return log_det


def factor_inverse(chol: np.ndarray) -> np.ndarray:
    """``(L L')^-1`` (m, m, B) of a batch of lower Cholesky factors (m, m, B), batch last.

    ``L^-1`` row by row, then ``L^-T L^-1`` entry by entry, each step one
    vectorised operation over the batch; only the lower triangle of ``chol``
    is read. About m³/3 multiply-adds per matrix, O(m²·B) memory.
    """
    m = chol.shape[0]
    recip = 1 / chol[np.arange(m), np.arange(m)]
    inv_chol = np.empty_like(chol)  # L^-1, lower triangular: row i from rows < i
    for i in range(m):
        row = inv_chol[i, :i]
        row[...] = 0.0
        for k in range(i):  # only the nonzero part k + 1 of row k of L^-1
            row[: k + 1] -= inv_chol[k, : k + 1] * chol[i, k]
        row *= recip[i]
        inv_chol[i, i] = recip[i]
    # (L L')^-1 = L^-T L^-1: entry (i, j) sums rows r >= max(i, j) of L^-1.
    inverse = np.empty_like(chol)
    for i in range(m):
        for j in range(i, m):
            np.einsum("rb,rb->b", inv_chol[j:, i], inv_chol[j:, j], out=inverse[i, j])
            if j > i:
                inverse[j, i] = inverse[i, j]
    return inverse


def solve_lower(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``L^-1 b`` for a batch, in place of ``rhs`` (m, B); ``chol`` (m, m, B) lower.

    Forward substitution, one vectorised step a row; only the lower triangle
    of ``chol`` is read. About m²/2 multiply-adds per system.
    """
    scratch = np.empty(rhs.shape[1:])
    for i in range(rhs.shape[0]):
        if i:
            np.einsum("jb,jb->b", chol[i, :i], rhs[:i], out=scratch)
            rhs[i] -= scratch
        rhs[i] /= chol[i, i]
    return rhs


def solve_upper(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``L^-T b`` for a batch, in place of ``rhs`` (m, B); ``chol`` (m, m, B) lower.

    Back substitution with the transposed factor, one vectorised step a row;
    only the lower triangle of ``chol`` is read. About m²/2 multiply-adds per
    system.
    """
    m = rhs.shape[0]
    scratch = np.empty(rhs.shape[1:])
    for i in range(m - 1, -1, -1):
        if i < m - 1:
            np.einsum("jb,jb->b", chol[i + 1 :, i], rhs[i + 1 :], out=scratch)
            rhs[i] -= scratch
        rhs[i] /= chol[i, i]
    return rhs


def conditional_precisions(block: Block, dense: DenseComponents):
    """``log det P_mm`` (K, p) and ``P_mm^-1`` of each pattern and component.

    Returns ``(log_det, inverse, inverse_last)``: ``inverse`` (K, p, m, m) and
    the same numbers as a contiguous ``inverse_last`` (m, m, p, K), the layout
    :func:`weighted_inverses` reads. The centred path, predictions and
    imputation use these; the expanded E-step factors ``P_mm`` only for the
    (row, component) pairs it keeps (:func:`pair_factors`).

    O(K·p·m³), vectorised over components and patterns (:func:`cholesky_inverse`)
    when they are many against m², else one LAPACK call per matrix.
    """
    return pattern_conditionals(block.missing, dense)


def cholesky_factor(matrices: np.ndarray, determinant: np.ndarray | None = None) -> np.ndarray:
    """Lower Cholesky factors of a batch of SPD matrices (m, m, B), batch last.

    Column by column, each column one pass over the batch; only the lower
    triangle of the result is written. With ``determinant`` (B,), the product
    of the pivots, ``det`` of each matrix, is written there on the way. About
    m³/6 multiply-adds per matrix.
    """
    m = matrices.shape[0]
    chol = np.empty_like(matrices)
    for j in range(m):
        column = chol[j:, j]  # column j from its diagonal down
        if j:  # less the columns already found: one pass, no temporary per column
            np.einsum("ikb,kb->ib", chol[j:, :j], chol[j, :j], out=column)
            np.subtract(matrices[j:, j], column, out=column)
        else:
            column[...] = matrices[j:, j]
        if determinant is not None and j:
            determinant *= column[0]
        elif determinant is not None:
            determinant[...] = column[0]
        np.sqrt(column[0], out=column[0])
        column[1:] /= column[0]
    return chol


def _lapack_pays(m: int, n_matrices: int) -> bool:
    """Whether ``n_matrices`` m × m matrices are few against m²: then one LAPACK call
    per matrix costs less than the m² vectorised steps of a batch."""
    return 4 * m * m > n_matrices


def _lapack_cholesky(stack: np.ndarray):
    """Lower factors of a stack (..., m, m) of SPD matrices, one LAPACK call per
    matrix, and their ``log det`` (...)."""
    chol = np.linalg.cholesky(stack)
    return chol, 2 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def _lapack_first(idx: np.ndarray, dense: DenseComponents) -> bool:
    """:func:`_lapack_pays` for the ``P_mm`` of the patterns ``idx`` (p, m), every component."""
    return _lapack_pays(idx.shape[1], dense.precisions.shape[0] * idx.shape[0])


def _lapack_factors(idx: np.ndarray, dense: DenseComponents):
    """``P_mm`` (K, p, m, m) of the patterns ``idx``, its lower factors and ``log det``
    (K, p), one LAPACK call per matrix."""
    sub = dense.precisions[:, idx[:, :, None], idx[:, None, :]]
    chol, log_det = _lapack_cholesky(sub)
    return sub, chol, log_det


def _gathered(idx: np.ndarray, dense: DenseComponents) -> np.ndarray:
    """``P_mm`` of every pattern ``idx`` (p, m) and component, (m, m, p·K), batch last."""
    n_features, m = dense.precisions_last.shape[0], idx.shape[1]
    places = idx.T[:, None, :] * n_features + idx.T[None, :, :]  # (m, m, p) in D × D
    batch = np.take(dense.precisions_last.reshape(n_features**2, -1), places, axis=0)
    return batch.reshape(m, m, -1)


def pattern_conditionals(idx: np.ndarray, dense: DenseComponents):
    """:func:`conditional_precisions` of the patterns ``idx`` (p, m), missing columns."""
    n_components, n_patterns, m = dense.precisions.shape[0], idx.shape[0], idx.shape[1]
    if _lapack_first(idx, dense):
        sub, _, log_det = _lapack_factors(idx, dense)
        inverse = np.linalg.inv(sub)
        return log_det, inverse, np.ascontiguousarray(inverse.transpose(2, 3, 1, 0))
    log_det, last = cholesky_inverse(_gathered(idx, dense))
    last = last.reshape(m, m, n_patterns, n_components)
    return log_det.reshape(n_patterns, n_components).T, last.transpose(3, 2, 0, 1), last


#: On the expanded path a responsibility below this (the row's responsibilities
#: sum to 1 before its sample weight) is set to 0 (:func:`drop_negligible`).
NEGLIGIBLE = 2.0**-60


def drop_negligible(resp: np.ndarray) -> np.ndarray:
    """Set the responsibilities below :data:`NEGLIGIBLE` to 0, in place; (K, n).

    With K well-separated components most of a row's K responsibilities are
    astronomically small; :func:`expanded_statistics` then works only on the
    (row, component) pairs left. A row loses at most K·2^-60 of its weight,
    the same kind of truncation as :func:`gmm.em.normalize_log_prob`'s 0
    below exp(-708): the statistics are exactly those of the responsibilities
    kept. Component k's weight changes by at most n·2^-60 in absolute terms,
    so relatively by about n·2^-60 / nk (1e-15 for a component that holds a
    thousandth of a million rows; more for a component that holds almost
    none). Only the expanded path of the rows with holes drops them (complete
    rows and the centred path keep every pair); the log-likelihood is
    unchanged. O(K·n).
    """
    resp *= resp >= NEGLIGIBLE
    return resp


def block_log_prob(block: Block, dense: DenseComponents, log_const, conditionals):
    """Weighted log-probabilities of the observed entries and the filled deviations.

    Parameters
    ----------
    block : Block
    dense : DenseComponents
        Means shifted as ``block.values``.
    log_const : ndarray of shape (K,)
        The estimator's ``log pi_k + log det U_k - D/2 log(2 pi)``.
    conditionals : tuple
        :func:`conditional_precisions` of the block.

    Returns
    -------
    log_prob : ndarray of shape (K, n)
        ``log pi_k + log N(x_o | mu_o, Sigma_oo)`` per component and row.
    deviations : ndarray of shape (K, n, D)
        ``x - mu_k`` with each hole filled by ``E[x_m | x_o, k] - mu_m``.

    Notes
    -----
    With ``d_0`` the deviation with 0 in the holes and ``g = P d_0``, the holes'
    conditional deviation is ``-P_mm^-1 g_m`` and the Mahalanobis distance of
    the observed entries is ``|d_0 U|² - g_m' P_mm^-1 g_m`` (a Schur
    complement). Two batched GEMMs over the components: O(n·K·(D² + m²))
    time besides :func:`conditional_precisions`, O(n·K·(D + m²)) memory.
    """
    log_det, inverse = conditionals[:2]
    n_rows = block.values.shape[0]
    m = block.n_missing
    holes = block.missing[block.pattern]  # (n, m)
    rows = np.arange(n_rows)[:, None]
    observed = np.ones(block.values.shape)
    observed[rows, holes] = 0.0
    dev = block.values[None] - dense.means[:, None]  # (K, n, D)
    dev *= observed
    whitened = dev @ dense.factors
    grad = (whitened @ np.swapaxes(dense.factors, 1, 2))[:, rows, holes]  # (K, n, m)
    per_row = inverse if inverse.shape[1] == n_rows else inverse[:, block.pattern]
    filled = -(per_row @ grad[..., None])[..., 0]
    # |d_0 U|² - g_m' P_mm^-1 g_m, never below 0 after rounding.
    maha = np.einsum("knd,knd->kn", whitened, whitened) + np.einsum("kni,kni->kn", grad, filled)
    np.maximum(maha, 0.0, out=maha)
    dev[:, rows, holes] = filled
    log_prob = log_const[:, None] + 0.5 * m * LOG_2PI - 0.5 * log_det[:, block.pattern]
    log_prob -= 0.5 * maha
    return log_prob, dev


@dataclass
class IncompleteStatistics:
    """Sufficient statistics of incomplete rows, about the components' means.

    Adding two gives those of the union of their rows (same ``centres``).

    Attributes
    ----------
    nk : ndarray of shape (K,)
        Summed (weighted) responsibilities.
    first : ndarray of shape (K, D)
        ``sum_n r_nk d_nk`` with ``d`` the filled deviation from ``centres``.
    second : ndarray of shape (K, D, D)
        ``sum_n r_nk (d_nk d_nk' + C_nk)``, ``C_nk`` the conditional covariance
        of the holes (zero outside the missing block).
    centres : ndarray of shape (K, D)
        The means the deviations are taken from (shifted).
    """

    nk: np.ndarray
    first: np.ndarray
    second: np.ndarray
    centres: np.ndarray

    def __add__(self, other: IncompleteStatistics) -> IncompleteStatistics:
        return IncompleteStatistics(
            self.nk + other.nk,
            self.first + other.first,
            self.second + other.second,
            self.centres,
        )


def block_statistics(
    block: Block, resp: np.ndarray, deviations: np.ndarray, conditionals
) -> IncompleteStatistics:
    """Statistics of a block from its weighted responsibilities ``resp`` (K, n).

    O(n·K·D²) time.
    """
    second = np.swapaxes(deviations * resp[:, :, None], 1, 2) @ deviations
    second += (block.embedding @ weighted_inverses(block, resp, conditionals)).T.reshape(
        second.shape
    )
    first = np.einsum("kn,knd->kd", resp, deviations)
    return IncompleteStatistics(resp.sum(axis=1), first, second, None)


def weighted_inverses(block: Block, resp: np.ndarray, conditionals) -> np.ndarray:
    """``sum r P_mm^-1`` over each pattern's rows, shape (m²·p, K) laid out (m, m, p).

    ``resp`` (K, n); ``block.embedding`` puts the result in place. O(K·(n + p·m²)).
    """
    per_pattern = np.add.reduceat(resp, block.starts, axis=1)  # (K, p)
    last = conditionals[2]  # (m, m, p, K)
    return (last * per_pattern.T).reshape(-1, last.shape[-1])


def block_imputations(
    block: Block,
    dense: DenseComponents,
    log_const,
    conditionals,
    n_draws: int | None,
    random_state: np.random.RandomState,
) -> np.ndarray:
    """Values for the holes of a block's rows (shifted like ``block.values``).

    With ``n_draws`` None, the conditional mean under the mixture,
    ``sum_k p(k | x_o) E[x_m | x_o, k]``, shape (1, n, m). Otherwise
    ``n_draws`` draws from the conditional mixture ``p(x_m | x_o)``: a
    component from ``p(k | x_o)``, then ``N(E[x_m | x_o, k], P_mm^-1)``;
    shape (n_draws, n, m). O(n·K·(D² + m²) + K·p·m³ + n_draws·n·(K + m²)).
    """
    log_prob, deviations = block_log_prob(block, dense, log_const, conditionals)
    log_prob -= log_prob.max(axis=0)
    resp = np.exp(log_prob)
    resp /= resp.sum(axis=0)
    holes = block.missing[block.pattern]  # (n, m)
    rows = np.arange(holes.shape[0])[:, None]
    # E[x_m | x_o, k] for every component: (K, n, m).
    means = dense.means[:, holes] + deviations[:, rows, holes]
    if n_draws is None:
        return np.einsum("kn,knm->nm", resp, means)[None]
    cumulative = np.cumsum(resp, axis=0)
    cumulative[-1] = 1.0
    factors = np.linalg.cholesky(conditionals[1])  # (K, p, m, m): L L' = P_mm^-1
    draws = np.empty((n_draws, holes.shape[0], holes.shape[1]))
    for i in range(n_draws):
        u = random_state.uniform(size=holes.shape[0])
        k = np.minimum((cumulative < u).sum(axis=0), resp.shape[0] - 1)
        z = random_state.standard_normal(holes.shape)
        noise = np.einsum("nij,nj->ni", factors[k, block.pattern], z)
        draws[i] = means[k, rows[:, 0]] + noise
    return draws


# ------------------------------------------------------------------ the expanded path
def block_products(block: Block) -> tuple[np.ndarray, np.ndarray]:
    """What the expanded path reads of a block's rows: ``(features, at_holes)``.

    ``features`` (n, D(D+1)/2 + D) are the 'full' family's quadratic features
    ``[x_i x_j (i <= j), x]`` of the rows (0 in the holes); ``at_holes``
    (H, D + 1) is ``[x, 1]`` at each hole's row, the holes sorted by column
    (``block.hole_rows``). They depend on the data only: the ones kept by
    :func:`keep_products`, else formed now, O(n·D² + H·D) time and memory.
    """
    if block.products is not None:
        return block.products
    x = block.values
    with np.errstate(over="ignore"):  # a row whose squares overflow is refused later
        feats = get_family("full").features(x)
    with_one = np.empty((x.shape[0], x.shape[1] + 1))
    with_one[:, :-1] = x
    with_one[:, -1] = 1.0
    return feats, np.take(with_one, block.hole_rows, axis=0)


def products_bytes(block: Block) -> int:
    """Bytes of a block's :func:`block_products` (float64)."""
    n_rows, d = block.values.shape
    return 8 * (n_rows * (d * (d + 1) // 2 + d) + block.hole_rows.size * (d + 1))


def keep_products(blocks: list[Block], budget: int) -> int:
    """Keep the :func:`block_products` of the first blocks whose total fits in ``budget`` bytes.

    The rows of a fit do not change between iterations, so neither do these:
    forming them cost 15 to 30 ms of a 450 ms incomplete iteration at
    100,000 × 20, K = 20 with 20 % missing (experiments/bench_missing.py,
    one BLAS thread), where they take about 250 MB, 8·(D(D+1)/2 + D +
    m·(D + 1)) bytes a row with m holes.
    Returns the bytes kept. O(n·D²) time once.
    """
    kept = 0
    for block in blocks:
        size = products_bytes(block)
        if kept + size > budget:
            break
        block.products = block_products(block)
        kept += size
    return kept


@functools.cache
def pair_indices(m: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(m)``, kept read-only (called per block; about 40 µs each time)."""
    upper, lower = np.triu_indices(m)
    upper.flags.writeable = lower.flags.writeable = False
    return upper, lower


#: Largest condition estimate (see :func:`expanded_ok`) for the expanded path.
EXPANDED_KAPPA = 1e-4 / np.finfo(np.float64).eps


@dataclass
class Expanded:
    """The mixture's coefficients for :func:`expanded_log_prob`, once per iteration.

    Attributes
    ----------
    linear : ndarray of shape (K, D(D+1)/2 + D)
        ``(x - mu)' P (x - mu) = linear @ features(x) + const`` (upper-triangle
        products ``x_i x_j``, i <= j, then ``x``).
    const : ndarray of shape (K,)
        ``mu' P mu``.
    hole_rows : ndarray of shape (D, D + 1, K)
        For hole column ``j``, ``[x, 1] @ hole_rows[j] = (P (x - mu))_j`` of
        every component: row ``j`` of the precisions, then ``-(P mu)_j``.
    eigen_low, eigen_high : ndarray of shape (K,)
        The smallest and largest eigenvalue of each precision, which bound
        those of every ``P_mm`` (interlacing), for :func:`screen_pairs`.
    """

    linear: np.ndarray
    const: np.ndarray
    hole_rows: np.ndarray
    eigen_low: np.ndarray
    eigen_high: np.ndarray


def expanded_coefficients(dense: DenseComponents) -> Expanded:
    """:class:`Expanded` of the (shifted) components. O(K·D²)."""
    d = dense.means.shape[1]
    rows, cols = np.triu_indices(d)
    prec = dense.precisions
    prec_means = np.einsum("kij,kj->ki", prec, dense.means)
    quad = prec[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
    linear = np.concatenate([quad, -2.0 * prec_means], axis=1)
    const = np.einsum("ki,ki->k", dense.means, prec_means)
    hole_rows = np.empty((d, d + 1, prec.shape[0]))
    hole_rows[:, :d] = dense.precisions_last
    hole_rows[:, d] = -prec_means.T
    eigen = np.linalg.eigvalsh(prec)
    return Expanded(linear, const, hole_rows, eigen[:, 0], eigen[:, -1])


def expanded_ok(dense: DenseComponents, weights) -> bool:
    """Whether the expanded quadratic keeps its accuracy for every component.

    The estimate is the one of the 'full' family's expanded E-step: the largest
    precision eigenvalue times the squared spread of the (shifted) data,
    ``lambda_max (s + |mu_k|)² / D``, against a bound 1e-4 / eps. O(K·D³).
    """
    eigen = np.linalg.eigvalsh(dense.precisions)
    if not np.all(eigen > 0):
        return False
    norms = np.linalg.norm(dense.means, axis=1)
    spread = np.sqrt(max(float(np.asarray(weights) @ (np.sum(1 / eigen, axis=1) + norms**2)), 0))
    kappa = eigen[:, -1] * (spread + norms) ** 2 / dense.means.shape[1]
    return bool(np.max(kappa) <= EXPANDED_KAPPA)


def expanded_log_prob(block: Block, dense: DenseComponents, coefs: Expanded, log_const):
    """:func:`block_log_prob` by matrix products shared by all components.

    With ``x`` the row (shifted, 0 in the holes) and ``a = x - mu``, the
    Mahalanobis distance of the observed entries is ``a' P a - |L^-1 u|²``
    with ``u = (P a)_m`` and ``L L' = P_mm``, and the holes' conditional
    expectation (shifted) is ``-L^-T L^-1 u`` (whatever ``a`` holds in the
    holes). ``a' P a`` is one GEMM with the quadratic features, as in the
    'full' family's expanded E-step; ``(P a)_m`` one small GEMM per hole
    column over the rows with a hole there (the block's holes sorted by
    column; the rows with a 1 appended, so the GEMM also subtracts
    ``(P mu)_m``). From these alone, bounds on each pair's log-probability
    (:func:`screen_pairs`) leave out the (row, component) pairs whose
    responsibility is surely below :data:`NEGLIGIBLE`; for the others
    (:class:`Pairs`; with K separated components about one a row, 1.001 at
    100,000 × 20, K = 20), ``P_mm`` is gathered and factored
    (:func:`pair_factors`; once per pattern and component,
    :func:`pattern_factors`, when the pairs are as many or more) and
    ``L^-1 u`` found by one forward substitution over them
    (:func:`solve_lower`), in chunks of :func:`pair_chunk` pairs. The
    back-substitution to ``e`` is left to :func:`expanded_statistics`, for
    the pairs whose responsibility counts. Use only when :func:`expanded_ok`.
    O(n·K·(D² / 2 + m·D) + P·m³/6) time for P pairs left,
    O(n·(D² + K·m) + P·m²) memory.

    Returns
    -------
    log_prob : ndarray of shape (P,)
        The log-probabilities of the pairs computed (the others count as -inf).
    pairs : Pairs
    """
    n_rows, m = block.values.shape[0], block.n_missing
    n_components = dense.means.shape[0]
    feats, at_holes = block_products(block)
    const = np.asarray(log_const, dtype=np.float64) + 0.5 * m * LOG_2PI
    low = const - 0.5 * m * np.log(coefs.eigen_high)  # see screen_pairs
    absent = bool(np.isneginf(low).any())
    # (K, n): -a'Pa / 2 + low. ``feats.T`` is feature-major, read in order:
    # half the time of ``feats @ linear.T`` (measured, 100,000 × 20, K = 20).
    base = (-0.5 * coefs.linear) @ feats.T
    base += (low - 0.5 * coefs.const)[:, None]
    by_column = np.empty((at_holes.shape[0], n_components))
    for j, start, stop in block.columns:  # (P x)_j - (P mu)_j
        np.matmul(at_holes[start:stop], coefs.hole_rows[j], out=by_column[start:stop])
    # (P a)_m, (m, n, K): gathered back to slot order (a gather is about twice
    # as fast as the scatter by the sort's order).
    u = np.take(by_column, block.hole_places, axis=0).reshape(m, n_rows, n_components)
    # |u|² (K, n), component-major like ``base`` (einsum's "kn" would be a
    # transposed view, slow in every pass of the screen).
    uu = np.ascontiguousarray(np.einsum("ink,ink->nk", u, u).T)
    flat = screen_pairs(base, uu, coefs, const, m)
    k, rows = np.divmod(flat, n_rows)
    values = np.empty(flat.size)
    factors, solved = [], []
    # As many pairs as patterns × components or more (overlapping components):
    # P_mm factored once per pattern and component, the factors taken per pair.
    by_pattern = block.missing.shape[0] * n_components <= flat.size
    if by_pattern:
        pattern_log_det, pattern_chol = pattern_factors(block, dense)
    size = pair_chunk(m, block.values.shape[1])
    for start in range(0, flat.size, size):  # cache-sized chunks of pairs
        part = slice(start, start + size)
        if by_pattern:
            at = k[part] * block.missing.shape[0] + block.pattern[rows[part]]
            log_det, chol = pattern_log_det[at], np.take(pattern_chol, at, axis=2)
        else:
            places = np.take(block.places, block.pattern[rows[part]], axis=2)
            places += k[part]
            log_det, chol = pair_factors(places, dense)
        at = rows[part] * n_components + k[part]
        work = solve_lower(chol, np.take(u.reshape(m, -1), at, axis=1))
        # -(a'Pa - |L^-1 u|²) / 2, never above 0 after rounding.
        half = np.take(base.ravel(), flat[part])
        half -= low[k[part]]
        if absent:  # a component of weight 0: -inf - (-inf); its pairs stay -inf
            half[np.isneginf(low[k[part]])] = 0.0
        half += 0.5 * np.einsum("ip,ip->p", work, work)
        np.minimum(half, 0.0, out=half)
        # log_const + m/2 log(2 pi) - log det(P_mm)/2 - (a'Pa - |L^-1 u|²)/2.
        chunk = values[part]
        np.multiply(log_det, -0.5, out=chunk)
        chunk += const[k[part]]
        chunk += half
        factors.append(chol)
        solved.append(work)
    return values, Pairs(flat, rows, k, factors, solved, n_components)


#: Bytes of the largest per-pair temporaries, (m, m, pairs) and (pairs, D + 1)
#: float64, of a chunk of pairs (:func:`pair_chunk`): when the screen keeps
#: most pairs (overlapping components), a block's pairs are computed in
#: chunks that stay in cache. Measured with 20 components at the data's mean
#: (every pair kept, 100,000 × 20, 20 % missing, one BLAS thread, load 4): an
#: E-step of 1.21 s in chunks against 1.67 s in one piece; 0.94 s on the path
#: without the screen (factors per pattern and component, (m, n, K) layout).
#: With the pattern factors laid out by component (:func:`pattern_factors`)
#: 0.97 s against 0.84 s: when the screen keeps every pair it costs about
#: 1.2 times that path.
PAIR_BYTES = 2 * 2**20


def pair_chunk(m: int, n_features: int) -> int:
    """Pairs a chunk of :data:`PAIR_BYTES` holds, for m holes and D features."""
    return max(16, PAIR_BYTES // (8 * max(m * m, n_features + 1)))


#: Margin in log space of :func:`screen_pairs` against rounding in its bounds.
SCREEN_MARGIN = 1.0


def screen_pairs(base, uu, coefs: Expanded, const, m: int) -> np.ndarray:
    """Places ``k·n + row`` (ascending) of the (row, component) pairs worth computing.

    ``uu`` (K, n) is ``|u|²`` with ``u = (P a)_m``, ``const`` (K,) is
    ``log_const + m/2 log(2 pi)`` and ``base`` (K, n) is
    ``const - m/2 log h - a'Pa / 2``. The eigenvalues of ``P_mm`` lie between
    the extreme ones of ``P``, ``l`` and ``h`` (interlacing), so a pair's
    log-probability ``const - log det(P_mm)/2 - (a'Pa - u' P_mm^-1 u)/2``
    lies between ``base + |u|²/(2h)`` and
    ``base + |u|²/(2l) + m/2 log(h/l)``. A pair whose upper bound is more than
    ``-log NEGLIGIBLE`` (+ :data:`SCREEN_MARGIN`) below the largest lower
    bound of its row has a responsibility below :data:`NEGLIGIBLE`, which
    :func:`drop_negligible` would set to 0: it is left out. A row with a NaN
    bound keeps none (its log-probabilities would be NaN: it is refused as
    a row whose are all -inf). O(K·n).
    """
    if not NEGLIGIBLE > 0:
        return np.arange(base.size)
    low, high = coefs.eigen_low, coefs.eigen_high
    bound = np.multiply(uu, (0.5 / high)[:, None])
    bound += base
    best = bound.max(axis=0)
    np.multiply(uu, (0.5 / low)[:, None], out=bound)
    bound += base
    # upper bound + margin - best, against 0
    gap = 0.5 * m * np.log(high / low) - np.log(NEGLIGIBLE) + SCREEN_MARGIN
    bound += gap[:, None]
    return np.flatnonzero(np.greater_equal(bound, best))


def pair_factors(places: np.ndarray, dense: DenseComponents):
    """``log det P_mm`` (P,) and the lower Cholesky factors (m, m, P) of P pairs.

    ``places`` (m, m, P) are where each pair's ``P_mm`` stands in
    ``dense.precisions_last`` flattened, ``(a_i·D + a_j)·K + k`` for its
    holes ``a`` and component ``k``. See :func:`factor_batch`. O(P·m³/6)
    time, O(P·m²) memory.
    """
    return factor_batch(np.take(dense.precisions_last, places))


def pattern_factors(block: Block, dense: DenseComponents):
    """:func:`pair_factors` of every pattern and component of a block, (K·p,) and
    (m, m, K·p), component-major (place ``k·p + q``, so the pairs, by component,
    take them in order). O(K·p·m³/6)."""
    m, n_patterns = block.n_missing, block.missing.shape[0]
    batch = _gathered(block.missing, dense).reshape(m, m, n_patterns, -1)
    return factor_batch(np.ascontiguousarray(batch.transpose(0, 1, 3, 2)).reshape(m, m, -1))


def factor_batch(sub: np.ndarray):
    """``log det`` (B,) and lower Cholesky factors (m, m, B) of a batch of SPD matrices.

    :func:`cholesky_factor`, one vectorised step over the batch, unless the
    matrices are few against m²: then one LAPACK call per matrix. Only the
    lower triangle of the factors is set; a matrix that is not positive
    definite gives NaN (the batch) or LinAlgError (LAPACK).
    """
    m, n_matrices = sub.shape[1:]
    if _lapack_pays(m, n_matrices):
        chol, log_det = _lapack_cholesky(sub.transpose(2, 0, 1))
        return log_det, np.ascontiguousarray(chol.transpose(1, 2, 0))
    determinant = np.empty(n_matrices)
    # Not positive definite: NaN; a determinant out of range: see factor_log_det.
    with np.errstate(invalid="ignore", over="ignore"):
        chol = cholesky_factor(sub, determinant)
    return factor_log_det(chol, determinant), chol


@dataclass
class Pairs:
    """The (row, component) pairs of a block that :func:`expanded_log_prob` computed.

    Attributes
    ----------
    flat : ndarray of shape (P,)
        Places ``k·n + row`` in the (K, n) log-probabilities, ascending.
    rows, components : ndarray of shape (P,)
    factors : list of ndarray of shape (m, m, chunk)
        Lower Cholesky factors ``L`` of each pair's ``P_mm``, by chunks of
        :func:`pair_chunk` pairs.
    solved : list of ndarray of shape (m, chunk)
        ``L^-1 u``, by the same chunks.
    n_components : int
        K.
    """

    flat: np.ndarray
    rows: np.ndarray
    components: np.ndarray
    factors: list
    solved: list
    n_components: int


@dataclass
class ExpandedStatistics:
    """Sums of :func:`expanded_statistics` over blocks; :meth:`finish` makes them moments.

    Attributes
    ----------
    nk : ndarray of shape (K,)
    first : ndarray of shape (K, D)
        ``sum r z`` with ``z`` the row with each hole at its conditional
        expectation (shifted).
    second : ndarray of shape (K, D, D)
        ``sum r z z'`` (symmetric up to rounding).
    hole_pairs : ndarray of shape (D², K)
        The upper triangle (rows of D × D) of ``sum r C`` with ``C`` the
        conditional covariance of the holes; 0 below the diagonal.
    """

    nk: np.ndarray
    first: np.ndarray
    second: np.ndarray
    hole_pairs: np.ndarray

    def __add__(self, other: ExpandedStatistics) -> ExpandedStatistics:
        return ExpandedStatistics(
            *(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True))
        )

    def astuple(self):
        return self.nk, self.first, self.second, self.hole_pairs

    def finish(self) -> IncompleteStatistics:
        """:class:`IncompleteStatistics` about the shift (``centres`` 0). O(K·D²)."""
        n_components, d = self.first.shape
        second = self.second + np.swapaxes(self.second, 1, 2)
        second *= 0.5  # exactly symmetric
        pairs = self.hole_pairs.T.reshape(n_components, d, d)  # upper triangle
        second += pairs
        second += np.swapaxes(pairs, 1, 2)
        second[:, np.arange(d), np.arange(d)] -= pairs[:, np.arange(d), np.arange(d)]
        return IncompleteStatistics(self.nk, self.first, second, np.zeros((n_components, d)))


def normalize_pairs(values: np.ndarray, rows: np.ndarray, n_rows: int):
    """:func:`gmm.em.normalize_log_prob` of the log-probabilities of some pairs only.

    ``values`` (P,) are the log-probabilities of the pairs at ``rows`` (P,),
    by component and rows ascending within one; the other pairs count as
    -inf. Returns ``(resp (P,), log_norm (n,), top (n,))``: the same numbers
    as the normalisation of the (K, n) log-probabilities with -inf for the
    pairs left out (each row's maximum; exponentials below the smallest
    normal number are 0; the sums over a row's pairs in component order).
    ``top`` is each row's maximum; where it is not finite (a row all -inf or
    NaN) the row's numbers are not meaningful, and the caller refuses it.
    O(P + n).
    """
    top = np.full(n_rows, -np.inf)
    np.maximum.at(top, rows, values)
    finite = np.isfinite(top)
    if not finite.all():
        top[~finite] = 0.0  # refused by the caller; nothing below divides by 0
    resp = values - np.take(top, rows)
    floor = exp_floor(np.dtype(np.float64))  # below: exp is subnormal, taken as 0
    small = resp < floor
    np.exp(resp, out=resp)
    if small.any():
        resp[small] = 0.0
    total = np.bincount(rows, weights=resp, minlength=n_rows)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows without pairs: refused
        resp /= np.take(total, rows)
        log_norm = np.log(total, out=total)
    log_norm += top
    top[~finite] = np.nan
    return resp, log_norm, top


def expanded_statistics(block: Block, pairs: Pairs, resp: np.ndarray) -> ExpandedStatistics:
    """:func:`block_statistics` about the shift, from :func:`expanded_log_prob`'s pairs.

    ``resp`` (P,) are the pairs' weighted responsibilities. Only the pairs
    whose responsibility is not 0 count (see :func:`drop_negligible`; with K
    separated components about one a row): their factors are taken, the
    holes' conditional expectations ``e`` found by back-substitution
    (:func:`solve_upper`) and each pair's row ``z = x + e`` filled (``x`` 0
    in the holes); then, per component, one GEMM over its pairs gives
    ``sum r [z, 1] [z, 1]'``, that is ``sum r z z'``, ``sum r z`` and
    ``sum r``. The conditional covariances ``C = P_mm^-1``
    (:func:`factor_inverse`) of the pairs, times ``r``, are summed into the
    upper triangle of a D × D matrix per component by ``np.bincount``.
    O(P·(m³/2 + D²)) time for P pairs, O(P·(D + m²)) memory.
    """
    total = None
    start = 0
    for chol, work in zip(pairs.factors, pairs.solved, strict=True):  # by chunks
        part = slice(start, start + chol.shape[2])
        stats = chunk_statistics(
            block,
            pairs.n_components,
            pairs.components[part],
            pairs.rows[part],
            resp[part],
            chol,
            work,
        )
        total = stats if total is None else total + stats
        start = part.stop
    return total


def chunk_statistics(
    block: Block, n_components: int, k, rows, resp, chol, work
) -> ExpandedStatistics:
    """:func:`expanded_statistics` of one chunk of C pairs.

    ``k``, ``rows`` and ``resp`` (C,) are the pairs' components, rows and
    weighted responsibilities, ``chol`` (m, m, C) their factors and ``work``
    (m, C) their ``L^-1 u`` (overwritten when every pair counts).
    """
    d, m = block.values.shape[1], block.n_missing
    # The pairs that count, by component and rows ascending within one (one
    # GEMM each).
    at = np.flatnonzero(resp)
    factors, r = chol, resp
    if at.size < resp.size:  # else every pair counts: nothing to gather
        k, rows, r = k[at], rows[at], resp[at]
        factors, work = np.take(chol, at, axis=2), np.take(work, at, axis=1)
    negated = solve_upper(factors, work)  # -e (m, P), in place of ``work``
    pattern = block.pattern[rows]
    holes = block.missing[pattern]  # (P, m)
    filled = np.empty((rows.size, d + 1))  # [z, 1] of each pair
    filled[:, :d] = np.take(block.values, rows, axis=0)
    filled[:, d] = 1.0
    filled[np.arange(rows.size)[:, None], holes] = -negated.T
    weighted = filled * r[:, None]
    bounds = np.searchsorted(k, np.arange(n_components + 1))
    moments = np.zeros((n_components, d + 1, d + 1))
    for c in range(n_components):
        a, b = bounds[c], bounds[c + 1]
        if b > a:
            np.matmul(weighted[a:b].T, filled[a:b], out=moments[c])
    # r C_ij of each pair for the hole pairs i <= j (T, P), summed into the
    # upper triangle of a D × D matrix per component.
    inverse = factor_inverse(factors)  # (m, m, P)
    first, second = pair_indices(m)  # the hole pairs i <= j
    values = inverse[first, second] * r
    # (a_i·D + a_j)·K + k: the places in (D², K) of each pair's hole pairs, (T, P)
    places = np.take(block.places.reshape(m * m, -1)[first * m + second], pattern, axis=1)
    places += k
    hole_pairs = np.bincount(
        places.ravel(), weights=values.ravel(), minlength=d * d * n_components
    ).reshape(d * d, n_components)
    nk = np.bincount(k, weights=r, minlength=n_components)
    return ExpandedStatistics(nk, moments[:, d, :d], moments[:, :d, :d], hole_pairs)
