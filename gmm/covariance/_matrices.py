"""Kernels on stacks of symmetric matrices shared by the 'full' and 'tied' families.

Every function takes a stack of shape (K, D, D) and does no validation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import lapack

from ..blas_threads import blas_threads_for, matrix_work
from .base import CollapsedComponentError


def precision_factor(covariances: np.ndarray) -> np.ndarray:
    """Upper factors ``U`` with ``inv(cov) = U @ U.T`` for a stack of covariances.

    ``U = inv(L).T`` where ``L`` is the lower Cholesky factor of the covariance.
    O(K·D³) time. Raises :class:`CollapsedComponentError` naming the first
    component whose covariance is not positive definite.
    """
    work = covariances.astype(np.float64, copy=False)
    try:
        chol = np.linalg.cholesky(work)
    except np.linalg.LinAlgError:
        raise CollapsedComponentError(_first_failure(work), covariances.dtype) from None
    factor = np.swapaxes(lower_inverse(chol), -1, -2)
    if not np.all(np.isfinite(factor)):
        raise CollapsedComponentError(_first_failure(work, factor), covariances.dtype)
    return factor.astype(covariances.dtype, copy=False)


#: Up to this many matrices, :func:`lower_inverse` inverts them one LAPACK call each.
TRIANGULAR_LOOP = 32
#: Beyond TRIANGULAR_LOOP matrices, :func:`lower_inverse` takes one batched solve only up to
#: this many features. Measured (one BLAS thread, CPU ms, dtrtri loop / batched solve):
#: D = 2, K = 110: 0.20 / 0.07; D = 5: 0.22 / 0.19; D = 10: 0.25 / 0.45; D = 41: 1.0 / 6.2;
#: D = 100: 10.7 / 33.3 (K = 1000: D = 5 1.9 / 1.4, D = 10 2.4 / 4.7).
BATCHED_FEATURES = 6


def lower_inverse(lower: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower triangular float64 matrices (K, D, D), lower triangular.

    One triangular inversion each (LAPACK ``dtrtri``, D³/3 flops: a seventh
    of a general solve); beyond :data:`TRIANGULAR_LOOP` matrices of at most
    :data:`BATCHED_FEATURES` features, one batched solve against the identity
    (less Python per matrix, which is what counts for tiny matrices), its
    round-off above the diagonal zeroed. A singular matrix gives non-finite
    entries. O(K·D³) time.
    """
    n_matrices, n_features = lower.shape[0], lower.shape[-1]
    if n_matrices > TRIANGULAR_LOOP and n_features <= BATCHED_FEATURES:
        eye = np.broadcast_to(np.eye(n_features), lower.shape)
        with np.errstate(all="ignore"):
            try:
                return np.tril(np.linalg.solve(lower, eye))
            except np.linalg.LinAlgError:
                pass  # a singular matrix: the loop marks it
    inverse = np.empty_like(lower)
    for k in range(n_matrices):
        inverse[k], info = lapack.dtrtri(lower[k], lower=1)
        if info != 0:
            inverse[k] = np.nan
    return inverse


def inverse_square_norms(factors: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """``||U_k⁻¹||_F²`` for a stack of upper triangular float64 factors, (K,) float64.

    The trace of ``(U_k U_k')⁻¹`` (the covariance, for a precision factor),
    from one triangular inversion each (LAPACK ``dtrtri``, D³/3 flops).
    ``inf`` for the factors not marked ``finite`` and for singular ones.
    O(K·D³) time.
    """
    norms = np.full(len(factors), np.inf)
    for k in np.flatnonzero(finite):
        inverse, info = lapack.dtrtri(factors[k], lower=0)
        if info == 0:
            norms[k] = np.vdot(inverse, inverse)
    return norms


def largest_eigenvalue_bounds(
    matrices: np.ndarray, squarings: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``lower <= lambda_max <= upper`` of a stack of symmetric PSD matrices.

    For ``m = 2**squarings``, ``||A^m||_F^(1/m)`` is an upper bound of the
    largest eigenvalue (the Frobenius norm is the 2-norm of all the
    eigenvalues of ``A^m``) and ``(||A^m||_F / sqrt(D))^(1/m)`` a lower one, so
    ``upper / lower = D^(1/(2m))``: 1.59 at D = 41 after two squarings. Each
    squaring is one batched product, renormalised by its Frobenius norm (the
    logarithm of the scale kept apart), so no entry overflows or underflows
    whatever the eigenvalues' size. ``matrices`` (K, D, D) float64, finite,
    not zero. O(squarings·K·D³) time, O(K·D²) memory.

    >>> lower, upper = largest_eigenvalue_bounds(np.diag([4.0, 1.0])[None], 3)
    >>> bool(lower[0] <= 4.0 <= upper[0]), round(float(upper[0]), 6)
    (True, 4.0)
    """
    d = matrices.shape[-1]
    norms = np.sqrt(np.einsum("kij,kij->k", matrices, matrices))
    power = matrices / norms[:, None, None]
    log_scale = np.log(norms)  # A^m = exp(log_scale) · power, ||power||_F = 1
    m = 1
    for _ in range(squarings):
        power = power @ power
        norms = np.sqrt(np.einsum("kij,kij->k", power, power))
        power /= norms[:, None, None]
        log_scale = 2 * log_scale + np.log(norms)
        m *= 2
    upper = np.exp(log_scale / m)
    return upper * d ** (-0.5 / m), upper


def upper_inverse(upper: np.ndarray) -> np.ndarray:
    """Inverses of a stack of upper triangular float64 matrices (K, D, D), upper triangular.

    The transposes of :func:`lower_inverse` of the transposes: triangular
    inversions (D³/3 flops each), a sixth of a general solve against the
    identity. A singular matrix gives non-finite entries. O(K·D³) time.
    """
    return np.swapaxes(lower_inverse(np.swapaxes(upper, -1, -2)), -1, -2)


def precision_factor_from_precisions(precisions: np.ndarray) -> np.ndarray:
    """Upper ``U`` with ``P = U @ U.T``, by Cholesky of the row/column-reversed P."""
    flipped = precisions[..., ::-1, ::-1].astype(np.float64)
    lower = np.linalg.cholesky(flipped)
    return lower[..., ::-1, ::-1].astype(precisions.dtype, copy=False)


def gram(factors: np.ndarray) -> np.ndarray:
    """``U @ U.T`` for a stack of factors."""
    with blas_threads_for(_work(factors)):
        return factors @ np.swapaxes(factors, -1, -2)


def _work(stack: np.ndarray) -> float:
    return matrix_work(math.prod(stack.shape[:-2]), stack.shape[-1])


def covariance_from_factor(factors: np.ndarray) -> np.ndarray:
    """``inv(U @ U.T)`` computed as ``inv(U).T @ inv(U)``."""
    work = factors.astype(np.float64)
    n_features = work.shape[-1]
    with blas_threads_for(_work(work)):
        inv = np.linalg.solve(work, np.broadcast_to(np.eye(n_features), work.shape))
        return (np.swapaxes(inv, -1, -2) @ inv).astype(factors.dtype, copy=False)


def is_spd(matrices: np.ndarray) -> bool:
    """True if every matrix in the stack is symmetric and positive definite."""
    matrices = np.asarray(matrices)
    # Symmetric to the rounding of the matrices' own dtype (float32 fits are float32).
    dtype = matrices.dtype if matrices.dtype == np.float32 else np.dtype(np.float64)
    work = matrices.astype(np.float64)
    if not np.all(np.isfinite(work)):
        return False
    tolerance = np.sqrt(np.finfo(dtype).eps) * np.max(np.abs(work))
    if np.max(np.abs(work - np.swapaxes(work, -1, -2)), initial=0.0) > tolerance:
        return False
    try:
        np.linalg.cholesky(work)
    except np.linalg.LinAlgError:
        return False
    return True


def _first_failure(covariances: np.ndarray, factor: np.ndarray | None = None) -> int | None:
    stack = covariances if covariances.ndim == 3 else covariances[None]
    for k, cov in enumerate(stack):
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            return k if covariances.ndim == 3 else None
        if factor is not None and not np.all(
            np.isfinite(factor[k] if factor.ndim == 3 else factor)
        ):
            return k if covariances.ndim == 3 else None
    return None if covariances.ndim == 2 else 0


class MatrixRepresentation:
    """Representation changes shared by families that store (D, D) matrices."""

    def precision_cholesky_from_precisions(self, precisions):
        return precision_factor_from_precisions(precisions)

    def precisions(self, prec_chol):
        return gram(prec_chol)

    def covariances(self, prec_chol):
        return covariance_from_factor(prec_chol)

    def is_positive_definite(self, matrices):
        return is_spd(matrices)

    def is_inverse_pair(self, covariances, precisions, dtype):
        eps = float(np.finfo(dtype).eps)
        prec = np.asarray(precisions, dtype=np.float64)
        d = prec.shape[-1]
        cov = np.asarray(covariances, dtype=np.float64).reshape(-1, d, d)
        prec = prec.reshape(-1, d, d)
        with np.errstate(all="ignore"):
            eigenvalues = np.linalg.eigvalsh(prec)
            tiny = np.finfo(np.float64).tiny
            condition = eigenvalues[:, -1] / np.maximum(eigenvalues[:, 0], tiny)
            error = np.max(np.abs(cov @ prec - np.eye(d)), axis=(1, 2))
            return bool(np.all(error <= 64 * eps * condition))

    def is_valid_factor(self, precisions_cholesky):
        factor = np.asarray(precisions_cholesky)
        diagonal = np.diagonal(factor, axis1=-2, axis2=-1)
        return bool(np.all(np.tril(factor, -1) == 0) and np.all(diagonal > 0))
