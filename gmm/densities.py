"""Gaussian densities, evaluated row by row in log space.

The squared Mahalanobis distance of ``n`` points is the squared norm of each
*whitened* row. Writing it as ``(X - m) @ inv(S) @ (X - m).T`` gives an
``n x n`` matrix of which only the diagonal is wanted: O(n²) memory and time
for n numbers. Here every row is whitened on its own (a triangular solve with
the Cholesky factor of the covariance, or a product with the Cholesky factor of
the precision), in row chunks, so the cost is O(n·d²) time and O(chunk·d) extra
memory, and no inverse matrix is ever formed. The whitening and the
log-density itself are those of :class:`gmm.gaussian.Gaussian`; this module
validates the inputs and combines components.

Every public function validates its inputs and then calls a kernel that trusts
them. Covariances come in three forms, as in :mod:`gmm.covariance`: a scalar (a
variance shared by all features), a vector (per-feature variances) or a full
symmetric positive-definite matrix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from .covariance import get_family
from .em import chunk_rows
from .gaussian import Gaussian, _as_finite


# ------------------------------------------------------------------ public API
def mvn_logpdf(
    X: ArrayLike,
    mean: ArrayLike,
    cov: ArrayLike | float | None = None,
    *,
    prec_chol: ArrayLike | float | None = None,
) -> np.ndarray:
    """Log-density of a multivariate normal at every row of X.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points, one per row. float32 input gives a float32 result; any other
        numeric input is computed in float64.
    mean : array-like of shape (n_features,)
    cov : float, array-like of shape (n_features,) or (n_features, n_features)
        The covariance: a variance shared by all features (spherical),
        per-feature variances (diagonal) or a symmetric positive-definite
        matrix. Give either ``cov`` or ``prec_chol``.
    prec_chol : float, array-like of shape (n_features,) or (n_features, n_features)
        Instead of ``cov``: the Cholesky factor of the precision, in the
        convention of ``GaussianMixture.precisions_cholesky_`` (an
        upper-triangular ``U`` with ``inv(cov) = U @ U.T``; for the scalar and
        vector forms, the inverse standard deviations).

    Returns
    -------
    log_density : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        If shapes disagree, the covariance is not square, symmetric and
        positive definite, or any input holds NaN or infinity.

    Notes
    -----
    Each row is whitened on its own, never through an ``n x n`` product:
    O(d³) once for the Cholesky factor of ``cov``, then O(n·d²) time (O(n·d)
    for the scalar and vector forms) and O(chunk·d) extra memory besides the
    result. Uses triangular solves, never an inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import mvn_logpdf
    >>> X = np.array([[0.0, 0.0], [1.0, 2.0]])
    >>> # det(cov) = 1 and x' inv(cov) x = 5 at (1, 2): -log(2 pi) - 5/2
    >>> np.round(mvn_logpdf(X, mean=[0, 0], cov=[[2.0, 1.0], [1.0, 1.0]]), 6)
    array([-1.837877, -4.337877])
    >>> # spherical, variance 2: -log(2 pi) - log(2) - |x|²/4
    >>> np.round(mvn_logpdf(X, mean=[0, 0], cov=2.0), 6)
    array([-2.531024, -3.781024])
    """
    X = _check_points(X)
    gaussian = _check_gaussian(mean, cov, prec_chol, X.shape[1], X.dtype)
    return gaussian.logpdf(X)


def mvn_pdf(
    X: ArrayLike,
    mean: ArrayLike,
    cov: ArrayLike | float | None = None,
    *,
    prec_chol: ArrayLike | float | None = None,
) -> np.ndarray:
    """Density of a multivariate normal at every row of X: ``exp(mvn_logpdf)``.

    Takes the same arguments as :func:`mvn_logpdf`, with the same cost. Far
    from the mean the density underflows to 0; use :func:`mvn_logpdf` there.

    Returns
    -------
    density : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import mvn_pdf
    >>> float(np.round(mvn_pdf([[0.0]], mean=[0.0], cov=1.0)[0], 6))  # 1/sqrt(2 pi)
    0.398942
    """
    log_density = mvn_logpdf(X, mean, cov, prec_chol=prec_chol)
    return np.exp(log_density, out=log_density)


def mixture_logpdf(
    X: ArrayLike,
    weights: ArrayLike,
    means: ArrayLike,
    covariances: ArrayLike,
    covariance_type: str = "full",
) -> np.ndarray:
    """Log-density of a Gaussian mixture at every row of X.

    ``log sum_k w_k N(x | mean_k, cov_k)``, combined with log-sum-exp so that
    points far from every component do not underflow.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    weights : array-like of shape (n_components,)
        Non-negative, summing to 1.
    means : array-like of shape (n_components, n_features)
    covariances : array-like
        In the shape of ``GaussianMixture.covariances_``: (n_components,) for
        'spherical', (n_components, n_features) for 'diag', (n_features,
        n_features) for 'tied', (n_components, n_features, n_features) for 'full'.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'

    Returns
    -------
    log_density : ndarray of shape (n_samples,)

    Notes
    -----
    O(n·K·d²) time for 'full' and 'tied' (O(n·K·d) for 'diag' and 'spherical')
    plus O(K·d³) for the factors; O(chunk·K) extra memory.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import mixture_logpdf
    >>> X = np.array([[0.0], [4.0]])
    >>> lp = mixture_logpdf(X, [0.5, 0.5], [[0.0], [4.0]], [1.0, 1.0], "spherical")
    >>> bool(np.allclose(lp[0], lp[1]))
    True
    """
    X = _check_points(X)
    family = get_family(covariance_type)
    n_features = X.shape[1]
    means = _as_finite(means, "means", X.dtype)
    if means.ndim != 2 or means.shape[1] != n_features:
        raise ValueError(
            f"means has shape {means.shape}, expected (n_components, {n_features}): "
            "one row per component, one column per feature of X."
        )
    n_components = means.shape[0]
    weights = _check_weights(weights, n_components)
    covariances = _as_finite(covariances, "covariances", np.float64)
    expected = family.shape(n_components, n_features)
    if covariances.shape != expected:
        raise ValueError(
            f"covariances has shape {covariances.shape}, expected {expected} for "
            f"covariance_type={covariance_type!r} with {n_components} components "
            f"and {n_features} features."
        )
    components = [
        _check_gaussian(
            means[k],
            family.component_covariance(covariances, k),
            None,
            n_features,
            X.dtype,
            name=f"covariance of component {k}",
        )
        for k in range(n_components)
    ]
    return _mixture_log_pdf(X, weights, components)


def _mixture_log_pdf(X: np.ndarray, weights: np.ndarray, components: list[Gaussian]):
    """Kernel of :func:`mixture_logpdf`: rows chunked, components as columns."""
    n = X.shape[0]
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights).astype(X.dtype)
    out = np.empty(n, dtype=X.dtype)
    rows = chunk_rows(max(len(components), X.shape[1]), X.dtype.itemsize)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        log_prob = np.empty((stop - start, len(components)), dtype=X.dtype)
        for k, component in enumerate(components):
            component.logpdf(X[start:stop], out=log_prob[:, k])
        log_prob += log_weights
        out[start:stop] = logsumexp(log_prob, axis=1)
    return out


# ------------------------------------------------------------------ validation
def _check_points(X: ArrayLike) -> np.ndarray:
    """X as a finite 2-D float array (float32 kept, everything else float64)."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D of shape (n_samples, n_features), got shape {X.shape}. "
            "Use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample."
        )
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    X = X.astype(dtype, copy=False)
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity.")
    return X


def _check_weights(weights: ArrayLike, n_components: int) -> np.ndarray:
    weights = _as_finite(weights, "weights", np.float64)
    if weights.shape != (n_components,):
        raise ValueError(
            f"weights has shape {weights.shape}, expected ({n_components},): "
            "one weight per row of means."
        )
    if np.any(weights < 0):
        raise ValueError("weights must be >= 0.")
    if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
        raise ValueError(
            f"weights must sum to 1, but they sum to {weights.sum():.6g}. "
            "Normalise them, e.g. w / w.sum()."
        )
    return weights


def _check_gaussian(
    mean: ArrayLike,
    cov: ArrayLike | float | None,
    prec_chol: ArrayLike | float | None,
    n_features: int,
    dtype,
    name: str = "cov",
) -> Gaussian:
    """Validate a mean and one covariance representation; build the Gaussian.

    The factorisation runs in float64; the factor is then cast to ``dtype`` so
    that float32 data is whitened in float32.
    """
    if (cov is None) == (prec_chol is None):
        raise ValueError("Pass exactly one of cov and prec_chol.")
    mean = _as_finite(mean, "mean", dtype)
    if mean.shape != (n_features,):
        raise ValueError(
            f"mean has shape {mean.shape}, expected ({n_features},) to match the "
            f"{n_features} features (columns) of X."
        )
    if cov is not None:
        return Gaussian.from_covariance(mean, cov, dtype=dtype, name=name)
    return Gaussian.from_precision_cholesky(mean, prec_chol, dtype=dtype)
