"""'VVI': variable volume and shape, axis-aligned (mclust; scikit-learn's 'diag')."""

from __future__ import annotations

from .family import AxisAligned


class VVI(AxisAligned):
    """Closed form: ``Sigma_k = diag(W_k) / n_k``. mclust's ``nVarParams``: K·d."""

    model = "VVI"

    def n_parameters(self, n_components, n_features):
        return n_components * n_features

    def _constrain(self, scatters, nk, state):
        return scatters / nk[:, None], None
