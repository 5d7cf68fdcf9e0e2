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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_entropy_of_component_major_responsibilities_equals_xlogy(rng, dtype):
    """The E-step's (K, n) responsibilities seen as (n, K), with exact zeros, a
    subnormal entry and a NaN row, against scipy's xlogy summed per row."""
    from scipy.special import xlogy

    by_component = rng.dirichlet(np.ones(5), size=40).T.astype(dtype).copy()
    by_component[1:, 0] = 0.0
    by_component[0, 0] = 1.0
    by_component[2, 1] = np.finfo(dtype).tiny / 4  # subnormal
    by_component[:, 2] = np.nan
    resp = by_component.T
    expected = -np.sum(xlogy(resp, resp), axis=1)
    got = row_entropy(resp)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=8 * np.finfo(dtype).eps, atol=0)
    assert got[0] == 0.0 and np.isnan(got[2])


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
