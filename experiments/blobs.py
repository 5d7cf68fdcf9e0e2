"""Experiment 1: k-means against a Gaussian mixture on four round blobs."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from gmm import GaussianMixture

from . import style
from .result import ExperimentResult, figure_png

TITLE = "k-means and a Gaussian mixture on round blobs"
DESCRIPTION = (
    "Four blobs (400 points, standard deviation 0.6, axes swapped as in the Python "
    "Data Science Handbook). k-means summarises each cluster by a centre and "
    "implicitly a circle reaching its farthest member; a Gaussian mixture gives each "
    "cluster an ellipse and every point a posterior probability, so points between "
    "two clusters are flagged as uncertain instead of being assigned silently."
)

# A point is called uncertain when its most probable component has less than this posterior.
UNCERTAIN = 0.99


def load_blobs():
    """The four blobs of the book, with the two features swapped."""
    X, y = make_blobs(400, centers=4, cluster_std=0.60, random_state=0)
    return X[:, ::-1], y


def kmeans_radii(X, labels, centers) -> np.ndarray:
    """Distance from each centre to its farthest member: the circle k-means implies."""
    return np.array(
        [np.linalg.norm(X[labels == k] - c, axis=1).max() for k, c in enumerate(centers)]
    )


def run(quick: bool = False) -> ExperimentResult:
    X, y = load_blobs()
    kmeans = KMeans(4, random_state=0).fit(X)
    radii = kmeans_radii(X, kmeans.labels_, kmeans.cluster_centers_)
    model = GaussianMixture(4, random_state=42).fit(X)
    labels = model.predict(X)
    proba = model.predict_proba(X)
    confidence = proba.max(axis=1)
    uncertain = confidence < UNCERTAIN

    # Colour every panel by the true cluster each label overlaps most.
    km_map = style.label_mapping(y, kmeans.labels_)
    gm_map = style.label_mapping(y, labels)

    fig, axes = style.figure(3, width=4.3, height=4.0, sharex=True, sharey=True)
    ax = axes[0, 0]
    style.scatter_clusters(ax, X, km_map[kmeans.labels_])
    style.draw_circles(
        ax,
        kmeans.cluster_centers_,
        radii,
        colors=style.cluster_colors(km_map),
        label="k-means radius",
    )
    ax.scatter(*kmeans.cluster_centers_.T, marker="x", c="black", s=40, label="centre")
    style.label_axes(ax, "k-means: centres and radii")
    ax.legend(loc="lower left")

    ax = axes[0, 1]
    style.scatter_clusters(ax, X, gm_map[labels])
    style.draw_ellipses(ax, model, colors=style.cluster_colors(gm_map), label="1, 2, 3 σ")
    style.label_axes(ax, "Gaussian mixture: 1, 2 and 3 σ ellipses")
    ax.legend(loc="lower left")

    ax = axes[0, 2]
    # Size grows with uncertainty (1 − max posterior) so the few doubtful points stand out.
    sizes = 6 + 400 * (1 - confidence)
    style.scatter_clusters(ax, X, gm_map[labels], size=sizes, alpha=0.8)
    ax.scatter(
        *X[uncertain].T,
        s=sizes[uncertain],
        facecolors="none",
        edgecolors="black",
        linewidths=0.8,
        label=f"max posterior < {UNCERTAIN}",
    )
    style.label_axes(ax, "Gaussian mixture: point size = uncertainty")
    ax.legend(loc="lower left")
    for ax in axes.ravel():
        ax.set_aspect("equal", adjustable="box")
    figures = {"k-means circles, mixture ellipses and posterior uncertainty": figure_png(fig)}

    ari_kmeans = adjusted_rand_score(y, kmeans.labels_)
    ari_gmm = adjusted_rand_score(y, labels)
    table = [
        {
            "method": "k-means",
            "ARI vs truth": round(ari_kmeans, 4),
            f"points with max posterior < {UNCERTAIN}": "—",
        },
        {
            "method": "gmm (full)",
            "ARI vs truth": round(ari_gmm, 4),
            f"points with max posterior < {UNCERTAIN}": int(uncertain.sum()),
        },
    ]
    ok = ari_gmm >= 0.95
    verdict = (
        f"Both find the four blobs (ARI against the truth: k-means {ari_kmeans:.3f}, "
        f"GMM {ari_gmm:.3f}); the mixture flags {int(uncertain.sum())} of {len(X)} points "
        f"as uncertain (max posterior < {UNCERTAIN}), the lowest at {confidence.min():.2f}."
    )
    return ExperimentResult(
        name="blobs",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(ok),
        figures=figures,
        tables={"Clustering quality": table},
        metrics={
            "ari_kmeans": ari_kmeans,
            "ari_gmm": ari_gmm,
            "n_uncertain": int(uncertain.sum()),
            "min_max_posterior": float(confidence.min()),
            "kmeans_radii": radii.tolist(),
        },
    )
