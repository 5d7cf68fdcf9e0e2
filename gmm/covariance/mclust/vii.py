"""'VII': variable volume, spherical (mclust; scikit-learn's 'spherical').

``Sigma_k = lambda_k I``.
"""

from __future__ import annotations

import numpy as np

from ..spherical import SphericalKernels
from .family import AxisAligned


class VII(SphericalKernels, AxisAligned):
    """One variance per component. Closed form: ``lambda_k = tr(W_k) / (n_k d)``.
    mclust's ``nVarParams``: K.
    """

    model = "VII"

    def n_parameters(self, n_components, n_features):
        return n_components

    def _constrain(self, scatters, nk, state):
        variances = scatters.sum(axis=1) / (nk * scatters.shape[1])
        return np.repeat(variances[:, None], scatters.shape[1], axis=1), None
