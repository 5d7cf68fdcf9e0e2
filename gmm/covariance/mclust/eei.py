"""'EEI': equal volume and shape, axis-aligned: ``Sigma_k = lambda A`` (mclust)."""

from __future__ import annotations

import numpy as np

from .family import AxisAligned


class EEI(AxisAligned):
    """One diagonal covariance for all components. Closed form:
    ``lambda A = diag(sum_k W_k) / n``. mclust's ``nVarParams``: d.
    """

    model = "EEI"

    def n_parameters(self, n_components, n_features):
        return n_features

    def _constrain(self, scatters, nk, state):
        shared = scatters.sum(axis=0) / nk.sum()
        return np.repeat(shared[None], scatters.shape[0], axis=0), None
