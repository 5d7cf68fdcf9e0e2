"""'EVE': equal volume and orientation, variable shape: ``Sigma_k = lambda D A_k D'`` (mclust)."""

from __future__ import annotations

from ..decomposition import common_orientation
from .family import General, from_axes


class EVE(General):
    """Iterative M-step: sweeps of exact plane rotations for the common
    orientation (:func:`gmm.covariance.decomposition.common_orientation`; the
    optimum of Browne & McNicholas's MM algorithm, in far fewer steps),
    warm-started from the last orientation. mclust's ``nVarParams``:
    1 + K(d - 1) + d(d - 1)/2.
    """

    model = "EVE"
    equal_volume = True

    def n_parameters(self, n_components, n_features):
        d = n_features
        return 1 + n_components * (d - 1) + d * (d - 1) // 2

    def _constrain(self, scatters, nk, state):
        start = None if state is None else state["orientation"]
        axes, diagonals, result = common_orientation(
            scatters, nk, self.equal_volume, start, self.inner_tol, self.max_inner_iter
        )
        self._warn_cap(result, "sweeps of rotations for the common orientation")
        return from_axes(axes, diagonals), {"orientation": axes}
