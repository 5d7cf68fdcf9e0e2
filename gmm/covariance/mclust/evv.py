"""'EVV': equal volume, variable shape and orientation (mclust).

``Sigma_k = lambda C_k`` with ``|C_k| = 1``.
"""

from __future__ import annotations

import numpy as np

from .family import General


class EVV(General):
    """Closed form: ``C_k = W_k / |W_k|^(1/d)``, ``lambda = sum_k |W_k|^(1/d) / n``.
    mclust's ``nVarParams``: 1 - K + K d(d + 1)/2.
    """

    model = "EVV"

    def n_parameters(self, n_components, n_features):
        d = n_features
        return 1 - n_components + n_components * d * (d + 1) // 2

    def _constrain(self, scatters, nk, state):
        sign, log_det = np.linalg.slogdet(scatters)
        volumes = np.where(sign > 0, np.exp(log_det / scatters.shape[1]), 0.0)
        scale = volumes.sum() / nk.sum()
        return scatters * (scale / volumes)[:, None, None], None
