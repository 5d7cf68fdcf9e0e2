"""'VEE': variable volume, equal shape and orientation: ``Sigma_k = lambda_k C`` (mclust)."""

from __future__ import annotations

from ..decomposition import equal_shape
from .family import General, symmetric


class VEE(General):
    """Iterative M-step: Celeux & Govaert's fixed point on the full ``W_k``
    (:func:`gmm.covariance.decomposition.equal_shape`), warm-started from the
    last volumes. mclust's ``nVarParams``: K + (d - 1) + d(d - 1)/2.
    """

    model = "VEE"

    def n_parameters(self, n_components, n_features):
        d = n_features
        return n_components + (d - 1) + d * (d - 1) // 2

    def _constrain(self, scatters, nk, state):
        start = None if state is None else state["volumes"]
        volumes, shape, result = equal_shape(
            scatters, nk, start, self.inner_tol, self.max_inner_iter
        )
        self._warn_cap(result, "fixed point of volumes and shape")
        return symmetric(volumes[:, None, None] * shape[None]), {"volumes": volumes}
