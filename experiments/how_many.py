"""How many components? The Dirichlet-process mixture beside BIC and ICL.

One variational fit with a Dirichlet-process prior and a generous upper bound
on K switches off the components the data do not need; BIC and ICL answer the
same question with a sweep of maximum-likelihood fits over K. On the moons,
the stretched blobs and the digits, this section puts the three answers side
by side, with BIC's choice over mclust's 14 models and K = 1..9 (mclust's
default grid, on the narrow data), and the fitted weights and ellipses.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

import gmm
from gmm import BayesianGaussianMixture

from . import style
from .moons_density import load_moons
from .result import ExperimentResult, figure_png
from .stretched import load_stretched

TITLE = "How many components?"
#: Weight above which a component of the Dirichlet-process fit counts (its default).
THRESHOLD = 0.01
#: mclust's 14 models × K = 1..9 (its mclustBIC grid) are run on data this narrow.
MCLUST_MAX_FEATURES = 10


def datasets(quick: bool):
    """``name -> (X, true number of groups, K upper bound, K grid for BIC/ICL)``."""
    digits = load_digits()
    X_digits = PCA(0.99, whiten=True, random_state=0).fit_transform(digits.data)
    if quick:
        X_digits = X_digits[:400]
    stretched, _ = load_stretched()
    return {
        "moons": (load_moons(0), 2, 20, range(1, 9 if quick else 21)),
        "stretched blobs": (stretched, 4, 20, range(1, 7 if quick else 13)),
        "digits (PCA)": (X_digits, 10, 15 if quick else 40, range(1, 5 if quick else 21)),
    }


def dp_fit(X, upper, n_init):
    """A Dirichlet-process mixture with full covariances and default priors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianGaussianMixture(
            upper, covariance_type="full", max_iter=500, n_init=n_init, random_state=0
        ).fit(X)


def criterion_choices(X, ks, quick):
    """K chosen by BIC and by ICL over full-covariance fits; BIC over every registered type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = gmm.sweep(X, list(ks), "full", random_state=0, progress=False)
    table = full.table
    k = table.column("n_components")
    choices = {
        "bic": int(k[np.nanargmin(table.column("bic"))]),
        "icl": int(k[np.nanargmin(table.column("icl"))]),
    }
    if quick:
        choices["mclust"] = "not run in quick mode"
    elif X.shape[1] > MCLUST_MAX_FEATURES:
        # mclust's shared-orientation models (EVE, VVE) iterate inside every M-step;
        # 14 models × 9 K on the 41-D digits did not finish in 10 minutes here.
        choices["mclust"] = f"not run ({X.shape[1]} features; see the mclust section)"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            every = gmm.sweep(X, range(1, 10), "mclust", random_state=0, progress=False)
        choices["mclust"] = (
            f"{every.best_params_['covariance_type']}, K={every.best_params_['n_components']}"
        )
    return choices


def _weights_panel(ax, model, name):
    order = np.argsort(-model.weights_)
    weights = model.weights_[order]
    on = weights > THRESHOLD
    ax.bar(np.arange(weights.size), weights, color=np.where(on, style.OURS, "#bbbbbb"))
    ax.axhline(THRESHOLD, color="black", lw=0.8, ls="--", label=f"threshold {THRESHOLD:g}")
    ax.set_yscale("log")
    ax.set_ylim(max(weights.min(), 1e-6) / 2, 1)
    ax.legend(loc="upper right")
    style.label_axes(
        ax,
        f"{name}: {int(on.sum())} of {weights.size} components above {THRESHOLD:g}",
        "component (by weight)",
        "posterior mean weight",
    )


def run(quick: bool = False) -> ExperimentResult:
    rows, models = [], {}
    for name, (X, truth, upper, ks) in datasets(quick).items():
        model = dp_fit(X, upper, n_init=2 if quick else 5)
        models[name] = (X, model)
        choices = criterion_choices(X, ks, quick)
        row = {
            "data": f"{name} ({X.shape[0]} × {X.shape[1]})",
            "true groups": truth,
            "DP effective components": len(model.effective_components(THRESHOLD)),
            "DP upper bound K": upper,
            "BIC (full)": choices["bic"],
            "ICL (full)": choices["icl"],
            "BIC grid": f"{ks.start}…{ks.stop - 1}",
        }
        row["mclust models (BIC, K ≤ 9)"] = choices["mclust"]
        rows.append(row)

    fig, axes = style.figure(3, nrows=2, width=4.4, height=3.8)
    for col, (name, (X, model)) in enumerate(models.items()):
        _weights_panel(axes[0, col], model, name)
        ax = axes[1, col]
        labels = model.predict(X)
        if X.shape[1] == 2:
            effective = model.effective_components(THRESHOLD)  # heaviest first
            rank = np.full(model.n_components, len(effective))
            rank[effective] = np.arange(len(effective))
            style.scatter_clusters(ax, X, rank[labels], n_clusters=len(effective) + 1)
            shown = SimpleNamespace(  # only the effective components, in the same colours
                weights_=model.weights_[effective],
                means_=model.means_[effective],
                covariances_=model.covariances_[effective],
                covariance_type=model.covariance_type,
            )
            style.draw_ellipses(ax, shown, label="1, 2, 3 σ")
            ax.legend(loc="lower left")
            style.label_axes(ax, f"{name}: the {len(effective)} effective components")
        else:  # digits: the components' sizes against the classes they hold
            counts = np.bincount(labels, minlength=model.n_components)
            ax.bar(np.arange(counts.size), np.sort(counts)[::-1], color=style.OURS)
            style.label_axes(ax, f"{name}: rows per component", "component", "rows assigned")
    figures = {
        "Weights of the Dirichlet-process fits (log scale) and the fitted components": (
            figure_png(fig)
        )
    }

    def hits(column):
        return sum(r[column] == r["true groups"] for r in rows)

    scores = {c: hits(c) for c in ("DP effective components", "BIC (full)", "ICL (full)")}
    picks = "; ".join(
        f"{r['data'].split(' (')[0]}: DP {r['DP effective components']}, BIC {r['BIC (full)']}, "
        f"ICL {r['ICL (full)']} (truth {r['true groups']})"
        for r in rows
    )
    blobs_row = rows[1]
    ok = blobs_row["DP effective components"] == blobs_row["true groups"]
    verdict = (
        f"{picks}. The true count is recovered on {scores['DP effective components']} of "
        f"{len(rows)} data sets by the DP fit, {scores['BIC (full)']} by BIC and "
        f"{scores['ICL (full)']} by ICL; on the stretched blobs, where the clusters are "
        f"Gaussian, the DP fit {'finds' if ok else 'misses'} the 4 blobs."
    )
    return ExperimentResult(
        name="how_many",
        title=TITLE,
        description=(
            "One BayesianGaussianMixture fit per data set (full covariances, "
            "Dirichlet-process prior with scikit-learn's defaults, weight concentration "
            "1/K, upper bound K, best of 5 starts; 2 in quick mode) against the K that BIC and ICL "
            "choose from a sweep of maximum-likelihood full-covariance fits. A component "
            f"counts as effective when its posterior mean weight exceeds {THRESHOLD:g}. "
            "The moons are not Gaussian, so every method models their density with "
            "several components; the digits' ten classes are not ten Gaussians in "
            "41 dimensions either."
        ),
        verdict=verdict,
        ok=bool(ok),
        figures=figures,
        tables={"Number of components chosen": rows},
        metrics={"rows": rows, "hits": scores},
    )
