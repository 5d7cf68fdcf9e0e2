"""The EM driver: the loop every mixture estimator shares.

:class:`BaseMixture` owns what is the same for any mixture fitted by EM or its
variants: ``n_init`` starts of at most ``max_iter`` iterations, the tolerance
test, keeping the best start, ``warm_start``, verbose output, the
``ConvergenceWarning``, the final E-step behind ``fit_predict``, the fitted
state kept exactly on failure, and the prediction methods (``predict``,
``predict_proba``, ``score_samples``, ``score``, ``sample``).

A subclass declares the model by overriding the hooks, all abstract so the
contract is in one place:

- :meth:`~BaseMixture._check_parameters`: validate the constructor arguments;
  return the covariance family and the initializer;
- :meth:`~BaseMixture._prepare` (optional): settings that depend on the
  validated data, once per ``fit``;
- :meth:`~BaseMixture._initialize`: initial parameters of one start;
- :meth:`~BaseMixture._estep_log_weights` and
  :meth:`~BaseMixture._estep_log_normalizer`: what the E-step adds to
  ``-maha / 2`` per component besides ``-D/2 log 2 pi`` (``log pi_k`` and
  ``log det U_k`` for maximum likelihood; expectations under the posterior for
  a variational mixture);
- :meth:`~BaseMixture._m_step`: parameters from the statistics
  (:class:`gmm.statistics.Scatter`) and the previous parameters;
- :meth:`~BaseMixture._lower_bound`: the objective whose change stops EM;
- :meth:`~BaseMixture._get_parameters` / :meth:`~BaseMixture._set_parameters`:
  between :class:`gmm.em.Parameters` and the fitted attributes.

One iteration is ``data.expectation`` (the fused E-step over row chunks,
:mod:`gmm.em`) → :func:`gmm.em.scatter` (the shared statistics step) →
``_m_step`` (the family's constraint, the estimator's weights) →
``_lower_bound``. The data may be in memory, memory-mapped or a dask array
(:mod:`gmm.scale`); the loop does not ask.
"""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from time import perf_counter

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import em, scale, units, validation
from .covariance import CovarianceFamily, get_family
from .statistics import Scatter

_FITTING: set[int] = set()
_FITTING_LOCK = threading.Lock()


@contextmanager
def one_fit_at_a_time(est):
    """Raise RuntimeError if another ``fit``/``partial_fit`` of ``est`` is in progress.

    An estimator is not thread-safe (nor is scikit-learn's); two fits of one
    estimator from two threads would interleave their attributes (features
    of one, means of the other), so the second fails at once, before it
    touches anything. O(1).
    """
    key = id(est)
    with _FITTING_LOCK:
        if key in _FITTING:
            raise RuntimeError(
                f"Another fit of this {type(est).__name__} is in progress in another "
                "thread. An estimator is not thread-safe: give each thread its own "
                "(sklearn.base.clone(estimator)), or wait for the first fit."
            )
        _FITTING.add(key)
    try:
        yield
    finally:
        with _FITTING_LOCK:
            _FITTING.discard(key)


@contextmanager
def state_kept_on_failure(est):
    """Restore ``est``'s attributes exactly if the block raises (or is interrupted).

    A failed or interrupted ``fit`` must leave a fitted model as it was; scikit-learn's
    validation writes ``n_features_in_`` before the data are known to be good.
    """
    saved = est.__dict__.copy()
    try:
        yield
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(saved)
        raise


def _check_warm_start_family(model, family) -> None:
    """A warm start continues the fitted parameters: refuse a family that cannot hold them."""
    n_components, n_features = np.shape(model.means_)
    fitted = np.shape(model.precisions_cholesky_)
    expected = tuple(family.shape(n_components, n_features))
    if fitted != expected:
        raise ValueError(
            f"warm_start=True continues the fitted model, whose precisions_cholesky_ have "
            f"shape {fitted}, but covariance_type={model.covariance_type!r} needs {expected}. "
            "Set warm_start=False to fit afresh, or set covariance_type back."
        )


def _record_final_estep(owner, stats: em.Statistics | None, lower_bound: float) -> None:
    """Fill the :func:`gmm.em.tracking_entropy` block's record from the kept start's
    last E-step, when that E-step was of the fitted parameters and summed the entropy.

    The record is emptied first and names its ``owner`` (the estimator) when
    filled, so a fit made inside the block by someone else (a user's
    ``init_params`` callable, say) can never lend it its numbers.
    ``lower_bound`` is the mean log-likelihood in the data's units (the fit's
    ``lower_bound_``); the entropy does not depend on the units. O(1).
    """
    final = em.tracked_final_estep()
    if final is None:
        return
    final.owner = final.log_likelihood = final.entropy = final.total_weight = None
    if stats is None or stats.entropy is None or not stats.total_weight > 0:
        return
    final.owner = owner
    final.log_likelihood = float(lower_bound)
    final.entropy = stats.entropy / stats.total_weight
    final.total_weight = float(stats.total_weight)


def total_weight(data) -> float:
    """What the validated training data weigh in rows: their count, or their weights' sum.

    The weights a fit takes sum to the number of rows of positive weight (see
    :func:`gmm.validation.fit_weights`); a dask array's are summed by one
    compute. O(n) for weights, O(1) without.
    """
    if data.sample_weight is None:
        return float(data.n_samples)
    return float(np.sum(data.sample_weight, dtype=np.float64))


class BaseMixture(DensityMixin, BaseEstimator, ABC):
    """Base class of mixture estimators fitted by EM; see the module docstring.

    Subclasses store their constructor arguments (scikit-learn's contract) and
    must have at least ``n_components``, ``covariance_type``, ``tol``,
    ``max_iter``, ``n_init``, ``random_state``, ``warm_start``, ``verbose`` and
    ``verbose_interval``.
    """

    # ================================================================== hooks
    @abstractmethod
    def _check_parameters(self) -> tuple[CovarianceFamily, object]:
        """Validate constructor arguments (never write them back).

        Returns
        -------
        family : CovarianceFamily
        initializer : callable
            ``initializer(X, n_components, random_state, sample_weight) -> resp``.
        """

    def _prepare(self, data, family) -> None:
        """Once per ``fit``, after the data are validated: settings that depend on them.

        Not abstract: maximum likelihood needs nothing. A variational mixture
        sets its priors here (the data's mean and covariance by default), so a
        warm start, which skips :meth:`_initialize`, gets them too.
        """

    @abstractmethod
    def _initialize(self, data, family, initializer, random_state) -> em.Parameters:
        """Initial parameters of one start, from ``data`` (a :mod:`gmm.scale` source)."""

    def _initial_parameters(self, data, family, initializer, random_state, sample_size):
        """Parameters of the M-step from the initializer's responsibilities.

        After an initializer that saw a subsample (see
        ``TrainingData.initial_scatter``), one E-step and M-step over all rows,
        so the start describes all the data. For ``_initialize``.
        """
        scatter, subsampled = data.initial_scatter(initializer, random_state, sample_size)
        params = self._m_step(scatter, None, family, data.dtype)
        if subsampled:
            stats, coefs = data.expectation(params, self._log_const(params, family))
            scatter = em.scatter(stats, family, data.shift, coefs, data.dtype)
            params = self._m_step(scatter, params, family, data.dtype)
        return params

    @abstractmethod
    def _estep_log_weights(self, params: em.Parameters) -> np.ndarray:
        """Per-component log-weights the E-step adds, shape (K,), float64."""

    @abstractmethod
    def _estep_log_normalizer(self, params: em.Parameters, family) -> np.ndarray:
        """Per-component log normaliser of the densities, (K,), float64.

        Without the ``-D/2 log(2 pi)`` that the driver adds: ``log det U_k`` for
        maximum likelihood.
        """

    @abstractmethod
    def _m_step(
        self, scatter: Scatter, previous: em.Parameters | None, family, dtype
    ) -> em.Parameters:
        """Parameters from the statistics; ``previous`` is None at a start."""

    @abstractmethod
    def _lower_bound(self, stats: em.Statistics, params: em.Parameters) -> float:
        """The objective of the iteration whose E-step gave ``stats``.

        ``params`` are the parameters after that iteration's M-step, or under
        ``convergence='relative'`` those of its E-step (see :meth:`_relative_rule`).
        """

    @abstractmethod
    def _get_parameters(self) -> em.Parameters:
        """The fitted parameters."""

    @abstractmethod
    def _set_parameters(self, params: em.Parameters, family) -> None:
        """Store ``params`` as fitted attributes."""

    # ==================================================================== fit
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Also a memory-mapped ``.npy`` or a dask array (see :mod:`gmm.scale`).
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; only their ratios matter (they are scaled to
            mean 1 over the rows of positive weight before the fit, so any
            common factor, 1e-300 or 1e300, gives the same fit). For maximum
            likelihood an integer weight acts as repeating the row; priors
            (``prior=``, the variational mixture) count the rows of positive
            weight.

        Returns
        -------
        self
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return ``predict(X)`` (the labels from one final E-step).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._fit(X, sample_weight)
        return self._labels(X)

    def _fit(self, X, sample_weight):
        with one_fit_at_a_time(self), state_kept_on_failure(self):
            return self._run_em(X, sample_weight)

    def _log_const(self, params: em.Parameters, family) -> np.ndarray:
        with np.errstate(divide="ignore"):  # a weight of 0 gives -inf: never chosen
            log_const = self._estep_log_weights(params) + self._estep_log_normalizer(params, family)
        return log_const - 0.5 * params.means.shape[1] * em.LOG_2PI

    def _run_em(self, X, sample_weight):
        family, initializer = self._check_parameters()
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if not do_init:
            _check_warm_start_family(self, family)
        sample_weight = validation.fit_weights(sample_weight)  # only their ratios matter
        with np.errstate(over="ignore", invalid="ignore"):  # a shift that overflows: below
            given = scale.fit_data(X, sample_weight, family, self.n_components, type(self).__name__)
        family.check_rows(total_weight(given), self.n_components, given.n_features)
        validation.check_features(self, given.feature_source, reset=do_init)
        validation.check_array_fits(
            family.shape(self.n_components, given.n_features),
            given.dtype,
            f"The covariances of n_components={self.n_components}",
            "Use fewer components, or a covariance_type with fewer parameters.",
        )
        problem = units.choose(given.X, given.shift, given.dtype, self.reg_covar)
        data = given if problem is None else scale.rescaled(given, problem, family)
        self._units = problem
        try:
            params, result = self._em(data, family, initializer, do_init)
        finally:
            self.__dict__.pop("_units", None)
        if problem is not None:
            params = problem.params_out(params)
            self._prepared_out(problem)
        units.check_representable(params, family, data.dtype, problem)
        self._set_parameters(params, family)
        self.converged_, self.n_iter_, self.lower_bound_, self.lower_bounds_ = result
        return given.X

    def _prepared_out(self, problem: units.Units) -> None:
        """Map what :meth:`_prepare` set (in the problem's units) to the data's units.

        Called after a fit in rescaled units (see :mod:`gmm.units`); nothing to
        map by default.
        """

    def _problem_reg_covar(self) -> float:
        """``reg_covar`` in the units of the problem being fitted (see :mod:`gmm.units`)."""
        problem = getattr(self, "_units", None)
        return self.reg_covar if problem is None else problem.reg_covar_in(self.reg_covar)

    def _log_scale(self) -> float:
        """``log s`` of the problem being fitted (0 in the data's own units)."""
        problem = getattr(self, "_units", None)
        return 0.0 if problem is None else problem.log_scale

    def _em(self, data, family, initializer, do_init):
        """The ``n_init`` starts of EM on ``data``; return the best parameters and run.

        Returns ``(params, (converged, n_iter, lower_bound, lower_bounds))``,
        the parameters in ``data``'s units, the lower bounds in the data's own.
        """
        self._prepare(data, family)
        dtype = data.dtype
        random_state = check_random_state(self.random_state)
        n_init = self.n_init if do_init else 1
        problem = getattr(self, "_units", None)

        best = None
        # The first pass's statistics when they hold for any parameters (one
        # component, no rows with holes): later iterations, and later starts, reuse them.
        fixed = None
        # mclust's order under its rule: stop at the E-step that meets it, no M-step after.
        relative = self._relative_rule()
        final_stats = None
        for init in range(n_init):
            self._verbose_init_start(init)
            start_time = perf_counter()
            if do_init:
                params = self._initialize(data, family, initializer, random_state)
                lower_bound = -np.inf
            else:
                params = self._get_parameters()
                if problem is not None:
                    params = problem.params_in(params)
                # The relative rule compares this run's own E-steps: the last fit's
                # bound (other data, perhaps) must not stop it before an M-step.
                lower_bound = -np.inf if relative else self.lower_bound_
            lower_bounds: list[float] = []
            converged = False
            n_iter = 0
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                log_const = self._log_const(params, family)
                reused = None
                if fixed is not None:  # None too where the scatter would lose digits
                    reused = em.one_component_statistics(*fixed, params, log_const)
                if reused is not None:
                    stats, scatter = reused
                else:
                    stats, coefs = data.expectation(params, log_const)
                    scatter = em.scatter(stats, family, data.shift, coefs, dtype)
                    if fixed is None and em.fixed_statistics(stats):  # one component
                        fixed = (stats, scatter)
                if relative:  # the bound of the E-step's parameters, tested before the M-step
                    lower_bound = self._lower_bound(stats, params)
                    change = lower_bound - previous
                    converged = self._converged(change, lower_bound, stats.total_weight)
                    if not converged:
                        params = self._m_step(scatter, params, family, dtype)
                else:
                    params = self._m_step(scatter, params, family, dtype)
                    lower_bound = self._lower_bound(stats, params)
                    change = lower_bound - previous
                    converged = self._converged(change, lower_bound, stats.total_weight)
                lower_bounds.append(lower_bound)
                self._verbose_iter(n_iter, change, start_time)
                if converged:
                    break
            if self.max_iter > 0:
                self._verbose_init_end(lower_bound, converged, start_time)
            if best is None or lower_bound > best[0]:
                # The last E-step's statistics describe the parameters kept when
                # EM stopped by the relative rule (they met it before any M-step).
                final_stats = stats if relative and converged else None
                best = (lower_bound, params, n_iter, lower_bounds, converged)

        lower_bound, params, n_iter, lower_bounds, converged = best
        _record_final_estep(self, final_stats, lower_bound)
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return params, (converged, n_iter, lower_bound, lower_bounds)

    def _relative_rule(self) -> bool:
        """Whether EM stops by mclust's rule (``convergence='relative'``).

        Then each iteration tests the bound of its E-step's parameters before
        the M-step, and stops there: the fitted parameters are those whose
        log-likelihood met the rule, as mclust's ``me()`` returns them (its
        loop is M-step, E-step, test). The hook :meth:`_lower_bound` must then
        depend on the statistics only (maximum likelihood's does).
        """
        return getattr(self, "convergence", "absolute") == "relative"

    def _converged(self, change: float, lower_bound: float, n_samples: float) -> bool:
        """Whether an iteration that moved the mean log-likelihood by ``change`` ends EM.

        ``convergence='absolute'`` (scikit-learn's rule): ``|change| < tol``.
        ``'relative'`` (mclust's rule on the total log-likelihood L, ``|dL| <=
        tol (1 + |L|)``): ``|change| <= tol (1/n + |lower_bound|)``.
        """
        if self._relative_rule():
            return abs(change) <= self.tol * (1.0 / n_samples + abs(lower_bound))
        return abs(change) < self.tol

    # ============================================================= prediction
    def _predict_rows(self, X):
        """Validated rows for prediction (ndarray, FileRows or dask array)."""
        check_is_fitted(self)
        rows, feature_source = scale.predict_data(X, type(self).__name__)
        validation.check_features(self, feature_source, reset=False)
        return rows

    def _map_rows(self, X, kernel):
        family = get_family(self.covariance_type)
        params = self._get_parameters()
        return scale.map_rows(X, params, family, self._log_const(params, family), kernel)

    def _labels(self, X) -> np.ndarray:
        return self._map_rows(X, scale.rows.LABELS)

    def score_samples(self, X):
        """Log-likelihood of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            O(n·K·D²) time for 'full', O(chunk·K) extra memory. A lazy dask
            array for a dask X.
        """
        X = self._predict_rows(X)
        return self._map_rows(X, scale.rows.LOG_LIKELIHOOD)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood per sample of X (weighted mean with ``sample_weight``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; only their ratios matter, and an integer
            weight acts as repeating the row.

        Returns
        -------
        float
            O(n·K·D²) time for 'full'; with weights, O(block·K) extra memory
            (per-row values are summed as they come).
        """
        if sample_weight is None:
            return float(np.mean(self.score_samples(X), dtype=np.float64))
        X = self._predict_rows(X)
        w = self._check_weights(X, sample_weight)
        params = self._get_parameters()
        family = get_family(self.covariance_type)
        log_const = self._log_const(params, family)
        total = scale.sum_rows(X, params, family, log_const, scale.rows.LOG_LIKELIHOOD, w)
        return float(total) / float(np.sum(w, dtype=np.float64))

    @staticmethod
    def _check_weights(X, sample_weight):
        """Validated weights for the rows of ``X`` (from :meth:`_predict_rows`), as given."""
        if scale.dask_arrays.is_dask_collection(sample_weight):
            return sample_weight
        return validation.check_sample_weight(sample_weight, X.shape[0], np.float64)

    def predict(self, X):
        """Most probable component of each sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            A lazy dask array for a dask X.
        """
        X = self._predict_rows(X)
        return self._labels(X)

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1. O(n·K) memory for the result. A lazy dask array
            for a dask X.
        """
        X = self._predict_rows(X)
        return self._map_rows(X, scale.rows.RESPONSIBILITIES)

    # =============================================================== sampling
    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted mixture, in random order.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Without one, successive calls give different draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each sample came from.

        Notes
        -----
        O(n·D² + K·D³) time for full covariances, O(n·D) for diagonal ones.
        """
        check_is_fitted(self)
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, (int, np.integer))
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}.")
        params = self._get_parameters()
        n_components, n_features = params.means.shape
        validation.check_array_fits(
            (n_samples, n_features),
            params.means.dtype,
            f"sample(n_samples={n_samples})",
            "Draw fewer samples, or draw them in several calls.",
        )
        rng = check_random_state(random_state)
        family = get_family(self.covariance_type)
        weights = np.asarray(params.weights, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        X = np.empty((n_samples, n_features), dtype=params.means.dtype)
        y = np.repeat(np.arange(n_components), counts)
        start = 0
        for k, count in enumerate(counts):
            z = rng.standard_normal((count, n_features))
            X[start : start + count] = params.means[k] + family.colorize(z, params.covariances, k)
            start += count
        order = rng.permutation(n_samples)
        return X[order], y[order]

    # ================================================================ verbose
    def _verbose_init_start(self, init):
        if self.verbose >= 1:
            print(f"Initialization {init}")

    def _verbose_iter(self, n_iter, change, start_time):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            elif self.verbose >= 2:
                print(
                    f"  Iteration {n_iter}\t time lapse {perf_counter() - start_time:.5f}s"
                    f"\t ll change {change:.5f}"
                )

    def _verbose_init_end(self, lower_bound, converged, start_time):
        if self.verbose == 1:
            print(f"Initialization {'converged' if converged else 'did not converge'}.")
        elif self.verbose >= 2:
            state = "converged" if converged else "did not converge"
            print(
                f"Initialization {state}. time lapse {perf_counter() - start_time:.5f}s"
                f"\t lower bound {lower_bound:.5f}."
            )
