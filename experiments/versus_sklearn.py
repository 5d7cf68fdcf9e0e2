"""Which covariance types an experiment can fit side by side with scikit-learn.

Experiments ask :func:`gmm.covariance_types` rather than naming the types.
gmm will register more families (mclust has 14); scikit-learn's
``GaussianMixture`` knows only its four, so a comparison runs on the
intersection.
"""

from __future__ import annotations

import gmm

#: The ``covariance_type`` values scikit-learn's GaussianMixture accepts (its names,
#: which are also ours).
SKLEARN_COVARIANCE_TYPES = frozenset({"spherical", "diag", "full", "tied"})


def shared_covariance_types() -> tuple[str, ...]:
    """``gmm.covariance_types()`` that scikit-learn can fit too, in gmm's order."""
    return tuple(name for name in gmm.covariance_types() if name in SKLEARN_COVARIANCE_TYPES)
