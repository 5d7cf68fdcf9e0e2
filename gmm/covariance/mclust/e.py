"""'E': one-feature data, one variance for every component (mclust)."""

from __future__ import annotations

from .eii import EII


class E(EII):
    """mclust's univariate equal-variance model; ``nVarParams``: 1."""

    model = "E"
    univariate = True
