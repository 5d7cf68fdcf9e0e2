"""Products of rows with a few components' matrices: einsum or BLAS by blocks, to rounding."""

from __future__ import annotations

import numpy as np
import pytest

from gmm.covariance import _products
from gmm.covariance._products import EINSUM_COMPONENTS, EINSUM_FEATURES, rows_product, weighted_sum


@pytest.mark.parametrize("k", [1, EINSUM_COMPONENTS, EINSUM_COMPONENTS + 1, 5])
@pytest.mark.parametrize("d", [7, EINSUM_FEATURES + 3])  # BLAS only, then einsum for few K
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("einsum", [True, False])  # False: BLAS whatever the shape
def test_products_equal_float64_products_of_the_same_numbers(k, d, dtype, einsum, monkeypatch):
    monkeypatch.setattr(_products, "BLOCK_BYTES", 1)  # blocks of 256 rows: 700 end ragged
    rng = np.random.default_rng(k * d)
    X = (rng.normal(size=(700, d)) * np.logspace(-4, 4, d) + 1e3).astype(dtype)
    matrix = rng.normal(size=(k, d)).astype(dtype)
    resp = rng.random((k, 700)).astype(dtype)
    wide, mat, res = X.astype(np.float64), matrix.astype(np.float64), resp.astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    # Each entry within rtol of the sum of its terms' sizes (the products' rounding).
    for ours, exact, size in (
        (rows_product(matrix, X, einsum=einsum), mat @ wide.T, np.abs(mat) @ np.abs(wide).T),
        (weighted_sum(resp, X, einsum=einsum), res @ wide, res @ np.abs(wide)),
    ):
        assert ours.dtype == dtype
        assert ours.shape == exact.shape
        assert np.all(np.abs(ours - exact) <= rtol * size)


def test_einsum_only_for_few_components_and_many_features():
    assert _products.einsum_pays(EINSUM_COMPONENTS, EINSUM_FEATURES)
    assert not _products.einsum_pays(EINSUM_COMPONENTS + 1, EINSUM_FEATURES)
    assert not _products.einsum_pays(1, EINSUM_FEATURES - 1)
    assert _products._whole_pays(1, EINSUM_FEATURES - 1)
    assert not _products._whole_pays(2, EINSUM_FEATURES - 1)
    assert not _products._whole_pays(1, EINSUM_FEATURES)


@pytest.mark.parametrize("k, d", [(1, 7), (EINSUM_COMPONENTS, EINSUM_FEATURES), (5, 7)])
def test_rows_product_into_a_view_of_a_wider_array(k, d, monkeypatch):
    # The plain kernels write a row block's product into their (K, rows) result.
    monkeypatch.setattr(_products, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(d)
    X = rng.normal(size=(700, d))
    matrix = rng.normal(size=(k, d))
    result = np.full((k, 1000), np.nan)
    written = rows_product(matrix, X, out=result[:, 100:800])
    assert np.shares_memory(written, result)
    np.testing.assert_allclose(result[:, 100:800], matrix @ X.T, rtol=1e-12, atol=1e-12 * d)
    assert np.isnan(result[:, :100]).all() and np.isnan(result[:, 800:]).all()


@pytest.mark.parametrize("k", [1, EINSUM_COMPONENTS])
def test_einsum_false_gives_blas_products_where_einsum_would_run(k, monkeypatch):
    # Where einsum_pays, einsum=False takes the BLAS row blocks: the same products
    # to rounding, and bit for bit those of the BLAS path forced another way.
    monkeypatch.setattr(_products, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(k)
    d = EINSUM_FEATURES + 8
    assert _products.einsum_pays(k, d)
    X = rng.normal(size=(700, d)) * np.logspace(-4, 4, d) + 1e6
    matrix, resp = rng.normal(size=(k, d)), rng.random((k, 700))
    blas_product, blas_sum = (
        rows_product(matrix, X, einsum=False),
        weighted_sum(resp, X, einsum=False),
    )
    np.testing.assert_allclose(blas_product, rows_product(matrix, X), rtol=1e-11)
    np.testing.assert_allclose(blas_sum, weighted_sum(resp, X), rtol=1e-12)
    monkeypatch.setattr(_products, "EINSUM_COMPONENTS", 0)  # einsum never pays
    np.testing.assert_array_equal(blas_product, rows_product(matrix, X))
    np.testing.assert_array_equal(blas_sum, weighted_sum(resp, X))
