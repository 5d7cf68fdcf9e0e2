"""``BayesianGaussianMixture``: variational inference on the EM driver.

A subclass of :class:`gmm.driver.BaseMixture`, so it runs on the same fused,
chunked E-step as :class:`gmm.GaussianMixture` (and on memory-mapped files and
dask arrays). What changes is in the hooks:

- the E-step adds the *expected* log-weights (Dirichlet or stick-breaking
  posterior) and the expected log-determinant of each Wishart posterior, minus
  ``D / (2 beta_k)`` for the uncertainty of the mean; the precision factor the
  kernels see is that of ``E[Lambda_k] = nu_k W_k``, which is what
  ``precisions_cholesky_`` holds (as in scikit-learn);
- the M-step updates the posterior from the same statistics ``(nk, xbar_k,
  S_k)``: the family applies its constraint and ``reg_covar`` to the
  prior-corrected scatter (:func:`gmm.variational.prior_corrected_scatter`);
- the lower bound is scikit-learn's ELBO; the entropy of the responsibilities
  comes from the E-step's log-likelihood and the statistics
  (:func:`gmm.variational.expected_mahalanobis_sum`), with no extra pass.

The posterior travels between iterations in ``Parameters.state`` (a
:class:`Posterior`): the four covariance families this model supports keep no
state of their own.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import em, validation, variational
from .covariance import get_family
from .driver import BaseMixture

__all__ = ["SUPPORTED_COVARIANCE_TYPES", "BayesianGaussianMixture", "Posterior", "component_shape"]

#: Covariance types with a conjugate (Wishart-type) posterior here, as in scikit-learn.
SUPPORTED_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: The two priors on the weights.
WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
#: Default weight above which a component counts as effective.
EFFECTIVE_WEIGHT = 0.01


@dataclass
class Posterior:
    """The variational posterior besides means and precision factors.

    Attributes
    ----------
    weight_concentration : ndarray
        Dirichlet parameters (K,), or Beta parameters of the sticks (2, K).
    mean_precision : ndarray of shape (K,)
        ``beta_k``.
    degrees_of_freedom : ndarray of shape (K,), or a 0-d array for 'tied'
        ``nu_k``.
    log_joint : float or None
        ``sum_n sum_k w_n r_nk log p~_nk`` of the E-step that led to this
        posterior (for the lower bound); None at a start or after loading.
    """

    weight_concentration: np.ndarray
    mean_precision: np.ndarray
    degrees_of_freedom: np.ndarray
    log_joint: float | None = None

    @property
    def sticks(self) -> bool:
        return np.ndim(self.weight_concentration) == 2

    def expected_log_weights(self) -> np.ndarray:
        if self.sticks:
            return variational.expected_log_weights_stick(self.weight_concentration)
        return variational.expected_log_weights_dirichlet(self.weight_concentration)

    def weights(self) -> np.ndarray:
        if self.sticks:
            return variational.stick_weights(self.weight_concentration)
        return variational.dirichlet_weights(self.weight_concentration)

    def log_weight_norm(self) -> float:
        if self.sticks:
            return variational.log_stick_norm(self.weight_concentration)
        return variational.log_dirichlet_norm(self.weight_concentration)


def component_shape(family, n_features: int) -> tuple[int, ...]:
    """Shape of one component's covariance in ``family`` (and of ``covariance_prior``).

    (D, D) for 'full' and 'tied', (D,) for 'diag', () for 'spherical'.
    """
    one = np.zeros(family.shape(1, n_features))
    return np.shape(family.component_covariance(one, 0))


def _per_component(values, ndim: int) -> np.ndarray:
    """(K,) values shaped to broadcast against (K, ...) arrays of ``ndim`` dims; scalars pass."""
    values = np.asarray(values)
    return values if values.ndim == 0 else values.reshape(values.shape + (1,) * (ndim - 1))


def _check_positive(value, name):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number or None, got {value!r}.")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 (or None), got {value!r}.")


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian Gaussian mixture, with a Dirichlet or Dirichlet-process prior.

    The constructor has the names, defaults and meaning of scikit-learn's
    ``sklearn.mixture.BayesianGaussianMixture``; from the same start the fit
    follows the same trajectory. With the default Dirichlet-process prior the
    fit switches off components the data do not need: read the answer to "how
    many clusters?" from :attr:`effective_components_`. Beyond scikit-learn,
    ``fit`` takes ``sample_weight`` (relative weights: only their ratios
    matter, and the posterior counts the rows of positive weight), float32
    data stay float32, memory-mapped files and dask arrays work as for
    :class:`gmm.GaussianMixture`, ``sample`` returns its draws in random order,
    and :func:`gmm.save` / :func:`gmm.load` store the model without pickle.
    As :class:`gmm.GaussianMixture`, it fits data of any representable scale
    (:mod:`gmm.units`) and is not thread-safe (a second concurrent ``fit``
    raises RuntimeError).

    Parameters
    ----------
    n_components : int, default=1
        Upper bound on the number of components (the truncation).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Other registered covariance families have no conjugate posterior here
        and raise a ValueError.
    tol : float, default=1e-3
        Stop when the lower bound gains less than ``tol`` in an iteration.
    reg_covar : float, default=1e-6
        Added to the diagonal of every scatter ``S_k`` before the posterior update.
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations to run; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'} or callable, \
default='kmeans'
        As in :class:`gmm.GaussianMixture`: a callable
        ``init(X, n_components, random_state) -> resp`` gives the initial
        responsibilities itself.
    weight_concentration_prior_type : {'dirichlet_process', \
'dirichlet_distribution'}, default='dirichlet_process'
    weight_concentration_prior : float or None, default=None
        ``alpha_0 > 0``; None means ``1 / n_components``. Small values favour
        few active components.
    mean_precision_prior : float or None, default=None
        ``beta_0 > 0``; None means 1.
    mean_prior : array-like of shape (n_features,) or None, default=None
        ``m_0``; None means the (weighted) mean of X.
    degrees_of_freedom_prior : float or None, default=None
        ``nu_0 > n_features - 1``; None means ``n_features``.
    covariance_prior : float or array-like, default=None
        ``W_0^-1``: (n_features, n_features) for 'full' and 'tied',
        (n_features,) for 'diag', a float for 'spherical'. None means the
        covariance of X (``np.cov``, ddof=1; weighted: ``sum w = n``).
    init_sample_size : int or None, default=None
        As in :class:`gmm.GaussianMixture` (rows the initializer sees).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Posterior mean weights (sticks: the plug-in of the mean sticks, renormalised).
    means_ : ndarray of shape (n_components, n_features)
        Posterior means ``m_k``.
    covariances_, precisions_, precisions_cholesky_ : ndarray
        ``covariances_ = (nu_k W_k)^-1``; ``precisions_ = nu_k W_k = E[Lambda_k]``,
        ``precisions_cholesky_`` its upper factor. Shapes as in
        :class:`gmm.GaussianMixture`.
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, \
degrees_of_freedom_prior_, covariance_prior_ :
        The priors used (defaults filled in from the data).
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        Dirichlet parameters, or the sticks' Beta parameters ``(a, b)``.
    mean_precision_ : ndarray of shape (n_components,)
    degrees_of_freedom_ : ndarray of shape (n_components,), float for 'tied'
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, feature_names_in_
        As in :class:`gmm.GaussianMixture`; ``lower_bound_`` is the ELBO (a sum
        over samples, as in scikit-learn, weighted with ``sample_weight``).

    Notes
    -----
    One iteration costs what a :class:`gmm.GaussianMixture` iteration costs:
    O(n·K·D²) time for 'full' (O(n·K·D) for 'diag' and 'spherical',
    O(n·D² + n·K·D) for 'tied') and O(chunk·(K + D²)) extra memory, plus
    O(K·D³) for the posterior. Each ``fit`` reads the data once more for the
    default ``covariance_prior`` (O(n·D²)).

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.3, (100, 2)) for c in (0, 5, 10)])
    >>> bgm = BayesianGaussianMixture(n_components=8, random_state=0).fit(X)
    >>> len(bgm.effective_components_)
    3
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        init_sample_size=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.init_sample_size = init_sample_size
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ================================================================ checks
    def _check_parameters(self, *, for_fit: bool = True):
        if not isinstance(self.covariance_type, str) or (
            self.covariance_type not in SUPPORTED_COVARIANCE_TYPES
        ):
            raise ValueError(
                f"covariance_type={self.covariance_type!r} is not supported by "
                "BayesianGaussianMixture, which has a variational posterior for "
                f"{', '.join(map(repr, SUPPORTED_COVARIANCE_TYPES))} only. Use one of "
                "those, or GaussianMixture for other covariance families."
            )
        if self.weight_concentration_prior_type not in WEIGHT_PRIOR_TYPES:
            raise ValueError(
                "weight_concentration_prior_type must be one of "
                f"{', '.join(map(repr, WEIGHT_PRIOR_TYPES))}, got "
                f"{self.weight_concentration_prior_type!r}."
            )
        _check_positive(self.weight_concentration_prior, "weight_concentration_prior")
        _check_positive(self.mean_precision_prior, "mean_precision_prior")
        dof = self.degrees_of_freedom_prior
        if dof is not None and (isinstance(dof, bool) or not isinstance(dof, numbers.Real)):
            raise TypeError(f"degrees_of_freedom_prior must be a number or None, got {dof!r}.")
        return validation.check_parameters(self, for_fit=for_fit)

    def _prepare(self, data, family) -> None:
        """The priors, with defaults from the data; one O(n·D²) pass for the covariance."""
        n_features = data.n_features
        dof = self.degrees_of_freedom_prior
        if dof is not None and not (np.isfinite(dof) and dof > n_features - 1):
            raise ValueError(
                f"degrees_of_freedom_prior must be greater than n_features - 1 = "
                f"{n_features - 1}, got {dof!r}. Leave it None for n_features."
            )
        mean_prior = self._check_mean_prior(n_features)
        covariance_prior = self._check_covariance_prior(family, n_features)
        problem = getattr(self, "_units", None)  # a rescaled problem (gmm.units)
        if mean_prior is None:
            mean_prior = data.shift
        elif problem is not None:
            mean_prior = problem.means_in(mean_prior)
        if covariance_prior is None:
            covariance_prior = self._data_covariance(data, family)
        elif problem is not None:
            covariance_prior = problem.covariance_in(covariance_prior)
        prior = self.weight_concentration_prior
        self.weight_concentration_prior_ = 1.0 / self.n_components if prior is None else prior
        beta0 = self.mean_precision_prior
        self.mean_precision_prior_ = 1.0 if beta0 is None else beta0
        self.mean_prior_ = mean_prior
        self.degrees_of_freedom_prior_ = n_features if dof is None else dof
        self.covariance_prior_ = covariance_prior

    def _check_mean_prior(self, n_features):
        if self.mean_prior is None:
            return None
        return validation._as_array(self.mean_prior, "mean_prior", (n_features,), np.float64)

    def _check_covariance_prior(self, family, n_features):
        if self.covariance_prior is None:
            return None
        shape = component_shape(family, n_features)
        prior = validation._as_array(self.covariance_prior, "covariance_prior", shape, np.float64)
        if not family.is_positive_definite(np.broadcast_to(prior, family.shape(1, n_features))):
            raise ValueError(
                f"covariance_prior for covariance_type={family.name!r} must be "
                f"{family.precision_requirement}."
            )
        return prior[()] if prior.ndim == 0 else prior

    @staticmethod
    def _data_covariance(data, family):
        """The data's covariance in the shape of one component (ddof=1), one E-step pass.

        One component with responsibility 1 for every row: its statistics are
        those of all the data, on every data source, with the weights.
        """
        n_features, dtype = data.n_features, data.dtype
        component = component_shape(family, n_features)
        identity = np.eye(n_features) if len(component) == 2 else np.ones(component)
        precisions = np.broadcast_to(identity, family.shape(1, n_features)).astype(dtype)
        params = em.Parameters(
            np.ones(1, dtype=dtype),
            data.shift[None, :].astype(dtype),
            precisions,
            family.precision_cholesky_from_precisions(precisions),
        )
        stats, coefs = data.expectation(params, np.zeros(1))
        total = stats.total_weight
        if not total > 1:
            raise ValueError(
                f"sample_weight gives {total:.6g} row(s) a positive weight: the default "
                "covariance_prior (the data's covariance with ddof=1, as np.cov) needs at "
                "least 2 rows of positive weight. Give more rows a weight, or pass "
                "covariance_prior."
            )
        scatter = em.scatter(stats, family, data.shift, coefs, dtype)
        covariance, _ = family.estimate(scatter, 0.0, None)
        return family.component_covariance(covariance, 0) * (total / (total - 1))

    # ================================================================= hooks
    def _initialize(self, data, family, initializer, random_state) -> em.Parameters:
        return self._initial_parameters(
            data, family, initializer, random_state, self.init_sample_size
        )

    def _estep_log_weights(self, params):
        return params.state.expected_log_weights()

    def _estep_log_normalizer(self, params, family):
        posterior = params.state
        n_features = params.means.shape[1]
        nu = posterior.degrees_of_freedom
        return (
            em.log_det_precision(params, family)
            - 0.5 * n_features * np.log(nu)
            + 0.5 * variational.expected_log_det_scale(nu, n_features)
            - 0.5 * n_features / posterior.mean_precision
        )

    def _m_step(self, scatter, previous, family, dtype):
        nk = scatter.nk
        if self.weight_concentration_prior_type == "dirichlet_process":
            concentration = variational.stick_concentration(nk, self.weight_concentration_prior_)
        else:
            concentration = variational.dirichlet_concentration(
                nk, self.weight_concentration_prior_
            )
        beta0 = self.mean_precision_prior_
        mean_prior = np.asarray(self.mean_prior_, dtype=np.float64)
        beta = beta0 + nk
        means = (beta0 * mean_prior + nk[:, None] * scatter.means) / beta[:, None]
        corrected = variational.prior_corrected_scatter(scatter, mean_prior, beta0, beta)
        scale, _ = family.estimate(corrected, self._problem_reg_covar(), None)
        counts = variational.posterior_counts(scatter)
        nu = self.degrees_of_freedom_prior_ + counts
        psi0 = np.asarray(self.covariance_prior_, dtype=np.float64)
        covariances = (psi0 + _per_component(counts, scale.ndim) * scale) / _per_component(
            nu, scale.ndim
        )
        prec_chol = family.precision_cholesky(covariances)
        posterior = Posterior(concentration, beta, np.asarray(nu, dtype=np.float64))
        if previous is not None:
            posterior.log_joint = self._log_joint(scatter, previous, family)
        return em.Parameters(
            weights=posterior.weights().astype(dtype),
            means=means.astype(dtype),
            covariances=covariances.astype(dtype),
            precisions_cholesky=prec_chol.astype(dtype),
            state=posterior,
        )

    def _log_joint(self, scatter, previous, family) -> float:
        """``sum_nk w_n r_nk log p~_nk`` of the E-step with ``previous``, from its statistics.

        ``log p~_nk = c_k - maha_nk / 2`` with ``c_k`` the E-step's per-component
        constant, so the sum is ``sum_k nk c_k - 1/2 sum_nk r_nk maha_nk``.
        """
        log_const = self._log_const(previous, family)
        precisions = family.precisions(np.asarray(previous.precisions_cholesky, np.float64))
        maha = variational.expected_mahalanobis_sum(scatter, previous.means, precisions)
        return float(scatter.nk @ log_const) - 0.5 * maha

    def _lower_bound(self, stats, params):
        posterior = params.state
        n_components, n_features = params.means.shape
        family = get_family(self.covariance_type)
        # -sum w r log r: the E-step's log-likelihood minus its expected log joint.
        entropy = stats.log_likelihood - posterior.log_joint
        nu = posterior.degrees_of_freedom
        half_log_det = em.log_det_precision(params, family) - 0.5 * n_features * np.log(nu)
        log_wishart = variational.log_wishart_norm(nu, half_log_det, n_features)
        # In the data's units whatever the problem's (gmm.units): log det U_k and so
        # the Wishart terms carry D log s per unit of nu_k.
        units_term = self._log_scale() * n_features * np.sum(np.broadcast_to(nu, (n_components,)))
        return float(
            entropy
            - np.sum(np.broadcast_to(log_wishart, (n_components,)))
            - posterior.log_weight_norm()
            - 0.5 * n_features * np.sum(np.log(posterior.mean_precision))
            - units_term
        )

    def _prepared_out(self, problem):
        self.mean_prior_ = problem.means_out(self.mean_prior_)
        self.covariance_prior_ = problem.covariance_out(self.covariance_prior_)

    def _get_parameters(self) -> em.Parameters:
        concentration = self.weight_concentration_
        if isinstance(concentration, tuple):
            concentration = np.stack(concentration)
        posterior = Posterior(
            np.asarray(concentration, dtype=np.float64),
            np.asarray(self.mean_precision_, dtype=np.float64),
            np.asarray(self.degrees_of_freedom_, dtype=np.float64),
        )
        return em.Parameters(
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_, posterior
        )

    def _set_parameters(self, params, family) -> None:
        posterior = params.state
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = family.precisions(params.precisions_cholesky)
        concentration = posterior.weight_concentration
        self.weight_concentration_ = (
            (concentration[0], concentration[1]) if posterior.sticks else concentration
        )
        self.mean_precision_ = posterior.mean_precision
        nu = posterior.degrees_of_freedom
        self.degrees_of_freedom_ = float(nu) if nu.ndim == 0 else nu

    # ============================================================ reading off
    def effective_components(self, threshold: float = EFFECTIVE_WEIGHT) -> np.ndarray:
        """Indices of the components whose weight exceeds ``threshold``, heaviest first.

        Parameters
        ----------
        threshold : float, default=0.01
            In [0, 1).

        Returns
        -------
        ndarray of int
            O(K log K).
        """
        check_is_fitted(self)
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a number in [0, 1), got {threshold!r}.")
        if not 0 <= threshold < 1:
            raise ValueError(f"threshold must lie in [0, 1), got {threshold!r}.")
        order = np.argsort(-self.weights_, kind="stable")
        return order[self.weights_[order] > threshold]

    @property
    def effective_components_(self) -> np.ndarray:
        """Components whose weight exceeds 1%: :meth:`effective_components` with its default."""
        return self.effective_components()
