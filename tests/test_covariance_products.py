"""Products of rows with a few components' matrices: einsum or BLAS, the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from gmm.covariance._products import EINSUM_COMPONENTS, rows_product, weighted_sum


@pytest.mark.parametrize("k", [1, EINSUM_COMPONENTS, EINSUM_COMPONENTS + 1, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_products_equal_numpy_matmul(k, dtype):
    rng = np.random.default_rng(k)
    X = (rng.normal(size=(300, 7)) * np.logspace(-4, 4, 7) + 1e3).astype(dtype)
    matrix = rng.normal(size=(k, 7)).astype(dtype)
    resp = rng.random((k, 300)).astype(dtype)
    wide = X.astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    # Against float64 products of the same numbers; each entry within its own size.
    for ours, exact, size in (
        (
            rows_product(matrix, X),
            matrix.astype(np.float64) @ wide.T,
            np.abs(matrix) @ np.abs(wide).T,
        ),
        (
            weighted_sum(resp, X),
            resp.astype(np.float64) @ wide,
            resp.astype(np.float64) @ np.abs(wide),
        ),
    ):
        assert ours.dtype == dtype
        assert ours.shape == exact.shape
        assert np.all(np.abs(ours - exact) <= rtol * size)
