"""One Gaussian: a mean and a factor of its covariance, for densities, sampling and plots.

A normal distribution ``N(mean, cov)`` needs three things from its covariance,
as scipy.stats' ``Covariance`` objects put it: *whiten* a deviation (map it to
standard normal coordinates), *colorize* standard normal noise (the inverse
map), and the log-determinant. With a factor ``F`` of the covariance
(``F @ F.T = cov``) these are ``x @ inv(F).T``, ``z @ F.T`` and
``2 log|det F|``. Everything else is written once on top of them: the
log-density (:meth:`Gaussian.logpdf`, used by :mod:`gmm.densities` and
:mod:`gmm.grids`), draws (:mod:`gmm.sampling`, ``GaussianMixture.sample``) and
the axes of an ellipse of constant density (:mod:`gmm.plotting`).

A :class:`Gaussian` holds one of four representations, chosen by its
constructor, and never forms an inverse:

- standard deviations, a scalar or one per feature (spherical and diagonal
  covariances): whitening divides, colorizing multiplies;
- the lower Cholesky factor ``L`` of the covariance: whitening is a triangular
  solve, colorizing ``z @ L.T``;
- the upper Cholesky factor ``U`` of the precision (``inv(cov) = U @ U.T``,
  scikit-learn's ``precisions_cholesky_``): whitening is ``x @ U``, colorizing
  a triangular solve;
- an eigendecomposition ``cov = V diag(s) V.T``, which also serves positive
  semi-definite (singular) covariances: ``F = V diag(sqrt(s))``.

:meth:`Gaussian.from_covariance` and :meth:`Gaussian.from_precision_cholesky`
validate their input and raise ``ValueError`` naming the problem. The other
constructors are kernels: they trust their input. Factors are computed in
float64; ``dtype`` then sets the working precision (float32 data is whitened
in float32). The log-determinant is always kept in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy.linalg import solve_triangular

from .em import chunk_rows

_LOG_2PI = float(np.log(2 * np.pi))
_CHECK_VALID = ("warn", "raise", "ignore")
_NOT_PSD = "covariance is not symmetric positive-semidefinite."


class SingularCovarianceWarning(UserWarning):
    """The covariance is positive semi-definite but singular.

    Its Cholesky factorisation fails, so the factor comes from an
    eigendecomposition instead; the draws then lie in a lower-dimensional subspace.
    """


class Gaussian:
    """A multivariate normal distribution held as its mean and a covariance factor.

    Build one with a constructor (:meth:`from_covariance`,
    :meth:`from_precision_cholesky`, :meth:`from_psd_covariance`, or the kernels
    :meth:`from_standard_deviations`, :meth:`from_cholesky`,
    :meth:`from_eigendecomposition`), not with ``Gaussian(...)``.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        In the working dtype.
    n_features : int
    log_det : float
        ``log det cov`` (``-inf`` for a singular covariance), in float64.
    kind : {'scale', 'cholesky', 'precision_cholesky', 'eigh'}
        The representation, see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm.gaussian import Gaussian
    >>> g = Gaussian.from_covariance([0.0, 0.0], [[4.0, 2.0], [2.0, 2.0]])
    >>> g.colorize(np.array([[1.0, 1.0]]))  # z @ L.T with L = [[2, 0], [1, 1]]
    array([[2., 2.]])
    >>> g.whiten(np.array([[2.0, 2.0]]))
    array([[1., 1.]])
    >>> round(g.log_det, 12) == round(float(np.log(4.0)), 12)  # det = 4·2 - 2·2
    True
    """

    __slots__ = ("_eigenvalues", "_eigenvectors", "_factor", "kind", "log_det", "mean")

    def __init__(
        self,
        mean: np.ndarray,
        kind: str,
        factor: np.ndarray,
        log_det: float,
        eigen: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.mean = mean
        self.kind = kind
        self._factor = factor
        self.log_det = log_det
        self._eigenvalues, self._eigenvectors = eigen if eigen is not None else (None, None)

    # ---------------------------------------------------- validated constructors
    @classmethod
    def from_covariance(
        cls,
        mean: ArrayLike,
        cov: ArrayLike | float,
        *,
        dtype: DTypeLike = None,
        name: str = "cov",
    ) -> Gaussian:
        """A Gaussian from its covariance: a variance, per-feature variances or a matrix.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
        cov : float, array-like of shape (n_features,) or (n_features, n_features)
            A variance shared by all features (spherical), per-feature variances
            (diagonal), or a symmetric positive-definite matrix.
        dtype : {float32, float64}, default=None
            Working precision of ``mean`` and the factor; None keeps float32 for
            a float32 mean and uses float64 otherwise.
        name : str, default='cov'
            How error messages call ``cov``.

        Returns
        -------
        Gaussian
            With standard deviations (scalar, vector) or the lower Cholesky
            factor of ``cov``. O(d³) time for a matrix, O(d) otherwise.

        Raises
        ------
        ValueError
            For NaN or infinity, shapes that disagree, variances <= 0, or a
            matrix that is not symmetric and positive definite.

        Examples
        --------
        >>> from gmm.gaussian import Gaussian
        >>> Gaussian.from_covariance([0.0, 0.0], 4.0).colorize([[1.0, -1.0]])
        array([[ 2., -2.]])
        """
        mean, dtype = _check_mean(mean, dtype)
        n_features = mean.shape[0]
        cov = _as_finite(cov, name, np.float64)
        _check_form(cov, name, n_features)
        if cov.ndim < 2:
            if np.any(cov <= 0):
                raise ValueError(f"{name} must be positive: variances have to be > 0.")
            return cls.from_standard_deviations(mean, np.sqrt(cov), dtype=dtype)
        scale = float(np.max(np.abs(cov)))
        if not np.allclose(cov, cov.T, rtol=0, atol=1e-10 * scale):
            raise ValueError(f"{name} must be symmetric.")
        try:
            lower = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"{name} is not positive definite (its Cholesky factorisation failed). "
                "A singular covariance has no density; add a small multiple of the identity."
            ) from None
        return cls.from_cholesky(mean, lower, dtype=dtype)

    @classmethod
    def from_precision_cholesky(
        cls, mean: ArrayLike, prec_chol: ArrayLike | float, *, dtype: DTypeLike = None
    ) -> Gaussian:
        """A Gaussian from the Cholesky factor of its precision (no inverse is formed).

        Parameters
        ----------
        mean : array-like of shape (n_features,)
        prec_chol : float, array-like of shape (n_features,) or (n_features, n_features)
            In the convention of ``GaussianMixture.precisions_cholesky_``: an
            upper-triangular ``U`` with ``inv(cov) = U @ U.T``; for the scalar
            and vector forms, the inverse standard deviations.
        dtype : {float32, float64}, default=None
            As in :meth:`from_covariance`.

        Returns
        -------
        Gaussian
            O(d²) time to check the factor.

        Raises
        ------
        ValueError
            For NaN or infinity, shapes that disagree, a factor that is not
            upper triangular, or a diagonal (or scale) that is not positive.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm.gaussian import Gaussian
        >>> g = Gaussian.from_precision_cholesky([0.0], [[0.5]])  # precision 1/4
        >>> g.colorize(np.array([[1.0]])), round(float(np.exp(g.log_det)), 12)
        (array([[2.]]), 4.0)
        """
        mean, dtype = _check_mean(mean, dtype)
        n_features = mean.shape[0]
        factor = _as_finite(prec_chol, "prec_chol", np.float64)
        _check_form(factor, "prec_chol", n_features)
        if factor.ndim < 2:
            if np.any(factor <= 0):
                raise ValueError("prec_chol must be positive (inverse standard deviations).")
            return cls.from_standard_deviations(mean, 1.0 / factor, dtype=dtype)
        if np.any(np.tril(factor, -1) != 0):
            raise ValueError(
                "prec_chol must be upper triangular (U with inv(cov) = U @ U.T, as "
                "GaussianMixture.precisions_cholesky_)."
            )
        diagonal = np.diag(factor)
        if np.any(diagonal <= 0):
            raise ValueError("prec_chol must have a positive diagonal.")
        log_det = -2.0 * float(np.sum(np.log(diagonal)))
        return cls(mean, "precision_cholesky", _in_dtype(factor, dtype, "prec_chol"), log_det)

    # ------------------------------------------------------ kernel constructors
    @classmethod
    def from_psd_covariance(
        cls,
        mean: np.ndarray,
        cov: np.ndarray,
        *,
        method: str = "cholesky",
        check_valid: str = "ignore",
        tol: float = 1e-8,
    ) -> Gaussian:
        """A Gaussian from a positive semi-definite covariance, as numpy samples one.

        Kernel: shapes and option values are trusted (``cov`` is float64 of
        shape (), (d,) or (d, d), ``mean`` of shape (d,)). The Gaussian works in
        float64, so a float32 ``z`` is colorized with the float64 factor rounded
        once, as numpy does.

        Parameters
        ----------
        mean : ndarray of shape (n_features,)
        cov : ndarray of shape (), (n_features,) or (n_features, n_features)
        method : {'cholesky', 'eigh'}, default='cholesky'
            'cholesky' falls back to 'eigh' (with a :class:`SingularCovarianceWarning`)
            when the matrix is positive semi-definite but singular.
        check_valid : {'warn', 'raise', 'ignore'}, default='ignore'
            What to do when ``cov`` is not symmetric positive semi-definite
            (within ``tol``): warn (``RuntimeWarning``), raise ``ValueError``,
            or go on with the symmetric part, negative eigenvalues set to 0.
        tol : float, default=1e-8
            Tolerance of the checks, relative to the largest eigenvalue
            (absolute when that is below 1).

        Returns
        -------
        Gaussian
            With standard deviations, the lower Cholesky factor, or the
            eigendecomposition. O(d³) time for a matrix.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm.gaussian import Gaussian
        >>> g = Gaussian.from_psd_covariance(np.zeros(2), np.ones((2, 2)), method="eigh")
        >>> g.kind, bool(np.isneginf(g.log_det))  # rank 1: no density
        ('eigh', True)
        >>> bool(np.allclose(g.covariance, np.ones((2, 2))))
        True
        """
        mean = np.asarray(mean, dtype=np.float64)
        if cov.ndim < 2:
            if np.any(cov < -tol * max(1.0, float(np.max(np.abs(cov))))):
                _invalid(check_valid)
            return cls.from_standard_deviations(mean, np.sqrt(np.maximum(cov, 0.0)))
        symmetric = np.allclose(cov, cov.T, rtol=tol, atol=tol)
        if symmetric and method == "cholesky":
            try:
                return cls.from_cholesky(mean, np.linalg.cholesky(cov))
            except np.linalg.LinAlgError:
                pass  # not positive definite: the eigenvalues tell singular from invalid
        values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
        valid = symmetric and values[0] >= -tol * max(1.0, float(np.max(np.abs(values))))
        if not valid:
            _invalid(check_valid)
        elif method == "cholesky":
            warnings.warn(
                "The covariance is positive semi-definite but singular, so it has no "
                "Cholesky factor; sampling falls back to its eigendecomposition "
                "(method='eigh').",
                SingularCovarianceWarning,
                stacklevel=3,
            )
        return cls.from_eigendecomposition(mean, values, vectors)

    @classmethod
    def from_standard_deviations(
        cls, mean: np.ndarray, std: np.ndarray, *, dtype: DTypeLike = None
    ) -> Gaussian:
        """Kernel: a spherical (scalar ``std``) or diagonal ((d,) ``std``) Gaussian.

        Standard deviations must be >= 0; a zero gives ``log_det = -inf``.
        """
        dtype = mean.dtype if dtype is None else np.dtype(dtype)
        std = np.asarray(std, dtype=np.float64)
        copies = mean.shape[0] if std.ndim == 0 else 1
        with np.errstate(divide="ignore"):
            log_det = 2.0 * float(np.sum(np.log(std))) * copies
        scale = _in_dtype(std, dtype, "standard deviations")
        return cls(np.asarray(mean, dtype=dtype), "scale", scale, log_det)

    @classmethod
    def from_cholesky(
        cls, mean: np.ndarray, lower: np.ndarray, *, dtype: DTypeLike = None
    ) -> Gaussian:
        """Kernel: a Gaussian from the lower Cholesky factor ``L`` of its covariance.

        ``L`` must be lower triangular with a positive diagonal (``cov = L @ L.T``).
        """
        dtype = mean.dtype if dtype is None else np.dtype(dtype)
        log_det = 2.0 * float(np.sum(np.log(np.diag(lower))))
        factor = _in_dtype(np.asarray(lower, dtype=np.float64), dtype, "Cholesky factor")
        return cls(np.asarray(mean, dtype=dtype), "cholesky", factor, log_det)

    @classmethod
    def from_eigendecomposition(
        cls,
        mean: np.ndarray,
        eigenvalues: np.ndarray,
        eigenvectors: np.ndarray,
        *,
        dtype: DTypeLike = None,
    ) -> Gaussian:
        """Kernel: a Gaussian with ``cov = V diag(s) V.T`` (``V`` orthonormal columns).

        Negative eigenvalues (round-off of a semi-definite matrix) count as 0, so
        singular covariances work for colorizing and the principal axes; they
        have ``log_det = -inf`` and cannot be whitened.
        """
        dtype = mean.dtype if dtype is None else np.dtype(dtype)
        values = np.maximum(eigenvalues, 0.0)
        with np.errstate(divide="ignore"):
            log_det = float(np.sum(np.log(values)))
        factor = eigenvectors * np.sqrt(values)
        return cls(
            np.asarray(mean, dtype=dtype),
            "eigh",
            _in_dtype(factor, dtype, "covariance's square root"),
            log_det,
            eigen=(values, eigenvectors),
        )

    # -------------------------------------------------------------- the three
    @property
    def n_features(self) -> int:
        return self.mean.shape[0]

    @property
    def dtype(self) -> np.dtype:
        """The working dtype of the mean and the factor."""
        return self.mean.dtype

    def whiten(self, x: ArrayLike) -> np.ndarray:
        """Deviations from the mean in standard normal coordinates: ``x @ inv(F).T``.

        Parameters
        ----------
        x : array-like of shape (n, n_features)
            Deviations ``X - mean`` (not points).

        Returns
        -------
        ndarray of shape (n, n_features), the dtype of ``x``
            ``|whiten(x)|²`` per row is the squared Mahalanobis distance.
            O(n·d²) time for a matrix factor, O(n·d) otherwise; never an inverse.

        Examples
        --------
        >>> from gmm.gaussian import Gaussian
        >>> Gaussian.from_covariance([0.0, 0.0], [1.0, 4.0]).whiten([[3.0, 4.0]])
        array([[3., 2.]])
        """
        x = _as_float(x)
        factor = self._factor.astype(x.dtype, copy=False)
        if self.kind == "scale":
            return x / factor
        if self.kind == "precision_cholesky":
            return x @ factor
        if self.kind == "cholesky":
            # (d, n) right-hand side: x.T of a C-ordered x is Fortran-ordered, so no copy.
            return solve_triangular(factor, x.T, lower=True, check_finite=False).T
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.sqrt(self._eigenvalues).astype(x.dtype, copy=False)
            return (x @ self._eigenvectors.astype(x.dtype, copy=False)) / scale

    def colorize(self, z: ArrayLike) -> np.ndarray:
        """Standard normal draws turned into deviations with this covariance: ``z @ F.T``.

        Parameters
        ----------
        z : array-like of shape (n, n_features)
            Independent standard normal draws.

        Returns
        -------
        ndarray of shape (n, n_features), the dtype of ``z``
            Add :attr:`mean` for draws of the distribution. O(n·d²) time for a
            matrix factor, O(n·d) otherwise.

        Examples
        --------
        >>> from gmm.gaussian import Gaussian
        >>> Gaussian.from_covariance([0.0, 0.0], [1.0, 4.0]).colorize([[3.0, 1.0]])
        array([[3., 2.]])
        """
        z = _as_float(z)
        factor = self._factor.astype(z.dtype, copy=False)
        if self.kind == "scale":
            return z * factor
        if self.kind == "precision_cholesky":
            # z @ inv(U): solve U.T y.T = z.T for y.
            return solve_triangular(factor, z.T, lower=False, trans="T", check_finite=False).T
        return z @ factor.T

    # ---------------------------------------------------------- written on top
    def logpdf(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Log-density at every row of X: ``-½ (|whiten(x - mean)|² + log_det + d log 2π)``.

        Kernel: X must be a finite 2-D array of the working dtype with
        ``n_features`` columns (see :func:`gmm.mvn_logpdf` for the checked version).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        out : ndarray of shape (n_samples,), default=None
            Written in place when given (it may be a column view).

        Returns
        -------
        ndarray of shape (n_samples,)
            O(n·d²) time for a matrix factor (O(n·d) otherwise), O(chunk·d) extra
            memory: rows are whitened in chunks, never through an n x n product.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm.gaussian import Gaussian
        >>> g = Gaussian.from_covariance([0.0], 1.0)
        >>> bool(np.isclose(g.logpdf(np.zeros((1, 1)))[0], -0.5 * np.log(2 * np.pi)))
        True
        """
        n, d = X.shape
        if out is None:
            out = np.empty(n, dtype=X.dtype)
        const = -0.5 * (self.log_det + d * _LOG_2PI)
        rows = chunk_rows(d, X.dtype.itemsize)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            white = self.whiten(X[start:stop] - self.mean)
            out[start:stop] = -0.5 * np.einsum("ij,ij->i", white, white) + const
        return out

    @property
    def factor(self) -> np.ndarray:
        """``F`` with ``F @ F.T = cov``, or the standard deviations (shape () or (d,)).

        For a precision factor ``U`` this is ``inv(U).T``, computed by a
        triangular solve (O(d³)).
        """
        if self.kind != "precision_cholesky":
            return self._factor
        identity = np.eye(self.n_features, dtype=self._factor.dtype)
        return solve_triangular(self._factor, identity, lower=False, check_finite=False).T

    @property
    def covariance(self) -> np.ndarray:
        """The covariance as a (d, d) float64 matrix, ``F @ F.T``. O(d³) time."""
        if self.kind == "scale":
            std = np.broadcast_to(self._factor.astype(np.float64), (self.n_features,))
            return np.diag(std**2)
        factor = self.factor.astype(np.float64)
        return factor @ factor.T

    def principal_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Standard deviations along the principal axes, and the axes.

        Returns
        -------
        scales : ndarray of shape (n_features,)
            ``sqrt`` of the covariance's eigenvalues, ascending.
        axes : ndarray of shape (n_features, n_features)
            Orthonormal eigenvectors as columns; ``axes[:, i]`` goes with
            ``scales[i]``. The ellipse of constant density at Mahalanobis
            distance ``r`` has half-axes ``r · scales`` along them. Free for an
            eigendecomposition, O(d³) otherwise.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm.gaussian import Gaussian
        >>> scales, axes = Gaussian.from_covariance([0.0, 0.0], [9.0, 1.0]).principal_axes()
        >>> scales, np.abs(axes)
        (array([1., 3.]), array([[0., 1.],
               [1., 0.]]))
        """
        if self.kind != "eigh":
            values, vectors = np.linalg.eigh(self.covariance)
            return np.sqrt(np.maximum(values, 0.0)), vectors
        return np.sqrt(self._eigenvalues), self._eigenvectors

    def __repr__(self) -> str:
        return f"Gaussian(n_features={self.n_features}, kind={self.kind!r}, dtype={self.dtype})"


# ------------------------------------------------------------------ validation
def _as_float(x: ArrayLike) -> np.ndarray:
    """float32 stays float32; anything else becomes float64 (no copy when it already is)."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float64, copy=False)


def _invalid(check_valid: str) -> None:
    if check_valid == "raise":
        raise ValueError(_NOT_PSD)
    if check_valid == "warn":
        warnings.warn(_NOT_PSD, RuntimeWarning, stacklevel=4)


def _as_finite(value, name: str, dtype) -> np.ndarray:
    """``value`` as an array of ``dtype``; ValueError when not real, not numeric or not finite."""
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must be real, got complex values.")
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {value!r}.") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _check_mean(mean: ArrayLike, dtype: DTypeLike) -> tuple[np.ndarray, np.dtype]:
    if dtype is None:
        dtype = np.float32 if np.asarray(mean).dtype == np.float32 else np.float64
    dtype = np.dtype(dtype)
    mean = _as_finite(mean, "mean", dtype)
    if mean.ndim != 1 or mean.shape[0] == 0:
        raise ValueError(f"mean must be 1-D of shape (n_features,), got shape {mean.shape}.")
    return mean, dtype


def _check_form(matrix: np.ndarray, name: str, n_features: int) -> None:
    """Scalar, (d,) or (d, d); otherwise a ValueError naming the problem."""
    if matrix.ndim == 1 and matrix.shape[0] != n_features:
        raise ValueError(
            f"{name} has shape {matrix.shape}, but the mean has {n_features} entries; "
            f"a vector of variances needs shape ({n_features},)."
        )
    if matrix.ndim == 2:
        if matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"{name} must be square, got shape {matrix.shape}.")
        if matrix.shape[0] != n_features:
            raise ValueError(
                f"{name} has shape {matrix.shape}, but the mean has {n_features} "
                f"entries; expected ({n_features}, {n_features})."
            )
    if matrix.ndim > 2:
        raise ValueError(
            f"{name} must be a scalar, a vector of shape ({n_features},) or a matrix "
            f"of shape ({n_features}, {n_features}); got shape {matrix.shape}."
        )


def _in_dtype(factor: np.ndarray, dtype, what: str) -> np.ndarray:
    """``factor`` (float64) cast to ``dtype``, or a ValueError if the cast loses entries.

    A nonzero entry beyond the dtype's range (a float32 variance of 1e-100, a
    ``prec_chol`` of 1e50) would become 0 or infinity and the densities NaN.
    O(size of factor).
    """
    with np.errstate(over="ignore"):  # reported below
        cast = factor.astype(dtype, copy=False)
    if cast.dtype == factor.dtype:
        return cast
    lost = (factor != 0) & ((cast == 0) | ~np.isfinite(cast))
    if np.any(lost):
        info = np.finfo(cast.dtype)
        values = np.abs(factor[factor != 0])
        raise ValueError(
            f"Entries of the {what} span {values.min():.3g} to {values.max():.3g}, beyond what "
            f"{cast.dtype.name} holds (magnitudes {info.tiny:.3g} to {info.max:.3g}): the "
            f"densities would be NaN. Pass the points as float64 (X.astype(np.float64))."
        )
    return cast
