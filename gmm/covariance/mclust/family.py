"""What every mclust covariance model shares: naming, checks, ``reg_covar``, kernels.

mclust (Fraley & Raftery) writes each component's covariance as
``Sigma_k = lambda_k D_k A_k D_k'`` (volume, orientation, shape) and names a
model by three letters, each Equal, Variable or Identity: volume, shape,
orientation. A model is a constraint on the scatters ``W_k`` in the M-step and
a parameter count (mclust's ``nVarParams``); everything else comes from the
existing families, whose E-step kernels each model reuses through one of three
bases, all storing (K, D, D) covariances:

- :class:`AxisAligned` (``??I`` models and 'E', 'V'): the diagonal family's
  kernels, O(n·K·D) per E-step; the M-step reads the diagonals of ``W_k``;
- :class:`Pooled` ('EEE'): the tied family's kernels, one whitening per row;
- :class:`General` (the other orientations): the full family's kernels.

``reg_covar`` is added to every ``S_k`` (``n_k · reg_covar`` to ``W_k``) before the
constraint, so the constraint holds after it and the four models that are
scikit-learn's ('spherical' = 'VII', 'diag' = 'VVI', 'tied' = 'EEE', 'full' =
'VVV') regularise exactly as those do.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import _matrices
from ..base import CollapsedComponentError, CovarianceFamily
from ..decomposition import InnerResult, decompose
from ..diag import Diag
from ..full import Full
from ..tied import Tied

#: mclust's multivariate models, in mclust's order.
MULTIVARIATE = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)  # fmt: skip
#: mclust's one-feature models.
UNIVARIATE = ("E", "V")

#: mclust's default inner tolerance, ``sqrt(.Machine$double.eps)``.
DEFAULT_INNER_TOL = float(np.sqrt(np.finfo(np.float64).eps))


def refuse_singular(factors: np.ndarray, dtype) -> np.ndarray:
    """``factors`` unchanged, or :class:`CollapsedComponentError` for the first singular one.

    mclust's test of singularity (``emControl(eps)``, the machine epsilon): a
    covariance whose reciprocal condition estimate, the squared ratio of its
    Cholesky factor's smallest to largest diagonal entry, is at most the
    epsilon of ``dtype`` is singular. Without it a covariance that is singular
    but whose Cholesky factorisation succeeds on rounding gives a log-likelihood
    set by rounding, which a BIC sweep would pick. Used by the models whose
    covariances mix features (pooled and general); the axis-aligned ones take
    each variance alone. ``factors`` are precision factors (K, D, D), whose
    diagonal is the reciprocal of the covariance factor's. O(K·D).
    """
    diagonals = np.abs(np.diagonal(factors, axis1=-2, axis2=-1)).astype(np.float64)
    ratio = (diagonals.min(axis=1) / diagonals.max(axis=1)) ** 2
    bad = np.flatnonzero(~(ratio > np.finfo(dtype).eps))
    if bad.size:
        raise CollapsedComponentError(int(bad[0]), dtype)
    return factors


class InnerIterationWarning(UserWarning):
    """An iterative M-step (VEI, VEE, VEV, EVE, VVE) reached its iteration cap."""


class MclustFamily(CovarianceFamily):
    """Base of mclust's models: checks, regularisation, decomposition, inner loops.

    Parameters
    ----------
    name : str, optional
        Registry name; defaults to the mclust model name (``model``). Register a
        configured instance under another name to use other inner settings.
    inner_tol : float, default=sqrt(machine epsilon)
        Relative change at which an iterative M-step stops (mclust's
        ``emControl(tol=c(., inner_tol))``); unused by closed-form models.
    max_inner_iter : int, default=1000
        Iteration cap of an iterative M-step; reaching it warns
        (:class:`InnerIterationWarning`) naming the model and the component.
    """

    #: mclust's name of the model.
    model: str = ""
    #: Whether this is a one-feature model ('E', 'V').
    univariate: bool = False

    def __init__(
        self,
        *,
        name: str | None = None,
        inner_tol: float = DEFAULT_INNER_TOL,
        max_inner_iter: int = 1000,
    ) -> None:
        if not (isinstance(inner_tol, (int, float)) and inner_tol > 0):
            raise ValueError(f"inner_tol must be a positive number, got {inner_tol!r}.")
        if not (isinstance(max_inner_iter, (int, np.integer)) and max_inner_iter >= 1):
            raise ValueError(f"max_inner_iter must be an integer >= 1, got {max_inner_iter!r}.")
        self.name = self.model if name is None else name
        self.inner_tol = float(inner_tol)
        self.max_inner_iter = int(max_inner_iter)

    # ------------------------------------------------------------ checks
    def check_n_features(self, n_features: int) -> None:
        if self.univariate and n_features != 1:
            raise ValueError(
                f"covariance_type={self.name!r} is mclust's model {self.model!r} for "
                f"one-feature data, but the data have {n_features} features. For several "
                f"features use one of mclust's models {', '.join(MULTIVARIATE)} (or "
                "scikit-learn's 'full', 'tied', 'diag', 'spherical')."
            )
        if not self.univariate and n_features == 1:
            raise ValueError(
                f"covariance_type={self.name!r} is mclust's multivariate model "
                f"{self.model!r}, but the data have one feature (n_features = 1). "
                "For one feature use 'E' (equal variance) or 'V' (variable variance)."
            )

    def features(self, X):
        self.check_n_features(X.shape[1])
        return super().features(X)

    def check_rows(self, total_weight: float, n_components: int, n_features: int) -> None:
        total = self.n_parameters(n_components, n_features)
        total += n_components * n_features + n_components - 1
        n = float(total_weight)
        if n <= total:
            raise ValueError(
                f"Too few rows for covariance_type={self.name!r} with {n_components} "
                f"components on {n_features} features: the model has {total} free "
                f"parameters but the data weigh {n:.6g} rows (sample weights count as "
                "repeated rows). Use more rows, fewer components, or a model with fewer "
                "parameters (such as 'EII', 'EEI' or 'EEE')."
            )

    def _warn_cap(self, result: InnerResult, what: str) -> None:
        if result.worst is None:
            return
        warnings.warn(
            f"mclust model {self.model} (covariance_type={self.name!r}): the M-step's "
            f"{what} reached max_inner_iter={self.max_inner_iter} before inner_tol="
            f"{self.inner_tol:g}; component {result.worst} still moved most. Increase "
            "max_inner_iter (register a configured instance under another name).",
            InnerIterationWarning,
            stacklevel=2,
        )

    # ------------------------------------------------------------ M-step
    def estimate(self, scatter, reg_covar, previous):
        nk = scatter.nk
        state = None if previous is None else previous.state
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._constrain(self._regularised(scatter, reg_covar), nk, state)

    def _regularised(self, scatter, reg_covar: float) -> np.ndarray:
        """``W_k + n_k · reg_covar · I`` in the layout of the scatter kind."""
        work = scatter.scatter.copy()
        d = scatter.means.shape[1]
        if self.scatter_kind == "diagonal":
            return work + scatter.nk[:, None] * reg_covar
        if self.scatter_kind == "pooled":
            work.flat[:: d + 1] += scatter.nk.sum() * reg_covar
            return work
        work[:, np.arange(d), np.arange(d)] += scatter.nk[:, None] * reg_covar
        return work

    def _constrain(
        self, scatters: np.ndarray, nk: np.ndarray, state: Any
    ) -> tuple[np.ndarray, Any]:
        """The model's maximum-likelihood covariances from regularised scatters.

        ``scatters`` are ``W_k`` in the layout of :attr:`scatter_kind`: (K, D)
        diagonals, (D, D) pooled, or (K, D, D). Returns covariances in the same
        layout (:class:`AxisAligned` and :class:`Pooled` expand them to (K, D,
        D)) and the state for the next M-step.
        """
        raise NotImplementedError

    # ------------------------------------------------------------ representation
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def decompose(self, covariances):
        # Computed in float64; given back in the covariances' dtype (float32 stays float32).
        parts = decompose(covariances, self.model)
        dtype = covariances.dtype
        return {name: np.asarray(value).astype(dtype)[()] for name, value in parts.items()}

    def component_covariance(self, covariances, k):
        return covariances[k]


class AxisAligned(MclustFamily, _matrices.MatrixRepresentation, Diag):
    """Diagonal covariances stored as (K, D, D): the diagonal family's kernels."""

    scatter_kind = "diagonal"
    precision_requirement = CovarianceFamily.precision_requirement
    factor_requirement = CovarianceFamily.factor_requirement

    def _precision_per_feature(self, prec_chol, n_features):
        return np.diagonal(prec_chol, axis1=-2, axis2=-1).astype(np.float64) ** 2

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)), axis=1)

    def estimate(self, scatter, reg_covar, previous):
        variances, state = super().estimate(scatter, reg_covar, previous)
        covariances = np.zeros(variances.shape + variances.shape[-1:])
        d = variances.shape[1]
        covariances[:, np.arange(d), np.arange(d)] = variances
        return covariances, state

    def precision_cholesky_from_precisions(self, precisions):
        d = precisions.shape[-1]
        if np.any(precisions[:, ~np.eye(d, dtype=bool)] != 0):
            raise ValueError(
                f"precisions_init for covariance_type={self.name!r} must be diagonal "
                "matrices: the model's axes are the features."
            )
        return super().precision_cholesky_from_precisions(precisions)

    def precision_cholesky(self, covariances):
        variances = np.diagonal(covariances, axis1=-2, axis2=-1)
        bad = np.flatnonzero(~np.all(variances > 0, axis=1))
        if bad.size:
            raise CollapsedComponentError(int(bad[0]), covariances.dtype)
        factors = np.zeros_like(covariances)
        d = covariances.shape[1]
        factors[:, np.arange(d), np.arange(d)] = 1.0 / np.sqrt(variances)
        # No condition test: with the features as axes each variance stands alone
        # (features from 1e-4 to 1e4 are well posed, not singular).
        return factors


class Pooled(MclustFamily, Tied):
    """One covariance shared by all components, stored as (K, D, D): tied's kernels."""

    def coefficients(self, weights, means, prec_chol):
        return super().coefficients(weights, means, prec_chol[0])

    def expansion_condition(self, weights, means, prec_chol):
        return super().expansion_condition(weights, means, prec_chol[0])

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)), axis=1)

    def estimate(self, scatter, reg_covar, previous):
        shared, state = super().estimate(scatter, reg_covar, previous)
        n_components = scatter.nk.shape[0]
        return np.repeat(shared[None], n_components, axis=0), state

    def precision_cholesky_from_precisions(self, precisions):
        if np.any(precisions != precisions[:1]):
            raise ValueError(
                f"precisions_init for covariance_type={self.name!r} must hold the same "
                "matrix for every component: the model shares one covariance."
            )
        return super().precision_cholesky_from_precisions(precisions)

    def precision_cholesky(self, covariances):
        factor = Tied.precision_cholesky(self, covariances[0])
        refuse_singular(factor[None], covariances.dtype)
        return np.repeat(factor[None], covariances.shape[0], axis=0)


class General(MclustFamily, Full):
    """Covariances with orientations, (K, D, D): the full family's kernels."""

    def precision_cholesky(self, covariances):
        return refuse_singular(super().precision_cholesky(covariances), covariances.dtype)


def symmetric(matrices: np.ndarray) -> np.ndarray:
    """``(M + M') / 2`` for a stack: products like ``D A D'`` are symmetric up to rounding."""
    return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))


def from_axes(axes: np.ndarray, diagonals: np.ndarray) -> np.ndarray:
    """``D_k diag(psi_k) D_k'`` for axes (K, D, D) or (D, D) and diagonals (K, D)."""
    return symmetric((axes * diagonals[:, None, :]) @ np.swapaxes(axes, -1, -2))
