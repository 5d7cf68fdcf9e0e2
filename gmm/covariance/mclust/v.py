"""'V': one-feature data, one variance per component (mclust)."""

from __future__ import annotations

from .vii import VII


class V(VII):
    """mclust's univariate variable-variance model; ``nVarParams``: K."""

    model = "V"
    univariate = True
