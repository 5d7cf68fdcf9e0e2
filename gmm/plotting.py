"""Pictures of Gaussians and mixtures on a given matplotlib Axes.

matplotlib is optional (``pip install "gmm[plot]"``): it is imported inside the
functions, so ``import gmm`` and ``import gmm.plotting`` work without it.
Every function draws onto the Axes it is given and returns what it drew.

Colors come from the Okabe–Ito palette, which stays distinguishable under the
common forms of color blindness; continuous values use 'cividis'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .covariance import get_family
from .gaussian import Gaussian
from .grids import evaluate_grid

#: Okabe & Ito (2008), ordered so the first colors contrast most on white.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
DEFAULT_CMAP = "cividis"
_KINDS = ("contour", "heatmap", "surface")


def _require_matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.patches
    except ImportError as error:
        raise ImportError(
            'gmm.plotting needs matplotlib. Install it with: pip install "gmm[plot]"'
        ) from error
    return matplotlib


def _check_axes(ax: Any) -> None:
    """Refuse what is not a matplotlib Axes, saying how to get one. O(1)."""
    if not hasattr(ax, "add_artist"):
        raise TypeError(
            f"ax must be a matplotlib Axes (for example fig, ax = plt.subplots(), or "
            f"plt.gca() for the current one), got {ax!r}."
        )


# ------------------------------------------------------------------- ellipses
def plot_ellipses(
    ax: Any,
    model: Any,
    n_std: float | tuple[float, ...] = (1, 2, 3),
    *,
    dims: tuple[int, int] = (0, 1),
    colors: tuple[str, ...] = OKABE_ITO,
) -> list[Any]:
    """Draw each component of a fitted mixture as ellipses of constant density.

    The ellipse at ``n`` standard deviations holds the points at Mahalanobis
    distance ``n`` from the mean: its axes point along the eigenvectors of the
    covariance and have half-lengths ``n·sqrt(eigenvalue)``, the
    :meth:`~gmm.gaussian.Gaussian.principal_axes` of the component's marginal
    on ``dims``. Fill opacity follows the component weight.

    Parameters
    ----------
    ax : matplotlib Axes
    model : fitted GaussianMixture
        Any covariance type ('spherical', 'diag', 'full', 'tied'); scikit-learn's
        ``GaussianMixture`` works as well.
    n_std : float or tuple of float, default=(1, 2, 3)
        Radii, in standard deviations, of the ellipses drawn per component.
    dims : (int, int), default=(0, 1)
        The two features to show; the ellipses are those of the marginal
        distribution of these features.
    colors : sequence of color, default=OKABE_ITO
        Component ``k`` uses ``colors[k % len(colors)]``, matching
        :func:`plot_samples` with ``labels = model.predict(X)``.

    Returns
    -------
    patches : list of matplotlib.patches.Ellipse
        ``n_components · len(n_std)`` patches. O(K·D²) work.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from gmm import GaussianMixture
    >>> from gmm.plotting import plot_ellipses
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = GaussianMixture(2, random_state=0).fit(X)
    >>> fig, ax = plt.subplots()
    >>> len(plot_ellipses(ax, model, n_std=(1, 2)))
    4
    >>> plt.close(fig)
    """
    _require_matplotlib()
    _check_axes(ax)
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Ellipse

    means, covariances = _component_moments(model)
    i, j = _check_dims(dims, means.shape[1])
    radii = np.atleast_1d(np.asarray(n_std, dtype=np.float64))
    if radii.ndim != 1 or radii.size == 0 or not np.all(np.isfinite(radii) & (radii > 0)):
        raise ValueError(f"n_std must be positive numbers, got {n_std!r}.")
    weights = np.asarray(getattr(model, "weights_", np.ones(len(means))), dtype=np.float64)
    opacity = 0.35 * weights / weights.max() / radii.size

    patches = []
    for k, (mean, cov) in enumerate(zip(means, covariances, strict=True)):
        # The marginal of the two features, held by its eigendecomposition (the
        # factor that would colorize its draws); a singular block still has axes.
        marginal = Gaussian.from_psd_covariance(
            mean[[i, j]], cov[np.ix_((i, j), (i, j))], method="eigh"
        )
        half_axes, vectors = marginal.principal_axes()
        angle = float(np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1])))
        color = colors[k % len(colors)]
        for radius in sorted(radii):
            patch = Ellipse(
                (float(mean[i]), float(mean[j])),
                width=2 * radius * half_axes[1],
                height=2 * radius * half_axes[0],
                angle=angle,
                facecolor=(*to_rgb(color), float(opacity[k])),
                edgecolor=color,
                linewidth=1.2,
            )
            ax.add_patch(patch)
            patches.append(patch)
    ax.autoscale_view()
    _label_axes(ax, (f"feature {i}", f"feature {j}"))
    return patches


def _component_moments(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """Means (K, D) and full covariance matrices (K, D, D) of a fitted mixture."""
    missing = [a for a in ("means_", "covariances_", "covariance_type") if not hasattr(model, a)]
    if missing:
        raise ValueError(
            f"model must be a fitted Gaussian mixture; it has no {', '.join(missing)}. "
            "Call fit first."
        )
    family = get_family(model.covariance_type)
    means = np.asarray(model.means_, dtype=np.float64)
    n_features = means.shape[1]
    matrices = []
    for k in range(means.shape[0]):
        cov = np.asarray(
            family.component_covariance(np.asarray(model.covariances_), k), dtype=np.float64
        )
        if cov.ndim == 0:
            cov = cov * np.eye(n_features)
        elif cov.ndim == 1:
            cov = np.diag(cov)
        matrices.append(cov)
    return means, np.stack(matrices)


def _check_dims(dims: tuple[int, int], n_features: int) -> tuple[int, int]:
    if n_features < 2:
        raise ValueError(f"The model has {n_features} feature; a 2-D plot needs at least 2.")
    try:
        i, j = (int(d) for d in dims)
    except (TypeError, ValueError):
        raise ValueError(f"dims must be a pair of feature indices, got {dims!r}.") from None
    if i == j or not (0 <= i < n_features and 0 <= j < n_features):
        raise ValueError(
            f"dims must be two different feature indices in [0, {n_features}), got {dims!r}."
        )
    return i, j


# -------------------------------------------------------------------- density
def plot_density(
    ax: Any,
    model_or_fn: Any,
    kind: str = "contour",
    *,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    shape: int | tuple[int, int] | None = None,
    combine: str = "sum",
    levels: int | ArrayLike = 10,
    cmap: str = DEFAULT_CMAP,
) -> Any:
    """Draw a 2-D density as contour lines, a heatmap or a 3-D surface.

    Parameters
    ----------
    ax : matplotlib Axes
        For ``kind='surface'`` a 3-D Axes (``fig.add_subplot(projection='3d')``).
    model_or_fn : fitted model, callable or list of components
        Anything :func:`gmm.evaluate_grid` takes: a model fitted on 2 features,
        a callable on points of shape (n, 2), or a list of those and
        ``(mean, cov)`` pairs, combined with ``combine``.
    kind : {'contour', 'heatmap', 'surface'}, default='contour'
    xlim, ylim : (float, float), default=None
        Extent of the grid. Without them, a model or a list of ``(mean, cov)``
        pairs spans every component's mean ± 3.5 standard deviations; a callable
        needs them.
    shape : int or (int, int), default=None
        Grid size ``(n_y, n_x)``; the cost is that many density evaluations.
        Default 200 x 200, or 60 x 60 for 'surface', which draws one polygon
        per grid cell.
    combine : {'sum', 'max', 'union'}, default='sum'
    levels : int or array-like, default=10
        Contour levels (only for 'contour').
    cmap : str, default='cividis'

    Returns
    -------
    artist : QuadContourSet, AxesImage or Poly3DCollection
        Pass it to ``fig.colorbar`` for a color scale.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from gmm.plotting import plot_density
    >>> fig, ax = plt.subplots()
    >>> artist = plot_density(ax, [([1.0, 0.5], [[2.0, 1.0], [1.0, 1.0]])], kind="heatmap")
    >>> ax.get_xlabel()
    'x'
    >>> plt.close(fig)
    """
    _require_matplotlib()
    _check_axes(ax)
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    if kind == "surface" and getattr(ax, "name", "") != "3d":
        raise ValueError(
            "kind='surface' needs a 3-D Axes: create it with fig.add_subplot(projection='3d')."
        )
    if xlim is None or ylim is None:
        auto_x, auto_y = _default_limits(model_or_fn)
        xlim = auto_x if xlim is None else xlim
        ylim = auto_y if ylim is None else ylim
    if shape is None:
        shape = 60 if kind == "surface" else 200
    xx, yy, zz = evaluate_grid(model_or_fn, xlim, ylim, shape, combine=combine)

    if kind == "contour":
        artist = ax.contour(xx, yy, zz, levels=levels, cmap=cmap)
    elif kind == "heatmap":
        artist = ax.imshow(
            zz,
            origin="lower",
            extent=(xx[0, 0], xx[0, -1], yy[0, 0], yy[-1, 0]),
            cmap=cmap,
            aspect="auto",
            interpolation="nearest",
        )
    else:
        # Full resolution: matplotlib's default resampling to 50 x 50 leaves stripes.
        artist = ax.plot_surface(
            np.array(xx),
            np.array(yy),
            zz,
            rcount=zz.shape[0],
            ccount=zz.shape[1],
            cmap=cmap,
            linewidth=0,
            antialiased=False,
        )
        if not ax.get_zlabel():
            ax.set_zlabel("density")
    _label_axes(ax, ("x", "y"))
    return artist


def _default_limits(obj: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    centers, spreads = [], []
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    for item in items:
        if hasattr(item, "means_") and hasattr(item, "covariances_"):
            means, covs = _component_moments(item)
            for mean, cov in zip(means[:, :2], covs, strict=True):
                centers.append(mean)
                spreads.append(np.sqrt(np.diag(cov)[:2]))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and np.ndim(item[0]) == 1:
            mean = np.asarray(item[0], dtype=np.float64)
            cov = np.asarray(item[1], dtype=np.float64)
            variances = cov if cov.ndim < 2 else np.diag(cov)
            centers.append(mean)
            spreads.append(np.sqrt(np.abs(variances)) * np.ones(2))
        else:
            raise ValueError(
                "xlim and ylim are needed for a callable; only models and (mean, cov) "
                "pairs give their own extent."
            )
    centers_arr, spreads_arr = np.array(centers), np.array(spreads)
    low = (centers_arr - 3.5 * spreads_arr).min(axis=0)
    high = (centers_arr + 3.5 * spreads_arr).max(axis=0)
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


# -------------------------------------------------------------------- samples
def plot_samples(
    ax: Any,
    X: ArrayLike,
    labels: ArrayLike | None = None,
    proba: ArrayLike | None = None,
    *,
    dims: tuple[int, int] = (0, 1),
    size: float = 40.0,
    colors: tuple[str, ...] = OKABE_ITO,
) -> Any:
    """Scatter samples, colored by label, sized by how certain the label is.

    Parameters
    ----------
    ax : matplotlib Axes
    X : array-like of shape (n_samples, n_features)
    labels : array-like of int, shape (n_samples,), default=None
        Component of each sample; ``colors[label % len(colors)]``. Without labels
        but with ``proba``, the most probable component.
    proba : array-like of shape (n_samples, n_components), default=None
        Membership probabilities (``predict_proba``). Marker area is
        ``size · p²`` with ``p`` the largest probability of the row, so
        uncertain points between components shrink (the picture of the Python
        Data Science Handbook's GMM chapter).
    dims : (int, int), default=(0, 1)
        The two features to show.
    size : float, default=40
        Marker area (points²) of a certain sample.
    colors : sequence of color, default=OKABE_ITO

    Returns
    -------
    collection : matplotlib.collections.PathCollection
        O(n_samples) work.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from gmm.plotting import plot_samples
    >>> fig, ax = plt.subplots()
    >>> points = plot_samples(ax, [[0, 0], [1, 1]], proba=[[1.0, 0.0], [0.5, 0.5]])
    >>> points.get_sizes().tolist()  # 40·p²
    [40.0, 10.0]
    >>> plt.close(fig)
    """
    _require_matplotlib()
    _check_axes(ax)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got shape {X.shape}.")
    i, j = _check_dims(dims, X.shape[1])
    n = X.shape[0]
    sizes: float | np.ndarray = size
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[0] != n:
            raise ValueError(
                f"proba has shape {proba.shape}, expected ({n}, n_components): one row per sample."
            )
        if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
            raise ValueError("proba must hold probabilities in [0, 1].")
        sizes = size * proba.max(axis=1) ** 2
        if labels is None:
            labels = proba.argmax(axis=1)
    if labels is None:
        point_colors: Any = colors[0]
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integers of shape ({n},), got shape {labels.shape} "
                f"and dtype {labels.dtype}."
            )
        palette = np.array(colors)
        point_colors = palette[labels % len(colors)]
    collection = ax.scatter(
        X[:, i], X[:, j], s=sizes, c=point_colors, linewidths=0, alpha=0.8, zorder=3
    )
    _label_axes(ax, (f"feature {i}", f"feature {j}"))
    return collection


def _label_axes(ax: Any, names: tuple[str, str]) -> None:
    """Name the axes unless the caller already did."""
    if not ax.get_xlabel():
        ax.set_xlabel(names[0])
    if not ax.get_ylabel():
        ax.set_ylabel(names[1])
