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
