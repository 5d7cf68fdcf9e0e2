"""Sampling from Gaussians through a factor of the covariance: ``y = mean + z @ F.T``.

``F`` is any matrix with ``F @ F.T = cov``: the lower Cholesky factor when the
covariance is positive definite (the cheapest), or ``V @ diag(sqrt(s))`` from
the eigendecomposition ``cov = V diag(s) V.T`` when it is only positive
semi-definite. :func:`sample_mvn` (public, validating) and :func:`colorize`
(the kernel that ``GaussianMixture.sample`` calls for every component) both
colorize through :meth:`gmm.gaussian.Gaussian.from_psd_covariance`, so they
handle singular covariances the same way as each other and as the densities
and plots built on :class:`gmm.gaussian.Gaussian`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import check_random_state

from .gaussian import _CHECK_VALID, Gaussian, SingularCovarianceWarning
from .validation import shape_entries

__all__ = ["SingularCovarianceWarning", "colorize", "covariance_factor", "sample_mvn"]

_METHODS = ("cholesky", "eigh")


# ---------------------------------------------------------------------- kernels
def covariance_factor(
    cov: np.ndarray | float,
    method: str = "cholesky",
    check_valid: str = "ignore",
    tol: float = 1e-8,
) -> np.ndarray:
    """A factor ``F`` with ``F @ F.T = cov``, or the standard deviations.

    Kernel: shapes are trusted (validation lives in :func:`sample_mvn`). The
    factor is that of :meth:`gmm.gaussian.Gaussian.from_psd_covariance`.

    Parameters
    ----------
    cov : float, ndarray of shape (d,) or (d, d)
    method : {'cholesky', 'eigh'}, default='cholesky'
        'cholesky' falls back to 'eigh' (with a :class:`SingularCovarianceWarning`)
        when the matrix is positive semi-definite but singular.
    check_valid : {'warn', 'raise', 'ignore'}, default='ignore'
        What to do when ``cov`` is not symmetric positive semi-definite (within
        ``tol``): warn (``RuntimeWarning``), raise ``ValueError``, or go on.
        Going on uses the symmetric part with negative eigenvalues set to 0.
    tol : float, default=1e-8
        Tolerance of the checks, relative to the largest eigenvalue (absolute
        when that is below 1).

    Returns
    -------
    factor : ndarray of shape (), (d,) or (d, d)
        Standard deviations for the scalar and vector forms, else ``F``.
        O(d³) time for a matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm.sampling import covariance_factor
    >>> covariance_factor(np.array([[4.0, 2.0], [2.0, 2.0]]))  # lower Cholesky factor
    array([[2., 0.],
           [1., 1.]])
    >>> F = covariance_factor(np.ones((2, 2)), method="eigh")  # singular: rank 1
    >>> bool(np.allclose(F @ F.T, np.ones((2, 2))))
    True
    """
    cov = np.asarray(cov, dtype=np.float64)
    mean = np.zeros(1 if cov.ndim == 0 else cov.shape[0])
    gaussian = Gaussian.from_psd_covariance(
        mean, cov, method=method, check_valid=check_valid, tol=tol
    )
    return gaussian.factor


def colorize(z: np.ndarray, cov: np.ndarray | float, method: str = "cholesky") -> np.ndarray:
    """Turn standard normal draws into draws with covariance ``cov``.

    Parameters
    ----------
    z : ndarray of shape (n, d)
        Independent standard normal draws.
    cov : float, ndarray of shape (d,) or (d, d)
        A variance shared by all features, per-feature variances, or a full
        symmetric positive semi-definite covariance.
    method : {'cholesky', 'eigh'}, default='cholesky'
        How a full covariance is factored; a singular one always uses 'eigh'
        (see :func:`covariance_factor`).

    Returns
    -------
    ndarray of shape (n, d), the dtype of ``z``
        ``z`` scaled (scalar, vector) or multiplied by the transposed factor of
        ``cov``. O(n·d² + d³) time for a full matrix, O(n·d) else. Kernel: no
        checking is done, ``cov`` must be valid.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm.sampling import colorize
    >>> colorize(np.array([[1.0, 1.0]]), np.array([[4.0, 0.0], [0.0, 9.0]]))
    array([[2., 3.]])
    """
    z = np.asarray(z)
    cov = np.asarray(cov, dtype=np.float64)
    return Gaussian.from_psd_covariance(np.zeros(z.shape[-1]), cov, method=method).colorize(z)


# ------------------------------------------------------------------ public API
def sample_mvn(
    mean: ArrayLike,
    cov: ArrayLike | float,
    size: int | tuple[int, ...] | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    check_valid: str = "warn",
    tol: float = 1e-8,
    method: str = "cholesky",
) -> np.ndarray:
    """Draw from a multivariate normal distribution: ``y = mean + F z``.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
    cov : float, array-like of shape (n_features,) or (n_features, n_features)
        A variance shared by all features (spherical), per-feature variances
        (diagonal) or a symmetric positive semi-definite matrix.
    size : int or tuple of int, default=None
        Number (or array shape) of draws; None draws one.
    random_state : int, RandomState, Generator or None, default=None
    check_valid : {'warn', 'raise', 'ignore'}, default='warn'
        What to do when ``cov`` is not symmetric positive semi-definite, as in
        :meth:`numpy.random.Generator.multivariate_normal`: warn with a
        ``RuntimeWarning``, raise a ``ValueError``, or go on silently. Going on
        uses the symmetric part with negative eigenvalues set to 0 (numpy uses
        their absolute values). Unlike numpy, the check also runs for
        ``method='cholesky'``.
    tol : float, default=1e-8
        Tolerance of the checks, relative to the largest eigenvalue (absolute
        when that is below 1).
    method : {'cholesky', 'eigh'}, default='cholesky'
        Factor of ``cov``. 'cholesky' is the fastest; for a positive
        semi-definite but singular ``cov`` it falls back to 'eigh' with a
        :class:`SingularCovarianceWarning`.

    Returns
    -------
    samples : ndarray of shape (\\*size, n_features)
        float32 when ``mean`` is float32, else float64.

    Raises
    ------
    ValueError
        On a shape mismatch, NaN or infinity, an unknown option, or (with
        ``check_valid='raise'``) a covariance that is not positive semi-definite.

    Notes
    -----
    O(d³) for the factor plus O(n·d²) time (O(n·d) for the scalar and vector
    forms) and O(n·d) memory for the n draws. ``GaussianMixture.sample`` goes
    through the same factor code (:func:`colorize`).

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import sample_mvn
    >>> Y = sample_mvn([1.0, 0.5], [[2.0, 1.0], [1.0, 1.0]], size=200_000, random_state=0)
    >>> Y.shape
    (200000, 2)
    >>> np.round(np.cov(Y.T), 1)
    array([[2., 1.],
           [1., 1.]])
    """
    if check_valid not in _CHECK_VALID:
        raise ValueError(f"check_valid must be one of {_CHECK_VALID}, got {check_valid!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if isinstance(tol, bool) or not np.isscalar(tol) or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}.")
    mean, cov = _check_mean_cov(mean, cov)
    shape = _check_size(size)
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    else:
        rng = check_random_state(random_state)

    gaussian = Gaussian.from_psd_covariance(
        mean, cov, method=method, check_valid=check_valid, tol=tol
    )
    n_draws = int(np.prod(shape, dtype=np.int64))
    z = rng.standard_normal((n_draws, mean.shape[0]))
    samples = gaussian.colorize(z)
    samples += mean
    return samples.astype(mean.dtype, copy=False).reshape((*shape, mean.shape[0]))


def _check_mean_cov(mean: ArrayLike, cov: ArrayLike | float) -> tuple[np.ndarray, np.ndarray]:
    if np.iscomplexobj(cov):
        raise ValueError("cov must be real, got complex values.")
    try:
        mean = np.asarray(mean)
        cov = np.asarray(cov, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("mean and cov must be numeric arrays.") from None
    if mean.dtype.kind not in "biuf":
        raise ValueError(f"mean must be numeric, got dtype {mean.dtype}.")
    mean = mean.astype(np.float32 if mean.dtype == np.float32 else np.float64)
    if mean.ndim != 1 or mean.shape[0] == 0:
        raise ValueError(f"mean must be 1-D of shape (n_features,), got shape {mean.shape}.")
    d = mean.shape[0]
    if not np.all(np.isfinite(mean)):
        raise ValueError("mean contains NaN or infinity.")
    if not np.all(np.isfinite(cov)):
        raise ValueError("cov contains NaN or infinity.")
    if cov.ndim == 1 and cov.shape[0] != d:
        raise ValueError(
            f"cov has shape {cov.shape} but mean has shape ({d},); per-feature "
            f"variances need shape ({d},)."
        )
    if cov.ndim == 2 and cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be square, got shape {cov.shape}.")
    if cov.ndim == 2 and cov.shape[0] != d:
        raise ValueError(f"cov has shape {cov.shape} but mean has shape ({d},).")
    if cov.ndim > 2:
        raise ValueError(
            f"cov must be a scalar, shape ({d},) or ({d}, {d}); got shape {cov.shape}."
        )
    return mean, cov


def _check_size(size: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if size is None:
        return ()
    shape = shape_entries(size)  # a number, a 0-d array or a tuple, as numpy takes them
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"size must be a non-negative int or tuple of them, got {size!r}.")
    return tuple(int(n) for n in shape)
