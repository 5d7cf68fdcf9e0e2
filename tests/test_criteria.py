"""gmm.criteria: the per-row entropy of the responsibilities.

Reference: scipy.stats.entropy (natural log), row by row.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy

from gmm.criteria import row_entropy


def test_row_entropy_matches_scipy(rng):
    resp = rng.dirichlet(np.ones(4), size=50)
    resp[0] = [1.0, 0.0, 0.0, 0.0]  # 0 log 0 counts as 0
    np.testing.assert_allclose(row_entropy(resp), entropy(resp, axis=1), rtol=1e-12, atol=0)


def test_row_entropy_keeps_float32(rng):
    resp = rng.dirichlet(np.ones(3), size=10).astype(np.float32)
    assert row_entropy(resp).dtype == np.float32
