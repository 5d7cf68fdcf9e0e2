"""'EII': equal volume, spherical: ``Sigma_k = lambda I`` (mclust)."""

from __future__ import annotations

import numpy as np

from ..spherical import SphericalKernels
from .family import AxisAligned


class EII(SphericalKernels, AxisAligned):
    """One variance for every component and feature. Closed form:
    ``lambda = sum_k tr(W_k) / (n d)``. mclust's ``nVarParams``: 1.
    """

    model = "EII"

    def n_parameters(self, n_components, n_features):
        return 1

    def _constrain(self, scatters, nk, state):
        variance = scatters.sum() / (nk.sum() * scatters.shape[1])
        return np.full(scatters.shape, variance), None
