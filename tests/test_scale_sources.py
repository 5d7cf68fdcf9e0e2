"""gmm.scale.sources: the column sums and the weighted column mean (the shift).

References: ``math.fsum`` (the exactly rounded sum of each column), ``np.average``;
the summation order is checked against itself on other memory layouts of the
same rows (misaligned, column-major), where an order that depended on alignment
would give other bits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gmm import em
from gmm.scale.sources import column_mean, column_sums


def hard_rows(n_rows: int, n_features: int, dtype, seed: int = 0) -> np.ndarray:
    """Rows with an offset of 1e6 and features from 1e-4 to 1e4 in size."""
    rng = np.random.default_rng(seed)
    sizes = np.logspace(-4, 4, n_features)
    return (1e6 + rng.standard_normal((n_rows, n_features)) * sizes).astype(dtype)


def misaligned(X: np.ndarray) -> np.ndarray:
    """A C-ordered copy of X whose data start one element past an aligned buffer's start."""
    buffer = np.empty(X.size + 1, dtype=X.dtype)
    copy = buffer[1:].reshape(X.shape)
    copy[...] = X
    return copy


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_features", [1, 2, 3, em.NARROW_FEATURES - 1, em.NARROW_FEATURES, 12])
def test_column_sums_are_accurate_and_independent_of_the_layout(n_features, dtype):
    X = hard_rows(5003, n_features, dtype)
    sums = column_sums(X)
    assert sums.dtype == dtype and sums.shape == (n_features,)
    eps = np.finfo(dtype).eps
    for j in range(n_features):
        column = X[:, j].astype(np.float64)
        exact = math.fsum(column.tolist())
        # Pairwise (narrow) or row-by-row (wide) summation, each step rounded in X's dtype.
        bound = X.shape[0] * eps * math.fsum(np.abs(column).tolist())
        assert abs(float(sums[j]) - exact) <= bound
    # Narrow rows: any layout; wider ones: numpy's sum(axis=0) of C-ordered rows.
    narrow = n_features < em.NARROW_FEATURES
    for layout in (misaligned(X), np.asfortranarray(X)) if narrow else (misaligned(X),):
        np.testing.assert_array_equal(column_sums(layout), sums)


def test_narrow_column_sums_are_each_columns_own_pairwise_sum():
    """Narrow rows are summed column by column (numpy's pairwise sum of each column,
    whatever its stride): the same bits as each contiguous column's own sum."""
    X = hard_rows(70_001, 2, np.float64, seed=1)
    expected = [np.add.reduce(np.ascontiguousarray(X[:, j])) for j in range(2)]
    np.testing.assert_array_equal(column_sums(X), expected)


@pytest.mark.parametrize("n_features", [2, 12])
@pytest.mark.parametrize("weighted", [False, True])
def test_column_mean_is_the_weighted_mean(n_features, weighted, monkeypatch):
    X = hard_rows(3001, n_features, np.float64, seed=2)
    w = np.random.default_rng(3).uniform(0, 3, X.shape[0]) if weighted else None
    monkeypatch.setattr(em, "CHUNK_BYTES", 4096)  # several chunks
    shift = column_mean(X, w)
    expected = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(shift, expected, rtol=1e-14)


@pytest.mark.parametrize("n_features", [2, 12])
def test_finite_columns_whose_sums_overflow_give_an_infinite_shift(n_features):
    """As a row-by-row sum does (a pairwise sum meets inf - inf): gmm.units then refuses
    the data with the reason (tests/test_units.py)."""
    X = np.ones((200, n_features))
    X[:100, 0], X[100:, 0] = 1.5e308, -1.5e308
    shift = column_mean(X, None)
    assert np.isinf(shift[0]) and np.array_equal(shift[1:], np.ones(n_features - 1))
