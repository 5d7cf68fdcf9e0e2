"""'full': every component has its own unrestricted covariance matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import statistics
from . import _matrices
from .base import CovarianceFamily, kappa_max


@dataclass
class FullCoefficients:
    """Per-iteration coefficients, split between the two formulations."""

    fast: np.ndarray  # component indices on the expanded path
    linear: np.ndarray  # (len(fast), n_feats)
    const: np.ndarray  # (len(fast), 1)
    centred: np.ndarray  # component indices on the centred path
    factors: np.ndarray  # (len(centred), D, D): the U_k in the data's dtype
    centres_in_dtype: np.ndarray  # (len(centred), 1, D): the shifted means m_k
    centres: np.ndarray  # (len(centred), D): the shifted means m_k
    factor_stack: np.ndarray  # (len(centred), D, D) float64 U_k


class Full(_matrices.MatrixRepresentation, CovarianceFamily):
    """Full covariance, (K, D, D).

    Two formulations, chosen per component and per iteration:

    - **expanded** (fast): ``(x-m)'P(x-m) = sum_{i<=j} c_ij x_i x_j - 2 x'Pm + m'Pm``
      on shifted data, with features ``[x_i x_j (i<=j), x]`` (D(D+1)/2 + D
      columns), so the E-step and the M-step are one matrix product per chunk
      each: O(n·K·D²) flops, O(n·D²) extra memory per chunk.
    - **centred** (accurate): ``y = (x - m) @ U`` for components whose precision
      is so large against the data's spread that the expansion would cancel
      (tight or near-singular components, float32); the M-step then sums
      ``r·y'y`` in whitened coordinates and maps back with ``U⁻¹``. Costs about
      three times the expanded path.
    """

    name = "full"
    scatter_kind = "full"

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def features(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        n_pairs = d * (d + 1) // 2
        # Built feature-major, so every product is written as one contiguous row;
        # the (n, F) transposed view goes straight into BLAS.
        columns = np.ascontiguousarray(X.T)
        feats = np.empty((n_pairs + d, n), dtype=X.dtype)
        start = 0
        for i in range(d):
            stop = start + d - i
            np.multiply(columns[i], columns[i:], out=feats[start:stop])
            start = stop
        feats[n_pairs:] = columns
        return feats.T

    def expansion_condition(self, weights, means, prec_chol):
        """Condition estimate ``kappa_k`` of the expanded quadratic, per component."""
        d = means.shape[1]
        eigen = np.linalg.eigvalsh(_matrices.gram(prec_chol.astype(np.float64)))
        # Spread of the data around the shift, from the model: sum_k w_k (tr S_k + |m_k|²),
        # with tr S_k = sum 1/eig(P_k).
        traces = np.sum(1.0 / eigen, axis=1)
        norms = np.linalg.norm(means.astype(np.float64), axis=1)
        spread = np.sqrt(max(float(weights @ (traces + norms**2)), 0.0))
        return eigen[:, -1] * (spread + norms) ** 2 / d

    def working_dtype(self, dtype, weights, means, prec_chol):
        # Components past kappa_max take the centred path, exact in any dtype.
        return np.dtype(dtype)

    def coefficients(self, weights, means, prec_chol) -> FullCoefficients:
        dtype = means.dtype
        d = means.shape[1]
        factor = prec_chol.astype(np.float64)
        means64 = means.astype(np.float64)
        prec = _matrices.gram(factor)
        kappa = self.expansion_condition(weights, means, prec_chol)
        fast = np.flatnonzero(kappa <= kappa_max(dtype))
        centred = np.flatnonzero(kappa > kappa_max(dtype))

        rows, cols = np.triu_indices(d)
        pair_weight = np.where(rows == cols, 1.0, 2.0)
        quad = prec[fast][:, rows, cols] * pair_weight
        prec_means = np.einsum("kij,kj->ki", prec[fast], means64[fast])
        const = np.einsum("ki,ki->k", means64[fast], prec_means)
        linear = np.concatenate([quad, -2.0 * prec_means], axis=1)

        stack = factor[centred]
        return FullCoefficients(
            fast=fast,
            linear=np.ascontiguousarray(linear, dtype=dtype),
            const=const.astype(dtype)[:, None],
            centred=centred,
            factors=stack.astype(dtype),
            centres_in_dtype=means64[centred][:, None, :].astype(dtype),
            centres=means64[centred],
            factor_stack=stack,
        )

    def mahalanobis(self, X, feats, coefs: FullCoefficients):
        n = X.shape[0]
        if coefs.centred.size == 0:  # the common case: one product, no scatter
            maha = coefs.linear @ feats.T
            maha += coefs.const
            return np.maximum(maha, 0, out=maha), None
        maha = np.empty((coefs.fast.size + coefs.centred.size, n), dtype=X.dtype)
        if coefs.fast.size:
            expanded = coefs.linear @ feats.T
            expanded += coefs.const
            maha[coefs.fast] = expanded
        # (G, n, D): (x - m_k) @ U_k, one small GEMM per centred component, laid out
        # for the M-step. Subtracting before whitening keeps the digits of a point
        # far from the shift (x @ U - m @ U would cancel two large numbers).
        white = np.matmul(X[None, :, :] - coefs.centres_in_dtype, coefs.factors)
        maha[coefs.centred] = np.einsum("gnd,gnd->gn", white, white)
        return np.maximum(maha, 0, out=maha), white

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)

    def moments(self, X, feats, resp, coefs, work):
        n_components = resp.shape[0]
        d = X.shape[1]
        if coefs is None or coefs.centred.size == 0:
            return resp @ feats, np.zeros((n_components, d)), np.zeros((n_components, d, d))
        raw = np.zeros((n_components, feats.shape[1]), dtype=resp.dtype)
        first = np.zeros((n_components, d), dtype=resp.dtype)
        gram = np.zeros((n_components, d, d), dtype=resp.dtype)
        if coefs.fast.size:
            raw[coefs.fast] = resp[coefs.fast] @ feats
        # Centred components: moments of the whitened deviations y = (x - c) @ U
        # from the E-step, sum r·y and sum r·y'y, so no digits cancel.
        resp_c = resp[coefs.centred]
        first[coefs.centred] = np.einsum("gn,gnd->gd", resp_c, work)
        work *= np.sqrt(resp_c)[:, :, None]
        gram[coefs.centred] = np.swapaxes(work, 1, 2) @ work
        return raw, first, gram

    def scatter(self, moments, nk, shift, coefs):
        raw, first, gram = moments
        means, covariances = statistics.full_from_moments(raw, nk, shift)
        if coefs is not None and coefs.centred.size:
            idx = coefs.centred
            means[idx], covariances[idx] = statistics.full_from_whitened(
                first[idx], gram[idx], nk[idx], coefs.centres, coefs.factor_stack
            )
            means[idx] += shift
        return statistics.Scatter(nk, means, covariances, self.scatter_kind)

    def estimate(self, scatter, reg_covar, previous):
        covariances = scatter.covariances.copy()
        d = covariances.shape[1]
        covariances[:, np.arange(d), np.arange(d)] += reg_covar
        return covariances, None

    def precision_cholesky(self, covariances):
        return _matrices.precision_factor(covariances)

    def component_covariance(self, covariances, k):
        return covariances[k]
