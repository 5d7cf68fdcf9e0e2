"""gmm.validation: the weights a fit takes (relative) and the checks at the boundary."""

from __future__ import annotations

import numpy as np
import pytest

from gmm import validation


@pytest.mark.parametrize(
    "given, expected",
    [
        # divided by the max, then scaled to mean 1 over the positive weights
        ([1.0, 3.0], [0.5, 1.5]),
        ([0.0, 1e-300, 3e-300], [0.0, 0.5, 1.5]),
        ([5e-324, 5e-324], [1.0, 1.0]),  # subnormal only: still usable
        ([1.7e308, 1.7e308, 0.0], [1.0, 1.0, 0.0]),  # the sum would overflow
        ([2.0, 0.0, 0.0, 6.0], [0.5, 0.0, 0.0, 1.5]),
    ],
)
def test_relative_weights_have_mean_one_over_the_positive_ones(given, expected):
    result = validation.relative_weights(np.asarray(given, dtype=np.float64))
    np.testing.assert_allclose(result, expected, rtol=1e-15)
    assert result.sum() == pytest.approx(np.count_nonzero(given), rel=1e-15)


@pytest.mark.parametrize("factor", (2.0**-1070, 1e-300, 1e-14, 1.0, 1e14, 1e300, 1.79e308))
def test_fit_weights_do_not_depend_on_a_common_factor(factor):
    # 2^-1070: subnormal weights, exact multiples of powers of two
    w = np.array([0.25, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(
        validation.fit_weights(w * factor), validation.fit_weights(w), rtol=1e-15
    )


@pytest.mark.parametrize("bad", ([1.0, np.nan], [0.0, 0.0], [1.0, -1.0], [[1.0]], "text", -2.0))
def test_fit_weights_leave_unusable_weights_for_the_check_to_word(bad):
    assert validation.fit_weights(bad) is bad


def test_check_sample_weight_returns_the_weights_as_given():
    # criteria count weights as observations: not rescaled here
    w = validation.check_sample_weight([2.0, 3.0], 2, np.float32)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, [2.0, 3.0])


def test_check_fit_data_returns_plain_float_arrays_as_scikit_learn_does(monkeypatch):
    """A plain finite float ndarray skips scikit-learn's check_array (validation's fast
    path) and comes back as check_array returns it: the same object, dtype and values
    (C and Fortran order, float32, an offset of 1e6, a strided view, finite values whose
    sum overflows)."""
    from sklearn.utils.validation import check_array

    rng = np.random.default_rng(0)
    X = 1e6 + rng.normal(size=(50, 3)) * np.logspace(-4, 4, 3)
    big = np.full((4, 2), 1.7e308)  # finite, but its sum overflows: check_array decides
    for data in (X, np.asfortranarray(X), X.astype(np.float32), X[::2, ::2], big):
        expected = check_array(data, dtype=[np.float64, np.float32], ensure_min_samples=2)
        result = validation.check_fit_data(data, 2, "GaussianMixture")
        assert result is expected or np.shares_memory(result, data)
        assert result.dtype == expected.dtype and result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)
    assert validation._plain_fit_data(X, 2) and not validation._plain_fit_data(big, 2)


@pytest.mark.parametrize(
    "data, error",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "infinity"),
        (np.array([[1.0, 2.0]]), "minimum of 2"),
        (np.ones((3, 2)), "n_components = 4"),
        (np.ones((3, 0)), "0 feature"),
        (np.ones(6), "2D array"),
    ],
)
def test_check_fit_data_words_every_bad_array_as_before(data, error):
    """Arrays the fast path does not take (NaN, infinity, too few rows, no column, 1-D)
    go through scikit-learn's check_array and the K check: the same errors."""
    assert not validation._plain_fit_data(data, 4)
    with pytest.raises(ValueError, match=error):
        validation.check_fit_data(data, 4, "GaussianMixture")


def test_check_fit_data_converts_what_it_does_not_take_plainly():
    """Integers, booleans, float16 and lists still become float64 (check_array)."""
    for data in (np.arange(6).reshape(3, 2), np.ones((3, 2), dtype=bool), [[1, 2], [3, 4]]):
        assert validation.check_fit_data(data, 2, "GaussianMixture").dtype == np.float64
    half = np.ones((3, 2), dtype=np.float16)
    assert not validation._plain_fit_data(half, 2)
    assert validation.check_fit_data(half, 2, "GaussianMixture").dtype == np.float64
