"""'VVE': variable volume and shape, equal orientation: ``Sigma_k = lambda_k D A_k D'`` (mclust)."""

from __future__ import annotations

from .eve import EVE


class VVE(EVE):
    """Common principal components: the rotation sweeps of :class:`EVE` with a free
    diagonal ``lambda_k A_k`` per component. mclust's ``nVarParams``:
    K·d + d(d - 1)/2.
    """

    model = "VVE"
    equal_volume = False

    def n_parameters(self, n_components, n_features):
        d = n_features
        return n_components * d + d * (d - 1) // 2
