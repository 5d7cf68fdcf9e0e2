"""Model selection: fit a grid of (n_components, covariance_type), score every fit.

:func:`sweep` fits one :class:`~gmm.GaussianMixture` per grid point and returns a
:class:`SweepResult`: the table of information criteria (AIC, BIC, ICL), the
best model for the chosen criterion and a plot of the criterion against K.
:class:`GaussianMixtureIC` is the same sweep behind the estimator interface.

Each grid point is fitted exactly as
``GaussianMixture(k, covariance_type=c, random_state=random_state,
n_init=n_init, **estimator_params).fit(X, sample_weight=sample_weight)``, with the
same integer ``random_state`` for every point. So a row can be checked against
scikit-learn's ``GaussianMixture``, and the table does not depend on ``n_jobs``
or on the order in which the fits finish.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from time import perf_counter
from typing import Any

import numpy as np
from scipy.special import logsumexp, xlogy
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import em, validation
from .checkpoint import Checkpoint, data_fingerprint
from .covariance import covariance_types as registered_covariance_types
from .covariance import get_family
from .estimator import GaussianMixture, state_kept_on_failure

CRITERIA = ("aic", "bic", "icl")

#: Columns of the sweep table, in order.
COLUMNS = (
    "n_components",
    "covariance_type",
    "log_likelihood",
    "n_parameters",
    "aic",
    "bic",
    "icl",
    "converged",
    "n_iter",
    "fit_seconds",
    "error",
)

# Set by the grid, not by ``**estimator_params``.
_GRID_PARAMS = ("n_components", "covariance_type", "random_state", "n_init")

_INSTALL_PARALLEL = 'pip install "gmm[parallel]"'
_INSTALL_PLOT = 'pip install "gmm[plot]"'


# ====================================================================== table
class SweepTable(Sequence):
    """The rows of a sweep, one per grid point, in grid order.

    Each row is a dict with the keys of :data:`COLUMNS`:

    - ``n_components``, ``covariance_type``: the grid point;
    - ``log_likelihood``: total log-likelihood of the training data (the
      weighted sum with ``sample_weight``);
    - ``n_parameters``: free parameters of the model;
    - ``aic``, ``bic``, ``icl``: the criteria, lower is better;
    - ``converged``, ``n_iter``: from the fit;
    - ``fit_seconds``: wall time of the fit;
    - ``error``: None, or the message of a fit that failed (its criteria are NaN
      and ``n_iter`` is None).

    Indexing returns copies, so the table cannot be changed by accident.

    Parameters
    ----------
    rows : iterable of dict
    """

    columns = COLUMNS

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self._rows = tuple({column: row[column] for column in COLUMNS} for row in rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [dict(row) for row in self._rows[index]]
        return dict(self._rows[index])

    def column(self, name: str) -> np.ndarray:
        """One column as an array (float for the numbers, with NaN for failed fits)."""
        if name not in COLUMNS:
            raise KeyError(f"Unknown column {name!r}. Columns are: {', '.join(COLUMNS)}.")
        values = [row[name] for row in self._rows]
        if name in ("covariance_type", "error"):
            return np.array(values, dtype=object)
        if name == "converged":
            return np.array(values, dtype=bool)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as a list of plain dicts (JSON-serialisable, no pandas needed)."""
        return [dict(row) for row in self._rows]

    def to_pandas(self):
        """The table as a pandas DataFrame (``n_iter`` as nullable ``Int64``).

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "SweepTable.to_pandas needs pandas: pip install pandas "
                "(or use to_records() or to_csv(), which need nothing)."
            ) from None
        frame = pd.DataFrame.from_records(list(self._rows), columns=list(COLUMNS))
        frame["n_iter"] = pd.array([row["n_iter"] for row in self._rows], dtype="Int64")
        return frame

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the table as CSV with a header row.

        Floats are written with ``repr`` (they read back exactly), None as an
        empty cell.
        """
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(COLUMNS)
            for row in self._rows:
                writer.writerow([_csv_cell(row[c]) for c in COLUMNS])

    def __repr__(self) -> str:
        lines = [f"{'K':>4} {'type':<10} {'aic':>14} {'bic':>14} {'icl':>14} conv"]
        for row in self._rows:
            if row["error"] is not None:
                lines.append(f"{row['n_components']:>4} {row['covariance_type']:<10} failed")
                continue
            lines.append(
                f"{row['n_components']:>4} {row['covariance_type']:<10} "
                f"{row['aic']:>14.6g} {row['bic']:>14.6g} {row['icl']:>14.6g} "
                f"{'yes' if row['converged'] else 'no'}"
            )
        return "\n".join(lines)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ===================================================================== result
class SweepResult:
    """What :func:`sweep` returns: the table and the best model.

    Parameters
    ----------
    table : SweepTable
    criterion : {'aic', 'bic', 'icl'}
        The criterion that chose the best model.
    best_estimator : GaussianMixture
        The fitted model of the best row.

    Attributes
    ----------
    table : SweepTable
        One row per grid point.
    criterion : str
    best_index_ : int
        Row of the best model: the lowest criterion among fits that did not
        fail; ties go to the earlier row.
    best_params_ : dict
        ``{'n_components': K, 'covariance_type': name}`` of that row.
    best_score_ : float
        Its criterion value.
    best_estimator_ : GaussianMixture
        That model, fitted.

    Examples
    --------
    >>> import csv, os, tempfile
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import make_blobs
    >>> from gmm import sweep
    >>> X, _ = make_blobs(150, centers=[[0, 0], [6, 0]], random_state=0)
    >>> result = sweep(X, [1, 2, 3], "diag", progress=False)
    >>> [row["n_components"] for row in result.to_records()]
    [1, 2, 3]
    >>> result.best_params_["n_components"]
    2
    >>> path = os.path.join(tempfile.mkdtemp(), "table.csv")
    >>> result.to_csv(path)
    >>> with open(path) as file:
    ...     next(csv.reader(file))[:4]
    ['n_components', 'covariance_type', 'log_likelihood', 'n_parameters']
    >>> ax = result.plot("aic", ax=Figure().subplots())
    >>> ax.get_ylabel()
    'AIC (lower is better)'
    """

    def __init__(self, table: SweepTable, criterion: str, best_estimator: GaussianMixture):
        self.table = table
        self.criterion = _check_criterion(criterion)
        self.best_index_ = best_index(table, self.criterion)
        row = table[self.best_index_]
        self.best_params_ = {
            "n_components": row["n_components"],
            "covariance_type": row["covariance_type"],
        }
        self.best_score_ = row[self.criterion]
        self.best_estimator_ = best_estimator

    def to_records(self) -> list[dict[str, Any]]:
        """Same as ``table.to_records()``."""
        return self.table.to_records()

    def to_pandas(self):
        """Same as ``table.to_pandas()``."""
        return self.table.to_pandas()

    def to_csv(self, path: str | os.PathLike) -> None:
        """Same as ``table.to_csv(path)``."""
        self.table.to_csv(path)

    def plot(self, criterion: str | None = None, ax=None):
        """Plot a criterion against K, one line per covariance type, best marked.

        Parameters
        ----------
        criterion : {'aic', 'bic', 'icl'}, default=None
            Defaults to the sweep's criterion. The star marks the best row for
            the criterion plotted.
        ax : matplotlib Axes, default=None
            Draw into it; without one, a new figure is made with pyplot.

        Returns
        -------
        ax : matplotlib Axes

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        """
        return plot_criterion(self.table, criterion or self.criterion, ax=ax)

    def __repr__(self) -> str:
        return (
            f"SweepResult({len(self.table)} fits, criterion={self.criterion!r}, "
            f"best_params_={self.best_params_}, best_score_={self.best_score_:.6g})"
        )


def best_index(table: SweepTable, criterion: str) -> int:
    """Index of the row with the lowest ``criterion`` among fits that did not fail."""
    values = table.column(criterion)
    ok = np.isfinite(values)
    if not ok.any():
        errors = [row["error"] for row in table if row["error"]]
        first = errors[0] if errors else "no finite criterion"
        raise ValueError(
            f"All {len(table)} fits of the sweep failed, so there is no best model. "
            f"First error: {first}"
        )
    return int(np.flatnonzero(ok)[np.argmin(values[ok])])


def plot_criterion(table: SweepTable, criterion: str, ax=None):
    """Draw ``criterion`` against K for each covariance type; see :meth:`SweepResult.plot`."""
    criterion = _check_criterion(criterion)
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(f"Plotting needs matplotlib: {_INSTALL_PLOT}") from None
        _, ax = plt.subplots()
    ks = table.column("n_components")
    values = table.column(criterion)
    types = table.column("covariance_type")
    for name in dict.fromkeys(types):
        rows = np.flatnonzero(types == name)
        rows = rows[np.argsort(ks[rows], kind="stable")]
        ax.plot(ks[rows], values[rows], marker="o", markersize=3, label=str(name))
    best = best_index(table, criterion)
    ax.plot(
        ks[best],
        values[best],
        marker="*",
        markersize=15,
        color="black",
        linestyle="none",
        label=f"best: K={int(ks[best])}, {types[best]}",
    )
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.legend()
    return ax


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
    X : array-like of shape (n_samples, n_features)
        Training data; float32 stays float32, anything else becomes float64.
    n_components : int or iterable of int, default=range(1, 11)
        The values of K. Duplicates are dropped; order is kept.
    covariance_types : str or iterable of str, default=('spherical', 'diag', 'full', 'tied')
        Covariance types to try; ``'all'`` means every registered type.
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
        workers times threads never exceed the cores.
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
        ``max_iter``, ``init_params``, ...), the same for every fit.

    Returns
    -------
    SweepResult
        ``table`` (one row per grid point, in the order covariance type, then K),
        ``best_estimator_``, ``best_params_``, ``best_score_`` and ``plot()``.

    Raises
    ------
    ValueError
        For invalid data or arguments, and when every fit fails. A single
        failed fit (e.g. a collapsed component) only becomes a row whose
        ``error`` holds the message.

    Notes
    -----
    Cost: the sum of the fits (for 'full', O(n_init · n_iter · n · K · D²) each)
    plus one E-step per fit for the criteria, spread over ``n_jobs`` workers.
    Fits run largest first so that workers finish together.

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
    criterion = _check_criterion(criterion)
    ks = check_n_components(n_components)
    types = check_covariance_types(covariance_types)
    seed = _integer_seed(random_state, checkpoint)
    params = _fit_params(estimator_params, n_init, seed, ks[0], types[0])
    X_fit, X_arr = _check_data(X)
    w = validation.check_sample_weight(sample_weight, X_arr.shape[0], X_arr.dtype)
    show_progress = _want_progress(progress)
    grid = [(k, name) for name in types for k in ks]

    rows: dict[int, dict[str, Any]] = {}
    store = None
    if checkpoint is not None:
        store = Checkpoint(
            checkpoint,
            {
                "columns": list(COLUMNS),
                "data": data_fingerprint(X_arr, w),
                "settings": params,
            },
            overwrite=overwrite,
        )
    best_model: tuple[tuple[float, int], GaussianMixture] | None = None
    try:
        if store is not None:
            for index, point in enumerate(grid):
                if point in store.rows:
                    rows[index] = _clean_row(store.rows[point])
        pending = [index for index in range(len(grid)) if index not in rows]
        pending.sort(key=lambda index: -_relative_cost(*grid[index], X_arr.shape[1]))
        with _progress_bar(show_progress, len(grid), len(rows)) as bar:
            for index, row, model in _run(grid, pending, X_fit, X_arr, w, params, n_jobs):
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
        if store is not None:
            store.close()

    table = SweepTable(rows[index] for index in range(len(grid)))
    _warn_summary(table)
    best = best_index(table, criterion)
    if best_model is not None and best_model[0][1] == best:
        model = best_model[1]
    else:
        model = _refit(table[best], X_fit, X_arr, w, params, criterion)
    return SweepResult(table, criterion, model)


# ---------------------------------------------------------------- arguments
def _check_criterion(criterion) -> str:
    if criterion not in CRITERIA:
        raise ValueError(
            f"Unknown criterion {criterion!r}. Valid criteria are: 'aic', 'bic', 'icl'."
        )
    return criterion


def check_n_components(n_components) -> list[int]:
    """The grid's values of K as a list of distinct ints >= 1 (order kept)."""
    if isinstance(n_components, numbers.Integral) and not isinstance(n_components, bool):
        values = [n_components]
    elif isinstance(n_components, (str, bytes)) or not isinstance(n_components, Iterable):
        raise TypeError(
            f"n_components must be an int or an iterable of ints such as range(1, 11), "
            f"got {n_components!r}."
        )
    else:
        values = list(n_components)
    if not values:
        raise ValueError("n_components is empty; give at least one number of components.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"n_components must hold integers, got {value!r}.")
        if value < 1:
            raise ValueError(f"n_components must be >= 1, got {value}.")
    return [int(v) for v in dict.fromkeys(values)]


def check_covariance_types(covariance_types) -> list[str]:
    """Covariance type names: 'all', one name, or an iterable of names (validated)."""
    if isinstance(covariance_types, str):
        if covariance_types == "all":
            return list(registered_covariance_types())
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


def _check_data(X):
    """``(X as given to fit, X as a validated array)``.

    A DataFrame is passed on to the fits so the models record its column names.
    """
    X_arr = check_array(X, dtype=list(validation.FLOAT_DTYPES), ensure_min_samples=2)
    return (X if hasattr(X, "columns") else X_arr), X_arr


# -------------------------------------------------------------------- fitting
def _relative_cost(k: int, covariance_type: str, n_features: int) -> float:
    # Work per EM iteration grows with the parameters a fit estimates.
    return get_family(covariance_type).n_parameters(k, n_features) + k * n_features


def _run(grid, pending, X_fit, X_arr, w, params, n_jobs) -> Iterator[tuple[int, dict, Any]]:
    """Yield ``(index, row, model)`` as fits finish, in this process or in workers."""
    n_workers = _n_workers(n_jobs, len(pending))
    if n_workers == 1:
        for index in pending:
            yield (index, *fit_point(X_fit, X_arr, w, *grid[index], params))
        return
    from joblib import Parallel, delayed

    threads = max(1, _cpu_count() // n_workers)
    tasks = (
        delayed(_fit_point_indexed)(index, X_fit, X_arr, w, *grid[index], params, threads)
        for index in pending
    )
    yield from Parallel(n_jobs=n_workers, return_as="generator_unordered")(tasks)


def _n_workers(n_jobs, n_tasks: int) -> int:
    if n_jobs is None or n_jobs == 1 or n_tasks <= 1:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None, -1 or an integer >= 1, got {n_jobs!r}.")
    try:
        import joblib
    except ImportError:
        raise ImportError(f"n_jobs > 1 needs joblib: {_INSTALL_PARALLEL}") from None
    return max(1, min(joblib.effective_n_jobs(int(n_jobs)), n_tasks))


def _cpu_count() -> int:
    try:
        import joblib

        return joblib.cpu_count()
    except ImportError:  # pragma: no cover - joblib is needed to get here
        return os.cpu_count() or 1


@contextmanager
def _blas_threads(limit: int | None):
    if limit is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        # Without threadpoolctl, joblib's workers still cap their BLAS threads.
        yield
        return
    with threadpool_limits(limits=limit):
        yield


def _fit_point_indexed(index, X_fit, X_arr, w, k, covariance_type, params, threads):
    with _blas_threads(threads):
        return (index, *fit_point(X_fit, X_arr, w, k, covariance_type, params))


def fit_point(X_fit, X_arr, w, k: int, covariance_type: str, params: dict[str, Any]):
    """Fit one grid point; return ``(row, model)``, or ``(row with error, None)``.

    ConvergenceWarning is silenced here: the ``converged`` column carries it.
    """
    model = GaussianMixture(k, covariance_type=covariance_type, **params)
    family = get_family(covariance_type)
    n_features = X_arr.shape[1]
    n_parameters = family.n_parameters(k, n_features) + k * n_features + k - 1
    start = perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_fit, sample_weight=w)
        seconds = perf_counter() - start
        criteria = information_criteria(model, X_arr, w)
    except Exception as exc:  # a failed fit is a row of the table, not the end of the sweep
        row = _row(k, covariance_type, n_parameters, seconds=perf_counter() - start)
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row, None
    row = _row(k, covariance_type, n_parameters, seconds=seconds)
    row.update(criteria)
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


def information_criteria(model: GaussianMixture, X: np.ndarray, w: np.ndarray | None):
    """Total log-likelihood, AIC, BIC and ICL of a fitted model on (weighted) data.

    ``aic = -2 LL + 2 p``, ``bic = -2 LL + p log n``,
    ``icl = bic - 2 sum_i w_i sum_k r_ik log r_ik``, with ``n = sum_i w_i`` (the
    row count without weights). One E-step: O(n · K · D²) time for 'full',
    O(chunk · K) extra memory.

    Parameters
    ----------
    model : GaussianMixture
        Fitted.
    X : ndarray of shape (n_samples, n_features)
        Validated, in the model's dtype.
    w : ndarray of shape (n_samples,) or None

    Returns
    -------
    dict
        ``log_likelihood``, ``aic``, ``bic``, ``icl`` as floats.

    Examples
    --------
    >>> import math
    >>> from sklearn.datasets import make_blobs
    >>> from gmm import GaussianMixture
    >>> from gmm.selection import information_criteria
    >>> X, _ = make_blobs(100, centers=2, random_state=0)
    >>> model = GaussianMixture(2, random_state=0).fit(X)
    >>> criteria = information_criteria(model, X, None)
    >>> math.isclose(criteria["bic"], model.bic(X)), math.isclose(criteria["icl"], model.icl(X))
    (True, True)
    """
    family = get_family(model.covariance_type)
    params = em.Parameters(
        model.weights_, model.means_, model.covariances_, model.precisions_cholesky_
    )
    log_likelihood = 0.0
    entropy = 0.0
    log_const = np.log(model.weights_.astype(np.float64)) + em.log_normalizer(params, family)
    for rows, log_prob in em.log_prob_chunks(X, params, family, log_const):
        log_norm = logsumexp(log_prob, axis=1)
        log_prob -= log_norm[:, None]
        resp = np.exp(log_prob)
        row_entropy = -np.sum(xlogy(resp, resp), axis=1)
        if w is None:
            log_likelihood += float(np.sum(log_norm, dtype=np.float64))
            entropy += float(np.sum(row_entropy, dtype=np.float64))
        else:
            weights = w[rows].astype(np.float64)
            log_likelihood += float(weights @ log_norm.astype(np.float64))
            entropy += float(weights @ row_entropy.astype(np.float64))
    n_components, n_features = model.means_.shape
    n_parameters = (
        family.n_parameters(n_components, n_features) + n_components * n_features + n_components - 1
    )
    n = X.shape[0] if w is None else float(np.sum(w, dtype=np.float64))
    bic = -2.0 * log_likelihood + n_parameters * math.log(n)
    return {
        "log_likelihood": log_likelihood,
        "aic": -2.0 * log_likelihood + 2.0 * n_parameters,
        "bic": bic,
        "icl": bic + 2.0 * entropy,
    }


def _refit(row, X_fit, X_arr, w, params, criterion) -> GaussianMixture:
    """Refit the best grid point (its row came from a checkpoint)."""
    new_row, model = fit_point(X_fit, X_arr, w, row["n_components"], row["covariance_type"], params)
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


# ------------------------------------------------------------------- progress
def _want_progress(progress) -> bool:
    if progress is None:
        if not _isatty(sys.stderr):
            return False
        try:
            import tqdm
        except ImportError:
            return False
        return True
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise ImportError(f"progress=True needs tqdm: {_INSTALL_PARALLEL}") from None
    return bool(progress)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _progress_bar(show: bool, total: int, done: int):
    if not show:
        return nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="fit", file=sys.stderr)


def _describe(row: dict[str, Any], criterion: str) -> str:
    where = f"K={row['n_components']} {row['covariance_type']}"
    if row["error"] is not None:
        return f"{where} failed"
    return f"{where} {criterion}={row[criterion]:.6g}"


# ================================================================== estimator
class GaussianMixtureIC(DensityMixin, BaseEstimator):
    """A Gaussian mixture whose K and covariance type are chosen by AIC, BIC or ICL.

    ``fit`` runs :func:`sweep` over the grid and keeps the best model;
    ``predict``, ``predict_proba``, ``score_samples``, ``score``, ``sample``,
    ``aic``, ``bic`` and ``icl`` delegate to it.

    Parameters
    ----------
    n_components : int or iterable of int, default=(1, 2, ..., 10)
        Values of K to try (a range works; it is stored as given).
    covariance_type : str or iterable of str, default='all'
        'all', one name, or several names among 'spherical', 'diag', 'full', 'tied'.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
    tol, reg_covar, max_iter, n_init, init_params :
        As in :class:`~gmm.GaussianMixture`, the same for every fit.
    random_state : int, RandomState instance or None, default=None
        One integer seed for every fit (drawn once when not an int).
    n_jobs : int or None, default=None
        Parallel fits, see :func:`sweep`.
    checkpoint : str or path, default=None
        Resume file, see :func:`sweep`.
    progress : bool or None, default=None
        Progress bar, see :func:`sweep`.

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The best model, fitted.
    n_components_ : int
    covariance_type_ : str
        Its K and covariance type.
    best_params_ : dict
    table_ : SweepTable
        One row per fit (see :class:`SweepTable`).
    sweep_result_ : SweepResult
        Everything the sweep returned, with ``plot()``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only for input with string column names.

    Notes
    -----
    Store a fitted model with :func:`gmm.save` and read it with :func:`gmm.load`:
    the file holds no pickle, so loading it runs no code. Pickle works too, as
    for any scikit-learn estimator, but only for files you trust.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from gmm import GaussianMixtureIC
    >>> X, _ = make_blobs(200, centers=[[0, 0], [6, 0], [0, 6]], random_state=0)
    >>> model = GaussianMixtureIC(range(1, 5), covariance_type="full", random_state=0).fit(X)
    >>> model.n_components_, model.covariance_type_
    (3, 'full')
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        n_components=tuple(range(1, 11)),
        *,
        covariance_type="all",
        criterion="bic",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        random_state=None,
        n_jobs=None,
        checkpoint=None,
        progress=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.criterion = criterion
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.checkpoint = checkpoint
        self.progress = progress

    def fit(self, X, y=None, sample_weight=None):
        """Fit every grid point and keep the best by ``criterion``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights (see :func:`sweep` for how the criteria use them).

        Returns
        -------
        self : GaussianMixtureIC
        """
        # validate_data resets n_features_in_ before the sweep runs: a failed or
        # interrupted fit must leave a fitted selection exactly as it was.
        with state_kept_on_failure(self):
            X = validate_data(self, X, dtype=list(validation.FLOAT_DTYPES), ensure_min_samples=2)
            result = sweep(
                X,
                self.n_components,
                self.covariance_type,
                criterion=self.criterion,
                n_init=self.n_init,
                random_state=self.random_state,
                sample_weight=sample_weight,
                n_jobs=self.n_jobs,
                checkpoint=self.checkpoint,
                progress=self.progress,
                tol=self.tol,
                reg_covar=self.reg_covar,
                max_iter=self.max_iter,
                init_params=self.init_params,
            )
        self._set_result(result)
        return self

    def _set_result(self, result: SweepResult) -> None:
        self.sweep_result_ = result
        self.table_ = result.table
        self.best_estimator_ = result.best_estimator_
        self.best_params_ = dict(result.best_params_)
        self.n_components_ = result.best_params_["n_components"]
        self.covariance_type_ = result.best_params_["covariance_type"]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the best model's labels for X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _check(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=list(validation.FLOAT_DTYPES), reset=False)

    def predict(self, X):
        """Most probable component of each sample, under the best model.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._check(X)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Posterior probability of each component, under the best model.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components_)
        """
        X = self._check(X)
        return self.best_estimator_.predict_proba(X)

    def score_samples(self, X):
        """Log-likelihood of each sample under the best model.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        X = self._check(X)
        return self.best_estimator_.score_samples(X)

    def score(self, X, y=None):
        """Mean log-likelihood per sample under the best model.

        Returns
        -------
        float
        """
        X = self._check(X)
        return self.best_estimator_.score(X)

    def aic(self, X):
        """AIC of the best model on X (see ``GaussianMixture.aic``)."""
        X = self._check(X)
        return self.best_estimator_.aic(X)

    def bic(self, X):
        """BIC of the best model on X (see ``GaussianMixture.bic``)."""
        X = self._check(X)
        return self.best_estimator_.bic(X)

    def icl(self, X):
        """ICL of the best model on X (see ``GaussianMixture.icl``)."""
        X = self._check(X)
        return self.best_estimator_.icl(X)

    def sample(self, n_samples=1, random_state=None):
        """Draw from the best model; see ``GaussianMixture.sample``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.best_estimator_.sample(n_samples, random_state=random_state)
