"""``GaussianMixtureIC``: the sweep behind the estimator interface.

``fit`` runs :func:`~gmm.selection.search.sweep` and keeps the best model;
:meth:`GaussianMixtureIC.from_sweep` builds the same fitted estimator from a
sweep that has already run (the command line and :func:`gmm.load` use it).
Everything else delegates to the best model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import validation
from ..estimator import state_kept_on_failure
from .search import is_lazy_source, sweep
from .table import SweepResult


class GaussianMixtureIC(DensityMixin, BaseEstimator):
    """A Gaussian mixture whose K and covariance type are chosen by AIC, BIC or ICL.

    ``fit`` runs :func:`sweep` over the grid and keeps the best model;
    ``predict``, ``predict_proba``, ``score_samples``, ``score``, ``sample``,
    ``aic``, ``bic`` and ``icl`` delegate to it.

    Parameters
    ----------
    n_components : int or iterable of int, default=(1, 2, ..., 10)
        Values of K to try (a range works; it is stored as given).
    covariance_type : str or iterable of str, default='all'
        'all', one name, or several names among 'spherical', 'diag', 'full', 'tied'.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
    tol, reg_covar, max_iter, n_init, init_params :
        As in :class:`~gmm.GaussianMixture`, the same for every fit.
    random_state : int, RandomState instance or None, default=None
        One integer seed for every fit (drawn once when not an int).
    n_jobs : int or None, default=None
        Parallel fits, see :func:`sweep`.
    checkpoint : str or path, default=None
        Resume file, see :func:`sweep`.
    progress : bool or None, default=None
        Progress bar, see :func:`sweep`.
    nan_policy : {'raise', 'omit', 'marginalize'}, default='raise'
        What NaN (a missing entry) in X means, as in :class:`~gmm.GaussianMixture`.
        The criteria then use the observed-data log-likelihood (of every row
        under 'marginalize', of the complete rows under 'omit'; see
        :func:`gmm.selection.information_criteria`).
    prior : None, 'default' or dict, default=None
        mclust's conjugate prior for every fit, as in
        :class:`~gmm.GaussianMixture` (``'default'`` is mclust's
        ``priorControl()``); the criteria then use the log-likelihood at the
        MAP estimate, as mclust's BIC with a prior does. Only the models that
        take a prior (see :mod:`gmm.prior`) can be in the grid.

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The best model, fitted.
    n_components_ : int
    covariance_type_ : str
        Its K and covariance type.
    best_params_ : dict
    table_ : SweepTable
        One row per fit (see :class:`SweepTable`).
    sweep_result_ : SweepResult
        Everything the sweep returned, with ``plot()``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only for input with string column names.

    Notes
    -----
    Store a fitted model with :func:`gmm.save` and read it with :func:`gmm.load`:
    the file holds no pickle, so loading it runs no code. Pickle works too, as
    for any scikit-learn estimator, but only for files you trust.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from gmm import GaussianMixtureIC
    >>> X, _ = make_blobs(200, centers=[[0, 0], [6, 0], [0, 6]], random_state=0)
    >>> model = GaussianMixtureIC(range(1, 5), covariance_type="full", random_state=0).fit(X)
    >>> model.n_components_, model.covariance_type_
    (3, 'full')
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        n_components=tuple(range(1, 11)),
        *,
        covariance_type="all",
        criterion="bic",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        random_state=None,
        n_jobs=None,
        checkpoint=None,
        progress=None,
        nan_policy="raise",
        prior=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.criterion = criterion
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.checkpoint = checkpoint
        self.progress = progress
        self.nan_policy = nan_policy
        self.prior = prior

    def fit(self, X, y=None, sample_weight=None):
        """Fit every grid point and keep the best by ``criterion``.

        Parameters
        ----------
        X : array-like, memory-mapped array or dask array of shape (n_samples, n_features)
            As for :func:`gmm.sweep`: memory maps and dask arrays are not
            brought into memory whole.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights (see :func:`sweep` for how the criteria use them).

        Returns
        -------
        self : GaussianMixtureIC
        """
        # validate_data resets n_features_in_ before the sweep runs: a failed or
        # interrupted fit must leave a fitted selection exactly as it was.
        with state_kept_on_failure(self):
            if is_lazy_source(X):
                # A memory map or dask array goes to the sweep as it is; the fits read it.
                validate_data(self, X, skip_check_array=True)
            else:
                X = validate_data(
                    self,
                    X,
                    dtype=list(validation.FLOAT_DTYPES),
                    ensure_min_samples=2,
                    ensure_all_finite=self._finite(),
                )
            result = sweep(
                X,
                self.n_components,
                self.covariance_type,
                criterion=self.criterion,
                n_init=self.n_init,
                random_state=self.random_state,
                sample_weight=sample_weight,
                n_jobs=self.n_jobs,
                checkpoint=self.checkpoint,
                progress=self.progress,
                tol=self.tol,
                reg_covar=self.reg_covar,
                max_iter=self.max_iter,
                init_params=self.init_params,
                nan_policy=self.nan_policy,
                prior=self.prior,
            )
        self._set_result(result)
        return self

    @classmethod
    def from_sweep(
        cls,
        result: SweepResult,
        *,
        feature_names_in: Sequence[str] | None = None,
        **params,
    ) -> GaussianMixtureIC:
        """A fitted ``GaussianMixtureIC`` holding a sweep that has already run.

        The same as ``fit`` would give when its sweep returned ``result``: the
        best model, its K and covariance type, the table.

        Parameters
        ----------
        result : SweepResult
            From :func:`gmm.sweep`.
        feature_names_in : sequence of str, default=None
            Column names of the data the sweep ran on. None: those the best
            model recorded (when the sweep ran on a DataFrame), else none.
        **params
            Constructor parameters (``n_components``, ``covariance_type``, ...),
            as the sweep was run; ``criterion`` defaults to the result's.

        Returns
        -------
        GaussianMixtureIC
            Fitted.

        Raises
        ------
        TypeError
            If ``result`` is not a SweepResult, or for an unknown parameter.
        ValueError
            If ``feature_names_in`` does not hold one name per feature.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from gmm import GaussianMixtureIC, sweep
        >>> X, _ = make_blobs(200, centers=[[0, 0], [6, 0]], random_state=0)
        >>> result = sweep(X, [1, 2, 3], "full", progress=False)
        >>> model = GaussianMixtureIC.from_sweep(
        ...     result, n_components=[1, 2, 3], covariance_type="full"
        ... )
        >>> model.n_components_, model.criterion, model.n_features_in_
        (2, 'bic', 2)
        >>> bool((model.predict(X) == result.best_estimator_.predict(X)).all())
        True
        """
        if not isinstance(result, SweepResult):
            raise TypeError(f"from_sweep needs a SweepResult, got {type(result).__name__}.")
        model = cls(**{"criterion": result.criterion, **params})
        best = result.best_estimator_
        n_features = best.n_features_in_
        if feature_names_in is None:
            feature_names_in = getattr(best, "feature_names_in_", None)
        if feature_names_in is not None:
            names = np.asarray(feature_names_in, dtype=object)
            if names.shape != (n_features,):
                raise ValueError(
                    f"feature_names_in has {names.size} name(s), the model has "
                    f"{n_features} features."
                )
            model.feature_names_in_ = names
        model.n_features_in_ = n_features
        model._set_result(result)
        return model

    def _set_result(self, result: SweepResult) -> None:
        self.sweep_result_ = result
        self.table_ = result.table
        self.best_estimator_ = result.best_estimator_
        self.best_params_ = dict(result.best_params_)
        self.n_components_ = result.best_params_["n_components"]
        self.covariance_type_ = result.best_params_["covariance_type"]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the best model's labels for X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _check(self, X):
        check_is_fitted(self)
        if is_lazy_source(X):
            # Checked for the number of features here; the best model reads the rows.
            validate_data(self, X, skip_check_array=True, reset=False)
            return X
        return validate_data(
            self,
            X,
            dtype=list(validation.FLOAT_DTYPES),
            reset=False,
            ensure_all_finite=self._finite(),
        )

    def _finite(self):
        """scikit-learn's ``ensure_all_finite``: NaN passes unless nan_policy is 'raise'.

        Infinity is refused later, by the fits, with its place.
        """
        return True if validation.check_nan_policy(self.nan_policy) == "raise" else "allow-nan"

    def predict(self, X):
        """Most probable component of each sample, under the best model.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._check(X)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Posterior probability of each component, under the best model.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components_)
        """
        X = self._check(X)
        return self.best_estimator_.predict_proba(X)

    def score_samples(self, X):
        """Log-likelihood of each sample under the best model.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        X = self._check(X)
        return self.best_estimator_.score_samples(X)

    def score(self, X, y=None):
        """Mean log-likelihood per sample under the best model.

        Returns
        -------
        float
        """
        X = self._check(X)
        return self.best_estimator_.score(X)

    def aic(self, X):
        """AIC of the best model on X (see ``GaussianMixture.aic``)."""
        X = self._check(X)
        return self.best_estimator_.aic(X)

    def bic(self, X):
        """BIC of the best model on X (see ``GaussianMixture.bic``)."""
        X = self._check(X)
        return self.best_estimator_.bic(X)

    def icl(self, X):
        """ICL of the best model on X (see ``GaussianMixture.icl``)."""
        X = self._check(X)
        return self.best_estimator_.icl(X)

    def sample(self, n_samples=1, random_state=None):
        """Draw from the best model; see ``GaussianMixture.sample``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.best_estimator_.sample(n_samples, random_state=random_state)
