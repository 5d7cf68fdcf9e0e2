"""'VVV': every component its own covariance (mclust; scikit-learn's 'full')."""

from __future__ import annotations

from .family import General


class VVV(General):
    """Closed form: ``Sigma_k = W_k / n_k``. mclust's ``nVarParams``: K d(d + 1)/2."""

    model = "VVV"

    def n_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def _constrain(self, scatters, nk, state):
        return scatters / nk[:, None, None], None
