"""'EEV': equal volume and shape, variable orientation: ``Sigma_k = lambda D_k A D_k'`` (mclust)."""

from __future__ import annotations

from ..decomposition import eigh_decreasing
from .family import General, from_axes


class EEV(General):
    """Closed form: ``W_k = L_k O_k L_k'`` (eigenvalues decreasing), ``D_k = L_k``,
    ``lambda A = sum_k O_k / n``. mclust's ``nVarParams``: 1 + (d - 1) + K d(d - 1)/2.
    """

    model = "EEV"

    def n_parameters(self, n_components, n_features):
        d = n_features
        return 1 + (d - 1) + n_components * d * (d - 1) // 2

    def _constrain(self, scatters, nk, state):
        values, axes = eigh_decreasing(scatters)
        shared = values.sum(axis=0) / nk.sum()
        diagonals = shared[None].repeat(values.shape[0], axis=0)
        return from_axes(axes, diagonals), None
