"""Initializers: registry, and the same draws as scikit-learn's building blocks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus

from gmm.initialization import get_initializer, init_methods


def test_registry():
    assert init_methods() == ("kmeans", "k-means++", "random", "random_from_data")
    with pytest.raises(ValueError, match="Valid init_params are: 'kmeans'"):
        get_initializer("kmeanz")


def test_kmeans_labels_equal_kmeans(moons):
    labels = get_initializer("kmeans")(moons, 5, np.random.RandomState(3), None)
    ref = KMeans(5, n_init=1, random_state=np.random.RandomState(3)).fit(moons).labels_
    np.testing.assert_array_equal(labels, ref)


def test_kmeans_plusplus_one_hot_at_seeds(moons):
    resp = get_initializer("k-means++")(moons, 4, np.random.RandomState(1), None)
    _, idx = kmeans_plusplus(moons, 4, random_state=np.random.RandomState(1))
    expected = np.zeros((moons.shape[0], 4))
    expected[idx, np.arange(4)] = 1
    np.testing.assert_array_equal(resp, expected)


def test_random_rows_sum_to_one(moons):
    resp = get_initializer("random")(moons, 4, np.random.RandomState(0), None)
    np.testing.assert_allclose(resp.sum(axis=1), 1)
    assert np.all(resp > 0)


def test_random_from_data_picks_distinct_rows_with_positive_weight(moons):
    w = np.zeros(moons.shape[0])
    w[:10] = 1.0
    resp = get_initializer("random_from_data")(moons, 4, np.random.RandomState(0), w)
    rows = np.flatnonzero(resp.sum(axis=1))
    assert len(rows) == 4 and np.all(rows < 10)
    np.testing.assert_array_equal(resp.sum(axis=0), np.ones(4))
