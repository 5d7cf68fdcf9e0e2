"""Densities on a regular 2-D grid, for heatmaps, contours and surfaces.

A per-pixel loop that calls ``scipy.stats.norm.pdf`` once per pixel pays
Python's call overhead a million times for a 1000 x 1000 image. Here the grid
is evaluated in blocks of rows, each block as one array of points, so the cost
is that of the density itself and the extra memory is a few blocks, whatever
the grid size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .densities import _check_gaussian
from .validation import shape_entries

#: Target size in bytes of one block of grid points (and of each temporary).
BLOCK_BYTES = 8 * 2**20

Density = Callable[[np.ndarray], np.ndarray]


# ------------------------------------------------------- combination registry
def _combine_sum(values: list[np.ndarray]) -> np.ndarray:
    total = values[0].copy()
    for v in values[1:]:
        total += v
    return total


def _combine_max(values: list[np.ndarray]) -> np.ndarray:
    return np.maximum.reduce(values)


def _combine_union(values: list[np.ndarray]) -> np.ndarray:
    # P(at least one) for independent events: 1 - prod(1 - p).
    for v in values:
        if v.size and (v.min() < 0 or v.max() > 1):
            raise ValueError(
                "combine='union' computes 1 - prod(1 - p) and needs every value in "
                f"[0, 1]; got values in [{v.min():.3g}, {v.max():.3g}]. Scale the "
                "densities (e.g. divide by their peak) or use combine='sum' or 'max'."
            )
    miss = 1.0 - values[0]
    for v in values[1:]:
        miss *= 1.0 - v
    return np.subtract(1.0, miss, out=miss)


_COMBINE: dict[str, Callable[[list[np.ndarray]], np.ndarray]] = {
    "sum": _combine_sum,
    "max": _combine_max,
    "union": _combine_union,
}


def combine_rules() -> tuple[str, ...]:
    """Names accepted by ``evaluate_grid(..., combine=...)``.

    Examples
    --------
    >>> from gmm.grids import combine_rules
    >>> combine_rules()
    ('sum', 'max', 'union')
    """
    return tuple(_COMBINE)


# ------------------------------------------------------------------ public API
def evaluate_grid(
    f: Any,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    shape: int | tuple[int, int] = (200, 200),
    *,
    combine: str = "sum",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a 2-D density (or several, combined) on a regular grid.

    Parameters
    ----------
    f : fitted model, callable, or sequence of them
        What to evaluate:

        - a fitted model with ``score_samples`` (such as
          :class:`gmm.GaussianMixture` on 2 features), evaluated as
          ``exp(score_samples(points))``;
        - a callable taking points of shape (n_points, 2), columns (x, y), and
          returning values of shape (n_points,);
        - a list of components, each one of the above or a ``(mean, cov)``
          pair (``cov`` as in :func:`gmm.mvn_pdf`: scalar, vector or 2 x 2),
          combined pixel by pixel with ``combine``. One Gaussian is ``[(mean, cov)]``.
    xlim, ylim : (float, float)
        Range of x (columns of the grid) and y (rows), both ends included.
    shape : int or (int, int), default=(200, 200)
        ``(n_y, n_x)``: rows and columns of the grid, as an image's (height,
        width). An int gives a square grid.
    combine : {'sum', 'max', 'union'}, default='sum'
        How a list of components is combined: their sum, their pointwise
        maximum, or ``1 - prod(1 - p_i)``, the probability that at least one of
        independent events happens (every value must lie in [0, 1]).

    Returns
    -------
    xx, yy : ndarray of shape (n_y, n_x)
        Grid coordinates, as from ``np.meshgrid(x, y)``. They are read-only
        broadcast views of the 1-D axes, so they cost no memory.
    zz : ndarray of shape (n_y, n_x)
        The values, float64. ``zz[i, j]`` belongs to the point
        ``(xx[i, j], yy[i, j])``.

    Notes
    -----
    Blocks of about 8 MB of points are evaluated at a time, so besides ``zz``
    the extra memory is a few such blocks (tens of MB), even for a 4000 x 4000
    grid. The time is that of the densities at n_y·n_x points.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import evaluate_grid
    >>> xx, yy, zz = evaluate_grid([([0.0, 0.0], 1.0)], (-3, 3), (-2, 2), shape=(5, 7))
    >>> zz.shape, float(xx[0, 0]), float(yy[-1, 0])
    ((5, 7), -3.0, 2.0)
    >>> bool(np.isclose(zz[2, 3], 1 / (2 * np.pi)))  # the peak, at (0, 0)
    True
    """
    if combine not in _COMBINE:
        valid = ", ".join(repr(name) for name in _COMBINE)
        raise ValueError(f"Unknown combine {combine!r}. Valid rules are: {valid}.")
    x = np.linspace(*_check_limits(xlim, "xlim"), _check_shape(shape)[1])
    y = np.linspace(*_check_limits(ylim, "ylim"), _check_shape(shape)[0])
    densities = _as_densities(f)
    reduce = _COMBINE[combine]

    n_y, n_x = y.size, x.size
    zz = np.empty((n_y, n_x))
    rows = max(1, BLOCK_BYTES // (2 * 8 * n_x))
    for start in range(0, n_y, rows):
        stop = min(start + rows, n_y)
        points = np.empty(((stop - start) * n_x, 2))
        points[:, 0] = np.tile(x, stop - start)
        points[:, 1] = np.repeat(y[start:stop], n_x)
        values = [_evaluate(density, points, i) for i, density in enumerate(densities)]
        # One density is its own sum and maximum; 'union' still checks it is in [0, 1].
        block = values[0] if len(values) == 1 and combine != "union" else reduce(values)
        zz[start:stop] = block.reshape(stop - start, n_x)
    xx = np.broadcast_to(x[None, :], (n_y, n_x))
    yy = np.broadcast_to(y[:, None], (n_y, n_x))
    return xx, yy, zz


# ------------------------------------------------------------------ validation
def _check_limits(limits, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in limits)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {limits!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high)) or not low < high:
        raise ValueError(f"{name} must be finite with low < high, got {limits!r}.")
    return low, high


def _check_shape(shape) -> tuple[int, int]:
    dims = shape_entries(shape)
    if np.ndim(shape) == 0:  # one size for both axes
        dims = dims * 2
    if len(dims) != 2 or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2 for n in dims
    ):
        raise ValueError(f"shape must be an int or a pair (n_y, n_x) of ints >= 2, got {shape!r}.")
    return int(dims[0]), int(dims[1])


def _as_densities(f: Any) -> list[Density]:
    if isinstance(f, (list, tuple)):
        if len(f) == 0:
            raise ValueError("f is an empty list; give at least one density.")
        return [_as_density(item, i) for i, item in enumerate(f)]
    return [_as_density(f, None)]


def _as_density(item: Any, index: int | None) -> Density:
    where = "f" if index is None else f"component {index}"
    if hasattr(item, "score_samples"):
        n_features = getattr(item, "n_features_in_", None)
        if n_features is None:
            raise ValueError(f"{where} is a model that is not fitted; call fit first.")
        if n_features != 2:
            raise ValueError(f"{where} was fitted on {n_features} features; a grid needs 2.")
        return lambda points: np.exp(item.score_samples(points))
    if callable(item):
        return item
    if index is not None and _is_pair(item):
        mean, cov = item
        gaussian = _check_gaussian(mean, cov, None, 2, np.float64, name=f"cov of {where}")
        return lambda points: np.exp(gaussian.logpdf(points))
    raise ValueError(
        f"{where} is not a density: expected a fitted model with score_samples, a "
        "callable on points of shape (n, 2), or (in a list) a (mean, cov) pair. "
        "One Gaussian is written [(mean, cov)]."
    )


def _is_pair(item: Any) -> bool:
    return isinstance(item, Sequence) and len(item) == 2 and np.ndim(item[0]) == 1


def _evaluate(density: Density, points: np.ndarray, index: int) -> np.ndarray:
    values = np.asarray(density(points), dtype=np.float64)
    if values.shape != (points.shape[0],):
        raise ValueError(
            f"density {index} returned shape {values.shape} for {points.shape[0]} "
            f"points; expected ({points.shape[0]},), one value per point."
        )
    return values
