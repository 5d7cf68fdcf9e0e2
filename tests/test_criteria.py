"""gmm.criteria: the per-row entropy of the responsibilities; mclust's ICL.

Reference: scipy.stats.entropy (natural log), row by row; the definitions.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import entropy

from gmm.criteria import icl, icl_map, row_entropy


def test_row_entropy_matches_scipy(rng):
    resp = rng.dirichlet(np.ones(4), size=50)
    resp[0] = [1.0, 0.0, 0.0, 0.0]  # 0 log 0 counts as 0
    np.testing.assert_allclose(row_entropy(resp), entropy(resp, axis=1), rtol=1e-12, atol=0)


def test_row_entropy_keeps_float32(rng):
    resp = rng.dirichlet(np.ones(3), size=10).astype(np.float32)
    assert row_entropy(resp).dtype == np.float32


@settings(max_examples=50, deadline=None)
@given(
    resp=arrays(
        np.float64, st.tuples(st.integers(1, 20), st.integers(1, 5)), elements=st.floats(0.01, 1)
    )
)
def test_icl_map_is_bic_minus_twice_the_map_log_probabilities_and_below_icl(resp):
    # mclust's ICL (in our sign) from its definition; and the entropy bound
    # -sum r log r >= -log max r makes the soft ICL never smaller.
    resp = resp / resp.sum(axis=1, keepdims=True)
    map_log_sum = float(np.sum(np.log(resp.max(axis=1))))
    ll, p, n = -123.4, 7, 40
    expected = -2 * ll + p * np.log(n) - 2 * map_log_sum
    assert icl_map(ll, p, n, map_log_sum) == pytest.approx(expected, rel=1e-12)
    assert icl(ll, p, n, row_entropy(resp).sum()) >= icl_map(ll, p, n, map_log_sum) - 1e-9
