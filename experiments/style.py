"""One plotting style for every experiment figure, and the few drawing helpers they share.

Importing this module selects the non-interactive Agg backend, so experiments
render to PNG bytes on a machine without a display.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.patches import Circle
from scipy.optimize import linear_sum_assignment

from gmm.plotting import plot_ellipses

# Okabe & Ito's palette: distinguishable with the common forms of colour blindness.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
OURS = PALETTE[0]
SKLEARN = PALETTE[1]
TRUTH = "#555555"

# Many clusters (more than the palette holds) get a perceptually uniform map instead.
MANY_CLUSTERS = "viridis"

_RC = {
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "font.family": "DejaVu Sans",
}


def apply() -> None:
    """Set the project's matplotlib style (idempotent)."""
    plt.rcParams.update(_RC)


apply()


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.8, **kwargs):
    """A figure with a grid of axes, each ``width`` × ``height`` inches."""
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        layout="constrained",
        squeeze=False,
        **kwargs,
    )
    return fig, axes


def cluster_colors(labels: np.ndarray, n_clusters: int | None = None) -> list:
    """One colour per label: the palette for a few clusters, viridis for many."""
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if n_clusters is None else n_clusters
    if n <= len(PALETTE) - 1:  # leave black out for points; it is used for outlines
        return [PALETTE[k] for k in labels]
    cmap = plt.get_cmap(MANY_CLUSTERS)
    return [cmap(k / max(n - 1, 1)) for k in labels]


def scatter_clusters(ax, X, labels, *, size=12, n_clusters=None, **kwargs):
    """Scatter 2-D points coloured by cluster label."""
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=cluster_colors(labels, n_clusters),
        s=size,
        linewidths=0,
        **kwargs,
    )


def label_axes(ax, title: str, xlabel: str = "feature 1 (a.u.)", ylabel: str = "feature 2 (a.u.)"):
    """Title and axis labels; the toy data sets have arbitrary units (a.u.)."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def draw_ellipses(ax, model, *, n_std=(1, 2, 3), colors=None, label=None):
    """Draw each component's ellipses at ``n_std`` standard deviations.

    A thin wrapper on :func:`gmm.plotting.plot_ellipses` (fill opacity follows the
    mixing weight) that takes one colour for all components or one per component
    (default: the cluster colours), and puts ``label`` in the legend once.
    Call :func:`label_axes` afterwards: ``plot_ellipses`` names the axes itself.
    """
    n_components = len(model.weights_)
    if colors is None:
        colors = cluster_colors(np.arange(n_components))
    elif isinstance(colors, str):
        colors = [colors] * n_components
    patches = plot_ellipses(ax, model, n_std=tuple(n_std), colors=tuple(colors))
    if label is not None and patches:
        patches[0].set_label(label)
    return patches


def label_mapping(reference, labels) -> np.ndarray:
    """``mapping`` such that ``mapping[labels]`` agrees best with ``reference``.

    Only for display: the same cluster then has the same colour in every panel
    (colour component ``k`` with ``cluster_colors(mapping)[k]``).
    """
    reference = np.asarray(reference)
    labels = np.asarray(labels)
    n = max(reference.max(), labels.max()) + 1
    overlap = np.zeros((n, n))
    np.add.at(overlap, (labels, reference), 1)
    rows, cols = linear_sum_assignment(-overlap)
    mapping = np.empty(n, dtype=int)
    mapping[rows] = cols
    return mapping


def draw_circles(ax, centers, radii, *, colors=None, label=None):
    """Circles around k-means centres (k-means' implicit round clusters)."""
    if colors is None:
        colors = cluster_colors(np.arange(len(centers)))
    for k, (center, radius) in enumerate(zip(centers, radii, strict=True)):
        ax.add_patch(
            Circle(
                center,
                radius,
                facecolor=to_rgba(colors[k], 0.12),
                edgecolor=to_rgba(colors[k], 0.7),
                linewidth=1.2,
                label=label if k == 0 else None,
            )
        )
