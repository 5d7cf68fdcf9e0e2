"""The interface every covariance family implements.

The EM pass never asks which covariance type it holds. It asks the family for
per-chunk *features* of the data, for per-iteration *coefficients* of the current
parameters, for squared Mahalanobis distances, for summable *moments*, and for
the M-step estimate from those moments. Adding a family (mclust has 14) means
adding one module that subclasses :class:`CovarianceFamily` and registering it.

Conventions shared by all families (the same as scikit-learn's, so fitted
attributes are interchangeable):

- ``precisions_cholesky`` holds upper-triangular factors ``U`` with
  ``precision = U @ U.T`` ('full': (K, D, D), 'tied': (D, D), 'diag': (K, D),
  'spherical': (K,)).
- Data handed to the kernels is already shifted by a reference point (so the
  expanded quadratic forms do not cancel catastrophically on offset data); the
  means handed in are shifted by the same point.
- Kernels do no checking. Validation happens once, at the public boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

#: Relative error allowed in a squared Mahalanobis distance, per working dtype.
#: The expanded quadratic ``x'Px - 2x'Pm + m'Pm`` loses about ``eps · kappa · D``
#: of it, where ``kappa = |P| (r + |m|)² / D`` and ``r`` is the data's spread;
#: components whose kappa exceeds ``EXPANSION_TOLERANCE / eps`` are computed
#: another way (centred, or in float64).
EXPANSION_TOLERANCE = {np.dtype(np.float64): 2e-9, np.dtype(np.float32): 1e-4}


def kappa_max(dtype) -> float:
    """Largest condition estimate the expanded quadratic may have in ``dtype``."""
    dtype = np.dtype(dtype)
    return EXPANSION_TOLERANCE[dtype] / np.finfo(dtype).eps


class CollapsedComponentError(ValueError):
    """A component's covariance is not positive definite (the component collapsed).

    Parameters
    ----------
    component : int or None
        Index of the first offending component, or None for a shared ('tied')
        covariance.
    dtype : numpy dtype
        The working dtype, to add advice for float32.
    """

    def __init__(self, component: int | None, dtype: Any = np.float64) -> None:
        self.component = component
        where = "the shared covariance" if component is None else f"component {component}"
        msg = (
            f"Fitting the mixture failed: {where} has an ill-defined covariance "
            "(it collapsed onto too few or identical points, so its covariance is "
            "not positive definite). Increase reg_covar (for example to 1e-4), "
            "use fewer components, or scale the features to comparable ranges."
        )
        if np.dtype(dtype) == np.float32:
            msg += " Passing float64 data instead of float32 also improves accuracy."
        super().__init__(msg)


def full_scatter(X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(K, D, D) scatter about each component's mean; see ``centred_scatter``."""
    scatter = np.empty((means.shape[0], X.shape[1], X.shape[1]))
    for k, mean in enumerate(means):
        dev = X - mean
        scatter[k] = (dev * resp[k][:, None]).T @ dev
    return scatter


def diagonal_scatter(X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(K, D) diagonal scatter about each component's mean."""
    scatter = np.empty(means.shape)
    for k, mean in enumerate(means):
        dev = X - mean
        scatter[k] = resp[k] @ (dev * dev)
    return scatter


class CovarianceFamily(ABC):
    """One covariance structure of a Gaussian mixture.

    Subclasses are stateless; one instance of each is registered by name.
    """

    #: Registry key, the value of ``covariance_type``.
    name: str = ""
    #: What a valid precision is, for error messages.
    precision_requirement: str = "symmetric positive definite"
    #: What a valid precision factor is, for error messages.
    factor_requirement: str = "upper triangular with a positive diagonal"

    # ----------------------------------------------------------------- shapes
    @abstractmethod
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""

    @abstractmethod
    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters (for AIC, BIC and ICL)."""

    # ------------------------------------------------------------- E-step math
    @abstractmethod
    def features(self, X: np.ndarray) -> np.ndarray:
        """Per-row features that make the E-step and M-step one GEMM each.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Shifted data.

        Returns
        -------
        feats : ndarray of shape (n_rows, n_feats)
        """

    @abstractmethod
    def coefficients(self, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray) -> Any:
        """Precompute, once per EM iteration, what :meth:`mahalanobis` needs.

        ``means`` are shifted like the data. Families may also decide here, per
        component, between a fast expanded formulation and a slower centred one.
        """

    @abstractmethod
    def mahalanobis(self, X: np.ndarray, feats: np.ndarray, coefs: Any) -> tuple[np.ndarray, Any]:
        """Squared Mahalanobis distance of every row to every component.

        Returns
        -------
        maha : ndarray of shape (n_components, n_rows), non-negative.
            Component-major, so that reductions over components in the E-step
            are elementwise operations between rows.
        work : object
            Whatever the family wants to reuse in :meth:`moments` for the same
            chunk (or None).
        """

    @abstractmethod
    def expansion_condition(
        self, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray
    ) -> np.ndarray:
        """Condition estimate ``kappa_k`` of the expanded quadratic, per component.

        ``means`` are shifted. See :data:`EXPANSION_TOLERANCE`.
        """

    def exact_in(self, dtype, weights, means, prec_chol) -> bool:
        """Whether the E-step in ``dtype`` keeps its accuracy for these parameters.

        When it does not (float32 data with tight or near-singular components),
        the EM pass computes in float64 for that iteration; outputs keep ``dtype``.
        """
        if np.dtype(dtype) == np.float64:
            return True
        kappa = self.expansion_condition(weights, means, prec_chol)
        return bool(np.max(kappa) <= kappa_max(dtype))

    @abstractmethod
    def log_det_precision_cholesky(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """``log det U_k`` for every component, shape (n_components,).

        Needs ``n_features`` because a spherical factor stands for D equal ones.
        """

    # ------------------------------------------------------------- M-step math
    @abstractmethod
    def moments(self, X: np.ndarray, feats: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray, ...]:
        """Sufficient statistics of one chunk; summing them over chunks is exact.

        ``resp`` has shape (n_components, n_rows) and already carries the sample
        weights (each column sums to the row's weight).
        """

    @abstractmethod
    def estimate(
        self, moments: tuple[np.ndarray, ...], nk: np.ndarray, reg_covar: float, coefs: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """M-step: shifted ``(means, covariances)`` from summed moments and ``nk``."""

    # ------------------------------------------- exact start from responsibilities
    @abstractmethod
    def centred_scatter(self, X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
        """``sum_n r_kn (x_n - m_k)(x_n - m_k)'`` (or its diagonal), per component.

        Used once, for the M-step from initial responsibilities, where no previous
        parameters tell which components are tight: centring on each component's
        own mean keeps a one-point or far-away component exact. O(n·K·D²) for
        full scatter, O(n·K·D) for diagonal. ``resp`` is (K, n).
        """

    @abstractmethod
    def estimate_from_scatter(
        self, scatter: np.ndarray, nk: np.ndarray, reg_covar: float
    ) -> np.ndarray:
        """Covariances from :meth:`centred_scatter` summed over chunks."""

    # ------------------------------------------------ representation changes
    @abstractmethod
    def precision_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Upper factors ``U`` of the precisions; raises CollapsedComponentError."""

    @abstractmethod
    def precision_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Upper factors ``U`` with ``precisions = U @ U.T``."""

    @abstractmethod
    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """``U @ U.T`` in the family's shape."""

    @abstractmethod
    def covariances(self, prec_chol: np.ndarray) -> np.ndarray:
        """Covariances from precision factors (inverse of :meth:`precision_cholesky`)."""

    @abstractmethod
    def component_covariance(self, covariances: np.ndarray, k: int) -> np.ndarray | float:
        """Covariance of component ``k`` as a matrix (D, D), a vector (D,) or a scalar.

        This is the form :func:`gmm.sample_mvn` accepts, so sampling has one path.
        """

    # ---------------------------------------------------------------- checks
    @abstractmethod
    def is_positive_definite(self, matrices: np.ndarray) -> bool:
        """Whether precisions (or covariances) in this family's shape are SPD."""

    @abstractmethod
    def is_inverse_pair(self, covariances: np.ndarray, precisions: np.ndarray, dtype) -> bool:
        """Whether ``covariances`` and ``precisions`` are each other's inverse.

        To ``64 · eps(dtype)`` times each component's condition number: EM's
        inverses are about 16 times closer than that.
        """

    @abstractmethod
    def is_valid_factor(self, precisions_cholesky: np.ndarray) -> bool:
        """Whether ``precisions_cholesky`` has the form of this family's factors."""

    def check_fitted(self, covariances, precisions, precisions_cholesky, dtype) -> None:
        """Check fitted arrays of this family's shape; raise ValueError saying what is wrong.

        Used where arrays come from outside EM (a model file): all finite,
        covariances and precisions positive definite and each other's inverse,
        and the factor of the family's form with ``U @ U.T`` equal to the
        precisions. Shapes are checked by the caller. O(K·D³) time.
        """
        arrays = {
            "covariances_": covariances,
            "precisions_": precisions,
            "precisions_cholesky_": precisions_cholesky,
        }
        for name, value in arrays.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} contains NaN or infinity")
        for name in ("covariances_", "precisions_"):
            if not self.is_positive_definite(arrays[name]):
                raise ValueError(f"{name} is not {self.precision_requirement}")
        # sample() draws with covariances_, the predictions use the precisions.
        if not self.is_inverse_pair(covariances, precisions, dtype):
            raise ValueError("covariances_ is not the inverse of precisions_")
        if not self.is_valid_factor(precisions_cholesky):
            raise ValueError(f"precisions_cholesky_ must be {self.factor_requirement}")
        rebuilt = np.asarray(self.precisions(precisions_cholesky), dtype=np.float64)
        stored = np.asarray(precisions, dtype=np.float64)
        rtol = np.sqrt(float(np.finfo(dtype).eps))
        if not np.allclose(rebuilt, stored, rtol=rtol, atol=rtol * np.max(np.abs(stored))):
            raise ValueError("precisions_cholesky_ does not agree with precisions_ (U @ U.T != P)")
