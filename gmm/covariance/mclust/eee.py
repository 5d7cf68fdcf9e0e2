"""'EEE': one covariance shared by all components (mclust; scikit-learn's 'tied')."""

from __future__ import annotations

from .family import Pooled


class EEE(Pooled):
    """Closed form: ``Sigma = sum_k W_k / n``. mclust's ``nVarParams``: d(d + 1)/2."""

    model = "EEE"

    def n_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def _constrain(self, scatters, nk, state):
        return scatters / nk.sum(), None
