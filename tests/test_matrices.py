"""Kernels of gmm.covariance._matrices against numpy's general routines."""

from __future__ import annotations

import numpy as np
import pytest

from gmm.covariance import _matrices
from tests.mixture_data import random_covariances


@pytest.mark.parametrize("d", [1, 2, 5, 30])
def test_inverse_square_norms_are_the_traces_of_the_covariances(d):
    """||U⁻¹||_F² = tr((U U')⁻¹), against np.linalg.inv; inf where not finite or singular."""
    rng = np.random.default_rng(d)
    cov = random_covariances(rng, "full", 4, d)
    cov *= np.logspace(-6, 6, 4)[:, None, None]  # tight to wide components
    factors = _matrices.precision_factor(cov)
    factors[2, 0, 0] = 0.0  # singular
    factors[3, -1, -1] = np.inf
    finite = np.isfinite(factors).all(axis=(1, 2))
    norms = _matrices.inverse_square_norms(factors, finite)
    expected = np.trace(cov[:2], axis1=1, axis2=2)
    np.testing.assert_allclose(norms[:2], expected, rtol=1e-9)
    assert np.isinf(norms[2]) and np.isinf(norms[3])


@pytest.mark.parametrize("k", [3, 40])  # one LAPACK call each, and the batched solve
@pytest.mark.parametrize("d", [1, 3, 20])
def test_upper_inverse_is_the_inverse(k, d):
    """Upper triangular, and U⁻¹ against np.linalg.inv, for factors tight to wide."""
    rng = np.random.default_rng(k + d)
    cov = random_covariances(rng, "full", k, d) * np.logspace(-6, 6, k)[:, None, None]
    factors = _matrices.precision_factor(cov)
    inverse = _matrices.upper_inverse(factors)
    assert np.all(np.tril(inverse, -1) == 0)
    expected = np.linalg.inv(factors)
    scale = np.max(np.abs(expected), axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(inverse / scale, expected / scale, atol=1e-12)


@pytest.mark.parametrize("squarings", [0, 1, 3])
@pytest.mark.parametrize("d", [1, 3, 41])
def test_largest_eigenvalue_bounds_hold_and_tighten(squarings, d):
    """lower <= eigvalsh's largest eigenvalue <= upper, upper / lower = D^(1/(2m)),
    for precisions from 1e-150 to 1e150 (no overflow in the powers) and a
    repeated top eigenvalue."""
    rng = np.random.default_rng(d)
    k = 8
    q = np.linalg.qr(rng.normal(size=(k, d, d)))[0]
    eigenvalues = np.exp(rng.uniform(-3, 3, size=(k, d)))
    eigenvalues[0] = 2.0  # all equal: the lower bound is the one that is tight
    eigenvalues *= np.logspace(-150, 150, k)[:, None]
    matrices = (q * eigenvalues[:, None, :]) @ np.swapaxes(q, 1, 2)
    matrices = 0.5 * (matrices + np.swapaxes(matrices, 1, 2))
    lower, upper = _matrices.largest_eigenvalue_bounds(matrices, squarings)
    top = eigenvalues.max(axis=1)
    assert np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert np.all(lower <= top * (1 + 1e-9)) and np.all(top <= upper * (1 + 1e-9))
    np.testing.assert_allclose(upper / lower, d ** (0.5 / 2**squarings), rtol=1e-12)
    if d > 1:  # a flat spectrum: the Frobenius norm of A^m is sqrt(D) top^m
        np.testing.assert_allclose(lower[0], 2.0 * 1e-150, rtol=1e-9)
