"""The sweep: fit every grid point, score it, keep the best.

:func:`sweep` checks its arguments once, then fits one
:class:`~gmm.GaussianMixture` per grid point with :func:`fit_point` (through
:func:`gmm.selection.parallel.run`, in this process or in joblib workers),
records each finished fit in a checkpoint when asked (:mod:`gmm.checkpoint`)
and returns a :class:`~gmm.selection.table.SweepResult`. The criteria of a
fitted model come from its public ``score_samples`` and ``predict_proba``
through the formulas of :mod:`gmm.criteria` (:func:`information_criteria`), so
every data source the estimator takes (arrays, memory-mapped files, dask
arrays) is scored the same way.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from .. import criteria, em, lockstep, scale, validation
from ..blas_threads import blas_threads
from ..checkpoint import Checkpoint, CheckpointError, data_fingerprint
from ..covariance import covariance_types as registered_covariance_types
from ..covariance import get_family
from ..estimator import GaussianMixture
from ..scale.dask_arrays import is_dask_collection
from ..scale.sources import check_n_samples
from ..writing import check_output_path
from . import parallel
from .mclust import MCLUST_DEFAULTS, MCLUST_MODELS, map_statistics, mclust_models, mclust_name
from .table import COLUMNS, SweepResult, SweepTable, best_index, check_criterion

#: The most values of K a grid may list (a ``range`` is never listed before its check).
MAX_GRID_VALUES = 1_000_000

#: Multiply-adds of one E-step (``n_rows · K · (D(D+1)/2 + D)``, the expanded
#: features' GEMM) below which a sweep's fits run on one BLAS thread and one
#: OpenMP thread (scikit-learn's k-means) in this process: the size below which
#: the E-step does not split its rows over threads either
#: (:data:`gmm.em.THREAD_WORK`). Threads on such small products lose more to
#: waking up than they gain: mclust's default sweep on 20,000 × 10 (K <= 9,
#: 1.2e7) took 6.1-6.9 s on one thread and 8.2 s threaded on the idle two-core
#: machine, and 10.4 s against 68 s of wall time while other jobs ran (2026-12-02,
#: one other job on the second core, load 2.1: 7.1-7.2 s on one thread, 11.9-13.5 s
#: threaded, alternating in one process; the 1-minute load stays below
#: :func:`gmm.blas_threads.machine_busy`'s mark there, so only this limit holds
#: the products to one thread); the moons
#: grid of the sweep benchmark (80 fits with k-means starts), 13 s with OpenMP's
#: threads and 4 s without, under load. Larger fits ('full' on 100,000 × 20 with
#: K = 20, 4.6e8; the digits with K = 110, 1.8e8) are faster threaded when idle
#: (see :mod:`gmm.blas_threads`).
SERIAL_THREADED_WORK = em.THREAD_WORK

# Set by the grid, not by ``**estimator_params``.
_GRID_PARAMS = ("n_components", "covariance_type", "random_state", "n_init")


# ====================================================================== sweep
def sweep(
    X,
    n_components=range(1, 11),
    covariance_types=("spherical", "diag", "full", "tied"),
    *,
    criterion: str = "bic",
    n_init: int = 1,
    random_state=0,
    sample_weight=None,
    n_jobs: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    **estimator_params,
) -> SweepResult:
    """Fit a Gaussian mixture for every (K, covariance type) and score each fit.

    Parameters
    ----------
    X : array-like, memory-mapped array or dask array of shape (n_samples, n_features)
        Training data; float32 stays float32, anything else becomes float64.
        Whatever ``GaussianMixture.fit`` takes: ``np.load(path,
        mmap_mode='r')`` and dask arrays are passed to every fit as they are
        and scored in row blocks, never brought into memory whole (see
        :mod:`gmm.scale`).
    n_components : int or iterable of int, default=range(1, 11)
        The values of K. Duplicates are dropped; order is kept.
    covariance_types : str or iterable of str, default=('spherical', 'diag', 'full', 'tied')
        Covariance types to try; ``'all'`` means every registered type;
        ``'mclust'`` means mclust's 14 models ('E' and 'V' on one feature),
        as ``mclustBIC`` fits them (see :mod:`gmm.selection.mclust`): with
        ``n_components=range(1, 10)`` this is mclust's ``mclustBIC(X)``. The
        ``GaussianMixture`` parameters you do not pass then take mclust's
        settings (:data:`gmm.selection.mclust.MCLUST_DEFAULTS`:
        ``init_params='hc'``, ``init_sample_size=2000``, ``reg_covar=0``,
        ``tol=1e-5`` with ``convergence='relative'``, mclust's stopping rule,
        ``max_iter=1000``); pass a smaller ``tol`` for its numbers to 1e-6.
        The result's :meth:`SweepResult.mclust_bic`, :meth:`SweepResult.summary`
        and ``plot(what=...)`` give mclust's table, summary and views.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Chooses the best model (lower is better). All three are in the table.
    n_init : int, default=1
        Initialisations per fit (the best is kept), as in ``GaussianMixture``.
    random_state : int, RandomState instance or None, default=0
        One integer seed used for every grid point. A RandomState or None draws
        that integer once (a checkpoint needs an int, to be resumable).
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights: a weight of 2 counts as the row repeated twice. The
        log-likelihood column is ``sum_i w_i log p(x_i)``, BIC's sample size is
        ``sum_i w_i``, and ICL's entropy term is weighted the same way, so the
        criteria equal those of the data with rows repeated. Weights that do not
        count observations (e.g. normalised to sum to 1) make BIC meaningless.
    n_jobs : int or None, default=None
        Fits run in parallel with joblib (``pip install "gmm[parallel]"``);
        None or 1 runs them in this process, -1 uses every core. Each worker's
        BLAS is limited to ``cores // workers`` threads (threadpoolctl), so
        workers times threads never exceed the cores. A grid whose largest
        E-step is below :data:`SERIAL_THREADED_WORK` multiply-adds runs each fit
        on one BLAS and one OpenMP thread, in this process or in a worker
        (threads cost more than they give on such small products;
        :func:`serial_blas_threads`).
    checkpoint : str or path, default=None
        A JSON Lines file that records each finished fit (flushed and fsynced).
        Rerunning with the same file skips finished fits: see
        :mod:`gmm.checkpoint`. A file written for other data or settings is
        refused with :class:`gmm.checkpoint.CheckpointError`.
    progress : bool or None, default=None
        Show a tqdm bar over the fits (``pip install "gmm[parallel]"``). None
        means: when standard error is a terminal and tqdm is installed.
    overwrite : bool, default=False
        Start a mismatched checkpoint afresh instead of refusing it.
    **estimator_params
        Other ``GaussianMixture`` parameters (``tol``, ``reg_covar``,
        ``max_iter``, ``init_params``, ...), the same for every fit. With
        ``nan_policy='marginalize'`` or ``'omit'``, X may hold NaN (missing
        entries): the criteria then use the observed-data log-likelihood, over
        every row for 'marginalize' and over the complete rows for 'omit'
        (see :func:`information_criteria`).

    Returns
    -------
    SweepResult
        ``table`` (one row per grid point, in the order covariance type, then K),
        ``best_estimator_``, ``best_params_``, ``best_score_``, ``plot()``,
        ``mclust_bic()`` and ``summary()``.

    Raises
    ------
    ValueError
        For invalid data or arguments, and when every fit fails. A single
        failed fit (e.g. a collapsed component) only becomes a row whose
        ``error`` holds the message. Before any fit: a largest K above the
        number of rows (of positive weight, with ``sample_weight``), or one
        whose fit would not fit in the available memory (:func:`model_bytes`),
        with the largest K the data allow; a ``range`` of K is checked in O(1),
        any other iterable may list at most :data:`MAX_GRID_VALUES` values.
    gmm.writing.OutputPathError
        Before any work, for a ``checkpoint`` path that is a folder, device,
        FIFO, socket, read-only file or in a missing folder
        (:func:`gmm.writing.check_output_path`).

    Notes
    -----
    Cost: the sum of the fits (for 'full', O(n_init · n_iter · n · K · D²) each)
    plus one E-step per fit for the criteria (:func:`information_criteria`;
    none for a fit stopped by the relative rule without weights, whose last
    E-step gives them, :func:`reused_criteria`) and one for the best model's
    hard assignment (``summary()``),
    spread over ``n_jobs`` workers; O(block · (D + K)) extra memory for the
    criteria of a memory-mapped or dask X.
    Fits run largest first so that workers finish together; with forked
    workers this process first runs the smallest, whose time decides whether
    forking pays (:func:`gmm.selection.parallel.run`).

    The best model is the one fitted in this call. When its row was read from
    the checkpoint instead, it is refitted at the end: the fit is deterministic
    given the integer ``random_state``, so this is the same model (a warning is
    raised if its criterion differs from the stored row, which can happen only
    with a different BLAS or thread count).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from gmm import sweep
    >>> X, _ = make_blobs(200, centers=[[0, 0], [6, 0], [0, 6]], random_state=0)
    >>> result = sweep(X, range(1, 5), ["full", "diag"], progress=False)
    >>> result.best_params_
    {'n_components': 3, 'covariance_type': 'diag'}
    >>> len(result.table), result.table[0]["covariance_type"]
    (8, 'full')
    """
    criterion = check_criterion(criterion)
    ks = check_n_components(n_components)
    parallel.check_n_jobs(n_jobs)
    mclust_sweep = isinstance(covariance_types, str) and covariance_types == "mclust"
    types = None if mclust_sweep else check_covariance_types(covariance_types)
    if mclust_sweep:  # mclust's settings for whatever the caller left out
        estimator_params = {**MCLUST_DEFAULTS, **estimator_params}
    seed = _integer_seed(random_state, checkpoint)
    if checkpoint is not None:  # a device, folder or read-only file: refused before any work
        check_output_path(checkpoint)
    params = _fit_params(
        estimator_params, n_init, seed, ks[0], "full" if mclust_sweep else types[0]
    )
    X_fit, X_rows, dtype = _check_data(X, params.get("nan_policy", "raise"))
    n_features = X_rows.shape[1]
    types = grid_types(covariance_types, n_features)
    if mclust_sweep:  # mclust's models for this many features, as registered
        model_names = {
            registered: theirs for theirs, registered in mclust_models(n_features).items()
        }
    else:
        model_names = {name: mclust_name(name, n_features) for name in types}
    w = validation.check_sample_weight(sample_weight, X_rows.shape[0], dtype)
    n_rows = X_rows.shape[0] if w is None else int(np.count_nonzero(w))
    policy = params.get("nan_policy", "raise")
    counted_complete = False
    if policy != "raise" and not is_lazy_source(X_rows):
        # What every fit would refuse, refused before the first (not once per fit).
        holes = np.isnan(X_rows)
        scale.incomplete.check_observed(holes, policy)
        if policy == "omit":  # the fits see the complete rows
            complete = ~holes.any(axis=1)
            n_rows = int(np.count_nonzero(complete if w is None else complete & (w > 0)))
            counted_complete = True
    check_grid_size(
        largest_value(ks),
        n_rows,
        n_features,
        types,
        dtype,
        weighted=w is not None,
        complete=counted_complete,
    )
    ks = list(ks)
    show_progress = parallel.want_progress(progress)
    grid = [(k, name) for name in types for k in ks]

    rows: dict[int, dict[str, Any]] = {}
    store = None
    if checkpoint is not None:
        store = Checkpoint(
            checkpoint,
            {
                "columns": list(COLUMNS),
                "data": data_fingerprint(X_rows, w, dtype),
                "settings": params,
            },
            overwrite=overwrite,
        )
    best_model: tuple[tuple[float, int], GaussianMixture] | None = None
    stack = contextlib.ExitStack()
    try:
        if store is not None:
            for index, point in enumerate(grid):
                if point in store.rows:
                    rows[index] = _stored_row(store.rows[point], checkpoint)
        pending = [index for index in range(len(grid)) if index not in rows]
        pending.sort(key=lambda index: -_relative_cost(*grid[index], X_rows.shape[1]))
        # fit_point is looked up here, at call time, so tests can stand in for it.
        tasks = [(index, (X_fit, w, *grid[index], params)) for index in pending]
        # Chosen before the progress bar starts its thread (forking wants none).
        workers = parallel.backend(parallel.n_workers_for(n_jobs, len(tasks)), tasks)
        if isinstance(X_fit, np.memmap) and workers == "joblib":
            # joblib hands a memory map to its workers as a file name, which they map
            # again: give them a private copy of the data as given, not the path
            # (forked workers inherit the mapping itself).
            X_fit = stack.enter_context(scale.files.private_copy(X_fit))
            tasks = [(index, (X_fit, w, *grid[index], params)) for index in pending]
        threads = serial_blas_threads(X_rows.shape[0], n_features, largest_value(ks))
        if type(X_fit) is np.ndarray and w is None and params.get("nan_policy", "raise") == "raise":
            # Validated above: the fits in this process take the rows and their shift
            # as they are, not checking and summing them once per grid point.
            stack.enter_context(scale.known_rows(X_fit))
        if workers == "serial" and stackable_fits(grid, X_fit, w, params):
            results = fit_points_together(tasks, threads)
        else:
            results = parallel.run(fit_point, tasks, n_jobs, workers, serial_threads=threads)
        with parallel.progress_bar(show_progress, len(grid), len(rows)) as bar:
            for index, (row, model) in results:
                rows[index] = row
                if store is not None:
                    store.append(row)
                if model is not None and math.isfinite(row[criterion]):
                    key = (row[criterion], index)
                    if best_model is None or key < best_model[0]:
                        best_model = (key, model)
                if bar is not None:
                    bar.set_postfix_str(_describe(row, criterion), refresh=False)
                    bar.update(1)
    finally:
        stack.close()
        if store is not None:
            store.close()

    table = SweepTable(rows[index] for index in range(len(grid)))
    _warn_summary(table)
    best = best_index(table, criterion)
    if best_model is not None and best_model[0][1] == best:
        model = best_model[1]
    else:
        model = _refit(table[best], X_fit, w, params, criterion)
    return SweepResult(
        table,
        criterion,
        model,
        model_names=model_names,
        best_map=map_statistics(model, X_fit, criteria_weights(model, X_fit, w)),
    )


# ---------------------------------------------------------------- arguments
def check_n_components(n_components) -> Sequence[int]:
    """The grid's values of K: distinct ints >= 1, order kept, checked without listing a range.

    A ``range`` is returned as it is (its bounds are checked in O(1), so
    ``range(1, 10**12)`` costs nothing until :func:`check_grid_size` compares it
    with the data); any other iterable is read up to :data:`MAX_GRID_VALUES`
    values and returned as a list without duplicates.
    """
    if isinstance(n_components, numbers.Integral) and not isinstance(n_components, bool):
        values = [n_components]
    elif isinstance(n_components, (str, bytes)) or not isinstance(n_components, Iterable):
        raise TypeError(
            f"n_components must be an int or an iterable of ints such as range(1, 11), "
            f"got {n_components!r}."
        )
    elif isinstance(n_components, range):
        if not n_components:
            raise ValueError("n_components is empty; give at least one number of components.")
        if min(n_components[0], n_components[-1]) < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components!r}.")
        return n_components
    else:
        values = list(itertools.islice(n_components, MAX_GRID_VALUES + 1))
        if len(values) > MAX_GRID_VALUES:
            raise ValueError(
                f"n_components holds more than {MAX_GRID_VALUES:,} values; a grid of K "
                "is at most that long. Pass fewer values (a range is checked lazily)."
            )
    if not values:
        raise ValueError("n_components is empty; give at least one number of components.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"n_components must hold integers, got {value!r}.")
        if value < 1:
            raise ValueError(f"n_components must be >= 1, got {value}.")
    return [int(v) for v in dict.fromkeys(values)]


def largest_value(values: Sequence[int]) -> int:
    """``max(values)``, in O(1) for a ``range`` (``max`` would walk it)."""
    if isinstance(values, range):
        return max(values[0], values[-1])
    return max(values)


def available_memory() -> int | None:
    """Bytes of memory this process may still use: MemAvailable, else physical memory.

    None when the platform tells neither (then no grid is refused for memory).
    """
    try:
        with open("/proc/meminfo", "rb") as file:
            for line in file:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def model_bytes(k: int, n_rows: int, n_features: int, covariance_type: str, dtype) -> int:
    """A lower estimate of the memory one fit with K components needs, in bytes.

    The responsibilities of the initialisation (n_rows · K), the means
    (K · D) and three stored forms of the covariances (covariances, precisions,
    their Cholesky factors: about 2 · 3 · the free parameters of the family,
    K · D² each for 'full'). O(1).
    """
    itemsize = np.dtype(dtype).itemsize
    free = get_family(covariance_type).n_parameters(k, n_features)
    return itemsize * (n_rows * k + k * n_features + 6 * free)


def largest_k(n_rows: int, n_features: int, covariance_types, dtype, memory: int | None) -> int:
    """The largest K whose fits the data allow: at most ``n_rows``, and within ``memory``.

    Binary search over :func:`model_bytes` (increasing in K for every family):
    O(log n_rows) evaluations.
    """

    def fits(k: int) -> bool:
        return memory is None or all(
            model_bytes(k, n_rows, n_features, name, dtype) <= memory for name in covariance_types
        )

    low, high = 0, n_rows
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def readable_bytes(size: float) -> str:
    """``size`` bytes as ``'1.5 GB'`` (powers of 1024)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_grid_size(
    k_max: int,
    n_rows: int,
    n_features: int,
    covariance_types,
    dtype,
    *,
    weighted: bool = False,
    name: str = "n_components",
    complete: bool = False,
) -> None:
    """Refuse, before any fit, a largest K the data cannot have or memory cannot hold.

    Parameters
    ----------
    k_max : int
        The grid's largest K.
    n_rows : int
        Rows that can carry a component (with positive weight when ``weighted``).
    n_features : int
    covariance_types : iterable of str
    dtype : numpy dtype
        Of the fits.
    weighted : bool, default=False
        Whether ``n_rows`` counts rows of positive weight (for the message).
    name : str, default='n_components'
        How the caller's argument is called in the message ('--k' for the command line).
    complete : bool, default=False
        Whether ``n_rows`` counts the rows without a hole only (``nan_policy='omit'``).

    Raises
    ------
    ValueError
        One line naming the largest K the data allow. O(log n_rows).

    Examples
    --------
    >>> import numpy as np
    >>> from gmm.selection.search import check_grid_size
    >>> try:
    ...     check_grid_size(10**12, 60, 2, ["full"], np.float64)
    ... except ValueError as error:
    ...     print(str(error).split(";")[0])
    n_components goes up to 1000000000000, but the data have 60 rows
    """
    rows = (
        f"{n_rows} rows"
        + (" without a missing entry (nan_policy='omit' fits those)" if complete else "")
        + (" with positive weight" if weighted else "")
    )
    memory = available_memory()
    if k_max > n_rows:
        raise ValueError(
            f"{name} goes up to {k_max}, but the data have {rows}; a mixture has at "
            f"most one component per row, so the largest K the data allow is "
            f"{largest_k(n_rows, n_features, covariance_types, dtype, memory)}. "
            f"Pass K values up to that."
        )
    if memory is None:
        return
    for covariance_type in covariance_types:
        need = model_bytes(k_max, n_rows, n_features, covariance_type, dtype)
        if need > memory:
            allowed = largest_k(n_rows, n_features, covariance_types, dtype, memory)
            raise ValueError(
                f"{name} goes up to {k_max}, but one {covariance_type!r} fit with that many "
                f"components on {rows} of {n_features} features needs at least "
                f"{readable_bytes(need)} and about {readable_bytes(memory)} of memory is "
                f"available; the largest K that fits is {allowed}. Pass K values up to that."
            )


def grid_types(covariance_types, n_features: int) -> list[str]:
    """The registered covariance types a sweep over ``covariance_types`` fits.

    ``'mclust'``: mclust's models for ``n_features`` features, each by the
    name it is registered under (see :func:`mclust_models`); otherwise
    :func:`check_covariance_types`.
    """
    if isinstance(covariance_types, str) and covariance_types == "mclust":
        return list(dict.fromkeys(mclust_models(n_features).values()))
    return check_covariance_types(covariance_types)


def check_covariance_types(covariance_types) -> list[str]:
    """Covariance type names: 'all', 'mclust', one name, or an iterable of names (validated).

    'mclust' is mclust's 14 models as registered (see :func:`gmm.selection.mclust.mclust_models`).
    """
    if isinstance(covariance_types, str):
        if covariance_types == "all":
            return list(registered_covariance_types())
        if covariance_types == "mclust":  # several features; sweep resolves one feature itself
            return list(dict.fromkeys(mclust_models(len(MCLUST_MODELS)).values()))
        covariance_types = [covariance_types]
    try:
        names = list(dict.fromkeys(covariance_types))
    except TypeError:
        raise TypeError(
            f"covariance_type must be 'all', a name or a list of names, got {covariance_types!r}."
        ) from None
    if not names:
        raise ValueError("No covariance type given; pass 'all' or names such as ['full', 'diag'].")
    for name in names:
        get_family(name)
    return names


def _integer_seed(random_state, checkpoint) -> int:
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    if checkpoint is not None:
        raise ValueError(
            "A checkpoint needs an integer random_state, so that a rerun fits the "
            f"same models; got {random_state!r}."
        )
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _fit_params(estimator_params, n_init, seed, k, covariance_type) -> dict[str, Any]:
    """Constructor parameters shared by every fit, validated once, up front."""
    valid = set(GaussianMixture().get_params()) - set(_GRID_PARAMS)
    for name in estimator_params:
        if name in _GRID_PARAMS:
            raise TypeError(
                f"{name} is set by the sweep itself; pass it as the sweep's own "
                "argument (n_components, covariance_types, random_state, n_init)."
            )
        if name not in valid:
            raise TypeError(
                f"Unknown GaussianMixture parameter {name!r}. Valid ones are: "
                f"{', '.join(sorted(valid))}."
            )
    params = {**estimator_params, "n_init": n_init, "random_state": seed}
    validation.check_parameters(GaussianMixture(k, covariance_type=covariance_type, **params))
    return params


def _check_data(X, nan_policy: str = "raise"):
    """``(X as given to the fits, X for reading rows, the fits' dtype)``.

    A DataFrame is passed on to the fits so the models record its column names.
    A memory-mapped array or a dask array is passed on as it is, after checks
    that read no rows: the fits check its values as they read them. With a
    ``nan_policy`` other than 'raise', in-memory X may hold NaN (never infinity).
    """
    if is_lazy_source(X):
        # The data sources' own checks of shape and dtype, which read no rows.
        rows, _ = scale.predict_data(X, "sweep")
        check_n_samples(rows.shape, 1)
        return X, X, rows.dtype
    if nan_policy != "raise":
        X_arr = scale.incomplete.check_data(X, "sweep", ensure_min_samples=2)
    else:
        X_arr = check_array(X, dtype=list(validation.FLOAT_DTYPES), ensure_min_samples=2)
    return (X if hasattr(X, "columns") else X_arr), X_arr, X_arr.dtype


def criteria_weights(model: GaussianMixture, X, w: np.ndarray | None) -> np.ndarray | None:
    """The weights the criteria of ``model`` on X use: ``w``, but 0 for rows ``fit`` dropped.

    With ``nan_policy='omit'`` a model is fitted on the complete rows only, so
    its log-likelihood, BIC's n and ICL count those rows: each row with a hole
    gets weight 0. Otherwise ``w`` unchanged (under 'marginalize' every row
    counts, by the log-likelihood of its observed entries). O(n·D) for 'omit'.
    """
    if getattr(model, "nan_policy", "raise") != "omit":
        return w
    complete = ~scale.incomplete.incomplete_rows(X)
    return complete.astype(np.float64) if w is None else np.where(complete, w, 0)


def is_lazy_source(X) -> bool:
    """Whether X is a memory-mapped array or a dask array (read in blocks, never whole)."""
    return isinstance(X, np.memmap) or is_dask_collection(X)


# -------------------------------------------------------------------- fitting
def serial_blas_threads(n_rows: int, n_features: int, k_max: int) -> int | None:
    """BLAS and OpenMP threads for a sweep's fits in this process: 1 for small E-steps, else None.

    One when the largest fit's E-step, ``n_rows · k_max · (D(D+1)/2 + D)``
    multiply-adds, is below :data:`SERIAL_THREADED_WORK`; None (BLAS as it is)
    otherwise. O(1).

    Examples
    --------
    >>> serial_blas_threads(20_000, 10, 9), serial_blas_threads(100_000, 20, 20)
    (1, None)
    """
    work = float(n_rows) * float(k_max) * (n_features * (n_features + 1) / 2 + n_features)
    return 1 if work < SERIAL_THREADED_WORK else None


def _relative_cost(k: int, covariance_type: str, n_features: int) -> float:
    # Work per EM iteration grows with the parameters a fit estimates.
    return get_family(covariance_type).n_parameters(k, n_features) + k * n_features


def stackable_fits(grid, X, w, params: dict[str, Any]) -> bool:
    """Whether a serial sweep's fits go through :func:`fit_points_together`.

    For in-memory rows without weights or holes (each fit then takes the same
    chunks, :func:`gmm.scale.known_rows`) and a grid with two or more covariance
    types whose families stack their E-steps together (equal ``stack_kind``:
    mclust's seven models with an orientation; its four axis-aligned ones;
    'EII' and 'VII'). scikit-learn's four types share none, so their sweeps fit
    one by one. O(grid).
    """
    if type(X) is not np.ndarray or w is not None or params.get("nan_policy", "raise") != "raise":
        return False
    kinds = [lockstep.stack_kind(get_family(name)) for name in {name for _, name in grid}]
    counts = collections.Counter(kind for kind in kinds if kind is not None)
    return any(count >= 2 for count in counts.values())


def fit_points_together(tasks, threads: int | None):
    """:func:`fit_point` of every task, the fits of one K advanced together (:mod:`gmm.lockstep`).

    Yields ``(index, (row, model))`` as the fits finish, K by K in the order
    the tasks name them. The same rows as fitting them one by one up to the
    stacked products' rounding. ``threads``: BLAS and OpenMP threads meanwhile
    (None: as they are), as :func:`gmm.selection.parallel.run` in this process.
    """
    groups: dict[int, list] = {}
    for index, args in tasks:
        groups.setdefault(args[2], []).append((index, (*args, True)))
    # The threads a large stacked E-step may split its rows over: those a fit's own
    # E-step may take (em.E_STEP_THREADS, at most BLAS's threads as the caller left
    # them, not the one thread the small fits get below).
    helpers = em._e_step_threads(True) - 1
    with (
        _convergence_silenced(),
        blas_threads(threads),
        blas_threads(threads, user_api="openmp"),
    ):
        for group in groups.values():
            yield from lockstep.run_together(fit_point, group, helpers)


@contextlib.contextmanager
def _convergence_silenced():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def fit_point(X, w, k: int, covariance_type: str, params: dict[str, Any], silenced: bool = False):
    """Fit one grid point; return ``(row, model)``, or ``(row with error, None)``.

    ConvergenceWarning is silenced here (by the caller, with ``silenced``): the
    ``converged`` column carries it.

    Parameters
    ----------
    X : array-like, memory-mapped array or dask array of shape (n_samples, n_features)
        As the fit takes it (checked by :func:`sweep`).
    w : ndarray of shape (n_samples,) or None
    k : int
    covariance_type : str
    params : dict
        The other ``GaussianMixture`` parameters.
    silenced : bool, default=False
        Whether the caller silences ConvergenceWarning around every fit
        (:func:`fit_points_together`: the warnings filters are the process's,
        which fits in threads must not set in turn).
    """
    model = GaussianMixture(k, covariance_type=covariance_type, **params)
    n_parameters = criteria.n_parameters(get_family(covariance_type), k, X.shape[1])
    clock = lockstep.fit_clock()  # a fit run together counts its own seconds only
    start = clock()
    try:
        # Only a fit whose last E-step can serve the criteria sums the entropy.
        with (
            contextlib.nullcontext() if silenced else _convergence_silenced(),
            em.tracking_entropy() if _may_reuse(model, w) else contextlib.nullcontext() as final,
        ):
            model.fit(X, sample_weight=w)
        seconds = clock() - start
        scores = None if final is None else reused_criteria(model, final, X, w)
        if scores is None:
            scores = information_criteria(model, X, criteria_weights(model, X, w))
    except (MemoryError, OSError):
        raise  # the machine's state, not the fit's: the sweep stops, a resumed one refits
    except Exception as exc:  # a failed fit is a row of the table, not the end of the sweep
        row = _row(k, covariance_type, n_parameters, seconds=clock() - start)
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row, None
    row = _row(k, covariance_type, n_parameters, seconds=seconds)
    row.update(scores)
    row["converged"] = bool(model.converged_)
    row["n_iter"] = int(model.n_iter_)
    return row, model


def _row(k, covariance_type, n_parameters, seconds) -> dict[str, Any]:
    return {
        "n_components": int(k),
        "covariance_type": str(covariance_type),
        "log_likelihood": math.nan,
        "n_parameters": int(n_parameters),
        "aic": math.nan,
        "bic": math.nan,
        "icl": math.nan,
        "converged": False,
        "n_iter": None,
        "fit_seconds": float(seconds),
        "error": None,
    }


def information_criteria(model: GaussianMixture, X, w: np.ndarray | None) -> dict[str, float]:
    """Total log-likelihood, AIC, BIC and ICL of a fitted model on (weighted) data.

    The formulas are those of :mod:`gmm.criteria`, with ``n = sum_i w_i`` (the
    row count without weights), summed in one E-step by the model
    (``GaussianMixture._criteria``, through :func:`gmm.scale.sum_rows`): block
    by block for a memory-mapped X, as one lazy sum for a dask X.

    Parameters
    ----------
    model : GaussianMixture
        Fitted.
    X : array-like, memory-mapped array or dask array of shape (n_samples, n_features)
        The data, as the model takes it (a DataFrame with the fitted column names).
    w : ndarray of shape (n_samples,) or None

    Returns
    -------
    dict
        ``log_likelihood``, ``aic``, ``bic``, ``icl`` as floats.

    Notes
    -----
    One E-step: O(n · K · D²) time for 'full'. A memory-mapped X is read one
    block at a time, never whole.

    With missing entries (NaN, a model fitted with ``nan_policy`` other than
    'raise'), the log-likelihood is the observed-data one, ``sum_i w_i log
    p(x_i,obs)`` (each row's marginal density over its observed entries, as
    the EM maximises it), and ICL's entropy uses the responsibilities given
    the observed entries. :func:`sweep` gives the rows a model fitted with
    'omit' dropped weight 0 (:func:`criteria_weights`).

    Examples
    --------
    >>> import math
    >>> from sklearn.datasets import make_blobs
    >>> from gmm import GaussianMixture
    >>> from gmm.selection import information_criteria
    >>> X, _ = make_blobs(100, centers=2, random_state=0)
    >>> model = GaussianMixture(2, random_state=0).fit(X)
    >>> scores = information_criteria(model, X, None)
    >>> math.isclose(scores["bic"], model.bic(X)), math.isclose(scores["icl"], model.icl(X))
    (True, True)
    """
    return model._criteria(model._predict_rows(X), w)


def _may_reuse(model: GaussianMixture, w: np.ndarray | None) -> bool:
    """Whether a fit's last E-step can give its criteria: the relative rule (its
    parameters are that E-step's), no weights and every row complete (the fit's
    rows and weights are the criteria's)."""
    return model._relative_rule() and w is None and model.nan_policy == "raise"


def reused_criteria(
    model: GaussianMixture, final: em.FinalEStep, X, w: np.ndarray | None
) -> dict[str, float] | None:
    """The criteria of a fit from its last E-step (:func:`gmm.em.tracking_entropy`),
    or None when a pass over the rows is needed (:func:`information_criteria`).

    A fit stopped by the relative rule (mclust's, the mclust sweep's default)
    keeps the parameters of its last E-step, which summed their log-likelihood
    and entropy: the same sums the criteria's pass makes, to rounding. Only
    without sample weights and with every row complete (``nan_policy='raise'``),
    where the fit's rows and weights are the criteria's. O(1).
    """
    if (
        not _may_reuse(model, w)
        or not final.filled
        or final.owner is not model
        or final.total_weight != X.shape[0]
    ):
        return None
    n_samples = X.shape[0]
    return criteria.all_criteria(
        final.log_likelihood * n_samples,
        final.entropy * n_samples,
        model._n_parameters(),
        n_samples,
    )


def _refit(row, X, w, params, criterion) -> GaussianMixture:
    """Refit the best grid point (its row came from a checkpoint)."""
    new_row, model = fit_point(X, w, row["n_components"], row["covariance_type"], params)
    if model is None:
        raise ValueError(
            f"Refitting the best model (K={row['n_components']}, "
            f"{row['covariance_type']!r}) from the checkpoint failed: {new_row['error']}"
        )
    if not math.isclose(new_row[criterion], row[criterion], rel_tol=1e-9, abs_tol=1e-9):
        warnings.warn(
            f"The refitted best model has {criterion}={new_row[criterion]!r}, the "
            f"checkpoint recorded {row[criterion]!r}. The checkpoint was probably "
            "written with another BLAS or thread count.",
            RuntimeWarning,
            stacklevel=3,
        )
    return model


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    return {column: row[column] for column in COLUMNS}


def _stored_row(row: dict[str, Any], path) -> dict[str, Any]:
    """A checkpoint's row with the types a sweep writes, or :class:`CheckpointError`.

    A row the sweep wrote has: an integer K (not a bool) and a type name; the
    criteria and the log-likelihood as numbers, which only a failed fit (an
    ``error`` text) may leave NaN or null; an integer ``n_parameters``, a bool
    ``converged``, an integer or null ``n_iter``, a number ``fit_seconds``. A
    hand-edited or damaged row is refused, not read as NaN or as K = True. O(1).
    """
    real = (int, float)
    failed = isinstance(row["error"], str)
    numbers = ("log_likelihood", "aic", "bic", "icl")
    wrong = [
        name
        for name, ok in [
            ("n_components", type(row["n_components"]) is int and row["n_components"] >= 1),
            ("error", row["error"] is None or failed),
            *(
                (name, (row[name] is None and failed) or type(row[name]) in real)
                for name in numbers
            ),
            ("n_parameters", type(row["n_parameters"]) is int),
            ("converged", type(row["converged"]) is bool),
            ("n_iter", row["n_iter"] is None or type(row["n_iter"]) is int),
            ("fit_seconds", type(row["fit_seconds"]) in real),
        ]
        if not ok
    ]
    if not failed and any(not math.isfinite(row[name]) for name in numbers if name not in wrong):
        wrong.append("a criterion that is not finite without an error")
    if wrong:
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r} is damaged: its row for n_components="
            f"{row['n_components']!r}, covariance_type={row['covariance_type']!r} holds values "
            f"a sweep does not write ({', '.join(wrong)}). Delete the file or pass "
            "overwrite=True to start afresh."
        )
    return _clean_row(row)


def _warn_summary(table: SweepTable) -> None:
    failed = sum(row["error"] is not None for row in table)
    not_converged = sum(row["error"] is None and not row["converged"] for row in table)
    if failed:
        warnings.warn(
            f"{failed} of {len(table)} fits failed; their rows hold the error "
            "(see the 'error' column).",
            UserWarning,
            stacklevel=3,
        )
    if not_converged:
        warnings.warn(
            f"{not_converged} of {len(table)} fits did not converge (see the "
            "'converged' column); increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )


def _describe(row: dict[str, Any], criterion: str) -> str:
    where = f"K={row['n_components']} {row['covariance_type']}"
    if row["error"] is not None:
        return f"{where} failed"
    return f"{where} {criterion}={row[criterion]:.6g}"
