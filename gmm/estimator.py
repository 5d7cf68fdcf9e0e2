"""``GaussianMixture``: maximum-likelihood Gaussian mixtures.

A thin subclass of the EM driver (:class:`gmm.driver.BaseMixture`): it
declares the hooks (weights ``nk / sum nk``, the log-likelihood as the lower
bound, initialisation from ``init_params`` or the ``*_init`` arrays) and adds
the information criteria. The loop lives in :mod:`gmm.driver`, the pass in
:mod:`gmm.em`, the math in :mod:`gmm.statistics` and :mod:`gmm.covariance`.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from . import criteria, em, online, scale, validation
from . import prior as conjugate_prior
from .covariance import get_family
from .driver import BaseMixture, state_kept_on_failure

__all__ = ["GaussianMixture", "state_kept_on_failure"]


class GaussianMixture(BaseMixture):
    """Gaussian mixture model fitted by expectation-maximisation.

    The constructor has the names, defaults and meaning of scikit-learn's
    ``sklearn.mixture.GaussianMixture``. Beyond it, ``fit`` takes
    ``sample_weight``, ``sample`` returns its draws in random order and takes its
    own ``random_state``, and :meth:`icl` scores clusterings.

    Scale never matters: data of any size whose model float64 (or float32)
    can hold fit as the same data at unit scale, mapped back (see
    :mod:`gmm.units`); otherwise ``OutOfRangeError`` says why. Only the
    ratios of ``sample_weight`` matter to a fit.

    An estimator is not thread-safe (scikit-learn's are not either): use one
    per thread (``sklearn.base.clone``). A second ``fit`` or ``partial_fit``
    of an estimator while another is running raises RuntimeError at once and
    changes nothing; a prediction during a fit may see the old or the new
    model's attributes.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'} or str, default='full'
        Structure of the covariances (see :mod:`gmm.covariance`): one of
        ``gmm.covariance_types()``, which includes any family registered with
        :func:`gmm.covariance.register`.
    tol : float, default=1e-3
        Stop when the mean log-likelihood gains less than ``tol`` in an iteration
        (see ``convergence``).
    convergence : {'absolute', 'relative'}, default='absolute'
        'absolute' is scikit-learn's rule above. 'relative' is mclust's:
        stop when the total log-likelihood L changes by at most ``tol · (1 +
        |L|)``, i.e. the mean by at most ``tol · (1/n + |mean|)``; mclust's
        default is ``tol=1e-5``. Under 'relative' each iteration tests the
        log-likelihood of its E-step before the M-step and stops there, so the
        fitted parameters are those whose log-likelihood met the rule (mclust's
        ``me()`` order) and ``score`` of the training data equals
        ``lower_bound_``. The mclust workflow (``sweep(..., 'mclust')``) uses it.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, to keep them positive definite.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Initialisations to run; the best (highest likelihood) is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'} or callable, \
default='kmeans'
        How initial responsibilities are drawn (see :mod:`gmm.initialization`).
        A callable ``init(X, n_components, random_state) -> resp`` gives them
        itself: ``resp`` of shape (n_samples, n_components), non-negative,
        finite, rows summing to 1, or for a partition integer labels of shape
        (n_samples,) in 0..n_components-1 (cheaper than one-hot rows, same
        fit); EM starts with the M-step from it. ``X`` is the validated data in memory (or the
        ``init_sample_size`` subsample), ``random_state`` a ``RandomState``. A
        model fitted this way saves and loads like any other, but the callable
        is not stored: :func:`gmm.load` gives back ``init_params=None``, so a
        refit of the loaded model needs ``set_params(init_params=...)``.
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
    nan_policy : {'raise', 'omit', 'marginalize'}, default='raise'
        What NaN (a missing entry) in the data means. ``'raise'``: an
        error. ``'omit'``: ``fit`` drops incomplete rows (their number is in
        ``n_rows_omitted_``, with a warning). ``'marginalize'``: exact EM over the
        observed entries (Ghahramani & Jordan, 1994); each incomplete row costs
        O(K·(m³ + D²)) per iteration for m holes, the m³ shared by rows with
        the same pattern (:mod:`gmm.missing`). Under both, predictions use the
        marginal density of each row's observed entries (a row with none gets
        the weights), :meth:`impute` fills holes, and ``lower_bound_``, ``score``
        and the criteria are observed-data log-likelihoods, for data in memory,
        memory-mapped or in dask arrays alike. Infinities are always an
        error. ``prior=`` does not take incomplete rows yet ('omit' does).
    learning_decay : float, default=0.7
        Of :meth:`partial_fit`: the step size of batch ``t`` (from 0) is
        ``(t + learning_offset) ** -learning_decay``; in (0.5, 1]. Smaller
        values forget old batches faster: they track a drifting stream better
        (try 0.55) and average fewer rows on a stationary one. 0.7 was chosen
        by measurement (``python -m experiments online``).
    learning_offset : float, default=1.0
        Of :meth:`partial_fit`; >= 1. Larger values slow down the early updates.
    prior : None, 'default' or dict, default=None
        mclust's conjugate prior (Fraley & Raftery, 2007; see :mod:`gmm.prior`):
        the M-step becomes a MAP step that keeps components from collapsing.
        'default' is mclust's ``priorControl()``; a dict of any of
        ``shrinkage``, ``mean``, ``dof``, ``scale`` sets those values (the
        others take mclust's ``defaultPrior``, computed from the training
        data). For 'E', 'V', 'EII', 'VII', 'EEI', 'VEI', 'EVI', 'VVI', 'EEE',
        'EEV', 'VEV', 'VVV' and scikit-learn's four; other models raise. The
        log-likelihood and the criteria are those at the MAP estimate, as
        mclust's. Not with :meth:`partial_fit`.

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
    n_rows_omitted_ : int
        Incomplete rows ``fit`` dropped (only with ``nan_policy='omit'``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only for input with string column names (pandas).
    n_batches_seen_, n_samples_seen_ : int
        Only after :meth:`partial_fit`: batches and rows of the stream so far.
    prior_ : gmm.prior.ConjugatePrior
        Only with ``prior``: the prior's values used by the fit (mclust's
        ``defaultPrior`` of the training data, where not given).

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
        nan_policy="raise",
        learning_decay=online.DEFAULT_LEARNING_DECAY,
        learning_offset=online.DEFAULT_LEARNING_OFFSET,
        prior=None,
        convergence="absolute",
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
        self.nan_policy = nan_policy
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.prior = prior
        self.convergence = convergence

    # ======================================================== missing values
    def _with_missing(self, X):
        """X wrapped for the scale layer when ``nan_policy`` lets it hold NaN."""
        policy = validation.check_nan_policy(self.nan_policy)
        return X if policy == "raise" else scale.WithMissing(X, policy)

    def _fit(self, X, sample_weight):
        source = self._with_missing(X)
        rows = super()._fit(source, sample_weight)
        # After a successful fit only: the count belongs to the fit that made it.
        if source is not X and source.policy == "omit":
            self.n_rows_omitted_ = source.n_omitted
        elif hasattr(self, "n_rows_omitted_"):
            del self.n_rows_omitted_
        return rows if source is X else source.rows  # every row, for fit_predict

    def _predict_rows(self, X):
        return super()._predict_rows(self._with_missing(X))

    def impute(self, X, n_draws=None, random_state=None):
        """X with each missing entry (NaN) filled from the fitted mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In memory; NaN marks a hole (whatever ``nan_policy``).
        n_draws : int or None, default=None
            None: each hole gets its conditional mean ``E[x_m | x_o]`` under the
            mixture. An int: that many draws from the conditional distribution
            ``p(x_m | x_o)`` (multiple imputation).
        random_state : int, RandomState instance or None, default=None
            For the draws.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or (n_draws, n_samples, n_features)
            Observed entries are unchanged. A row with no observed entry gets the
            mixture's mean (or draws from the mixture).

        Notes
        -----
        O(n·K·(m³ + D²)) time for rows with m holes (the m³ shared by rows
        with the same pattern), O(chunk·K·D) extra memory besides the result.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=500)
        >>> gm = GaussianMixture(1, random_state=0).fit(X)
        >>> filled = gm.impute([[1.0, np.nan]])
        >>> bool(abs(filled[0, 1] - 0.9) < 0.15)
        True
        """
        if n_draws is not None:
            validation._check_int(n_draws, "n_draws", minimum=1)
        rows = super()._predict_rows(scale.WithMissing(X, "marginalize"))
        values = rows.X if isinstance(rows, scale.IncompleteRows) else rows
        if n_draws is not None:
            validation.check_array_fits(
                (n_draws, *values.shape),
                values.dtype,
                f"impute(n_draws={n_draws})",
                "Ask for fewer draws, or impute fewer rows per call.",
            )
        params = self._get_parameters()
        family = get_family(self.covariance_type)
        return scale.impute(
            values,
            params,
            family,
            self._log_const(params, family),
            n_draws,
            check_random_state(random_state),
        )

    # ================================================================ online
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model from one batch by stepwise EM (Cappé & Moulines, 2009).

        One E-step on the batch with the current parameters; its statistics,
        normalised by the batch's total weight, are blended into running
        statistics with step size ``(t + learning_offset) ** -learning_decay``
        (``t`` batches seen before); then the M-step runs on the running
        statistics. See :mod:`gmm.online`.

        The first call initialises the model from its batch as ``fit`` does
        (``init_params``, or the ``*_init`` arrays; one initialisation, whatever
        ``n_init``) and needs at least ``n_components`` rows. Later batches may
        have any number of rows >= 1 and must have the first batch's features
        and float dtype (any byte order). On a model fitted by ``fit`` (or
        loaded), the stream starts from its parameters: they score the first
        batch and stand for the running statistics before it, so the first
        update blends the batch in at step size ``learning_offset **
        -learning_decay``. With the default ``learning_offset=1`` that step is
        1 and the batch's statistics replace the fitted ones (so that batch
        needs at least ``n_components`` rows); a larger offset keeps more of
        the fitted model (``learning_offset=1e6``: a single row moves it by
        about 6e-5 of the way). The stream keeps the fitted ``covariance_type``
        and ``n_components``: changing either between updates is refused.
        ``fit`` afterwards starts afresh and drops the running statistics. On
        bad input nothing changes: the next good batch continues as if the bad
        one never came.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
            Brought into memory.
        y : ignored
        sample_weight : array-like of shape (n_rows,), default=None
            An integer weight acts as repeating the row in the batch. Weights
            are relative within their batch (scaled to mean 1 over its rows of
            positive weight, :func:`gmm.validation.fit_weights`): a batch's pull
            on the model is the step size, whatever the scale of its weights,
            and the batch counts as its rows of positive weight in
            ``lower_bound_``.

        Returns
        -------
        self
            With the fitted attributes, ``n_batches_seen_``, ``n_samples_seen_``
            (rows, whatever their weights);
            ``lower_bound_`` is the (weighted) mean log-likelihood of all rows
            seen, each batch scored by the parameters before its own update;
            ``lower_bounds_`` holds each batch's; ``n_iter_`` counts batches and
            ``converged_`` is False.

        Notes
        -----
        O(rows·K·D²) time for 'full' plus an O(K·D³) M-step; memory
        O(rows·D + chunk·K), independent of the stream's length.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> gm = GaussianMixture(2, random_state=0)
        >>> for _ in range(20):
        ...     batch = np.concatenate([rng.normal(-3, 1, (50, 1)), rng.normal(3, 1, (50, 1))])
        ...     gm = gm.partial_fit(batch)
        >>> gm.n_batches_seen_, np.round(np.sort(gm.means_.ravel()))
        (20, array([-3.,  3.]))
        """
        if self.prior is not None:
            raise NotImplementedError(
                "partial_fit does not take a prior yet: use fit, or set prior=None."
            )
        if self.nan_policy != "raise":
            raise NotImplementedError(
                f"partial_fit needs complete rows, but nan_policy={self.nan_policy!r}: use "
                "fit for data with missing values, or drop or impute the incomplete rows "
                "and set nan_policy='raise'."
            )
        return online.partial_fit(self, X, sample_weight)

    def _run_em(self, X, sample_weight):
        online.forget(self)  # fit starts afresh (a failed fit restores everything)
        return super()._run_em(X, sample_weight)

    # ================================================================ hooks
    def _check_parameters(self):
        family, initializer = validation.check_parameters(self)
        conjugate_prior.check_spec(self.prior, family)
        return family, initializer

    def _prepare(self, data, family):
        if self.prior is not None and _has_holes(data):
            raise NotImplementedError(
                "prior= does not take rows with missing entries yet (nan_policy="
                "'marginalize'): its values come from the data's covariance, which incomplete "
                "rows do not give directly. Fit the complete rows (nan_policy='omit'), impute "
                "the holes first, or set prior=None."
            )
        # The prior's values from the training data (a failed fit restores the old ones).
        self.__dict__.pop("prior_", None)
        if self.prior is not None:
            model = conjugate_prior.prior_model(family)
            mean, covariance = conjugate_prior.data_moments(data, family)
            problem = getattr(self, "_units", None)
            if problem is not None:  # resolved in the data's units, where a given prior is
                mean, covariance = problem.means_out(mean), problem.covariance_out(covariance)
            self.prior_ = conjugate_prior.resolve(
                self.prior, mean, covariance, self.n_components, model
            )
            if problem is not None:
                self.prior_ = _prior_in_units(self.prior_, problem.means_in, problem.covariance_in)

    def _prepared_out(self, problem):
        if self.prior is not None:
            self.prior_ = _prior_in_units(self.prior_, problem.means_out, problem.covariance_out)

    def _initialize(self, data, family, initializer, random_state) -> em.Parameters:
        weights_init, means_init, precisions_init = validation.check_initial_parameters(
            self, family, data.n_features, data.dtype
        )
        problem = getattr(self, "_units", None)
        if problem is not None and means_init is not None:
            means_init = problem.means_in(means_init)
        if problem is not None and precisions_init is not None:
            precisions_init = problem.precisions_in(precisions_init)
        if weights_init is None or means_init is None or precisions_init is None:
            scatter, subsampled = data.initial_scatter(
                initializer, random_state, self.init_sample_size
            )
            params = self._m_step(scatter, None, family, data.dtype)
            if subsampled:  # one pass over all rows, so the start describes them all
                stats, coefs = data.expectation(params, self._log_const(params, family))
                scatter = em.scatter(stats, family, data.shift, coefs, data.dtype)
                params = self._m_step(scatter, params, family, data.dtype)
        else:
            params = em.Parameters(weights_init, means_init, None, None)
        if weights_init is not None:
            params.weights = weights_init
        if means_init is not None:
            params.means = means_init
        if precisions_init is not None:
            params.precisions_cholesky = family.precision_cholesky_from_precisions(precisions_init)
            params.covariances = family.covariances(params.precisions_cholesky)
            params.state = None
        return params

    def _estep_log_weights(self, params):
        return np.log(np.asarray(params.weights, dtype=np.float64))

    def _estep_log_normalizer(self, params, family):
        return em.log_det_precision(params, family)

    def _m_step(self, scatter, previous, family, dtype):
        # Normalised by their sum, like scikit-learn's M-step, so they sum to 1.
        weights = scatter.nk / scatter.nk.sum()
        if self.prior is not None:
            return conjugate_prior.maximization(
                scatter, family, self._problem_reg_covar(), weights, previous, dtype, self.prior_
            )
        return em.maximization(scatter, family, self._problem_reg_covar(), weights, previous, dtype)

    def _lower_bound(self, stats, params):
        # In the data's units whatever the problem's (gmm.units): -D log s per row.
        bound = stats.log_likelihood / stats.total_weight
        log_scale = self._log_scale()
        return bound if log_scale == 0 else bound - params.means.shape[1] * log_scale

    def _get_parameters(self) -> em.Parameters:
        return em.Parameters(
            self.weights_,
            self.means_,
            self.covariances_,
            self.precisions_cholesky_,
            getattr(self, "_family_state", None),
        )

    def _set_parameters(self, params: em.Parameters, family) -> None:
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = family.precisions(params.precisions_cholesky)
        self._family_state = params.state
        # Whose parameters these are: partial_fit continues them only with this type, and
        # takes the reg_covar they hold off them (gmm.online._fitted_state).
        self._fitted_covariance_type = self.covariance_type
        self._fitted_reg_covar = self.reg_covar

    @property
    def variance_(self) -> dict[str, np.ndarray]:
        """Volume, shape and orientation of the fitted covariances, as mclust's ``variance``.

        For mclust's models ('EII' ... 'VVV', 'E', 'V'):
        ``scale``, ``shape``, ``orientation`` and ``sigma`` (see
        :func:`gmm.covariance.decomposition.decompose`). O(K·D³). Other
        families raise AttributeError saying so.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "covariances_")
        try:
            return get_family(self.covariance_type).decompose(self.covariances_)
        except NotImplementedError as error:
            raise AttributeError(str(error)) from None

    # ============================================================= criteria
    def _n_parameters(self) -> int:
        n_components, n_features = self.means_.shape
        return criteria.n_parameters(get_family(self.covariance_type), n_components, n_features)

    def _criteria(self, X, sample_weight=None) -> dict[str, float]:
        """``log_likelihood``, ``aic``, ``bic`` and ``icl`` on validated rows, one E-step.

        ``X`` from :meth:`_predict_rows`; with ``sample_weight`` the sums are
        weighted and BIC's ``n`` is the total weight (frequency weights: an
        integer weight counts as that many rows, as in ``sweep``). O(n·K·D²)
        for 'full'; per-row values are not kept for files or dask.
        """
        params = self._get_parameters()
        family = get_family(self.covariance_type)
        with np.errstate(over="ignore", invalid="ignore"):  # huge weights: refused below
            log_likelihood, entropy = scale.sum_rows(
                X,
                params,
                family,
                self._log_const(params, family),
                scale.rows.LOG_LIKELIHOOD_AND_ENTROPY,
                sample_weight,
            )
        if sample_weight is None:
            n_samples = X.shape[0]
        else:
            with np.errstate(over="ignore"):
                n_samples = float(np.sum(sample_weight, dtype=np.float64))  # dask: computed
            if not np.isfinite(n_samples) or not np.isfinite(log_likelihood):
                raise ValueError(
                    "sample_weight sums to more than the largest float64 number: the "
                    "criteria count weights as observations. Divide the weights by a "
                    "common factor (a fit depends only on their ratios)."
                )
        return criteria.all_criteria(log_likelihood, entropy, self._n_parameters(), n_samples)

    def _weighted_criteria(self, X, sample_weight) -> dict[str, float]:
        X = self._predict_rows(X)
        w = None if sample_weight is None else self._check_weights(X, sample_weight)
        return self._criteria(X, w)

    def aic(self, X, sample_weight=None):
        """Akaike information criterion on X; lower is better.

        ``-2 · log-likelihood + 2 · n_parameters`` (:mod:`gmm.criteria`). One
        E-step over X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights, as in ``sweep``: the log-likelihood is
            ``sum_i w_i log p(x_i)`` and BIC's ``n`` is ``sum_i w_i``, so an
            integer weight counts as that many repeated rows. (A fit depends
            only on the weights' ratios; the criteria count them.)
        """
        return self._weighted_criteria(X, sample_weight)["aic"]

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion on X; lower is better.

        ``-2 · log-likelihood + n_parameters · log(n)`` (:mod:`gmm.criteria`),
        with ``n`` the number of rows (the total weight with
        ``sample_weight``: see :meth:`aic`). One E-step over X.
        """
        return self._weighted_criteria(X, sample_weight)["bic"]

    def icl(self, X, sample_weight=None):
        """Integrated completed likelihood (Biernacki, Celeux & Govaert, 2000).

        BIC plus twice the entropy of the responsibilities,
        ``-2 sum_n sum_k r_nk log r_nk`` (weighted with ``sample_weight``, as
        in :meth:`aic`). It penalises overlapping components; lower is better,
        as with :meth:`bic`. One E-step over X.
        """
        return self._weighted_criteria(X, sample_weight)["icl"]


def _has_holes(data) -> bool:
    """Whether ``data`` are rows fitted with their missing entries ('marginalize'). O(1)."""
    from .scale.incomplete import IncompleteFileData, IncompleteTrainingData

    if isinstance(data, IncompleteTrainingData):
        return True
    return isinstance(data, IncompleteFileData) and data.kept is None


def _prior_in_units(prior, map_mean, map_covariance):
    """``prior`` with its mean and scale mapped to other units (:mod:`gmm.units`)."""
    from dataclasses import replace

    scale = map_covariance(np.asarray(prior.scale, dtype=np.float64))
    return replace(prior, mean=map_mean(prior.mean), scale=scale)
