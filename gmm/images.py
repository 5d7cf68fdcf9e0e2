"""Brightness masks that fade from an image's center, and blending with them.

The article this module reproduces defines the mask

    G(i, j) = exp(-d / (2 R)),

where ``d`` is the distance of pixel (i, j) to the center and ``R`` is the
half-diagonal ``½ √(H² + W²)``. It says the mask falls from 1 at the center
"toward 0" at the edges, but with ``d`` (not ``d²``) in the exponent and
``d <= R`` inside the image it only falls to ``exp(-½) ≈ 0.61`` in the corners.
:func:`gaussian_mask` reproduces that formula exactly (``kind='article'``) and
also offers a true Gaussian falloff ``exp(-d² / (2σ²))`` (``kind='gaussian'``).

The article builds the mask with a double loop over pixels and then with
``repmat``; broadcasting a column of row indices against a row of column
indices gives the same array with neither.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_KINDS = ("article", "gaussian")


def gaussian_mask(
    height: int,
    width: int,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    kind: str = "article",
    sigma: float | None = None,
) -> np.ndarray:
    """A mask with value 1 at ``center`` that fades with the distance from it.

    Parameters
    ----------
    height, width : int
        Shape of the mask (the image), in pixels.
    center : (float, float), default=None
        ``(row, column)`` of the brightest point. Default ``(height / 2,
        width / 2)``, as the article: half a pixel below and right of the
        geometric center ``((height-1)/2, (width-1)/2)``, so no pixel lies at
        the center itself and the mask's largest value is below 1 (0.61 for a
        1 × 1 mask); pass ``center=((height-1)/2, (width-1)/2)`` to center it
        on a pixel of an odd size.
    radius : float, default=None
        ``R`` of the article's formula. Default the half-diagonal
        ``½ √(height² + width²)``.
    kind : {'article', 'gaussian'}, default='article'
        'article': ``exp(-d / (2R))``, the article's formula, which falls only
        to ``exp(-½) ≈ 0.61`` at distance ``R`` (the corners, by default).
        'gaussian': ``exp(-d² / (2σ²))``, a true Gaussian falloff.
    sigma : float, default=None
        σ of the 'gaussian' kind, in pixels. Default ``radius / 3``, so the
        mask falls to ``exp(-4.5) ≈ 0.011`` at distance ``radius`` (the corners,
        by default): the "toward 0" the article meant.

    Returns
    -------
    mask : ndarray of shape (height, width), float64
        Values in [0, 1]; ``d`` is the Euclidean distance in pixels from pixel
        ``(i, j)`` (row i, column j, origin at the top left) to ``center``.
        O(height·width) time and memory.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import gaussian_mask
    >>> mask = gaussian_mask(392, 512)
    >>> float(mask[196, 256]), bool(np.isclose(mask[0, 0], np.exp(-0.5)))
    (1.0, True)
    >>> true = gaussian_mask(392, 512, kind="gaussian")
    >>> bool(np.isclose(true[0, 0], np.exp(-4.5)))
    True
    """
    height = _check_dimension(height, "height")
    width = _check_dimension(width, "width")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    if center is None:
        center_row, center_col = height / 2, width / 2
    else:
        try:
            center_row, center_col = (float(c) for c in center)
        except (TypeError, ValueError):
            raise ValueError(f"center must be a pair (row, column), got {center!r}.") from None
        if not (np.isfinite(center_row) and np.isfinite(center_col)):
            raise ValueError(f"center must be finite, got {center!r}.")
    if radius is None:
        radius = 0.5 * np.sqrt(float(height) ** 2 + float(width) ** 2)
    radius = _check_positive(radius, "radius")

    rows = np.arange(height, dtype=np.float64)[:, None] - center_row
    cols = np.arange(width, dtype=np.float64)[None, :] - center_col
    squared = rows**2 + cols**2
    if kind == "article":
        return np.exp(-0.5 * np.sqrt(squared) / radius)
    sigma = radius / 3 if sigma is None else _check_positive(sigma, "sigma")
    return np.exp(-squared / (2.0 * sigma**2))


def blend(
    foreground: ArrayLike,
    background: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> np.ndarray:
    """Blend two images through a mask: ``I = M·F + (1 − M)·B``, or ``I = M·F``.

    Parameters
    ----------
    foreground : array-like of shape (height, width) or (height, width, channels)
        Grayscale or color image F; unsigned or signed integers (e.g. uint8 in
        0..255) or floats (e.g. 0..1).
    background : array-like of the same shape and dtype, or None
        Image B. None gives ``I = M·F``, the mask applied as a brightness map.
    mask : array-like of shape (height, width), (height, width, 1) or F's shape
        Weights M in [0, 1]: 1 keeps F, 0 keeps B (or black). A 2-D mask
        applies to every channel.

    Returns
    -------
    image : ndarray of F's shape and dtype
        Integer images are rounded and clipped to their dtype's range, so the
        input dtype and range are kept; a mask of 1 (or 0) gives back F (or B)
        exactly. O(height·width·channels) time; integer images are computed in
        float64, float images in their own dtype.

    Raises
    ------
    ValueError
        If shapes or dtypes disagree, the mask is missing or leaves [0, 1], or
        an image is not numeric.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import blend
    >>> F = np.full((2, 2, 3), 200, dtype=np.uint8)
    >>> B = np.zeros((2, 2, 3), dtype=np.uint8)
    >>> out = blend(F, B, np.array([[1.0, 0.5], [0.25, 0.0]]))
    >>> out.dtype, out[..., 0].tolist()
    (dtype('uint8'), [[200, 100], [50, 0]])
    """
    if mask is None:
        raise ValueError("blend needs a mask: blend(foreground, background, mask).")
    F = _check_image(foreground, "foreground")
    if background is not None:
        B = _check_image(background, "background")
        if B.shape != F.shape:
            raise ValueError(
                f"foreground has shape {F.shape} but background has shape {B.shape}; "
                "they must match."
            )
        if B.dtype != F.dtype:
            raise ValueError(
                f"foreground is {F.dtype} but background is {B.dtype}; convert one so "
                "both have the same dtype (and value range)."
            )
    work_dtype = F.dtype if F.dtype.kind == "f" else np.dtype(np.float64)
    M = _check_mask(mask, F.shape, work_dtype)

    out = M * F.astype(work_dtype, copy=False)
    if background is not None:
        out += (1 - M) * B.astype(work_dtype, copy=False)
    if F.dtype.kind == "f":
        return out.astype(F.dtype, copy=False)
    info = np.iinfo(F.dtype)
    np.rint(out, out=out)
    np.clip(out, info.min, info.max, out=out)
    return out.astype(F.dtype)


# ------------------------------------------------------------------ validation
def _check_dimension(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_positive(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}.") from None
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return number


def _check_image(image: ArrayLike, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype.kind not in "uif":
        raise ValueError(f"{name} must hold integers or floats, got dtype {image.dtype}.")
    if image.dtype.kind in "ui" and image.dtype.itemsize > 4:
        # Blended in float64, exact only up to 2**53: a 64-bit pixel would come back
        # rounded, or (2**64 - 1 as a float rounds up past uint64) as 0.
        raise ValueError(
            f"{name} has dtype {image.dtype}, whose values float64 cannot hold exactly; "
            f"convert it (for example image.astype(np.float64), or a 32-bit integer type)."
        )
    if image.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (height, width) or (height, width, channels), "
            f"got shape {image.shape}."
        )
    if image.size == 0:
        raise ValueError(f"{name} has no pixels (shape {image.shape}).")
    if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
        raise ValueError(f"{name} holds NaN or infinite values; a pixel must be finite.")
    return image


def _check_mask(mask: ArrayLike, image_shape: tuple[int, ...], dtype) -> np.ndarray:
    try:
        M = np.asarray(mask, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError("mask must be numeric, with values in [0, 1].") from None
    plane = tuple(image_shape[:2])
    if M.shape != tuple(image_shape):
        if M.shape == plane and len(image_shape) == 3:
            M = M[:, :, None]
        elif M.shape == (*plane, 1):
            M = M if len(image_shape) == 3 else M[:, :, 0]
        else:
            shapes = " or ".join(
                str(s) for s in dict.fromkeys([plane, (*plane, 1), tuple(image_shape)])
            )
            raise ValueError(
                f"mask has shape {M.shape} but the image has shape {tuple(image_shape)}; "
                f"expected {shapes}."
            )
    if not np.all(np.isfinite(M)) or M.min() < 0 or M.max() > 1:
        raise ValueError("mask values must be finite and lie in [0, 1].")
    return M
