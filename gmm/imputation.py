"""``GaussianMixtureImputer``: fill missing entries from a Gaussian mixture.

A scikit-learn transformer around :class:`gmm.GaussianMixture` with
``nan_policy='marginalize'``: ``fit`` runs exact EM over the observed entries
(Ghahramani & Jordan, 1994), ``transform`` fills each hole with its
conditional expectation ``E[x_m | x_o]`` under the fitted mixture
(:meth:`gmm.GaussianMixture.impute`). It works in a ``Pipeline`` before any
estimator that refuses NaN.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .estimator import GaussianMixture

__all__ = ["GaussianMixtureImputer"]


class GaussianMixtureImputer(TransformerMixin, BaseEstimator):
    """Impute missing values (NaN) by their conditional mean under a Gaussian mixture.

    Parameters
    ----------
    n_components : int, default=1
        Components of the mixture; 1 is a single Gaussian (like an
        expectation-maximisation imputer with one multivariate normal).
    covariance_type : str, default='full'
        Any of ``gmm.covariance_types()``.
    tol, reg_covar, max_iter, n_init, init_params, random_state :
        As in :class:`gmm.GaussianMixture`.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture (``nan_policy='marginalize'``).
    n_iter_ : int
        EM iterations of the mixture's best start.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only for input with string column names (pandas).

    Notes
    -----
    ``fit`` costs what ``GaussianMixture.fit`` costs, plus O(K·(m³ + D²)) per
    incomplete row with m holes and iteration; ``transform`` O(n·K·(m³ + D²))
    for the incomplete rows and O(n·D) for the others. Columns with no
    observed entry, rows with none in ``fit`` and infinities are refused.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm import GaussianMixtureImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=400)
    >>> X[::4, 1] = np.nan
    >>> filled = GaussianMixtureImputer(random_state=0).fit_transform(X)
    >>> bool(np.isnan(filled).any())
    False
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
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture on the observed entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        # Every constructor argument is GaussianMixture's, under the same name.
        mixture = GaussianMixture(nan_policy="marginalize", **self.get_params())
        mixture.fit(X, sample_weight=sample_weight)
        validate_data(self, X, skip_check_array=True, reset=True)
        self.mixture_ = mixture
        self.n_iter_ = mixture.n_iter_
        return self

    def transform(self, X):
        """X with each NaN replaced by its conditional mean under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            In X's float dtype (float32 stays float32).
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan"
        )
        return self.mixture_.impute(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
