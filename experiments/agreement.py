"""Experiment 7: does gmm agree with scikit-learn, and how fast is each per EM iteration?"""

from __future__ import annotations

import warnings
from statistics import median
from time import perf_counter

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from scipy.optimize import linear_sum_assignment
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture

from . import style
from .moons_density import load_moons
from .result import ExperimentResult, figure_png
from .versus_sklearn import shared_covariance_types

TITLE = "Agreement with scikit-learn"
DESCRIPTION = (
    "gmm and scikit-learn fitted side by side on the moons (K = 16) and on the "
    "PCA-whitened digits (K = 110; 10 in quick mode), for every covariance type "
    "both libraries have. Identical start: both "
    "get the weights, means and precisions of a scikit-learn model stopped after one "
    "EM iteration, tol = 0 and the same fixed number of iterations, so any difference "
    "is numerical. Default start: both with their own defaults and seeds 0, 1, 2 "
    "(gmm draws its k-means initialisation like scikit-learn, so these should agree "
    "too). Parameter differences are the largest absolute difference over weights, "
    "means and covariances (components matched by their means for the default "
    "start). Time per iteration: a warm-started fit of N iterations from the identical "
    "start, divided by N, median of several repeats (no initialisation is timed), "
    "both libraries with one BLAS and one OpenMP thread (see the runner)."
)

# Every covariance type scikit-learn also has: the registry may hold families it lacks.
TYPES = shared_covariance_types()
# Tolerances for a green verdict. Identical starts differ only by rounding, which EM
# can amplify over iterations; 1e-6 is far above rounding and far below anything a
# user would see.
PARAM_TOL = 1e-6
LOGLIK_TOL = 1e-8


def load_datasets(quick: bool):
    """The two data sets and their numbers of components (fewer for digits when quick)."""
    digits = load_digits().data
    return {
        "moons": (load_moons(0), 16),
        "digits": (PCA(0.99, whiten=True).fit_transform(digits), 10 if quick else 110),
    }


def identical_start(X, k, kind) -> dict:
    """Initial parameters from a scikit-learn model stopped after one iteration."""
    ref = SkGaussianMixture(k, covariance_type=kind, max_iter=1, random_state=0).fit(X)
    return {
        "weights_init": ref.weights_,
        "means_init": ref.means_,
        "precisions_init": ref.precisions_,
    }


def parameter_gap(ours, theirs, match: bool) -> float:
    """Largest absolute difference between the fitted parameters of two mixtures."""
    order = np.arange(len(ours.weights_))
    if match:
        cost = ((ours.means_[:, None, :] - theirs.means_[None, :, :]) ** 2).sum(axis=2)
        _, order = linear_sum_assignment(cost)
    cov_theirs = theirs.covariances_
    if theirs.covariance_type != "tied":
        cov_theirs = cov_theirs[order]
    return float(
        max(
            np.max(np.abs(ours.weights_ - theirs.weights_[order])),
            np.max(np.abs(ours.means_ - theirs.means_[order])),
            np.max(np.abs(ours.covariances_ - cov_theirs)),
        )
    )


def compare(X, ours, theirs, match: bool) -> dict:
    """The agreement numbers of one pair of fitted models."""
    ll_ours, ll_theirs = ours.score(X), theirs.score(X)
    return {
        "max |Δ parameter|": parameter_gap(ours, theirs, match),
        "mean log-lik (gmm)": ll_ours,
        "mean log-lik (scikit-learn)": ll_theirs,
        "|Δ mean log-lik|": abs(ll_ours - ll_theirs),
        "BIC (gmm)": float(ours.bic(X)),
        "BIC (scikit-learn)": float(theirs.bic(X)),
        "ARI gmm vs scikit-learn": adjusted_rand_score(ours.predict(X), theirs.predict(X)),
    }


def seconds_per_iteration(make, X, n_iter: int, repeats: int) -> float:
    """Median over ``repeats`` of the time of ``n_iter`` EM iterations, divided by ``n_iter``.

    The model is initialised by a 1-iteration fit first, then refitted with
    ``warm_start``, so the timed fits run exactly ``n_iter`` iterations (tol = 0)
    and no initialisation.
    """
    model = make(1).fit(X)
    model.set_params(warm_start=True, max_iter=n_iter)
    times = []
    for _ in range(repeats):
        start = perf_counter()
        model.fit(X)
        times.append(perf_counter() - start)
    return median(times) / n_iter


def run(quick: bool = False) -> ExperimentResult:
    datasets = load_datasets(quick)
    n_iter = {"moons": 5, "digits": 5} if quick else {"moons": 50, "digits": 20}
    repeats = {"moons": 3, "digits": 3} if quick else {"moons": 7, "digits": 5}
    seeds = (0,) if quick else (0, 1, 2)

    identical, default, speed = [], [], []
    with warnings.catch_warnings():
        # tol=0 with a fixed max_iter never "converges", on purpose.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, (X, k) in datasets.items():
            for kind in TYPES:
                start = identical_start(X, k, kind)

                def make_ours(max_iter, kind=kind, k=k, start=start):
                    return GaussianMixture(
                        k, covariance_type=kind, tol=0, max_iter=max_iter, **start
                    )

                def make_theirs(max_iter, kind=kind, k=k, start=start):
                    # All three initial parameters are given, so the initial
                    # responsibilities are unused: draw the cheapest ones.
                    return SkGaussianMixture(
                        k,
                        covariance_type=kind,
                        tol=0,
                        max_iter=max_iter,
                        init_params="random_from_data",
                        random_state=0,
                        **start,
                    )

                ours = make_ours(n_iter[name]).fit(X)
                theirs = make_theirs(n_iter[name]).fit(X)
                row = {"data": name, "K": k, "covariance_type": kind, "iterations": n_iter[name]}
                identical.append(row | compare(X, ours, theirs, match=False))

                t_ours = seconds_per_iteration(make_ours, X, n_iter[name], repeats[name])
                t_theirs = seconds_per_iteration(make_theirs, X, n_iter[name], repeats[name])
                speed.append(
                    {
                        "data": name,
                        "n × D": f"{X.shape[0]} × {X.shape[1]}",
                        "K": k,
                        "covariance_type": kind,
                        "gmm ms/iter": 1e3 * t_ours,
                        "scikit-learn ms/iter": 1e3 * t_theirs,
                        "speed-up": t_theirs / t_ours,
                    }
                )

                for seed in seeds:
                    ours = GaussianMixture(k, covariance_type=kind, random_state=seed).fit(X)
                    theirs = SkGaussianMixture(k, covariance_type=kind, random_state=seed).fit(X)
                    row = {"data": name, "K": k, "covariance_type": kind, "seed": seed}
                    row |= {"iterations (gmm, sklearn)": f"{ours.n_iter_}, {theirs.n_iter_}"}
                    default.append(row | compare(X, ours, theirs, match=True))

    for row in identical + default:
        row["ok"] = bool(
            row["max |Δ parameter|"] < PARAM_TOL
            and row["|Δ mean log-lik|"] < LOGLIK_TOL
            and row["ARI gmm vs scikit-learn"] == 1.0
        )
    for row in speed:
        row["ok"] = bool(row["speed-up"] >= 1.0)

    figures = {"Time per EM iteration": _speed_figure(speed)}
    worst = max(identical, key=lambda r: r["max |Δ parameter|"])
    worst_default = max(default, key=lambda r: r["max |Δ parameter|"])
    n_ok = sum(r["ok"] for r in identical + default)
    n_all = len(identical) + len(default)
    speedups = np.array([r["speed-up"] for r in speed])
    ok = n_ok == n_all
    verdict = (
        f"{n_ok} of {n_all} fits agree within {PARAM_TOL:g} in every parameter; largest "
        f"difference {worst['max |Δ parameter|']:.1e} with identical starts "
        f"({worst['data']}, {worst['covariance_type']}) and "
        f"{worst_default['max |Δ parameter|']:.1e} with default starts; per EM iteration "
        f"gmm is {np.median(speedups):.2g}× as fast as scikit-learn (median over "
        f"{len(speedups)} cases; from {np.min(speedups):.2g}× to {np.max(speedups):.2g}×)."
    )
    tables = {
        "Identical start, fixed iterations": identical,
        "Default start, seeds " + ", ".join(map(str, seeds)): default,
        "Time per EM iteration (identical start)": speed,
    }
    return ExperimentResult(
        name="agreement",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(ok),
        figures=figures,
        tables=tables,
        metrics={
            "max_param_diff_identical": worst["max |Δ parameter|"],
            "max_param_diff_default": worst_default["max |Δ parameter|"],
            "median_speedup": float(np.median(speedups)),
            "agreement_rows": identical + default,
            "speed_rows": speed,
        },
    )


def _speed_figure(speed) -> bytes:
    fig, axes = style.figure(2, width=4.6, height=3.6)
    for ax, name in zip(axes.ravel(), ("moons", "digits"), strict=True):
        rows = [r for r in speed if r["data"] == name]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["gmm ms/iter"] for r in rows], 0.4, color=style.OURS, label="gmm")
        ax.bar(
            x + 0.2,
            [r["scikit-learn ms/iter"] for r in rows],
            0.4,
            color=style.SKLEARN,
            label="scikit-learn",
        )
        ax.set_xticks(x, [r["covariance_type"] for r in rows])
        ax.set_yscale("log")
        # Bars on a log axis need a floor; put it below the smallest bar so the
        # labelled ticks (1, 2, 5 × 10^k) fall inside.
        times = [r[c] for r in rows for c in ("gmm ms/iter", "scikit-learn ms/iter")]
        ax.set_ylim(min(times) / 2, max(times) * 1.6)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=30))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        style.label_axes(
            ax,
            f"{name} (n × D = {rows[0]['n × D']}, K = {rows[0]['K']})",
            "covariance type",
            "time per EM iteration (ms, log scale)",
        )
        ax.legend()
    return figure_png(fig)
