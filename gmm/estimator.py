"""``GaussianMixture``: the estimator. It validates, initialises, runs the EM loop
and stores the fitted attributes; the math lives in :mod:`gmm.em` and
:mod:`gmm.covariance`."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from time import perf_counter

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import em, scale, validation
from .covariance import get_family
from .sampling import colorize


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


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by expectation-maximisation.

    The constructor has the names, defaults and meaning of scikit-learn's
    ``sklearn.mixture.GaussianMixture``. Beyond it, ``fit`` takes
    ``sample_weight``, ``sample`` returns its draws in random order and takes its
    own ``random_state``, and :meth:`icl` scores clusterings.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Structure of the covariances (see :mod:`gmm.covariance`).
    tol : float, default=1e-3
        Stop when the mean log-likelihood gains less than ``tol`` in an iteration.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, to keep them positive definite.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Initialisations to run; the best (highest likelihood) is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How initial responsibilities are drawn (see :mod:`gmm.initialization`).
    init_sample_size : int or None, default=None
        Rows of a uniform random subsample the initializer runs on; an M-step
        on it, then one E-step and M-step over all rows, give the initial
        parameters. None: all rows for in-memory data (as scikit-learn), at
        most 100,000 for memory-mapped files and dask arrays, which are never
        brought into memory whole (see :mod:`gmm.scale`).
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        Shape (n_components,) for 'spherical', (n_components, n_features) for
        'diag', (n_features, n_features) for 'tied' and
        (n_components, n_features, n_features) for 'full'.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from the current parameters (``n_init`` is then 1).
    verbose : int, default=0
    verbose_interval : int, default=10

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        In the shape of ``precisions_init``; ``precisions_cholesky_`` holds
        upper-triangular ``U`` with ``precisions_ = U @ U.T``.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean (weighted mean, with ``sample_weight``) log-likelihood of the best start.
    lower_bounds_ : list of float
        ``lower_bound`` at each iteration of the best start.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only for input with string column names (pandas).

    Notes
    -----
    ``fit`` and the prediction methods also take ``np.load(path,
    mmap_mode='r')`` of a file larger than memory, read in row chunks, and dask
    arrays chunked by rows (``pip install "gmm[dask]"``), on which each EM
    iteration is one map-reduce and predictions are lazy dask arrays (see
    :mod:`gmm.scale`).

    One EM iteration costs O(n·K·D²) time for 'full' (O(n·K·D) for 'diag' and
    'spherical', O(n·D² + n·K·D) for 'tied') and O(chunk·(K + D²)) extra memory:
    data are processed in row chunks and responsibilities are never stored for
    all samples. Small data keep their per-chunk features between iterations
    (at most 64 MB).

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 3)
    array([ 1., 10.])
    >>> labels = gm.predict([[0, 0], [12, 3]])
    >>> bool(labels[0] != labels[1])
    True
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
        init_sample_size=None,
        weights_init=None,
        means_init=None,
        precisions_init=None,
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
        self.init_sample_size = init_sample_size
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights. An integer weight acts as repeating the row.

        Returns
        -------
        self : GaussianMixture
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
        with state_kept_on_failure(self):
            return self._fit_unsafe(X, sample_weight)

    def _fit_unsafe(self, X, sample_weight):
        family, initializer = validation.check_parameters(self)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        data = scale.fit_data(self, X, sample_weight, family, reset=do_init)
        dtype = data.dtype
        inits = validation.check_initial_parameters(self, family, data.n_features, dtype)
        random_state = check_random_state(self.random_state)
        n_init = self.n_init if do_init else 1

        best = None
        for init in range(n_init):
            self._verbose_init_start(init)
            start_time = perf_counter()
            if do_init:
                params = self._initial_parameters(data, family, initializer, random_state, inits)
                lower_bound = -np.inf
            else:
                params = self._get_parameters()
                lower_bound = self.lower_bound_
            lower_bounds: list[float] = []
            converged = False
            n_iter = 0
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                stats, coefs = data.expectation(params)
                lower_bound = stats.log_likelihood / stats.total_weight
                params = em.maximization(stats, family, self.reg_covar, data.shift, dtype, coefs)
                lower_bounds.append(lower_bound)
                change = lower_bound - previous
                self._verbose_iter(n_iter, change, start_time)
                if abs(change) < self.tol:
                    converged = True
                    break
            if self.max_iter > 0:
                self._verbose_init_end(lower_bound, converged, start_time)
            if best is None or lower_bound > best[0]:
                best = (lower_bound, params, n_iter, lower_bounds, converged)

        lower_bound, params, n_iter, lower_bounds, converged = best
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_parameters(params, family)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = lower_bound
        self.lower_bounds_ = lower_bounds
        return data.X

    def _initial_parameters(self, data, family, initializer, random_state, inits):
        weights_init, means_init, precisions_init = inits
        if weights_init is None or means_init is None or precisions_init is None:
            params = data.initial_parameters(
                initializer, random_state, self.reg_covar, self.init_sample_size
            )
        else:
            params = em.Parameters(weights_init, means_init, None, None)
        if weights_init is not None:
            params.weights = weights_init
        if means_init is not None:
            params.means = means_init
        if precisions_init is not None:
            params.precisions_cholesky = family.precision_cholesky_from_precisions(precisions_init)
            params.covariances = family.covariances(params.precisions_cholesky)
        return params

    def _get_parameters(self) -> em.Parameters:
        return em.Parameters(
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_
        )

    def _set_parameters(self, params: em.Parameters, family) -> None:
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = family.precisions(params.precisions_cholesky)

    # ----------------------------------------------------------- prediction
    def _map_rows(self, X, kernel):
        family = get_family(self.covariance_type)
        return scale.map_rows(X, self._get_parameters(), family, kernel)

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
        X = scale.predict_data(self, X)
        return self._map_rows(X, scale.rows.LOG_LIKELIHOOD)

    def score(self, X, y=None):
        """Mean log-likelihood per sample of X.

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    def predict(self, X):
        """Most probable component of each sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            A lazy dask array for a dask X.
        """
        X = scale.predict_data(self, X)
        return self._labels(X)

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1. O(n·K) memory for the result. A lazy dask array
            for a dask X.
        """
        X = scale.predict_data(self, X)
        return self._map_rows(X, scale.rows.RESPONSIBILITIES)

    def _log_resp_entropy(self, X) -> float:
        return float(np.sum(self._map_rows(X, scale.rows.ENTROPY), dtype=np.float64))

    # ------------------------------------------------------------- criteria
    def _n_parameters(self) -> int:
        n_components, n_features = self.means_.shape
        family = get_family(self.covariance_type)
        return (
            family.n_parameters(n_components, n_features)
            + n_features * n_components
            + n_components
            - 1
        )

    def aic(self, X):
        """Akaike information criterion on X; lower is better.

        ``-2 · log-likelihood + 2 · n_parameters``.
        """
        X = scale.predict_data(self, X)
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

    def bic(self, X):
        """Bayesian information criterion on X; lower is better.

        ``-2 · log-likelihood + n_parameters · log(n_samples)``.
        """
        X = scale.predict_data(self, X)
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def icl(self, X):
        """Integrated completed likelihood (Biernacki, Celeux & Govaert, 2000).

        BIC plus twice the entropy of the responsibilities,
        ``-2 sum_n sum_k r_nk log r_nk``. It penalises overlapping components;
        lower is better, as with :meth:`bic`.
        """
        X = scale.predict_data(self, X)
        return self.bic(X) + 2 * self._log_resp_entropy(X)

    # ------------------------------------------------------------- sampling
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
        """
        check_is_fitted(self)
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, (int, np.integer))
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}.")
        rng = check_random_state(random_state)
        family = get_family(self.covariance_type)
        n_components, n_features = self.means_.shape
        weights = np.asarray(self.weights_, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        X = np.empty((n_samples, n_features), dtype=self.means_.dtype)
        y = np.repeat(np.arange(n_components), counts)
        start = 0
        for k, count in enumerate(counts):
            z = rng.standard_normal((count, n_features))
            cov = family.component_covariance(self.covariances_, k)
            X[start : start + count] = self.means_[k] + colorize(z, cov)
            start += count
        order = rng.permutation(n_samples)
        return X[order], y[order]

    # -------------------------------------------------------------- verbose
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
