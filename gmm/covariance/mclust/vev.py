"""'VEV': variable volume and orientation, equal shape (mclust).

``Sigma_k = lambda_k D_k A D_k'``.
"""

from __future__ import annotations

from ..decomposition import eigh_decreasing, equal_shape
from .family import General, from_axes


class VEV(General):
    """Iterative M-step: ``D_k`` are the eigenvectors of ``W_k``; the volumes and the
    shape are Celeux & Govaert's fixed point on the eigenvalues
    (:func:`gmm.covariance.decomposition.equal_shape`), warm-started from the
    last volumes. mclust's ``nVarParams``: K + (d - 1) + K d(d - 1)/2.
    """

    model = "VEV"

    def n_parameters(self, n_components, n_features):
        d = n_features
        return n_components + (d - 1) + n_components * d * (d - 1) // 2

    def _constrain(self, scatters, nk, state):
        values, axes = eigh_decreasing(scatters)
        start = None if state is None else state["volumes"]
        volumes, shape, result = equal_shape(values, nk, start, self.inner_tol, self.max_inner_iter)
        self._warn_cap(result, "fixed point of volumes and shape")
        return from_axes(axes, volumes[:, None] * shape[None]), {"volumes": volumes}
