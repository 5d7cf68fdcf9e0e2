"""'VEI': variable volume, equal shape, axis-aligned: ``Sigma_k = lambda_k A`` (mclust)."""

from __future__ import annotations

from ..decomposition import equal_shape
from .family import AxisAligned


class VEI(AxisAligned):
    """Iterative M-step: Celeux & Govaert's fixed point on ``diag(W_k)``
    (:func:`gmm.covariance.decomposition.equal_shape`), warm-started from the
    last volumes. mclust's ``nVarParams``: K + d - 1.
    """

    model = "VEI"

    def n_parameters(self, n_components, n_features):
        return n_components + n_features - 1

    def _constrain(self, scatters, nk, state):
        start = None if state is None else state["volumes"]
        volumes, shape, result = equal_shape(
            scatters, nk, start, self.inner_tol, self.max_inner_iter
        )
        self._warn_cap(result, "fixed point of volumes and shape")
        return volumes[:, None] * shape[None, :], {"volumes": volumes}
