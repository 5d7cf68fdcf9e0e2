"""mclust's workflow on top of the sweep: its model names, its BIC table, summary and plots.

``sweep(X, range(1, 10), covariance_types='mclust', init_params='hc')`` is
mclust's ``mclustBIC(X)``: ``'mclust'`` expands to mclust's 14 models
(:data:`MCLUST_MODELS`; 'E' and 'V' on one feature), each by its mclust name
when that family is registered, else by scikit-learn's name for the same model
('VII' = 'spherical', 'VVI' = 'diag', 'EEE' = 'tied', 'VVV' = 'full'), and the
models neither registers are left out with a warning. The
:class:`~gmm.selection.table.SweepResult` then gives

- :meth:`~gmm.selection.table.SweepResult.mclust_bic`: the table in mclust's
  convention, ``BIC = 2 logL - df log n`` (higher is better; the sweep's own
  ``bic`` column is ``-2 logL + df log n``, lower is better);
- :meth:`~gmm.selection.table.SweepResult.summary`: what mclust's
  ``summary(Mclust(X))`` prints;
- ``plot(what=..., X=X)``: mclust's four views (BIC, classification,
  uncertainty, density).

ICL: mclust's ``icl()`` is ``BIC + 2 Σ_i log z_i,MAP`` (in its sign), the hard
MAP assignment's log-probabilities, whereas the sweep's ``icl`` column uses the
soft entropy ``-Σ_i Σ_k z_ik log z_ik`` (Biernacki et al. 2000). mclust's form
is :func:`mclust_icl` here (mclust's sign) and :func:`gmm.criteria.icl_map`
(ours, lower is better). Parameters the caller does not pass take mclust's
settings (:data:`MCLUST_DEFAULTS`); for mclust's numbers to 1e-6 pass a tighter
``tol`` (the tests use 1e-10 against mclust's ``emControl(tol = 1e-10)``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import criteria
from ..covariance import covariance_types as registered_covariance_types
from ..covariance import get_family, mclust_types

#: mclust's multivariate models, in mclust's order (the registry's list).
MCLUST_MODELS = mclust_types(2)
#: mclust's models for one feature.
ONE_FEATURE_MODELS = mclust_types(1)
#: scikit-learn's names of the same models (several features).
SKLEARN_NAMES = {"VII": "spherical", "VVI": "diag", "EEE": "tied", "VVV": "full"}
#: On one feature 'tied' is 'E' and the per-component families are 'V'.
ONE_FEATURE_NAMES = {"E": "tied", "V": "full"}

#: What an mclust sweep uses for the parameters the caller leaves out: mclust's
#: hierarchical start, on a random subset of 2,000 rows for larger data followed,
#: as in mclustBIC, by an M-step of the model being fitted on the subset and an
#: E-step on all rows; no regulariser (mclust adds none: a singular fit is an NA
#: cell); and mclust's stopping rule, a relative change of at most 1e-5 in the
#: total log-likelihood (``convergence='relative'``), with no iteration cap to
#: speak of.
MCLUST_DEFAULTS = {
    "init_params": "hc",
    "init_sample_size": 2000,
    "reg_covar": 0.0,
    "tol": 1e-5,
    "convergence": "relative",
    "max_iter": 1000,
}

#: How mclust's summary describes each model.
DESCRIPTIONS = {
    "EII": "spherical, equal volume",
    "VII": "spherical, varying volume",
    "EEI": "diagonal, equal volume and shape",
    "VEI": "diagonal, varying volume, equal shape",
    "EVI": "diagonal, equal volume, varying shape",
    "VVI": "diagonal, varying volume and shape",
    "EEE": "ellipsoidal, equal volume, shape and orientation",
    "VEE": "ellipsoidal, equal shape and orientation",
    "EVE": "ellipsoidal, equal volume and orientation",
    "VVE": "ellipsoidal, equal orientation",
    "EEV": "ellipsoidal, equal volume and equal shape",
    "VEV": "ellipsoidal, equal shape",
    "EVV": "ellipsoidal, equal volume",
    "VVV": "ellipsoidal, varying volume, shape, and orientation",
    "E": "univariate, equal variance",
    "V": "univariate, unequal variance",
}


def mclust_models(n_features: int, registered: tuple[str, ...] | None = None) -> dict[str, str]:
    """mclust's models for data with ``n_features`` features: ``{mclust name: registered name}``.

    A model is taken by its mclust name when that family is registered, else by
    scikit-learn's name for the same model; models with neither are left out
    with a UserWarning that names them (they arrive with the families).

    >>> mclust_models(1, registered=("spherical", "diag", "full", "tied"))
    {'E': 'tied', 'V': 'full'}
    """
    if registered is None:
        registered = registered_covariance_types(include_mclust=True)
    wanted, aliases = (
        (ONE_FEATURE_MODELS, ONE_FEATURE_NAMES)
        if n_features == 1
        else (MCLUST_MODELS, SKLEARN_NAMES)
    )
    found: dict[str, str] = {}
    for name in wanted:
        if name in registered:
            found[name] = name
        elif aliases.get(name) in registered:
            found[name] = aliases[name]
    if not found:
        raise ValueError(
            "covariance_types='mclust' found none of mclust's models registered; "
            f"registered types are: {', '.join(registered)}."
        )
    missing = [name for name in wanted if name not in found]
    if missing:
        warnings.warn(
            f"covariance_types='mclust': {len(missing)} of mclust's {len(wanted)} models "
            f"are not registered ({', '.join(missing)}); the sweep fits the "
            f"{len(found)} it has ({', '.join(f'{m}={r!r}' for m, r in found.items())}).",
            UserWarning,
            stacklevel=3,
        )
    return found


def mclust_name(covariance_type: str, n_features: int) -> str:
    """The mclust name of a registered model (itself when it has none)."""
    if n_features == 1:
        if covariance_type in ONE_FEATURE_MODELS:
            return covariance_type
        # On one feature a family is 'E' or 'V' by whether its components share
        # their variance: one free variance for two components, or two.
        shared = get_family(covariance_type).n_parameters(2, 1) == 1
        return "E" if shared else "V"
    reverse = {ours: theirs for theirs, ours in SKLEARN_NAMES.items()}
    return reverse.get(covariance_type, covariance_type)


# ===================================================================== table
@dataclass
class MclustBIC:
    """A sweep's BIC in mclust's layout and sign: one row per K, one column per model.

    ``values[g, m] = 2 logL - df log n`` (higher is better), NaN where the fit
    failed (mclust's NA); ``errors`` holds those failures' messages.

    Attributes
    ----------
    n_components : list of int
    models : list of str
        mclust's names.
    values : ndarray of shape (len(n_components), len(models))
    errors : dict of (int, str) to str
    """

    n_components: list[int]
    models: list[str]
    values: np.ndarray
    errors: dict[tuple[int, str], str] = field(default_factory=dict)

    def best(self, top: int = 1) -> list[tuple[str, int, float]]:
        """The ``top`` (model, K, BIC) cells, highest BIC first (ties: earlier K, model)."""
        cells = [
            (-value, g, m)
            for g, row in enumerate(self.values)
            for m, value in enumerate(row)
            if np.isfinite(value)
        ]
        cells.sort()
        return [(self.models[m], self.n_components[g], -v) for v, g, m in cells[:top]]

    def to_pandas(self):
        """As a pandas DataFrame indexed by K (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.values, index=self.n_components, columns=self.models)

    def __str__(self) -> str:
        width = 11
        lines = [
            "Bayesian Information Criterion (BIC), mclust's convention "
            "(2 logL - df log n, higher is better):",
            "  " + "".join(f"{m:>{width}}" for m in self.models),
        ]
        for k, row in zip(self.n_components, self.values, strict=True):
            cells = "".join(
                f"{v:>{width}.3f}" if np.isfinite(v) else f"{'NA':>{width}}" for v in row
            )
            lines.append(f"{k:<2}" + cells)
        top = self.best(3)
        lines.append("")
        lines.append(f"Top {len(top)} models based on the BIC criterion:")
        lines.append("".join(f"{f'{m},{k}':>{width}}" for m, k, _ in top))
        lines.append("".join(f"{v:>{width}.3f}" for _, _, v in top))
        return "\n".join(lines)


def bic_table(table, model_names: dict[str, str]) -> MclustBIC:
    """:class:`MclustBIC` from a :class:`~gmm.selection.table.SweepTable`.

    ``model_names`` maps each ``covariance_type`` of the table to its mclust name.
    """
    ks = list(dict.fromkeys(int(row["n_components"]) for row in table))
    types = list(dict.fromkeys(row["covariance_type"] for row in table))
    models: list[str] = []
    for t in types:  # one column per name: a second type with the same mclust name keeps its own
        name = model_names.get(t, t)
        models.append(t if name in models else name)
    values = np.full((len(ks), len(types)), np.nan)
    errors = {}
    for row in table:
        g, m = ks.index(row["n_components"]), types.index(row["covariance_type"])
        if row["error"] is None:
            values[g, m] = -row["bic"]
        else:
            errors[(row["n_components"], models[m])] = row["error"]
    return MclustBIC(ks, models, values, errors)


# =================================================================== summary
def map_statistics(model, X, sample_weight=None) -> dict[str, Any]:
    """Hard-assignment numbers of a fitted model on X: ``Σ w_i log z_i,MAP`` and the counts.

    ``counts[k]`` is the (weighted) number of rows whose most probable
    component is k. One E-step: O(n·K·D²) time, O(n·K) memory (a dask X is
    reduced lazily).
    """
    resp = model.predict_proba(X)
    top = resp.max(axis=1)
    labels = resp.argmax(axis=1)
    with np.errstate(divide="ignore"):
        log_top = np.log(top)
    w = 1.0 if sample_weight is None else sample_weight
    log_sum = (log_top * w).sum()
    if hasattr(log_sum, "compute"):  # dask
        log_sum, labels = log_sum.compute(), np.asarray(labels.compute())
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(np.asarray(labels), weights=weights, minlength=model.n_components)
    return {"map_log_sum": float(log_sum), "counts": counts.tolist()}


def mclust_icl(model, X, sample_weight=None) -> float:
    """mclust's ``icl()`` of a fitted model: ``2 logL - df log n + 2 Σ_i log z_i,MAP``.

    Higher is better (mclust's sign). Not the ``icl`` of :mod:`gmm.criteria`,
    which uses the soft entropy and is lower-is-better: this one is
    ``-criteria.icl_map(...)``.

    Parameters
    ----------
    model : GaussianMixture
        Fitted.
    X : array-like of shape (n_samples, n_features)
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    float

    Notes
    -----
    Two E-steps (log-likelihood and responsibilities): O(n·K·D²).

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import GaussianMixture
    >>> from gmm.selection.mclust import mclust_icl
    >>> X = np.r_[np.zeros((5, 1)), np.ones((5, 1))] + np.arange(10)[:, None] * 1e-2
    >>> model = GaussianMixture(2, random_state=0).fit(X)
    >>> bool(mclust_icl(model, X) <= -model.bic(X) + 1e-9)
    True
    """
    from .. import validation

    w = None
    if sample_weight is not None:
        w = validation.check_sample_weight(sample_weight, len(X), np.float64)
    log_likelihood = float(np.sum(model.score_samples(X) * (1.0 if w is None else w)))
    n = len(X) if w is None else float(w.sum())
    p = model_n_parameters(model)
    return -criteria.icl_map(log_likelihood, p, n, map_statistics(model, X, w)["map_log_sum"])


def model_n_parameters(model) -> int:
    """Free parameters of a fitted ``GaussianMixture`` (mclust's ``df``)."""

    family = get_family(model.covariance_type)
    return criteria.n_parameters(family, model.n_components, model.n_features_in_)


@dataclass
class MclustSummary:
    """The numbers mclust's ``summary(Mclust(X))`` prints, for the best model of a sweep.

    ``bic`` and ``icl`` are in mclust's sign (higher is better); ``icl`` is
    mclust's MAP form (:func:`mclust_icl`).
    """

    model: str
    n_components: int
    log_likelihood: float
    n_samples: float
    df: int
    bic: float
    icl: float
    counts: list[float]
    covariance_type: str

    def __str__(self) -> str:
        rule = "-" * 52
        description = DESCRIPTIONS.get(self.model)
        name = f"{self.model} ({description})" if description else self.model
        n = int(self.n_samples) if float(self.n_samples).is_integer() else self.n_samples
        head = f"{'log-likelihood':>15} {'n':>5} {'df':>3} {'BIC':>10} {'ICL':>10}"
        values = (
            f"{self.log_likelihood:>15.3f} {n:>5} {self.df:>3} {self.bic:>10.3f} {self.icl:>10.3f}"
        )
        labels = "".join(f"{k + 1:>6}" for k in range(len(self.counts)))
        counts = "".join(
            f"{int(c) if float(c).is_integer() else round(c, 2):>6}" for c in self.counts
        )
        return "\n".join(
            [
                rule,
                "Gaussian finite mixture model fitted by EM algorithm",
                rule,
                "",
                f"Mclust {name} model with {self.n_components} "
                f"component{'s' if self.n_components != 1 else ''}:",
                "",
                head,
                values,
                "",
                "(mclust's convention: BIC = 2 logL - df log n and ICL = BIC + 2 sum log z_MAP,",
                " higher is better; the sweep's own bic and icl columns are lower-is-better.)",
                "",
                "Clustering table:",
                labels,
                counts,
            ]
        )


def summarize(row: dict[str, Any], map_stats: dict[str, Any], model_name: str) -> MclustSummary:
    """:class:`MclustSummary` from the best row of a sweep and its :func:`map_statistics`."""
    ll, p = row["log_likelihood"], int(row["n_parameters"])
    # n from the row's own BIC: bic = -2 LL + p log n.
    n = math.exp((row["bic"] + 2 * ll) / p) if p else float("nan")
    n = round(n) if abs(n - round(n)) < 1e-6 * max(1.0, n) else n
    icl_map = criteria.icl_map(ll, p, n, map_stats["map_log_sum"])
    return MclustSummary(
        model=model_name,
        n_components=int(row["n_components"]),
        log_likelihood=float(ll),
        n_samples=n,
        df=p,
        bic=-float(row["bic"]),
        icl=-icl_map,
        counts=list(map_stats["counts"]),
        covariance_type=row["covariance_type"],
    )


# ===================================================================== plots
#: Marker per mclust model (one line and marker per model in the BIC view).
MARKERS = dict(
    zip(
        MCLUST_MODELS + ONE_FEATURE_MODELS,
        ["^", "v", "o", "s", "D", "P", "X", "*", "<", ">", "h", "p", "d", "8", "^", "v"],
        strict=True,
    )
)
VIEWS = ("BIC", "classification", "uncertainty", "density")


def plot_views(result, X=None, what=VIEWS, axes=None, dimens=(0, 1)):
    """Draw mclust's views of a sweep; see :meth:`SweepResult.plot`.

    Returns the list of Axes, one per view.
    """
    if isinstance(what, str):
        what = VIEWS if what == "all" else (what,)
    unknown = [view for view in what if view not in VIEWS]
    if unknown:
        raise ValueError(f"Unknown view {unknown[0]!r}. Views are: {', '.join(VIEWS)}, 'all'.")
    if any(view != "BIC" for view in what) and X is None:
        raise ValueError(
            "The classification, uncertainty and density views need the data: plot(what=..., X=X)."
        )
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(what), figsize=(4.2 * len(what), 4), squeeze=False)
        axes = list(axes[0])
    axes = list(np.atleast_1d(axes))
    if len(axes) != len(what):
        raise ValueError(f"Give one Axes per view: {len(what)} views, {len(axes)} Axes.")
    X_plot = None if X is None else np.asarray(X, dtype=np.float64)
    for view, ax in zip(what, axes, strict=True):
        if view == "BIC":
            _plot_bic(result.mclust_bic(), ax)
        else:
            _plot_data_view(result.best_estimator_, X_plot, view, ax, dimens)
    return axes


def _plot_bic(table: MclustBIC, ax):
    for m, name in enumerate(table.models):
        ax.plot(
            table.n_components,
            table.values[:, m],
            marker=MARKERS.get(name, "o"),
            markersize=5,
            label=name,
        )
    model, k, value = table.best(1)[0]
    ax.plot([k], [value], marker="o", markersize=14, mfc="none", color="black", linestyle="none")
    ax.set_xlabel("number of components")
    ax.set_ylabel("BIC (mclust's sign: higher is better)")
    ax.set_title(f"BIC: best {model}, {k} components")
    ax.legend(fontsize=7, ncol=2)


def _plot_data_view(model, X, view, ax, dimens):
    resp = model.predict_proba(X)
    labels = resp.argmax(axis=1)
    if X.shape[1] == 1:
        x = X[:, 0]
        if view == "density":
            grid = np.linspace(x.min(), x.max(), 300)
            ax.plot(grid, np.exp(model.score_samples(grid[:, None])))
            ax.set_ylabel("density")
        elif view == "classification":
            ax.scatter(x, labels, c=labels, cmap="tab10", s=10)
            ax.set_ylabel("classification")
        else:
            ax.scatter(x, 1 - resp.max(axis=1), c=labels, cmap="tab10", s=10)
            ax.set_ylabel("uncertainty")
        ax.set_xlabel("x")
        ax.set_title(view)
        return
    i, j = dimens
    xi, xj = X[:, i], X[:, j]
    if view == "classification":
        ax.scatter(xi, xj, c=labels, cmap="tab10", s=10)
        covariances = _component_covariances(model, X.shape[1])
        for k in range(model.n_components):
            cov = covariances[k][np.ix_([i, j], [i, j])]
            values, vectors = np.linalg.eigh(cov)
            angle = np.linspace(0, 2 * np.pi, 100)
            circle = np.stack([np.cos(angle), np.sin(angle)])
            ellipse = vectors @ (np.sqrt(np.maximum(values, 0))[:, None] * circle)
            ax.plot(
                model.means_[k, i] + ellipse[0], model.means_[k, j] + ellipse[1], color="k", lw=1
            )
    elif view == "uncertainty":
        uncertainty = 1 - resp.max(axis=1)
        ax.scatter(xi, xj, c=labels, cmap="tab10", s=4 + 200 * uncertainty)
    else:
        gi = np.linspace(xi.min(), xi.max(), 80)
        gj = np.linspace(xj.min(), xj.max(), 80)
        GI, GJ = np.meshgrid(gi, gj)
        points = np.tile(X.mean(axis=0), (GI.size, 1))
        points[:, i], points[:, j] = GI.ravel(), GJ.ravel()
        density = model.score_samples(points).reshape(GI.shape)
        ax.contour(GI, GJ, density, levels=12)
        ax.scatter(xi, xj, s=2, color="grey")
    ax.set_xlabel(f"feature {i}")
    ax.set_ylabel(f"feature {j}")
    ax.set_title(view if view != "density" else "log-density (other features at their mean)")


def _component_covariances(model, n_features):

    family = get_family(model.covariance_type)
    out = []
    for k in range(model.n_components):
        cov = np.asarray(family.component_covariance(model.covariances_, k), dtype=np.float64)
        if cov.ndim == 0:
            cov = cov * np.eye(n_features)
        elif cov.ndim == 1:
            cov = np.diag(cov)
        out.append(cov)
    return out
