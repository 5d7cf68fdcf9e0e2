"""Data with missing entries (NaN) for ``nan_policy='omit'`` and ``'marginalize'``.

:class:`WithMissing` is how the estimator hands the scale layer its data
together with its ``nan_policy``; :func:`fit_data` and :func:`predict_data`
of :mod:`gmm.scale` then validate it here:

- infinities are always an error; a column with no observed entry is an error;
- ``'omit'`` drops every incomplete row (their number is kept on the
  :class:`WithMissing` and warned about) and fits the rest as usual;
- ``'marginalize'`` keeps every row: complete rows take the usual fused E-step
  (:class:`gmm.scale.sources.TrainingData`), rows with holes the conditional
  Gaussians of :mod:`gmm.missing`, and the two sets of statistics meet in the
  statistics step (:func:`gmm.em.scatter`). A row with no observed entry is
  an error naming it.

For prediction, rows with holes are wrapped in :class:`IncompleteRows`, which
the row kernels (:func:`gmm.scale.rows.apply`) evaluate on the marginal
density of their observed entries. Only in-memory data may hold NaN:
memory-mapped files and dask arrays keep refusing it.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import check_array

from .. import em, missing, validation
from ..blas_threads import blas_threads
from ..covariance import CovarianceFamily
from .files import FileRows
from .rows import IncompleteRows
from .sources import TrainingData, column_mean

#: The accepted values of ``nan_policy``.
NAN_POLICIES = ("raise", "omit", "marginalize")


class WithMissing:
    """Data that may hold NaN, with the estimator's ``nan_policy``.

    ``n_omitted`` is set by :func:`fit_data` under ``'omit'``; ``rows`` by
    :func:`fit_data` is every validated row (for ``fit_predict``).
    """

    def __init__(self, X, policy: str):
        self.X = X
        self.policy = policy
        self.n_omitted = 0
        self.rows = None


def check_data(X, estimator_name: str, *, ensure_min_samples: int = 1) -> np.ndarray:
    """2-D numeric data where NaN is allowed and infinity is not; float32 stays float32."""
    X = check_array(
        X,
        dtype=list(validation.FLOAT_DTYPES),
        ensure_all_finite=False,  # NaN allowed; infinity refused below, with its place
        ensure_min_samples=ensure_min_samples,
        estimator=estimator_name,
        input_name="X",
    )
    refuse_infinity(X)
    return X


def refuse_infinity(X: np.ndarray, first_row: int = 0) -> None:
    """Raise a ValueError naming the first infinite entry (row ``first_row`` + i). O(n·D)."""
    infinite = np.isinf(X)
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        raise ValueError(
            f"Input X contains infinity (first at row {first_row + row}, column {column}). "
            "NaN marks a missing entry, but infinities are always an error: replace them "
            "by NaN or finite values."
        )


def fit_data(
    source: WithMissing, sample_weight, family: CovarianceFamily, n_components: int, name: str
):
    """Validate in-memory data with NaN under ``source.policy``; see the module docstring.

    Returns a :class:`TrainingData` (``'omit'``, or no NaN at all) or an
    :class:`IncompleteTrainingData`. O(n·D) time besides what those cost.
    """
    X = check_data(source.X, name, ensure_min_samples=2)
    w = validation.check_sample_weight(sample_weight, X.shape[0], X.dtype)
    holes = np.isnan(X)
    check_observed(holes, source.policy)
    incomplete = holes.any(axis=1)
    source.rows = IncompleteRows(X) if incomplete.any() else X
    if source.policy == "omit":
        source.n_omitted = int(incomplete.sum())
        if source.n_omitted:
            warnings.warn(
                f"nan_policy='omit' dropped {source.n_omitted} of {X.shape[0]} rows with "
                "missing entries. nan_policy='marginalize' uses their observed entries.",
                UserWarning,
                stacklevel=7,
            )
        kept = ~incomplete
        w = None if w is None else w[kept]
        if w is not None and not np.any(w > 0):
            raise ValueError("Every complete row has zero sample_weight; nothing is left to fit.")
        X = validation.check_fit_data(X[kept], n_components, name)
    else:
        if X.shape[0] < n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {n_components}, "
                f"n_samples = {X.shape[0]}. Use fewer components or more data."
            )
    if np.isnan(X).any():
        data = IncompleteTrainingData(X, w, family, n_components, observed_mean(X, w))
    else:  # exactly the in-memory path of gmm.scale.fit_data
        data = TrainingData(X, w, family, n_components, column_mean(X, w))
    data.feature_source = source.X
    return data


def predict_data(source: WithMissing, name: str):
    """``(rows, feature_source)``: an ndarray, or :class:`IncompleteRows` if X has NaN."""
    X = check_data(source.X, name)
    return (IncompleteRows(X) if np.isnan(X).any() else X), source.X


def observed_mean(X: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    """Weighted mean of each column's observed entries, float64. O(n·D)."""
    observed = ~np.isnan(X)
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight.astype(np.float64)
    totals = w @ np.where(observed, X, 0).astype(np.float64)
    counts = w @ observed
    return totals / np.where(counts > 0, counts, 1)


class IncompleteTrainingData(TrainingData):
    """Training rows some of which have holes: exact EM over the observed entries.

    The complete rows are a :class:`TrainingData` of their own (the fused
    E-step, unchanged); the incomplete ones are grouped once into
    :class:`gmm.missing.Block` s by missingness pattern
    (:data:`gmm.missing.EXPANDED_BLOCK_BYTES`; the centred path, when a
    component is too tight for the expanded one, makes blocks of
    :data:`gmm.missing.BLOCK_BYTES` when it is first taken), and each block keeps
    what the expanded E-step reads of its rows from the first such E-step on
    (:func:`gmm.missing.keep_products`,
    8·(D(D+1)/2 + D + m(D + 1)) bytes a row with m holes) while the features of
    the whole fit stay within :data:`gmm.em.FEATURE_CACHE_BYTES` (256 MiB):
    about 250 MB at 100,000 × 20 with 20 % missing, where forming them took
    15 to 30 ms of each 450 ms iteration. Beside them O(n·D) for the rows, their
    copy with holes at the column means, and the blocks' indices.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated; NaN marks a hole, no row or column is all NaN.
    sample_weight, family, n_components, shift :
        As for :class:`TrainingData`; ``shift`` is :func:`observed_mean`.
    """

    def __init__(self, X, sample_weight, family, n_components, shift):
        rows = IncompleteRows(X)
        kept = rows.complete
        w = None if sample_weight is None else sample_weight[kept]
        # Kept whatever the components: with holes beside them, they are read every iteration.
        self.complete = TrainingData(X[kept], w, family, n_components, shift, cache=True)
        budget = missing.EXPANDED_BLOCK_BYTES
        self.blocks = missing.make_blocks(X, shift, n_components, budget)
        # What the expanded path reads of the rows is kept at its first E-step
        # (:meth:`expectation`): data that are rescaled (gmm.units) or only
        # ever take the centred path never form it.
        self.products_kept = False
        self.weights = block_weights(self.blocks, sample_weight)
        self.centred = None  # the centred path's smaller blocks, made when first taken
        self.with_holes = X
        self.full_weight = sample_weight
        self.imputed = np.where(np.isnan(X), shift.astype(X.dtype), X)
        # Every row with holes at their column's mean, read by the initializer
        # only (one pass): no feature cache, which would hold O(n·D²) numbers
        # for the whole fit.
        super().__init__(self.imputed, sample_weight, family, n_components, shift, cache=False)
        self.feature_source = X
        self.X = rows

    def all_rows(self):
        """``(X, sample_weight, chunks)``: every row, each hole at its column's mean."""
        return self.imputed, self.sample_weight, self.chunks

    def take(self, rows: np.ndarray):
        """The rows at ``rows`` with holes at their column's mean, and their weights."""
        return self.imputed[rows], None if self.sample_weight is None else self.sample_weight[rows]

    def expectation(self, params: em.Parameters, log_const: np.ndarray):
        """E-step over all rows: the fused one over complete rows, the marginal one over the rest.

        O(n·K·D²) for the complete rows; O(K·(m³ + D²)) more per incomplete
        row with m holes, the m³ shared by rows with the same pattern. The
        incomplete rows take the expanded path of :mod:`gmm.missing` (matrix
        products shared by the components) unless a component is so tight
        against the data's spread that it would cancel digits
        (:func:`gmm.missing.expanded_ok`); then the centred one.
        """
        stats, coefs = self.complete.expectation(params, log_const)
        components = marginal_components(params, self.family, self.shift)
        blocks, weights = self.blocks, self.weights
        if components[1] is None:  # (K, rows, D) temporaries: blocks of BLOCK_BYTES
            if self.centred is None:
                centred = missing.make_blocks(self.with_holes, self.shift, self.n_components)
                self.centred = centred, block_weights(centred, self.full_weight)
            blocks, weights = self.centred
        elif not self.products_kept:
            # Within the features' budget less what the complete rows keep (a
            # fit keeps at most em.FEATURE_CACHE_BYTES of features in all).
            budget = em.FEATURE_CACHE_BYTES - self.complete.chunks.kept_bytes
            missing.keep_products(self.blocks, budget)
            self.products_kept = True
        add_incomplete(stats, blocks, weights, components, log_const)
        return stats, coefs


def block_weights(blocks, sample_weight) -> list:
    """Each block's sample weights (None without weights)."""
    return [None if sample_weight is None else sample_weight[b.rows] for b in blocks]


def marginal_components(params: em.Parameters, family, shift):
    """``(dense, expanded)`` for :func:`add_incomplete`; ``expanded`` None on the centred path.

    The incomplete rows take the expanded path of :mod:`gmm.missing` (matrix
    products shared by the components) unless a component is so tight against
    the data's spread that it would cancel digits
    (:func:`gmm.missing.expanded_ok`); then the centred one. O(K·D³).
    """
    dense = missing.dense_components(params.means, params.precisions_cholesky, family, shift)
    expanded = None
    if missing.expanded_ok(dense, params.weights):
        expanded = missing.expanded_coefficients(dense)
    return dense, expanded


def add_incomplete(stats: em.Statistics, blocks, weights, components, log_const) -> None:
    """Add the E-step of rows with holes, grouped in ``blocks``, to ``stats`` in place.

    ``weights`` holds each block's sample weights (or None); ``components`` is
    :func:`marginal_components`. The log-likelihood and total weight are added
    to ``stats``; the M-step statistics go to ``stats.incomplete`` (added to
    what is there). O(K·(m³ + D²)) per row with m holes on the centred path,
    the m³ shared by the rows of a pattern in a block; on the expanded path
    O(K·(D² + m·D)) per row and O(m³) per (row, component) pair its screen
    keeps (about one a row with separated components).

    The blocks run in turn, BLAS on one thread: a block's products are small
    (at most rows × D² × K / 2 multiply-adds, about 6e6 at 100,000 × 20,
    K = 20), and with the library's threads an iteration there took 2.9 s of
    wall time for 0.45 s of CPU time on the shared two-core machine (load 0.5,
    so :func:`gmm.blas_threads.blas_threads_for` would not have limited them).
    Running the blocks on two threads was slower still (measured: 0.56 s
    against 0.45 s an E-step, medians, the second core idle or not): a block
    is hundreds of numpy calls of 10 to 50 µs over (m, m, patterns × K)
    batches, and each one hands the interpreter lock over. Measured again once
    the statistics were formed for the kept pairs only (a 0.22 s E-step):
    0.44 s against 0.45 s of wall time an E-step on two threads and one,
    medians of 6 alternating, load 1.8 on the two cores; at load 1.3, 0.30 s
    against 0.29 s, and 0.51 s of CPU time against 0.40 s: no gain. Measured
    once more with the screened pairs and blocks of 16 MB (a 0.15 s E-step,
    a few hundred numpy calls a block, each over thousands of rows), the
    blocks handed to two threads in turn and summed in block order: 0.26 s
    against 0.24 s of wall time, 0.18 s against 0.15 s of CPU time (load 4),
    0.35 s against 0.33 s (load 3.5), medians of 9 alternating: no gain shown
    on the shared machine, so no threads.
    """
    if not blocks:
        return
    dense, expanded = components
    log_const = np.asarray(log_const, dtype=np.float64)
    incomplete = None
    with blas_threads(1):
        for block, w in zip(blocks, weights, strict=True):
            log_likelihood, total_weight, part = block_e_step(block, w, dense, expanded, log_const)
            stats.log_likelihood += log_likelihood
            stats.total_weight += total_weight
            incomplete = part if incomplete is None else incomplete + part
    if expanded is None:
        incomplete.centres = dense.means
    else:
        incomplete = incomplete.finish()
    if stats.incomplete is not None:
        incomplete = stats.incomplete + incomplete
    stats.incomplete = incomplete


def block_e_step(block: missing.Block, w, dense, expanded, log_const):
    """``(log-likelihood, total weight, statistics)`` of one block's rows.

    ``w`` the block's sample weights or None; ``dense, expanded`` as
    :func:`marginal_components` gives them (``expanded`` None: the centred
    path). O(K·(m³ + D²)) per row, the m³ per pattern. On the expanded path
    only the pairs the screen keeps are computed and normalised
    (:func:`gmm.missing.screen_pairs`, :func:`gmm.missing.normalize_pairs`),
    and the responsibilities below :data:`gmm.missing.NEGLIGIBLE` are dropped
    before the statistics (:func:`gmm.missing.drop_negligible`): the
    log-likelihood is that of every pair to rounding (each pair left out
    would add less than 2^-60 of its row's sum), the statistics equal those
    of every pair to rounding.
    """
    # A row whose squared distances overflow gets inf or NaN log-probabilities
    # here; the normalisation refuses it by its index.
    with np.errstate(over="ignore", invalid="ignore"):
        if expanded is None:
            conditionals = missing.conditional_precisions(block, dense)
            log_prob, work = missing.block_log_prob(block, dense, log_const, conditionals)
        else:  # only the pairs that are not surely negligible
            log_prob, pairs = missing.expanded_log_prob(block, dense, expanded, log_const)
    if expanded is None:
        try:  # a row all -inf or NaN is refused from the normalisation's maximum
            resp, log_norm = em.normalize_log_prob(log_prob, 0)
        except em.OutOfRangeError as error:
            if error.row is None:
                raise
            raise em.out_of_range(int(block.rows[error.row]), log_prob.dtype) from None
    else:
        resp, log_norm, top = missing.normalize_pairs(log_prob, pairs.rows, block.rows.size)
        refused = np.flatnonzero(~np.isfinite(top))  # all -inf, or NaN
        if refused.size:
            raise em.out_of_range(int(block.rows[refused[0]]), log_prob.dtype)
        missing.drop_negligible(resp)
    if w is None:
        log_likelihood, total_weight = float(np.sum(log_norm)), float(block.rows.size)
    else:
        resp *= w if expanded is None else w[pairs.rows]
        log_likelihood = float(np.dot(w, log_norm))
        total_weight = float(np.sum(w, dtype=np.float64))
    if expanded is None:
        part = missing.block_statistics(block, resp, work, conditionals)
    else:
        part = missing.expanded_statistics(block, pairs, resp)
    return log_likelihood, total_weight, part


def fit_file_data(source: WithMissing, file_rows: FileRows, sample_weight, family, n_components):
    """:func:`fit_data` for a memory-mapped file that may hold NaN, read block by block.

    One pass over the file validates it (infinity, a column or, under
    ``'marginalize'``, a row with no observed entry), counts the incomplete
    rows and takes the weighted mean of the observed entries (of the complete
    rows under ``'omit'``). O(n·D) time; memory a few blocks, plus the indices
    of the complete rows under ``'omit'`` (8 bytes a row).
    """
    n_samples, n_features = file_rows.shape
    w = validation.check_sample_weight(sample_weight, n_samples, file_rows.dtype)
    totals, counts = np.zeros(n_features), np.zeros(n_features)
    observed_any = np.zeros(n_features, dtype=bool)
    complete_rows, n_incomplete = [], 0
    for start, block in file_rows.blocks():
        refuse_infinity(block, start)
        holes = np.isnan(block)
        observed_any |= ~holes.all(axis=0)
        incomplete = holes.any(axis=1)
        n_incomplete += int(incomplete.sum())
        if source.policy == "marginalize":
            empty = np.flatnonzero(holes.all(axis=1))
            if empty.size:
                raise ValueError(
                    f"Row {start + empty[0]} of X has no observed entry (all NaN): it says "
                    "nothing about the mixture. Drop it, or use nan_policy='omit'."
                )
        else:
            complete_rows.append(start + np.flatnonzero(~incomplete))
            holes = holes | incomplete[:, None]  # 'omit': the shift of the complete rows
        wb = np.ones(block.shape[0]) if w is None else w[start : start + block.shape[0]]
        wb = wb.astype(np.float64)
        totals += wb @ np.where(holes, 0, block).astype(np.float64)
        counts += wb @ ~holes
    empty_columns = np.flatnonzero(~observed_any)
    if empty_columns.size:
        raise ValueError(
            f"Column(s) {empty_columns.tolist()} of X have no observed entry (all NaN); "
            "nothing can be learnt about them. Drop those columns."
        )
    kept = None
    if source.policy == "omit":
        kept = np.concatenate(complete_rows)
        source.n_omitted = n_incomplete
        if n_incomplete:
            warnings.warn(
                f"nan_policy='omit' dropped {n_incomplete} of {n_samples} rows with "
                "missing entries. nan_policy='marginalize' uses their observed entries.",
                UserWarning,
                stacklevel=7,
            )
    n_kept = n_samples if kept is None else kept.size
    if n_kept < max(2, n_components):
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, "
            f"n_samples = {n_kept} (rows without a hole: nan_policy={source.policy!r}). "
            "Use fewer components or more data."
        )
    if w is not None and kept is not None and not np.any(w[kept] > 0):
        raise ValueError("Every complete row has zero sample_weight; nothing is left to fit.")
    shift = totals / np.where(counts > 0, counts, 1)
    source.rows = file_rows.with_nan()
    data = IncompleteFileData(file_rows, w, family, n_components, shift, kept)
    data.feature_source = file_rows
    return data


class IncompleteFileData(TrainingData):
    """A memory-mapped file with holes: each EM iteration reads it block by block.

    In each block the complete rows take the fused E-step and, under
    ``'marginalize'``, the rows with holes are grouped by pattern
    (:func:`gmm.missing.make_blocks`, O(rows log rows) a block, every
    iteration) and take the marginal one; under ``'omit'`` (``kept`` the
    indices of the complete rows) they are skipped. The initializer sees rows
    with each hole at its column's mean, as in memory.
    """

    def __init__(self, X: FileRows, sample_weight, family, n_components, shift, kept):
        self.X = X
        self.sample_weight = sample_weight
        self.family = family
        self.n_components = n_components
        self.shift = shift
        self.in_memory = False
        self.feature_source = X
        self.kept = kept
        self.chunks = None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0] if self.kept is None else self.kept.size

    def expectation(self, params: em.Parameters, log_const: np.ndarray):
        """One pass over the file; O(n·K·D²) plus O(K·(m³ + D²)) per row with m holes."""
        components = (
            None if self.kept is not None else marginal_components(params, self.family, self.shift)
        )
        total, coefs = None, None
        for start, block in self.X.blocks():
            wb = None if self.sample_weight is None else self.sample_weight[start:][: len(block)]
            stats, coefs = block_expectation(
                block,
                wb,
                start,
                self.family,
                self.n_components,
                self.shift,
                params,
                log_const,
                components,
            )
            total = stats if total is None else total + stats
        return total, coefs

    def all_rows(self):
        """Every (kept) row in memory, each hole at its column's mean."""
        rows = np.arange(self.n_samples)
        X, w = self.take(rows)
        chunks = em.ChunkedData(X, w, self.family, self.shift, self.n_components, cache=False)
        return X, w, chunks  # read once, for the initial statistics

    def take(self, rows: np.ndarray):
        """The (kept) rows at sorted indices ``rows``, holes at their column's mean, and weights."""
        rows = rows if self.kept is None else self.kept[rows]
        X = self.X.take(rows)
        X = np.where(np.isnan(X), self.shift.astype(X.dtype), X)
        return X, None if self.sample_weight is None else self.sample_weight[rows]


def block_expectation(
    block: np.ndarray, w, start: int, family, n_components, shift, params, log_const, components
):
    """E-step of one block of rows that may hold NaN: ``(Statistics, coefficients)``.

    The complete rows take the fused E-step (:func:`gmm.em.expectation`); with
    ``components`` (:func:`marginal_components`) the rows with holes are
    grouped by pattern (O(rows log rows)) and take the marginal one, else
    they are skipped ('omit'). ``start`` is the block's first row, for
    messages. Used by files and dask blocks alike.
    """
    incomplete = np.isnan(block).any(axis=1)
    wc = None if w is None else w[~incomplete]
    chunks = em.ChunkedData(block[~incomplete], wc, family, shift, n_components, cache=False)
    stats, coefs = em.expectation(chunks, params, log_const)
    if components is not None and incomplete.any():
        budget = None if components[1] is None else missing.EXPANDED_BLOCK_BYTES
        blocks = missing.make_blocks(block, shift, n_components, budget)
        weights = block_weights(blocks, w)
        for b in blocks:
            b.rows = b.rows + start  # row numbers in the whole data, for messages
        add_incomplete(stats, blocks, weights, components, log_const)
    return stats, coefs


def check_observed(holes: np.ndarray, policy: str) -> None:
    """Refuse what no fit under ``policy`` can use, from ``holes = np.isnan(X)``.

    A column with no observed entry, and under 'marginalize' a row with none
    ('omit' drops it). Checked once by a fit, and by a sweep before its
    first fit. O(n·D).
    """
    empty_columns = np.flatnonzero(holes.all(axis=0))
    if empty_columns.size:
        raise ValueError(
            f"Column(s) {empty_columns.tolist()} of X have no observed entry (all NaN); "
            "nothing can be learnt about them. Drop those columns."
        )
    if policy == "omit":
        return
    empty_rows = np.flatnonzero(holes.all(axis=1))
    if empty_rows.size:
        raise ValueError(
            f"Row {empty_rows[0]} of X has no observed entry (all NaN): it says nothing "
            "about the mixture. Drop it, or use nan_policy='omit'."
        )


def incomplete_rows(X) -> np.ndarray:
    """Boolean (n_samples,): which rows of X hold a NaN.

    O(n·D) time; a memory map is read block by block, a dask array reduced
    lazily, so only the n booleans are in memory.
    """
    file_rows = X if isinstance(X, FileRows) else None
    if file_rows is None and isinstance(X, np.memmap):
        file_rows = FileRows.from_memmap(X)
    if file_rows is None and hasattr(type(X), "__dask_graph__"):
        import dask.array as da

        return np.asarray(da.isnan(X).any(axis=1).compute())
    if file_rows is None:
        return np.isnan(np.asarray(X, dtype=np.float64)).any(axis=1)
    out = np.empty(file_rows.shape[0], dtype=bool)
    for start, block in file_rows.blocks():
        out[start : start + block.shape[0]] = np.isnan(block).any(axis=1)
    return out


def impute(X: np.ndarray, params: em.Parameters, family, log_const, n_draws, random_state):
    """X with its holes filled: conditional means, or ``n_draws`` draws of them.

    Parameters
    ----------
    X : ndarray, FileRows or dask rows of shape (n_samples, n_features)
        Validated (:func:`check_data`, or from :func:`gmm.scale.predict_data`);
        NaN marks a hole. A memory-mapped file or a dask array is brought into
        memory (the result holds every row anyway).
    params, family, log_const :
        The fitted mixture, as for :func:`gmm.scale.map_rows`.
    n_draws : int or None
    random_state : RandomState

    Returns
    -------
    ndarray of shape (n_samples, n_features), or (n_draws, n_samples, n_features)
        In X's dtype. A row with no observed entry gets the mixture's mean (or
        draws from the mixture). O(n·D) for complete rows; see
        :func:`gmm.missing.block_imputations` for the others.
    """
    X = in_memory(X)
    shift = np.asarray(params.weights, dtype=np.float64) @ np.asarray(params.means, np.float64)
    dense = missing.dense_components(params.means, params.precisions_cholesky, family, shift)
    log_const = np.asarray(log_const, dtype=np.float64)
    out = np.repeat(X[None], 1 if n_draws is None else n_draws, axis=0)
    for block in missing.make_blocks(X, shift, params.means.shape[0]):
        conditionals = missing.conditional_precisions(block, dense)
        values = missing.block_imputations(
            block, dense, log_const, conditionals, n_draws, random_state
        )
        holes = block.missing[block.pattern]
        out[:, block.rows[:, None], holes] = values + shift[holes]
    return out[0] if n_draws is None else out


def in_memory(X) -> np.ndarray:
    """Rows from :func:`gmm.scale.predict_data` as one ndarray, infinity refused. O(n·D)."""
    if isinstance(X, FileRows):
        X = X[0 : X.shape[0]]
    elif hasattr(X, "array"):  # dask rows that may hold NaN (dask_arrays.WithHoles)
        X = np.asarray(X.array.compute())
    elif hasattr(type(X), "__dask_graph__"):
        X = np.asarray(X.compute())
    else:
        return X
    return check_data(X, "X")
