"""The sweep's result: the table of fits, its CSV form, and a plot of a criterion.

:class:`SweepTable` holds one row per grid point (the columns of
:data:`COLUMNS`); :class:`SweepResult` adds the best model for the chosen
criterion. Nothing here fits or reads data.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..criteria import CRITERIA
from ..estimator import GaussianMixture
from ..writing import write_atomically
from .mclust import MclustBIC, MclustSummary, bic_table, mclust_name, plot_views, summarize

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
        empty cell. The file is written as :func:`gmm.writing.write_atomically`
        writes: a link is followed, and anything but a writable regular file is
        refused (:class:`gmm.writing.OutputPathError`) with nothing changed.
        """
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for row in self._rows:
            writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
        content = text.getvalue().encode("utf-8")
        write_atomically(path, lambda file: file.write(content))

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

    def __init__(
        self,
        table: SweepTable,
        criterion: str,
        best_estimator: GaussianMixture,
        *,
        model_names: dict[str, str] | None = None,
        best_map: dict[str, Any] | None = None,
    ):
        self.table = table
        self.criterion = check_criterion(criterion)
        self.best_index_ = best_index(table, self.criterion)
        row = table[self.best_index_]
        self.best_params_ = {
            "n_components": row["n_components"],
            "covariance_type": row["covariance_type"],
        }
        self.best_score_ = row[self.criterion]
        self.best_estimator_ = best_estimator
        if model_names is None:
            n_features = getattr(best_estimator, "n_features_in_", 2)
            model_names = {t: mclust_name(t, n_features) for t in table.column("covariance_type")}
        self.model_names = dict(model_names)
        self.best_map_ = best_map

    def mclust_bic(self) -> MclustBIC:
        """The BIC table in mclust's layout and sign (``mclustBIC``'s table).

        One row per K, one column per model (mclust's names), values
        ``2 logL - df log n``: higher is better, the opposite of the ``bic``
        column. NaN where a fit failed (mclust's NA). ``print()`` it for
        mclust's printout.
        """
        return bic_table(self.table, self.model_names)

    def summary(self) -> MclustSummary:
        """What mclust's ``summary(Mclust(X))`` prints, for the best model; ``print()`` it.

        Model, K, log-likelihood, n, df, BIC and ICL in mclust's sign (higher is
        better; ICL is mclust's MAP form, :func:`gmm.selection.mclust.mclust_icl`)
        and the clustering table (rows per MAP component).

        Raises
        ------
        ValueError
            For a result that was not made by :func:`gmm.sweep` (e.g. read
            from a model file), which lacks the hard assignment.
        """
        if self.best_map_ is None:
            raise ValueError(
                "summary() needs the best model's hard assignment, which gmm.sweep "
                "computes; this result was not made by sweep (run the sweep again)."
            )
        row = self.table[self.best_index_]
        name = self.model_names.get(row["covariance_type"], row["covariance_type"])
        return summarize(row, self.best_map_, name)

    def to_records(self) -> list[dict[str, Any]]:
        """Same as ``table.to_records()``."""
        return self.table.to_records()

    def to_pandas(self):
        """Same as ``table.to_pandas()``."""
        return self.table.to_pandas()

    def to_csv(self, path: str | os.PathLike) -> None:
        """Same as ``table.to_csv(path)``."""
        self.table.to_csv(path)

    def plot(self, criterion: str | None = None, ax=None, *, what=None, X=None, dimens=(0, 1)):
        """Plot a criterion against K, one line per covariance type, best marked; or mclust's views.

        Parameters
        ----------
        criterion : {'aic', 'bic', 'icl'}, default=None
            Defaults to the sweep's criterion. The star marks the best row for
            the criterion plotted.
        ax : matplotlib Axes (or a list of them, one per view), default=None
            Draw into it; without one, a new figure is made with pyplot.
        what : {'BIC', 'classification', 'uncertainty', 'density', 'all'} or list, default=None
            mclust's views instead of the criterion plot: the BIC curves of all
            models against K in mclust's sign (one line and marker per model),
            and the best model's classification (with its components'
            1-standard-deviation ellipses), uncertainty (``1 - max_k z_ik`` as
            the point size) and density (log-density contours), over features
            ``dimens`` of X.
        X : array-like of shape (n_samples, n_features), default=None
            The data, for every view but 'BIC'.
        dimens : tuple of two ints, default=(0, 1)
            The features the data views show.

        Returns
        -------
        ax : matplotlib Axes, or a list of Axes (one per view) with ``what``

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        """
        if what is not None:
            return plot_views(self, X, what, axes=ax, dimens=dimens)
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
    criterion = check_criterion(criterion)
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


def check_criterion(criterion) -> str:
    """``criterion`` if it is one of :data:`CRITERIA`; a ValueError naming them otherwise."""
    if criterion not in CRITERIA:
        raise ValueError(
            f"Unknown criterion {criterion!r}. Valid criteria are: 'aic', 'bic', 'icl'."
        )
    return criterion
