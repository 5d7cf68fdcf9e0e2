"""The conjugate prior of Fraley & Raftery (2007): mclust's ``priorControl()``.

A normal prior on each component's mean and an inverse-gamma (one variance)
or inverse-Wishart (a covariance) prior on the covariances, with four
hyperparameters as mclust names them:

- ``shrinkage`` (kappa_P): weight of the prior mean, in rows; default 0.01;
- ``mean`` (mu_P): default the data's mean;
- ``dof`` (nu_P): degrees of freedom; default ``n_features + 2``;
- ``scale`` (Lambda_P): default the data's covariance (ddof=1, as R's ``var``)
  divided by ``G^(2/d)``: the matrix for the models with orientations
  ('EEE', 'EEV', 'VEV', 'VVV'), the mean of its diagonal (a number) for the
  axis-aligned ones, the variance divided by ``G^2`` for 'E' and 'V'. These
  are mclust's ``defaultPrior``.

The M-step becomes a maximum a posteriori (MAP) step. With ``c_k = kappa n_k /
(kappa + n_k)``, ``d_k = xbar_k - mu_P`` and ``B_k = W_k + c_k d_k d_k'`` (``W_k``
the scatter about the component's mean ``xbar_k``), the means are shrunk to
``(n_k xbar_k + kappa mu_P) / (n_k + kappa)`` and every covariance is the
model's maximum-likelihood constraint (:meth:`MclustFamily.estimate`) applied
to *posterior scatters* ``T_k`` with *posterior counts* ``n'_k`` (ς is the
scale where it is a number, Lambda where a matrix; ``[kappa > 0]`` is 1 or 0):

======  ============================  ===========================================
model   T_k                           sum or value of n'_k
======  ============================  ===========================================
E       ς/G + B_k                     sum: n + G + nu + 2
V       ς + B_k                       n_k + nu + 3
EII     diag B_k (no ς: as mclust)    d times the sum: (n + G) d + nu + 2
VII     ς/d + diag B_k                n_k + (nu + 2)/d + [kappa > 0]
EEI     ς/G + diag B_k                sum: n + nu + 1 + [kappa > 0]
EVI     ς + diag B_k                  sum: n + nu + 1 + [kappa > 0]
VEI     ς + diag B_k                  n_k + (nu + 2 + [kappa > 0])/d
VVI     ς + diag B_k                  n_k + nu + 2 + [kappa > 0]
EEE     Lambda + sum_k B_k (pooled)   sum: n + nu + d + 1 + G [kappa > 0]
EEV     Lambda + B_k                  sum: n + nu + d + 1 + [kappa > 0]
VEV     Lambda + B_k                  n_k
VVV     Lambda + B_k                  n_k + nu + d + 2
======  ============================  ===========================================

These are the updates of mclust's Fortran ``me*p`` routines, which ``me()`` with
``prior = priorControl()`` runs, read to learn them (this is our own code):
the same fixed points, so fits agree with mclust to its tolerance
(``tests/test_prior.py`` against ``tests/reference/mclust/prior.R``). Two of
mclust's choices are followed for that agreement and are worth knowing: 'EII'
leaves the prior's scale out of its variance, and 'EEI' keeps the component
means unshrunk. mclust has no prior for 'VEE', 'EVE', 'VVE' and 'EVV'; asking
for one is an error. scikit-learn's names take the prior of their mclust twin
('spherical' = 'VII', 'diag' = 'VVI', 'tied' = 'EEE', 'full' = 'VVV').

The mixing weights keep their maximum-likelihood update ``n_k / n`` (mclust has
no prior on them). The log-likelihood reported (``lower_bound_``, ``score``)
and used by ``bic``/``aic``/``icl`` is the plain log-likelihood at the MAP
estimate with the model's usual parameter count, as mclust's ``bic`` of
``me()``'s ``loglik``.

Everything here after :func:`check_spec` and :func:`resolve` is a kernel:
inputs are trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import em
from .covariance.base import CovarianceFamily
from .statistics import Scatter

__all__ = [
    "MODELS_WITH_PRIOR",
    "ConjugatePrior",
    "check_spec",
    "default_prior",
    "maximization",
    "posterior_scatter",
    "prior_model",
    "resolve",
]

#: mclust's models that take the conjugate prior (mclust's ``mstep``/``me``).
MODELS_WITH_PRIOR = ("E", "V", "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
#: scikit-learn's names and the mclust model each one is.
TWINS = {"spherical": "VII", "diag": "VVI", "tied": "EEE", "full": "VVV"}
#: Models whose prior scale is a (D, D) matrix; the others take a number.
MATRIX_SCALE = ("EEE", "EEV", "VEV", "VVV")
#: The keys of a prior dict, mclust's names.
KEYS = ("shrinkage", "mean", "dof", "scale")
#: mclust's default shrinkage.
DEFAULT_SHRINKAGE = 0.01


@dataclass(frozen=True)
class ConjugatePrior:
    """The prior's values: what ``GaussianMixture.prior_`` holds after ``fit``.

    Attributes
    ----------
    shrinkage : float
        kappa_P >= 0.
    mean : ndarray of shape (n_features,)
    dof : float
        nu_P > 0.
    scale : ndarray of shape (n_features, n_features) or ()
        A positive definite matrix for 'EEE', 'EEV', 'VEV', 'VVV' (and 'tied',
        'full'); a positive number (0-d array) for the other models.
    """

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """The values as a dict of mclust's names (accepted back as ``prior=``)."""
        return {
            "shrinkage": self.shrinkage,
            "mean": self.mean,
            "dof": self.dof,
            "scale": self.scale,
        }


def prior_model(family: CovarianceFamily) -> str:
    """The mclust model whose prior ``family`` takes; ValueError if it takes none.

    Examples
    --------
    >>> from gmm.covariance import get_family
    >>> prior_model(get_family("full")), prior_model(get_family("VEV"))
    ('VVV', 'VEV')
    """
    model = getattr(family, "model", None) or TWINS.get(family.name)
    if model not in MODELS_WITH_PRIOR:
        raise ValueError(
            f"covariance_type={family.name!r} cannot take a prior: mclust's conjugate "
            f"prior exists for the models {', '.join(MODELS_WITH_PRIOR)} and scikit-learn's "
            f"{', '.join(TWINS)}. Use one of them, or prior=None."
        )
    return model


def check_spec(prior, family: CovarianceFamily) -> None:
    """Check ``prior`` (None, 'default' or a dict) before any data are seen.

    Raises ValueError for an unknown value or key, or a model without a prior;
    the values of a dict are checked by :func:`resolve`, which knows the data.
    """
    if prior is None:
        return
    if isinstance(prior, str):
        if prior != "default":
            raise ValueError(
                f"prior must be None, 'default' or a dict with keys {KEYS}, got {prior!r}."
            )
    elif isinstance(prior, dict):
        unknown = sorted(str(key) for key in prior if key not in KEYS)
        if unknown:
            raise ValueError(
                f"prior has unknown key(s) {', '.join(unknown)}; the keys are mclust's "
                f"names {', '.join(KEYS)} (each optional: a missing one takes mclust's default)."
            )
    else:
        raise ValueError(
            f"prior must be None, 'default' or a dict with keys {KEYS}, got {type(prior).__name__}."
        )
    prior_model(family)


def default_prior(
    mean: np.ndarray, covariance: np.ndarray, n_components: int, model: str
) -> ConjugatePrior:
    """mclust's ``defaultPrior`` from the data's mean and covariance (ddof=1).

    Parameters
    ----------
    mean : ndarray of shape (D,)
    covariance : ndarray of shape (D, D)
        The data's covariance with ddof=1 (as R's ``var``).
    n_components : int
        G: the default scale shrinks as ``G^(-2/D)``.
    model : str
        One of :data:`MODELS_WITH_PRIOR`.

    Returns
    -------
    ConjugatePrior

    Examples
    --------
    >>> import numpy as np
    >>> p = default_prior(np.zeros(2), np.diag([4.0, 2.0]), 2, "VII")
    >>> p.shrinkage, p.dof, float(p.scale)  # (1/2)^(2/2) * (4 + 2) / 2
    (0.01, 4.0, 1.5)
    """
    d = mean.shape[0]
    factor = float(n_components) ** (-2.0 / d)
    if model in MATRIX_SCALE:
        scale = factor * covariance
    else:
        scale = np.asarray(factor * np.trace(covariance) / d)
    return ConjugatePrior(DEFAULT_SHRINKAGE, np.array(mean, dtype=np.float64), d + 2.0, scale)


def resolve(prior, mean: np.ndarray, covariance: np.ndarray, n_components: int, model: str):
    """The :class:`ConjugatePrior` of ``prior`` ('default' or a dict) on data of this mean.

    A dict's missing keys take :func:`default_prior`'s values. Raises
    ValueError for a value of the wrong shape, not finite, or not positive
    (``shrinkage`` may be 0: no shrinkage of the means).
    """
    default = default_prior(mean, covariance, n_components, model)
    if isinstance(prior, str):
        return default
    d = mean.shape[0]
    values = default.as_dict()
    shrinkage = prior.get("shrinkage", values["shrinkage"])
    if not (_is_real(shrinkage) and np.isfinite(shrinkage) and shrinkage >= 0):
        raise ValueError(f"prior['shrinkage'] must be a finite number >= 0, got {shrinkage!r}.")
    dof = prior.get("dof", values["dof"])
    if not (_is_real(dof) and np.isfinite(dof) and dof > 0):
        raise ValueError(
            f"prior['dof'] must be a finite number > 0, got {dof!r} (mclust's default is "
            f"n_features + 2 = {d + 2})."
        )
    prior_mean = _array(prior.get("mean", values["mean"]), "mean", (d,), f"({d},): one per feature")
    if model in MATRIX_SCALE:
        scale = _array(prior.get("scale", values["scale"]), "scale", (d, d), f"({d}, {d})")
        symmetric = np.allclose(scale, scale.T, rtol=1e-12, atol=0)
        if not symmetric or np.any(np.linalg.eigvalsh(scale) <= 0):
            raise ValueError(
                f"prior['scale'] for model {model} must be a symmetric positive definite "
                f"({d}, {d}) matrix (mclust's default is the data's covariance / G^(2/d))."
            )
    else:
        scale = _array(prior.get("scale", values["scale"]), "scale", (), "() (a number)")
        if not scale > 0:
            raise ValueError(f"prior['scale'] for model {model} must be > 0, got {float(scale)}.")
    return ConjugatePrior(float(shrinkage), prior_mean, float(dof), scale)


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _array(value, key: str, shape: tuple[int, ...], expected: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"prior[{key!r}] must be numbers of shape {expected}.") from None
    if array.shape != shape:
        raise ValueError(
            f"prior[{key!r}] must have shape {expected} for these data, got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"prior[{key!r}] must be finite.")
    return array


# ----------------------------------------------------------------- kernels
def posterior_scatter(scatter: Scatter, prior: ConjugatePrior, model: str) -> Scatter:
    """Shrunk means and the posterior scatters and counts of ``model`` (table above).

    The family's maximum-likelihood constraint on the result is the MAP
    covariance. O(K·D²) (O(K·D) for diagonal kinds).
    """
    nk, means = scatter.nk, scatter.means
    n_components, d = means.shape
    kappa, nu = prior.shrinkage, prior.dof
    positive = float(kappa > 0)
    gap = means - prior.mean  # (K, D)
    weight = kappa * nk / (kappa + nk)  # c_k
    scale = prior.scale
    if scatter.kind == "diagonal":
        posterior = scatter.scatter + weight[:, None] * gap**2
    else:
        outer = weight[:, None, None] * gap[:, :, None] * gap[:, None, :]
        posterior = scatter.scatter + (outer.sum(axis=0) if scatter.kind == "pooled" else outer)
    g = float(n_components)
    if model == "E":
        posterior, counts = posterior + scale / g, nk + 1 + (nu + 2) / g
    elif model == "V":
        posterior, counts = posterior + scale, nk + nu + 3
    elif model == "EII":
        counts = nk + 1 + (nu + 2) / (d * g)
    elif model == "VII":
        posterior, counts = posterior + scale / d, nk + (nu + 2) / d + positive
    elif model == "EEI":
        posterior, counts = posterior + scale / g, nk + (nu + 1 + positive) / g
    elif model == "EVI":
        posterior, counts = posterior + scale, nk + (nu + 1 + positive) / g
    elif model == "VEI":
        posterior, counts = posterior + scale, nk + (nu + 2 + positive) / d
    elif model == "VVI":
        posterior, counts = posterior + scale, nk + nu + 2 + positive
    elif model == "EEE":
        posterior, counts = posterior + scale, nk + (nu + d + 1) / g + positive
    elif model == "EEV":
        posterior, counts = posterior + scale, nk + (nu + d + 1 + positive) / g
    elif model == "VEV":
        posterior, counts = posterior + scale, nk.copy()
    else:  # VVV
        posterior, counts = posterior + scale, nk + nu + d + 2
    if scatter.kind == "pooled":
        covariances = posterior / counts.sum()
    else:
        covariances = posterior / counts.reshape((-1,) + (1,) * (posterior.ndim - 1))
    if model != "EEI":  # mclust's meEEI keeps the means unshrunk
        means = (nk[:, None] * means + kappa * prior.mean) / (nk + kappa)[:, None]
    return Scatter(counts, means, covariances, scatter.kind)


def maximization(
    scatter: Scatter,
    family: CovarianceFamily,
    reg_covar: float,
    weights: np.ndarray,
    previous: em.Parameters | None,
    dtype: np.dtype,
    prior: ConjugatePrior,
) -> em.Parameters:
    """MAP M-step: :func:`gmm.em.maximization` on the posterior scatter. O(K·D³).

    ``weights`` are the estimator's (``n_k / n``); ``reg_covar`` is added as in
    the maximum-likelihood step (``n'_k · reg_covar`` to ``T_k``).
    """
    posterior = posterior_scatter(scatter, prior, prior_model(family))
    return em.maximization(posterior, family, reg_covar, weights, previous, dtype)


def data_moments(data, family: CovarianceFamily) -> tuple[np.ndarray, np.ndarray]:
    """The data's mean (D,) and covariance (D, D), ddof=1, in one E-step pass.

    The variational mixture's default ``covariance_prior`` computation (one
    component, every row's responsibility 1), so every data source and
    ``sample_weight`` (frequency weights) work. With one component every
    model's constraint keeps what its prior needs (the matrix, or the
    trace for the axis-aligned models). O(n·D²) time ('full'), O(chunk·D²) memory.
    """
    from .bayesian import BayesianGaussianMixture

    try:
        covariance = BayesianGaussianMixture._data_covariance(data, family)
    except ValueError as error:
        if not str(error).startswith("sample_weight gives"):
            raise
        raise ValueError(
            "The data have 1 row or less of positive sample_weight (weights are relative: "
            "they count the rows they do not zero): mclust's default prior needs the data's "
            "covariance with ddof=1. Give at least 2 rows a positive weight."
        ) from None
    covariance = np.asarray(covariance, dtype=np.float64)
    d = data.n_features
    if covariance.ndim < 2:  # 'spherical', 'diag'
        covariance = np.diag(np.broadcast_to(covariance, (d,)))
    return np.asarray(data.shift, dtype=np.float64), covariance
