"""'EVI': equal volume, variable shape, axis-aligned: ``Sigma_k = lambda A_k`` (mclust)."""

from __future__ import annotations

from ..decomposition import root_det
from .family import AxisAligned


class EVI(AxisAligned):
    """Closed form: ``A_k = diag(W_k) / |diag(W_k)|^(1/d)``,
    ``lambda = sum_k |diag(W_k)|^(1/d) / n``. mclust's ``nVarParams``: 1 + K(d - 1).
    """

    model = "EVI"

    def n_parameters(self, n_components, n_features):
        return 1 + n_components * (n_features - 1)

    def _constrain(self, scatters, nk, state):
        volumes = root_det(scatters)
        return scatters / volumes[:, None] * (volumes.sum() / nk.sum()), None
