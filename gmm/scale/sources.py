"""Training data on the client: the interface the EM loop sees.

:class:`TrainingData` holds validated rows, their weights and the shift (the
weighted column mean that centres every chunk), and gives the EM loop the two
things it needs: one fused E-step over all rows (:meth:`TrainingData.expectation`)
and the statistics of the initial responsibilities
(:meth:`TrainingData.initial_scatter`). It holds data only: the M-steps are
the estimator's. The rows
may be an ndarray or a :class:`~gmm.scale.files.FileRows`; the dask version in
:mod:`gmm.scale.dask_arrays` overrides how rows are reached, not what is
computed.
"""

from __future__ import annotations

import numpy as np

from .. import em
from ..covariance import CovarianceFamily
from ..statistics import Scatter
from . import rows as row_kernels

#: Rows the initializer sees by default when the data are not in memory.
DEFAULT_INIT_SAMPLE_SIZE = 100_000


class TrainingData:
    """Validated rows, weights and shift, with the E-step and the initialisation.

    Parameters
    ----------
    X : ndarray or FileRows of shape (n_samples, n_features)
        Validated; float32 or float64.
    sample_weight : ndarray of shape (n_samples,) or None
        Validated, in X's dtype.
    family : CovarianceFamily
    n_components : int
    shift : ndarray of shape (n_features,)
        Weighted column mean of X, in float64.
    in_memory : bool, default=True
        Whether the initializer may see all rows by default (see
        :meth:`initial_scatter`).
    cache : bool or None, default=None
        Whether the chunks' features may be kept across E-steps (up to
        :data:`gmm.em.FEATURE_CACHE_BYTES`), as a fit's iterations want. None:
        yes, except for one component (one E-step reads its rows; see
        :class:`gmm.em.ChunkedData`); True: yes whatever the components. Rows
        that one E-step reads once (an online update) pass False: each chunk's
        features are formed when the E-step reaches it and dropped after, used
        while in the CPU's cache instead of all written to memory first. The
        same chunks either way: the same numbers, bit for bit.
    """

    def __init__(
        self,
        X,
        sample_weight: np.ndarray | None,
        family: CovarianceFamily,
        n_components: int,
        shift: np.ndarray,
        in_memory: bool = True,
        cache: bool | None = None,
    ):
        self.X = X
        self.sample_weight = sample_weight
        self.family = family
        self.n_components = n_components
        self.shift = shift
        self.in_memory = in_memory
        #: What the estimator reads the features' count and names from.
        self.feature_source = X
        self.cache = cache
        self.chunks = em.ChunkedData(X, sample_weight, family, shift, n_components, cache=cache)

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    # ------------------------------------------------------------------- EM
    def expectation(self, params: em.Parameters, log_const: np.ndarray):
        """One fused E-step over all rows; see :func:`gmm.em.expectation`."""
        return em.expectation(self.chunks, params, log_const)

    def initial_scatter(
        self, initializer, random_state, sample_size: int | None
    ) -> tuple[Scatter, bool]:
        """Statistics of the responsibilities ``initializer`` gives on all rows or a subsample.

        The initializer sees ``min(n_samples, sample_size)`` rows; ``None``
        means all rows for in-memory data and :data:`DEFAULT_INIT_SAMPLE_SIZE`
        otherwise. Only the subsample is brought into memory. On all rows, an
        M-step from the result is scikit-learn's initialisation; after a
        subsample the estimator follows its M-step with one E-step and M-step
        over all rows, so the weights and covariances describe all the data.

        Parameters
        ----------
        initializer : callable
            ``initializer(X, n_components, random_state, sample_weight) -> resp``
            (see :mod:`gmm.initialization`), validated.
        random_state : RandomState
            Draws the subsample, then seeds the initializer.
        sample_size : int or None

        Returns
        -------
        scatter : Scatter
        subsampled : bool
            Whether the initializer saw a subsample.

        Notes
        -----
        Cost: the initializer on the subsample (k-means: O(m·K·D) per Lloyd
        iteration) plus two passes over it for the statistics.
        """
        if sample_size is None and not self.in_memory:
            sample_size = DEFAULT_INIT_SAMPLE_SIZE
        subsample = sample_size is not None and sample_size < self.n_samples
        if subsample:
            X, w = self.take(draw_rows(self.n_samples, sample_size, random_state))
            if w is not None and not np.any(w > 0):
                raise ValueError(
                    f"The {sample_size} rows drawn for the initialisation all have zero "
                    "sample_weight. Increase init_sample_size, or drop zero-weight rows."
                )
            # Read once for the initial statistics: no features, none kept.
            chunks = em.ChunkedData(X, w, self.family, self.shift, self.n_components, cache=False)
        else:
            X, w, chunks = self.all_rows()
        resp = initializer(X, self.n_components, random_state, w)
        return em.scatter_from_resp(chunks, resp, self.n_components), subsample

    # ------------------------------------------------------------------ rows
    def all_rows(self):
        """``(X, sample_weight, chunks)`` with X an ndarray of all rows."""
        if isinstance(self.X, np.ndarray):
            return self.X, self.sample_weight, self.chunks
        X = self.X[0 : self.n_samples]
        return (
            X,
            self.sample_weight,
            em.ChunkedData(
                X, self.sample_weight, self.family, self.shift, self.n_components, cache=False
            ),  # read once, for the initial statistics
        )

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows at sorted indices ``rows`` and their weights, in memory."""
        X = self.X.take(rows) if not isinstance(self.X, np.ndarray) else self.X[rows]
        w = None if self.sample_weight is None else self.sample_weight[rows]
        return X, w


#: Draws :func:`draw_rows` keeps: ``(n_samples, size, state before) -> (rows, state after)``.
_DRAWS: dict = {}
_DRAWS_SIZE = 8


def draw_rows(n_samples: int, size: int, random_state: np.random.RandomState) -> np.ndarray:
    """Sorted indices of ``size`` distinct rows, every subset equally likely.

    O(size) memory when ``size`` is small against ``n_samples`` (never a
    permutation of all rows).

    The last few draws are kept, keyed by ``(n_samples, size)`` and the state
    of ``random_state`` before the draw: a sweep's fits seeded alike draw the
    same subset once per grid point (126 times for mclust's default), and a
    kept draw costs two copies of the generator's state (about 0.15 ms against
    about 2.5 ms for 2,000 of 20,000 rows). A kept draw also leaves
    ``random_state`` in the state the draw left it in, so everything drawn
    after it is the same, bit for bit. The rows returned are read-only.

    >>> rows = draw_rows(10**9, 5, np.random.RandomState(0))
    >>> rows.shape, bool(np.all(np.diff(rows) > 0))
    ((5,), True)
    """
    if type(random_state) is not np.random.RandomState:
        return _draw_rows(n_samples, size, random_state)
    name, keys, pos, has_gauss, cached = random_state.get_state()
    key = (int(n_samples), int(size), name, keys.tobytes(), pos, has_gauss, cached)
    kept = _DRAWS.get(key)
    if kept is not None:
        random_state.set_state(kept[1])
        return kept[0]
    rows = _draw_rows(n_samples, size, random_state)
    rows.flags.writeable = False
    if len(_DRAWS) >= _DRAWS_SIZE:
        _DRAWS.clear()  # plain dict operations only: safe from threads without a lock
    _DRAWS[key] = (rows, random_state.get_state())
    return rows


def _draw_rows(n_samples: int, size: int, random_state: np.random.RandomState) -> np.ndarray:
    """:func:`draw_rows` without the kept draws."""
    if 4 * size >= n_samples:
        return np.sort(random_state.choice(n_samples, size, replace=False))
    # Distinct draws by rejection: the process treats every row alike, so every
    # subset of ``size`` rows is equally likely.
    rows = np.unique(random_state.randint(0, n_samples, size=size))
    while rows.size < size:
        extra = random_state.randint(0, n_samples, size=size - rows.size)
        rows = np.unique(np.concatenate([rows, extra]))
    return rows


def column_mean(X, sample_weight: np.ndarray | None, *, check_finite: bool = False) -> np.ndarray:
    """Weighted column mean in float64, read in row chunks.

    It is the shift that keeps the expanded quadratic forms well conditioned.
    With ``check_finite``, each chunk is also checked for NaN and infinity (for
    data that scikit-learn's validation could not see as a whole).

    Parameters
    ----------
    X : ndarray or FileRows of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    check_finite : bool, default=False

    Returns
    -------
    shift : ndarray of shape (n_features,)
        O(n·D) time, O(chunk·D) memory.
    """
    rows = em.chunk_rows(X.shape[1], X.dtype.itemsize)
    total = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], rows):
        chunk = np.asarray(X[start : start + rows], dtype=np.float64)
        if check_finite:
            row_kernels.check_finite(chunk, start)
        w = None if sample_weight is None else sample_weight[start : start + rows]
        # Finite values whose sums overflow (inf, or NaN from inf - inf in a pairwise
        # sum): gmm.units refuses or rescales the data, saying why.
        with np.errstate(over="ignore", invalid="ignore"):
            total += column_sums(chunk) if w is None else w @ chunk
    return total / (X.shape[0] if sample_weight is None else sample_weight.sum(dtype=np.float64))


def column_sums(X: np.ndarray) -> np.ndarray:
    """``X.sum(axis=0)`` in X's dtype, each column summed in a fixed order.

    Rows narrower than :data:`gmm.em.NARROW_FEATURES` are summed one column at
    a time (numpy's pairwise sum over the strided column: the order depends on
    the row count only, not on the layout, alignment or threads); numpy's
    ``sum(axis=0)`` over 2 to 7 C-ordered columns adds one row at a time
    through its short inner loop, 20 times slower (measured: 65,536 x 2
    float64, 0.93 ms against 0.045 ms, one thread). Wider rows keep
    ``sum(axis=0)`` (row by row for C-ordered rows), where one strided pass per
    column would read X once per column (50,000 x 20: 1.1 ms against 1.0).
    X is finite; a column whose sum overflows gives an infinity. O(n·D) time,
    O(D) memory.
    """
    if X.shape[1] >= em.NARROW_FEATURES:
        return X.sum(axis=0)
    sums = np.array([np.add.reduce(X[:, j]) for j in range(X.shape[1])], dtype=X.dtype)
    # X is finite: a NaN is inf - inf from partial sums that overflow, where the row-by-row
    # sum gives an infinity (gmm.units then refuses the data, saying why).
    return np.where(np.isnan(sums), np.inf, sums)


def check_not_empty(shape: tuple, estimator_name: str) -> None:
    """At least one row to predict, as scikit-learn's validation asks of in-memory data.

    A dask array whose row count is not known yet (NaN) passes.
    """
    if shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(shape)}) while a minimum of 1 is "
            f"required by {estimator_name}."
        )


def check_n_samples(shape: tuple, n_components: int) -> None:
    """At least 2 rows and at least ``n_components`` rows, as for in-memory data."""
    n_samples = shape[0]
    if n_samples < 2:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={tuple(shape)}) while a minimum "
            "of 2 is required by GaussianMixture."
        )
    if n_samples < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, "
            f"n_samples = {n_samples}. Use fewer components or more data."
        )
