"""Units of the fit: data far from 1 in size are fitted in rescaled coordinates.

The EM kernels square deviations, so data whose deviations from the shift
are near ``sqrt`` of the largest (or smallest) number of their dtype overflow
(or lose every digit) in the kernels although the model itself is
representable. Such data are fitted as the problem ``Z = (X - shift) / s``
with ``s`` a power of two near the data's size (the division is exact), and
the parameters are mapped back, which is exact up to one rounding:

- means: ``shift + s · m``; covariances: ``s² · C``; Cholesky factors of the
  precisions: ``U / s``; weights unchanged;
- ``reg_covar`` is in the data's units: the problem uses ``reg_covar / s²``;
- log-likelihoods: ``- D · log s`` per row.

Data within :func:`safe_band` of 1 (all ordinary data) are fitted as they
are, bit for bit as before. The size comes from a few thousand rows spread
over the data (O(rows · D), not a pass over it); rows beyond that size are
caught by the kernels' own overflow check (:class:`gmm.em.OutOfRangeError`
naming the row). Whatever the units, a fitted model whose covariances or
precisions cannot be represented in the data's dtype is refused with
:class:`gmm.em.OutOfRangeError` that says why (:func:`check_representable`).

Examples
--------
>>> import numpy as np
>>> from gmm import GaussianMixture
>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
>>> a = GaussianMixture(2, random_state=0, reg_covar=0).fit(X)
>>> b = GaussianMixture(2, random_state=0, reg_covar=0).fit(X * 1e150)
>>> bool(np.allclose(b.means_ / 1e150, a.means_, rtol=1e-8))
True
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .em import OutOfRangeError, Parameters
from .statistics import Scatter

#: Rows read to size the data (evenly spaced, first and last included).
SIZE_ROWS = 2048


@functools.lru_cache(maxsize=16)
def size_rows(n_rows: int) -> np.ndarray:
    """The rows that size ``n_rows`` rows: :data:`SIZE_ROWS` evenly spaced ones (read-only)."""
    rows = np.unique(np.linspace(0, n_rows - 1, min(n_rows, SIZE_ROWS)).astype(np.intp))
    rows.flags.writeable = False
    return rows


@functools.lru_cache(maxsize=4)
def safe_band(dtype) -> tuple[float, float]:
    """Sizes of centred data that the kernels handle as they are: ``(low, high)``.

    A quarter of the dtype's exponent range on either side of 1 (2^-256 to
    2^256 for float64, 2^-32 to 2^32 for float32), so squares, their sums
    over features and the products with precisions stay normal numbers.
    """
    quarter = np.finfo(dtype).maxexp // 4
    return 2.0**-quarter, 2.0**quarter


@dataclass(frozen=True)
class Units:
    """The problem ``Z = (X - shift) / scale``; ``scale`` is a power of two."""

    shift: np.ndarray
    scale: float

    @property
    def log_scale(self) -> float:
        return math.log(self.scale)

    def _times(self, value, power: int):
        """``value · scale**power`` in ``value``'s dtype: exact, inf or 0 where out of range."""
        if value is None:
            return None
        value = np.asarray(value)
        exponent = power * (math.frexp(self.scale)[1] - 1)
        with np.errstate(over="ignore", under="ignore"):
            return np.ldexp(value.astype(np.float64), exponent).astype(value.dtype)

    def reg_covar_in(self, reg_covar: float) -> float:
        """``reg_covar / scale²`` (0 where that underflows)."""
        return float(self._times(np.float64(reg_covar), -2))

    def covariance_in(self, covariance):
        return self._times(covariance, -2)

    def covariance_out(self, covariance):
        return self._times(covariance, 2)

    def precisions_in(self, precisions):
        return self._times(precisions, 2)

    def means_in(self, means):
        means = np.asarray(means)
        centred = np.asarray(means, dtype=np.float64) - self.shift
        return self._times(centred, -1).astype(means.dtype)

    def means_out(self, means):
        means = np.asarray(means)
        with np.errstate(over="ignore"):
            return (self._times(means.astype(np.float64), 1) + self.shift).astype(means.dtype)

    def to_problem(self, X: np.ndarray, dtype) -> np.ndarray:
        """``(X - shift) / scale`` in ``dtype`` (computed in float64). O(n·D)."""
        return self._times(np.asarray(X, dtype=np.float64) - self.shift, -1).astype(dtype)

    def params_in(self, params: Parameters) -> Parameters:
        """Parameters in the data's units → the problem's units."""
        return self._mapped(params, -1, self.means_in(params.means))

    def params_out(self, params: Parameters) -> Parameters:
        """Parameters in the problem's units → the data's units (may overflow: checked later)."""
        return self._mapped(params, 1, self.means_out(params.means))

    def scatter_in(self, scatter: Scatter) -> Scatter:
        """Statistics in the data's units → the problem's (for an M-step there)."""
        means = self._times(scatter.means - self.shift, -1)
        return Scatter(scatter.nk, means, self._times(scatter.covariances, -2), scatter.kind)

    def scatter_out(self, scatter: Scatter) -> Scatter:
        """Statistics in the problem's units → the data's (may overflow: checked later)."""
        means = self._times(scatter.means, 1) + self.shift
        return Scatter(scatter.nk, means, self._times(scatter.covariances, 2), scatter.kind)

    def _mapped(self, params: Parameters, direction: int, means) -> Parameters:
        state = params.state
        if isinstance(state, dict) and "volumes" in state:  # mclust's volumes: det^(1/D)
            state = {**state, "volumes": self._times(state["volumes"], 2 * direction)}
        return Parameters(
            params.weights,
            means,
            self._times(params.covariances, 2 * direction),
            self._times(params.precisions_cholesky, -direction),
            state,
        )


def choose(X, shift: np.ndarray, dtype, reg_covar: float) -> Units | None:
    """Units for data X centred on ``shift``, or None when X is fitted as it is.

    ``X`` is an ndarray, a dask array or anything with ``take(rows)``; only
    :data:`SIZE_ROWS` evenly spaced rows are read. NaN entries are ignored.
    Tiny data whose spread is invisible beside ``reg_covar`` (by more than a
    factor 2^64) are fitted as they are: every covariance is ``reg_covar``
    to machine precision, and the kernels handle that.

    Raises
    ------
    OutOfRangeError
        When the deviations from the shift overflow float64 (the data span
        more than the largest number).
    """
    if isinstance(getattr(X, "X", None), np.ndarray):  # rows with holes (IncompleteRows)
        X = X.X
    rows = size_rows(X.shape[0])
    if isinstance(X, np.ndarray) or hasattr(X, "dask"):
        sample = np.asarray(X[rows])  # dask: computes these rows only
    else:
        sample = X.take(rows)
    with np.errstate(over="ignore", invalid="ignore"):
        deviation = np.abs(np.asarray(sample, dtype=np.float64) - shift)
        size = float(np.nanmax(deviation)) if deviation.size else 0.0
    if not np.isfinite(size):
        raise OutOfRangeError(
            "The data's values differ by more than the largest float64 number "
            f"({np.finfo(np.float64).max:.3g}), so no covariance can be represented. "
            "Rescale the data (e.g. divide by 1e300) before fitting."
        )
    low, high = safe_band(dtype)
    if size == 0 or low <= size <= high or reg_covar > size * size * 2.0**64:
        return None
    _refuse_a_row_that_drowns_the_rest(X, shift, sample, deviation, rows, size)
    _, exponent = math.frexp(size)
    return Units(np.asarray(shift, dtype=np.float64), math.ldexp(1.0, exponent))


def _refuse_a_row_that_drowns_the_rest(X, shift, sample, deviation, rows, size: float) -> None:
    """Raise :class:`OutOfRangeError` when the rows' own spread is lost beside ``size``.

    A few rows so far out that the others' differences (their median absolute
    deviation as given, in the best column: after the shift they may all round
    to one number) fall below ``size · 2^-40`` leave the
    others less than 12 significant bits after the shift: no rescaling gives
    them back. The message names the farthest row (searched in all rows of an
    in-memory X, on this failure only: O(n·D)).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(sample, dtype=np.float64)
        centred = values - np.nanmedian(values, axis=0)
        spread = float(np.nanmax(np.nanmedian(np.abs(centred), axis=0)))
    if not (0 < spread < size * 2.0**-40):
        return
    if isinstance(X, np.ndarray):
        with np.errstate(over="ignore", invalid="ignore"):
            row = int(np.nanargmax(np.nanmax(np.abs(X.astype(np.float64) - shift), axis=1)))
    else:
        row = int(rows[np.nanargmax(np.nanmax(deviation, axis=1))])
    raise OutOfRangeError(
        f"Row {row} (counting from 0) lies so far from the others (about {size:.3g} from "
        f"the data's mean, where most rows differ by about {spread:.3g}) that their "
        "differences are lost to rounding. Check that row for a unit or scale error, or "
        "fit without it.",
        row=row,
    )


def check_representable(params: Parameters, family, dtype, units: Units | None) -> None:
    """Raise :class:`OutOfRangeError` if the fitted model cannot be held in ``dtype``.

    Covariances must be finite and their diagonals normal numbers; precision
    factors and means finite. The common case is settled by :func:`representable`
    (five reductions); only a model it does not pass is checked array by array,
    to word the error. O(K·D²).
    """
    if representable(params, family, dtype):
        return
    name = np.dtype(dtype).name
    info = np.finfo(dtype)
    cov = np.asarray(params.covariances, dtype=np.float64)
    diagonal = _variances(cov, family)
    size = "" if units is None else f" (the data's deviations are about {units.scale:.3g})"
    if not np.all(np.isfinite(cov)):
        raise OutOfRangeError(
            f"The fitted variances exceed the largest {name} number ({info.max:.3g}){size}, "
            "so covariances_ cannot be represented; rescale the data (divide it by a "
            "power of ten near its spread) and fit again."
        )
    if not np.all(np.isfinite(params.precisions_cholesky)) or np.any(diagonal < info.tiny):
        raise OutOfRangeError(
            f"The fitted variances fall below the smallest normal {name} number "
            f"({info.tiny:.3g}){size}, so precisions_ cannot be represented; rescale the "
            "data (multiply it by a power of ten near 1 / its spread), or raise reg_covar."
        )
    if not np.all(np.isfinite(params.means)):
        raise OutOfRangeError(
            f"The fitted means exceed the largest {name} number. Rescale the data."
        )


def representable(params: Parameters, family, dtype) -> bool:
    """Whether :func:`check_representable` passes ``params``, in five reductions.

    True when the covariances, precision factors and means are finite and
    every variance is a normal number of ``dtype``: each array's sum is finite
    only if all its entries are (a sum that overflows on finite entries gives
    False, and the full check, which also words any error, decides). O(K·D²).
    """
    cov = params.covariances
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(cov.sum()) + float(params.precisions_cholesky.sum())
        total += float(params.means.sum())
    if not math.isfinite(total):
        return False
    return bool(_variances(cov, family).min() >= _smallest_normal(dtype))


@functools.lru_cache(maxsize=8)
def _smallest_normal(dtype) -> float:
    """``np.finfo(dtype).tiny`` as a float, looked up once per dtype (cached)."""
    return float(np.finfo(dtype).tiny)


def _variances(covariances: np.ndarray, family) -> np.ndarray:
    """The variances in ``covariances`` as the family stores them: the diagonals of
    (K, D, D) or pooled (D, D) matrices, else the array itself (a view, O(1))."""
    square = covariances.ndim == 3 or (covariances.ndim == 2 and family.scatter_kind == "pooled")
    return np.diagonal(covariances, axis1=-2, axis2=-1) if square else covariances
