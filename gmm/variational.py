"""Variational kernels: the Dirichlet, stick-breaking and Normal-Wishart posteriors.

The variational Gaussian mixture (:class:`gmm.BayesianGaussianMixture`) keeps
a posterior over the weights (a Dirichlet, or the Beta sticks of a truncated
Dirichlet process) and, per component, a Normal-Wishart posterior over the
mean and precision: ``mu_k | Lambda_k ~ N(m_k, (beta_k Lambda_k)^-1)``,
``Lambda_k ~ Wishart(nu_k, W_k)``. The functions here are the closed forms that
model needs (Bishop, *Pattern Recognition and Machine Learning*, 10.2; Blei &
Jordan, 2006, for the sticks), written as small kernels:

- the posterior from the statistics of an E-step (``nk``, means, ``S_k`` in a
  :class:`gmm.statistics.Scatter`): :func:`dirichlet_concentration`,
  :func:`stick_concentration`, :func:`posterior_counts` and
  :func:`prior_corrected_scatter`;
- what the E-step adds per component: :func:`expected_log_weights_dirichlet`,
  :func:`expected_log_weights_stick` and :func:`expected_log_det_scale`
  (``E[log det Lambda] - log det W``);
- the normalisers of the lower bound: :func:`log_dirichlet_norm`,
  :func:`log_stick_norm`, :func:`log_wishart_norm`;
- :func:`expected_mahalanobis_sum`, ``sum_n r_nk (x_n - m_k)' P_k (x_n - m_k)``
  from the statistics, which gives the entropy of the responsibilities without
  another pass over the data.

Like scikit-learn, the diagonal and spherical models use the Wishart formulas
with ``D`` degrees of freedom per component. Covariances in ``Scatter`` are
divided by ``nk`` (``S_k = W_k / nk``); precisions are in the covariance
family's shape. Kernels trust their inputs; all work in float64 and cost
O(K·D²) at most, except :func:`expected_mahalanobis_sum` for 'full'
statistics, O(K·D²) too.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln

from .statistics import Scatter


# ------------------------------------------------------------------ weights
def dirichlet_concentration(nk: np.ndarray, prior: float) -> np.ndarray:
    """Posterior Dirichlet concentration ``alpha_0 + nk``, shape (K,).

    >>> dirichlet_concentration(np.array([3.0, 0.0]), 0.5)
    array([3.5, 0.5])
    """
    return prior + nk


def stick_concentration(nk: np.ndarray, prior: float) -> np.ndarray:
    """Posterior Beta parameters of the sticks of a truncated Dirichlet process.

    Stick ``k`` takes ``Beta(1 + nk, alpha_0 + sum_{j>k} nj)``; returned as an
    array of shape (2, K) (the last stick's second parameter is ``alpha_0``).

    >>> stick_concentration(np.array([3.0, 2.0, 1.0]), 0.5)
    array([[4. , 3. , 2. ],
           [3.5, 1.5, 0.5]])
    """
    after = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
    return np.stack([1.0 + nk, prior + after])


def expected_log_weights_dirichlet(concentration: np.ndarray) -> np.ndarray:
    """``E[log pi_k] = psi(alpha_k) - psi(sum alpha)`` under a Dirichlet, (K,)."""
    return digamma(concentration) - digamma(np.sum(concentration))


def expected_log_weights_stick(concentration: np.ndarray) -> np.ndarray:
    """``E[log pi_k]`` under Beta sticks (shape (2, K)), (K,).

    ``E[log v_k] + sum_{j<k} E[log(1 - v_j)]`` with ``v_k ~ Beta(a_k, b_k)``.
    """
    a, b = concentration
    total = digamma(a + b)
    log_rest = digamma(b) - total
    return digamma(a) - total + np.concatenate([[0.0], np.cumsum(log_rest)[:-1]])


def dirichlet_weights(concentration: np.ndarray) -> np.ndarray:
    """Posterior mean weights ``alpha_k / sum alpha``, (K,)."""
    return concentration / np.sum(concentration)


def stick_weights(concentration: np.ndarray) -> np.ndarray:
    """Weights from the posterior mean of each stick, renormalised to sum to 1, (K,).

    ``E[v_k] prod_{j<k} (1 - E[v_j])`` (the mean-field plug-in, as scikit-learn
    reports it), divided by its sum, which the truncation leaves below 1.
    """
    a, b = concentration
    stick = a / (a + b)
    weights = stick * np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])
    return weights / np.sum(weights)


def log_dirichlet_norm(concentration: np.ndarray) -> float:
    """Log normaliser of a Dirichlet: ``log Gamma(sum a) - sum log Gamma(a_k)``."""
    return float(gammaln(np.sum(concentration)) - np.sum(gammaln(concentration)))


def log_stick_norm(concentration: np.ndarray) -> float:
    """Log normaliser of independent Beta sticks, ``-sum_k log B(a_k, b_k)``."""
    return float(-np.sum(betaln(concentration[0], concentration[1])))


# ---------------------------------------------------------------- precisions
def posterior_counts(scatter: Scatter) -> np.ndarray:
    """The counts that update the Wishart posterior(s): ``nk``, or ``sum nk / K`` pooled.

    A shared ('pooled') precision takes the average count, as scikit-learn's
    tied model does, so its posterior is on the scale of one component.
    """
    if scatter.kind == "pooled":
        return np.asarray(scatter.nk.sum() / scatter.nk.size)
    return scatter.nk


def _corrected_full(scatter, diff, shrink):
    return scatter.covariances + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :]


def _corrected_diagonal(scatter, diff, shrink):
    return scatter.covariances + shrink[:, None] * diff * diff


def _corrected_pooled(scatter, diff, shrink):
    weighted = (scatter.nk * shrink)[:, None] * diff
    return scatter.covariances + weighted.T @ diff / scatter.nk.sum()


_CORRECTED = {"full": _corrected_full, "diagonal": _corrected_diagonal, "pooled": _corrected_pooled}


def prior_corrected_scatter(
    scatter: Scatter, mean_prior: np.ndarray, mean_precision_prior: float, mean_precision
) -> Scatter:
    """``S_k + (beta_0 / beta_k) d_k d_k'`` with ``d_k = xbar_k - m_0``, in the scatter's kind.

    The Wishart posterior's scale is ``W_k^-1 = W_0^-1 + nk (S_k + (beta_0 /
    beta_k) d_k d_k')``: the scatter grows by the distance of each mean from
    the prior mean, shrunk by ``beta_0 / beta_k``. Pooled: the ``nk``-weighted
    average of the corrections is added to the pooled ``S``. The covariance
    family's constraint and ``reg_covar`` then apply to the result
    (``CovarianceFamily.estimate``) exactly as to a maximum-likelihood scatter.
    O(K·D²).
    """
    diff = scatter.means - mean_prior
    shrink = mean_precision_prior / mean_precision
    corrected = _CORRECTED[scatter.kind](scatter, diff, shrink)
    return Scatter(scatter.nk, scatter.means, corrected, scatter.kind)


def expected_log_det_scale(degrees_of_freedom, n_features: int) -> np.ndarray:
    """``E[log det Lambda] - log det W = D log 2 + sum_i psi((nu - i) / 2)``, i < D.

    ``degrees_of_freedom`` of shape (K,) or a scalar; the result has its shape.
    """
    nu = np.asarray(degrees_of_freedom, dtype=np.float64)
    i = np.arange(n_features).reshape((-1,) + (1,) * nu.ndim)
    return n_features * np.log(2.0) + np.sum(digamma(0.5 * (nu - i)), axis=0)


def log_wishart_norm(degrees_of_freedom, half_log_det_scale, n_features: int) -> np.ndarray:
    """Log normaliser of Wishart(nu, W) without the ``log pi`` term, per posterior.

    ``-(nu/2 log det W + nu D/2 log 2 + sum_i log Gamma((nu - i)/2))``; the
    ``D(D-1)/4 log pi`` term is left out, as in scikit-learn's lower bound.
    ``half_log_det_scale`` is ``log det W / 2``.
    """
    nu = np.asarray(degrees_of_freedom, dtype=np.float64)
    i = np.arange(n_features).reshape((-1,) + (1,) * nu.ndim)
    return -(
        nu * half_log_det_scale
        + 0.5 * nu * n_features * np.log(2.0)
        + np.sum(gammaln(0.5 * (nu - i)), axis=0)
    )


# ------------------------------------------------------------------ entropy
def _trace_full(precisions, covariances, nk):
    return float(np.einsum("k,kij,kij->", nk, precisions, covariances))


def _trace_diagonal(precisions, covariances, nk):
    per_feature = precisions.reshape(nk.size, -1)  # spherical: one precision per component
    return float(np.sum(nk[:, None] * per_feature * covariances))


def _trace_pooled(precisions, covariances, nk):
    return float(nk.sum() * np.sum(precisions * covariances))


def _quadratic_full(precisions, diff):
    return np.einsum("ki,kij,kj->k", diff, precisions, diff)


def _quadratic_diagonal(precisions, diff):
    return np.sum(precisions.reshape(diff.shape[0], -1) * diff * diff, axis=1)


def _quadratic_pooled(precisions, diff):
    return np.einsum("ki,ij,kj->k", diff, precisions, diff)


_TRACE = {"full": _trace_full, "diagonal": _trace_diagonal, "pooled": _trace_pooled}
_QUADRATIC = {"full": _quadratic_full, "diagonal": _quadratic_diagonal, "pooled": _quadratic_pooled}


def expected_mahalanobis_sum(scatter: Scatter, means: np.ndarray, precisions: np.ndarray) -> float:
    """``sum_k sum_n r_nk (x_n - m_k)' P_k (x_n - m_k)`` from the statistics alone.

    Parameters
    ----------
    scatter : Scatter
        Of the responsibilities ``r`` (means ``xbar_k``, ``S_k`` about them).
    means : ndarray of shape (n_components, n_features)
        The ``m_k`` the distances are measured from (the E-step's).
    precisions : ndarray
        The E-step's ``P_k`` in the covariance family's shape ((K, D, D),
        (D, D) shared, (K, D) or (K,)), matching the scatter's kind.

    Returns
    -------
    float
        ``sum_k nk [tr(P_k S_k) + (xbar_k - m_k)' P_k (xbar_k - m_k)]``. O(K·D²).

    Examples
    --------
    >>> X = np.array([[0.0], [2.0]])
    >>> s = Scatter(np.array([2.0]), np.array([[1.0]]), np.array([[1.0]]), "diagonal")
    >>> float(expected_mahalanobis_sum(s, np.array([[0.0]]), np.array([[1.0]])))
    4.0
    """
    nk = scatter.nk
    precisions = np.asarray(precisions, dtype=np.float64)
    diff = scatter.means - np.asarray(means, dtype=np.float64)
    trace = _TRACE[scatter.kind](precisions, scatter.covariances, nk)
    return trace + float(nk @ _QUADRATIC[scatter.kind](precisions, diff))
