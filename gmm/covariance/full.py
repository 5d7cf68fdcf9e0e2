"""'full': every component has its own unrestricted covariance matrix."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

from .. import statistics
from . import _cost, _matrices
from .base import CovarianceFamily, kappa_max, stacked_rows
from .diag import shifted_columns


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

    Two formulations, chosen per shape and per component:

    - **expanded** (fast): ``(x-m)'P(x-m) = sum_{i<=j} c_ij x_i x_j - 2 x'Pm + m'Pm``
      on shifted data, with features ``[x_i x_j (i<=j), x]`` (D(D+1)/2 + D
      columns), so the E-step and the M-step are one matrix product per chunk
      each: O(n·K·D²) flops, O(n·D²) extra memory per chunk.
    - **centred** (accurate): ``y = (x - m) @ U`` for components whose precision
      is so large against the data's spread that the expansion would cancel
      (tight or near-singular components, float32); the M-step then sums
      ``r·y'y`` in whitened coordinates and maps back with ``U⁻¹``. Costs about
      three times the expanded path on small D.

    Which one runs: every component takes the whitened (centred) one when the
    measured cost model (:mod:`gmm.covariance._cost`) predicts it is faster for
    (D, K, dtype) (many features, few components); otherwise the expanded one,
    except for the components whose expansion would lose accuracy.
    """

    name = "full"
    scatter_kind = "full"

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def features(self, X: np.ndarray) -> np.ndarray:
        return self._features(X, None)

    def _features(self, X: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
        """:meth:`features` of ``X - shift`` (of X when ``shift`` is None)."""
        n, d = X.shape
        n_pairs = d * (d + 1) // 2
        # Built feature-major, so every product is written as one contiguous row;
        # the (n, F) transposed view goes straight into BLAS. The columns are
        # copied once (shifted on the way with a shift), into the last D rows,
        # and the products read them there.
        feats = np.empty((n_pairs + d, n), dtype=X.dtype)
        columns = shifted_columns(X, shift, feats[n_pairs:])
        start = 0
        for i in range(d):
            stop = start + d - i
            np.multiply(columns[i], columns[i:], out=feats[start:stop])
            start = stop
        return feats.T

    def formulation(self, n_features: int, n_components: int, dtype) -> str:
        """'expanded' or 'whitened' for this shape (:func:`gmm.covariance._cost.choose`)."""
        return _cost.choose(n_features, n_components, dtype)

    def chunk_features(self, X: np.ndarray, n_components: int) -> np.ndarray:
        if self.formulation(X.shape[1], n_components, X.dtype) == "whitened":
            self.check_n_features(X.shape[1])
            return X  # the whitened formulation needs no features
        return self.features(X)

    def shifted_chunk_features(self, X: np.ndarray, shift: np.ndarray, n_components: int):
        """``(X - shift, chunk_features(X - shift))`` with the shift done while copying.

        As :meth:`gmm.covariance.diag.Diag.shifted_chunk_features`: the shifted
        rows are a view of the features' last D columns, the same numbers as
        shifting and then :meth:`chunk_features`, bit for bit; None for the
        whitened formulation (its E-step reads the shifted rows only).
        """
        if self.formulation(X.shape[1], n_components, X.dtype) == "whitened":
            return None
        feats = self._features(X, shift)
        return feats[:, feats.shape[1] - X.shape[1] :], feats

    def chunk_columns(self, n_features: int, n_components: int, dtype) -> int:
        if self.formulation(n_features, n_components, dtype) == "whitened":
            if n_components <= KEPT_COMPONENTS:
                # y = (x - m_k) @ U_k of every component lives from the E-step to the moments
                return (n_components + 1) * n_features
            # The shifted rows and more: chunks below em.SPLIT_ROWS (see UNSPLIT_BYTES)
            return max(2 * n_features, UNSPLIT_BYTES // np.dtype(dtype).itemsize)
        return _cost.expanded_columns(n_features) + n_features

    def expansion_condition(self, weights, means, prec_chol, gram=None, limit=None):
        """Condition estimate ``kappa_k`` of the expanded quadratic, per component.

        ``kappa_k = lambda_max(P_k) (spread + |m_k|)² / D``, with the data's
        spread around the shift from the model, ``sum_k w_k (tr S_k + |m_k|²)``,
        and ``tr S_k = ||U_k⁻¹||_F²`` (triangular inverses, O(D³/3) each,
        :func:`gmm.covariance._matrices.inverse_square_norms`). ``gram``: the
        precisions ``P_k = U_k U_k'`` in float64, if the caller has them. With
        ``limit``, a component whose cheap upper bound ``lambda_max <= min(tr
        P_k, max_i sum_j |P_k,ij|)`` (trace and Gershgorin, O(D²)) already puts
        ``kappa_k`` at or below ``limit`` keeps that bound: it is on the
        expanded path either way. The others are bounded on both sides from
        three squarings of ``P_k`` (:meth:`_settle_by_powers`); only a component
        those bounds leave undecided gets its exact largest eigenvalue
        (``eigvalsh``, O(D³)), so the decision ``kappa_k <= limit`` is the one
        the eigenvalues make. A precision beyond float64 gets
        ``inf``: the centred path, never neither path. A handful of numpy calls
        on the whole stack (it runs once per E-step).
        """
        d = means.shape[1]
        factor = prec_chol.astype(np.float64, copy=False)
        means = means.astype(np.float64, copy=False)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            if gram is None:
                gram = _gram(factor)
            finite = np.isfinite(gram).all(axis=(1, 2))
            traces = _matrices.inverse_square_norms(factor, finite)
            squares = np.einsum("kd,kd->k", means, means)
            top = np.minimum(np.einsum("kii->k", gram), np.abs(gram).sum(axis=2).max(axis=1))
            spread = math.sqrt(max(float(weights @ (traces + squares)), 0.0))
            reach = np.square(spread + np.sqrt(squares)) / d
            kappa = top * reach
            exact = finite & ~(kappa <= limit) if limit is not None else finite
            if limit is not None and exact.any():
                exact = self._settle_by_powers(gram, reach, limit, kappa, exact)
            if exact.any():
                kappa[exact] = np.linalg.eigvalsh(gram[exact])[:, -1] * reach[exact]
        kappa[~(finite & ~np.isnan(kappa))] = np.inf
        return kappa

    #: Squarings of the precisions that bound lambda_max before eigvalsh decides the rest.
    POWER_SQUARINGS = 3

    def _settle_by_powers(self, gram, reach, limit, kappa, unsettled):
        """Decide the ``unsettled`` components by bounds on ``lambda_max`` from powers.

        :func:`gmm.covariance._matrices.largest_eigenvalue_bounds` (three batched
        products; ``upper / lower = D^(1/16)``): a component whose upper bound
        puts ``kappa`` at or below ``limit``, or whose lower bound puts it
        above, is settled and keeps its upper bound in ``kappa`` (in place;
        never below the exact value). Returns the mask of the components left
        for ``eigvalsh``. O(K·D³) in batched products, a few times cheaper than
        ``eigvalsh``'s per-matrix reduction: on digits (D = 41, K = 110) the
        condition took 2.6 ms of CPU against 5.1 with eigvalsh for every
        component the trace and Gershgorin bounds leave open (one thread).
        """
        index = np.flatnonzero(unsettled)
        lower, upper = _matrices.largest_eigenvalue_bounds(gram[index], self.POWER_SQUARINGS)
        low, high = lower * reach[index], upper * reach[index]
        settled = (high <= limit) | (low > limit)
        kappa[index[settled]] = np.minimum(kappa[index[settled]], high[settled])
        left = np.zeros_like(unsettled)
        left[index[~settled]] = True
        return left

    def working_dtype(self, dtype, weights, means, prec_chol):
        # Components past kappa_max take the centred path, exact in any dtype.
        return np.dtype(dtype)

    def coefficients(self, weights, means, prec_chol) -> FullCoefficients:
        dtype = means.dtype
        limit = kappa_max(dtype)
        n_components, d = means.shape
        factor = prec_chol.astype(np.float64, copy=False)  # read only, as are the means
        means64 = means.astype(np.float64, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):  # reported by the E-step
            prec = _gram(factor)
        if self.formulation(d, n_components, dtype) == "whitened":
            expandable = np.zeros(n_components, dtype=bool)  # every component whitened
        elif expansion_settled(weights, means64, factor, limit):
            expandable = None  # every component expanded, settled by the cheap bound
        else:
            kappa = self.expansion_condition(weights, means, prec_chol, prec, limit)
            expandable = kappa <= limit  # NaN: centred, exact
        if expandable is None or expandable.all():  # the common case indexes and casts nothing
            fast, centred = _everyone(n_components), _NOBODY
            centres, stack = means64[:0], factor[:0]
            factors, centres_in_dtype = _no_centred(d, dtype)
        else:
            fast, centred = np.flatnonzero(expandable), np.flatnonzero(~expandable)
            centres, stack = means64[centred], factor[centred]
            prec, means64 = prec[fast], means64[fast]
            factors, centres_in_dtype = stack.astype(dtype), centres[:, None, :].astype(dtype)

        n_pairs = d * (d + 1) // 2
        pair_weight = _pairs(d)[2]
        prec_means = np.matmul(prec, means64[:, :, None])[:, :, 0]
        const = np.sum(means64 * prec_means, axis=1)
        # Column-major: in the E-step (the features come from memory, not the cache)
        # OpenBLAS multiplies a column-major (K, F) left operand by the features'
        # (F, rows) faster than a row-major one; alone, on features in the cache, the
        # two time alike. The same products (VVV on 20,000 x 10, one thread, medians
        # of 60 alternating E-steps: K = 2 2.19 -> 1.68 ms, K = 5 2.90 -> 2.56, K = 9
        # 3.77 -> 3.60; 'full' 100,000 x 20, K = 20 73.2 ms either way; 5,000 x 41,
        # K = 110 96.5 against 98.1, within the noise).
        linear = np.empty((fast.size, n_pairs + d), dtype=dtype, order="F")
        np.multiply(
            prec.reshape(fast.size, d * d)[:, _flat_pairs(d)], pair_weight, out=linear[:, :n_pairs]
        )
        np.multiply(prec_means, -2.0, out=linear[:, n_pairs:])
        return FullCoefficients(
            fast=fast,
            linear=linear,
            const=const.astype(dtype)[:, None],
            centred=centred,
            factors=factors,
            centres_in_dtype=centres_in_dtype,
            centres=centres,
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
            if feats.shape[1] != coefs.linear.shape[1]:  # features of the whitened plan
                feats = self.features(X)
            expanded = coefs.linear @ feats.T
            expanded += coefs.const
            maha[coefs.fast] = expanded
        centres = coefs.centres_in_dtype[:, 0, :]
        if coefs.centred.size * X.size * X.dtype.itemsize <= KEPT_BYTES:
            white = whiten(X, centres, coefs.factors)
            maha[coefs.centred] = np.einsum("gnd,gnd->gn", white, white)
        else:  # the moments whiten again, only the rows with a positive responsibility
            white, maha[coefs.centred] = None, centred_distances(X, centres, coefs.factors)
        return np.maximum(maha, 0, out=maha), white

    def log_prob(self, X, feats, coefs: FullCoefficients, log_norm_const):
        """``-maha / 2 + log_norm_const``, (K, rows): the halving and the constant folded.

        With every component on the expanded path (the common case), one
        product of ``-linear / 2`` (halving is exact) and one pass adding
        ``log_norm_const - const / 2``; the clamp of the distances at 0 is the
        clamp of the log-probabilities at ``log_norm_const``. Two passes over
        the (K, rows) result where :meth:`mahalanobis` and the default halving
        take four; the same numbers up to the rounding of the constant's sum.
        Otherwise the default (:meth:`mahalanobis`, then halving). O(rows · K ·
        F) time.
        """
        if coefs.centred.size:
            return super().log_prob(X, feats, coefs, log_norm_const)
        log_prob = (coefs.linear * -0.5) @ feats.T
        log_prob += log_norm_const[:, None] - 0.5 * coefs.const
        return np.minimum(log_prob, log_norm_const[:, None], out=log_prob), None

    def log_det_precision_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)

    @property
    def stack_kind(self):
        """The expanded features and their two products (see :meth:`stack_key`)."""
        return "full expanded"

    def stack_key(self, coefs: FullCoefficients):
        """Fits whose every component is on the expanded path stack (their features are
        the same for the same rows); a centred component computes alone."""
        if coefs.centred.size:
            return None
        return (self.stack_kind, coefs.linear.shape[1], coefs.linear.dtype.str)

    def stacked_log_prob(self, X, feats, coefs, log_norm_consts):
        """:meth:`log_prob` of each fit's expanded coefficients, in one product.

        The fits' ``-linear / 2`` stacked column-major (as :meth:`log_prob` gives
        them to BLAS), then each fit's rows as :meth:`log_prob` treats its own
        (the same bits as each fit's own product with OpenBLAS 0.3.31 for two or
        more components a fit: measured on 20,000 x 66 features, K = 2 to 9).
        No work. O(rows · sum K_i · F) time.
        """
        rows = stacked_rows([fit.linear.shape[0] for fit in coefs])
        matrix = np.empty((rows[-1].stop, coefs[0].linear.shape[1]), coefs[0].linear.dtype, "F")
        for part, fit in zip(rows, coefs, strict=True):
            np.multiply(fit.linear, -0.5, out=matrix[part])
        log_prob = matrix @ feats.T
        for part, fit, const in zip(rows, coefs, log_norm_consts, strict=True):
            block = log_prob[part]
            block += const[:, None] - 0.5 * fit.const
            np.minimum(block, const[:, None], out=block)
        return log_prob, None

    def stacked_moments(self, X, feats, resp, coefs, work):
        """The expanded moments of every fit from one product, ``resp @ feats``.

        O(rows · sum K_i · F) time, O(sum K_i · F) memory.
        """
        raw = feature_moments(resp, feats).astype(np.float64, copy=False)
        d = X.shape[1]
        return [
            (
                raw[part],
                np.zeros((part.stop - part.start, d)),
                np.zeros((part.stop - part.start, d, d)),
            )
            for part in stacked_rows([fit.linear.shape[0] for fit in coefs])
        ]

    def moments(self, X, feats, resp, coefs, work):
        n_components = resp.shape[0]
        d = X.shape[1]
        if coefs is None or coefs.centred.size == 0:
            zeros = np.zeros((n_components, d)), np.zeros((n_components, d, d))
            return feature_moments(resp, feats), *zeros
        # Centred components: moments of the whitened deviations y = (x - c) @ U
        # (kept from the E-step, or formed again), sum r·y and sum r·y'y (its upper
        # triangle at least, :meth:`scatter` mirrors it), so no digits cancel.
        centred = resp[coefs.centred]
        if work is None:
            centres = coefs.centres_in_dtype[:, 0, :]
            moments = sparse_whitened_moments(X, centred, centres, coefs.factors)
        else:
            moments = whitened_moments(work, centred)
        if coefs.fast.size == 0:  # every component centred (the whitened plan): no copies
            return np.zeros((n_components, 0), dtype=resp.dtype), *moments
        raw = np.zeros((n_components, _cost.expanded_columns(d)), dtype=resp.dtype)
        first = np.zeros((n_components, d), dtype=resp.dtype)
        gram = np.zeros((n_components, d, d), dtype=resp.dtype)
        if feats.shape[1] != coefs.linear.shape[1]:
            feats = self.features(X)
        raw[coefs.fast] = feature_moments(resp[coefs.fast], feats)
        first[coefs.centred], gram[coefs.centred] = moments
        return raw, first, gram

    def summed_moments(self, X, feats, resp, coefs, blocks):
        """:meth:`moments` of the row ranges ``blocks``, summed in row order in float64.

        The hook :func:`gmm.em.moment_blocks`' callers take (``gmm.em._statistics``):
        with every component on the expanded path, each range's product is
        written into one stacked (blocks, K, F) array and reduced once, and the
        centred parts are zeros made once, not per range: the numbers of summing
        :meth:`moments` of each range (bit for bit on the mclust benchmark's
        data and the tests'), faster. In float64 a range's product runs as
        ``(feats' @ resp')'`` into the part's transpose, as :func:`feature_moments`
        does in float32: on these blocks of at most ``gmm.em.MOMENT_BLOCK_WORK``
        multiply-adds OpenBLAS runs it faster than ``resp @ feats`` (VVV on
        20,000 x 10, one thread, medians of 50 alternating E-steps: K = 2 2.57 ->
        2.44 ms, K = 3 3.23 -> 2.97, K = 5 3.53 -> 3.36, K = 9 4.62 -> 4.21).
        None where some component is centred (the caller then sums
        :meth:`moments` range by range). O(n·K·F) time, O(blocks·K·F) memory.
        """
        if coefs is not None and coefs.centred.size:
            return None
        n_components, d = resp.shape[0], X.shape[1]
        parts = np.empty((len(blocks), n_components, feats.shape[1]), dtype=resp.dtype)
        direct = resp.dtype != np.float32  # float32: feature_moments' own orientation
        for part, rows in zip(parts, blocks, strict=True):
            if direct:  # (F, rows) @ (rows, K) into the part's transpose: see above
                np.matmul(feats[rows].T, resp[:, rows].T, out=part.T)
            else:
                part[...] = feature_moments(resp[:, rows], feats[rows])
        raw = np.add.reduce(parts, axis=0, dtype=np.float64)
        return raw, np.zeros((n_components, d)), np.zeros((n_components, d, d))

    def scatter(self, moments, nk, shift, coefs):
        raw, first, gram = moments
        if raw.shape[1]:
            means, covariances = statistics.full_from_moments(raw, nk, shift)
        else:  # every component centred
            means, covariances = np.empty(first.shape), np.empty(gram.shape)
        if coefs is not None and coefs.centred.size:
            idx = coefs.centred
            upper = np.triu(gram[idx])  # the upper triangles, mirrored
            means[idx], covariances[idx] = statistics.full_from_whitened(
                first[idx],
                upper + np.swapaxes(np.triu(upper, 1), 1, 2),
                nk[idx],
                coefs.centres,
                _matrices.upper_inverse(coefs.factor_stack),
            )
            means[idx] += shift
        return statistics.Scatter(nk, means, covariances, self.scatter_kind)

    def estimate(self, scatter, reg_covar, previous):
        covariances = scatter.covariances.copy()
        d = covariances.shape[1]
        # The diagonals as one strided view of the flattened stack (no index arrays).
        covariances.reshape(-1, d * d)[:, :: d + 1] += reg_covar
        return covariances, None

    def precision_cholesky(self, covariances):
        return _matrices.precision_factor(covariances)

    def precisions(self, prec_chol):
        return _gram(prec_chol)

    def component_covariance(self, covariances, k):
        return covariances[k]


#: Up to this many features :func:`_gram` forms the product with no BLAS limit around it.
#: Each (D, D) product then has D³ <= 110,592 multiply-adds, below OpenBLAS's threshold for
#: threading a product (m·n·k < 2^18): it runs on one thread whatever the limit, so the
#: numbers are those of :func:`gmm.covariance._matrices.gram` under any limit, and the
#: limit's context (2-9 µs a call, more on a busy machine; twice per online update,
#: in the coefficients and in the fitted ``precisions_``) buys nothing.
DIRECT_GRAM_FEATURES = 48


def _gram(factor: np.ndarray) -> np.ndarray:
    """``U @ U.T`` for a stack of factors, as :func:`gmm.covariance._matrices.gram`, bit for bit.

    Without its BLAS limit up to :data:`DIRECT_GRAM_FEATURES` features. O(K·D³).
    """
    if factor.shape[-1] <= DIRECT_GRAM_FEATURES:
        return factor @ np.swapaxes(factor, -1, -2)
    return _matrices.gram(factor)


#: Up to this many precision entries (K·D²) :func:`expansion_settled` is tried before the
#: exact estimate: it runs in plain Python, about 6 us at K = 3, D = 2 where the exact
#: estimate's numpy and LAPACK calls take 45 us (one thread, CPU), growing with K·D²; and
#: its bound grows as the precisions' condition number to the power D - 1.
SETTLED_ENTRIES = 128


def expansion_settled(weights, means, factor, limit: float) -> bool:
    """Whether every component's :meth:`Full.expansion_condition` is surely ``<= limit``.

    A cheap upper bound of ``kappa_k`` with no triangular inversion (an
    online update of K = 3, D = 2 is short enough for the exact estimate's
    per-call overhead to count): ``lambda_max(P_k) <= tr P_k = ||U_k||_F²``,
    and ``tr S_k = tr P_k⁻¹ <= D / lambda_min(P_k)`` with ``lambda_min >=
    det P_k / lambda_max^(D-1)`` and ``det P_k = prod_i U_k,ii²``, so ``tr S_k
    <= D (tr P_k)^(D-1) / prod_i U_k,ii²`` (through logarithms: no overflow).
    True only when that bound puts every component at or below half of
    ``limit``, a margin far above the rounding of either estimate: then the
    exact estimate puts every component on the expanded path too, and the
    decision is the same. False (the caller computes the exact estimate)
    otherwise: beyond :data:`SETTLED_ENTRIES` entries, for a zero or
    non-finite diagonal or trace, or a bound that overflows. ``weights`` (K,),
    ``means`` (K, D) and ``factor`` (K, D, D) upper triangular, in float64.
    O(K·D²) time in plain Python (a few microseconds on small stacks).
    """
    n_components, n_features = means.shape
    if n_components * n_features * n_features > SETTLED_ENTRIES:
        return False
    traces, squares, total = [], [], 0.0
    for weight, rows, centre in zip(weights.tolist(), factor.tolist(), means.tolist(), strict=True):
        trace = sum(value * value for row in rows for value in row)
        diagonal = [abs(rows[i][i]) for i in range(n_features)]
        if not (0.0 < trace < math.inf and 0.0 < min(diagonal) and max(diagonal) < math.inf):
            return False
        log_bound = (
            math.log(n_features)
            + (n_features - 1) * math.log(trace)
            - 2.0 * sum(math.log(u) for u in diagonal)
        )
        if not log_bound < LOG_LARGEST:
            return False
        square = sum(x * x for x in centre)
        total += weight * (math.exp(log_bound) + square)
        traces.append(trace)
        squares.append(square)
    if not 0.0 <= total < math.inf:
        return False
    spread, half = math.sqrt(total), 0.5 * float(limit)
    return all(
        trace * (spread + math.sqrt(square)) ** 2 / n_features <= half
        for trace, square in zip(traces, squares, strict=True)
    )


#: Natural logarithm below which ``math.exp`` stays finite in float64.
LOG_LARGEST = 700.0


@functools.lru_cache(maxsize=64)
def _pairs(n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns of the upper triangle, and each pair's weight (1 on the diagonal, 2 off)."""
    rows, cols = statistics.upper_triangle(n_features)
    pair_weight = np.where(rows == cols, 1.0, 2.0)
    pair_weight.flags.writeable = False
    return rows, cols, pair_weight


@functools.lru_cache(maxsize=64)
def _flat_pairs(n_features: int) -> np.ndarray:
    """Flat indices ``i·D + j`` of :func:`_pairs` in a row-major (D, D) matrix (read-only)."""
    rows, cols, _ = _pairs(n_features)
    flat = rows * n_features + cols
    flat.flags.writeable = False
    return flat


@functools.lru_cache(maxsize=64)
def _everyone(n_components: int) -> np.ndarray:
    """``np.arange(n_components)``, read-only: every component on the expanded path."""
    indices = np.arange(n_components)
    indices.flags.writeable = False
    return indices


#: No component (read-only).
_NOBODY = _everyone(0)


@functools.lru_cache(maxsize=64)
def _no_centred(n_features: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The centred path's factors (0, D, D) and centres (0, 1, D) when no component takes it.

    Read-only empty arrays in ``dtype``, made once per (D, dtype): the common
    case of :meth:`Full.coefficients` casts nothing per E-step.
    """
    factors = np.empty((0, n_features, n_features), dtype=dtype)
    centres = np.empty((0, 1, n_features), dtype=dtype)
    factors.flags.writeable = centres.flags.writeable = False
    return factors, centres


def feature_moments(resp: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """``resp @ feats``, (K, F) C-ordered: the expanded path's moments of a chunk.

    ``resp`` (K, n), ``feats`` (n, F) in the same dtype. The product is the
    same; its orientation is the one this BLAS runs faster for the dtype: in
    float32 ``(feats' @ resp')'``, in float64 ``resp @ feats`` (OpenBLAS
    0.3.31, SkylakeX kernels, one thread, 100,000 x 20 features of K = 20 in
    row ranges of 4,194: float32 40 GFLOPS against 30, float64 19 against
    25; digits, K = 110, F = 902: float32 71 against 65, float64 32 against
    40). A fixed rule per dtype, not a timing, so the numbers never depend
    on the machine's load. O(n·K·F) time, O(K·F) memory.
    """
    if resp.dtype == np.float32:
        return np.ascontiguousarray((feats.T @ resp.T).T)
    return resp @ feats


def _blas(name: str, dtype):
    return blas.get_blas_funcs(name, dtype=dtype)


def whiten(X: np.ndarray, centres: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``y_g = (X - c_g) @ U_g`` for every component: shape (G, n, D), X's dtype.

    ``U_g`` are upper triangular, so each product is one triangular BLAS-3
    multiply in place (``trmm``, half a GEMM's flops). Subtracting before
    whitening keeps the digits of a point far from the shift (``x @ U - c @ U``
    would cancel two large numbers). O(G·n·D²) time, the (G, n, D) result.
    """
    n_components, (n, d) = factors.shape[0], X.shape
    white = np.empty((n_components, n, d), dtype=X.dtype)
    if n == 0 or n_components == 0:
        return white
    trmm = _blas("trmm", X.dtype)
    for g in range(n_components):
        np.subtract(X, centres[g], out=white[g])
        _whiten_block(trmm, white[g], factors[g])
    return white


def whitened_moments(white: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sum_n r_gn y_gn`` (G, D) and ``sum_n r_gn y_gn' y_gn`` (G, D, D).

    ``white`` (G, n, D) is scaled by ``sqrt(r)`` in place (it is not needed
    afterwards) and its scatter is a symmetric rank-n update (``syrk``, half a
    GEMM's flops). O(G·n·D²) time, O(G·D²) memory.
    """
    n_components, n, d = white.shape
    first = np.einsum("gn,gnd->gd", resp, white)
    gram = np.zeros((n_components, d, d), dtype=white.dtype)
    if n == 0:
        return first, gram
    syrk = _blas("syrk", white.dtype)
    roots = np.sqrt(resp)
    for g in range(n_components):
        white[g] *= roots[g][:, None]
        upper = syrk(1.0, white[g].T, trans=0, lower=0)
        gram[g] = np.triu(upper) + np.triu(upper, 1).T
    return first, gram


#: Most bytes of the centred components' whitened deviations (G, rows, D) that
#: :meth:`Full.mahalanobis` keeps for the moments (:func:`whiten`, :func:`whitened_moments`);
#: beyond, the distances whiten by cache-sized blocks (:func:`centred_distances`) and the
#: moments whiten again the rows with a responsibility that counts
#: (:func:`sparse_whitened_moments`): O(rows·(K + D)) memory whatever K. At least
#: ``em.CHUNK_BYTES`` (at most 32 MiB), so the whitened plan's chunks of at most
#: :data:`KEPT_COMPONENTS` components, sized for their K + 1 copies, keep them.
KEPT_BYTES = 32 * 2**20
#: Most components for which the whitened plan sizes its chunks to keep the deviations
#: (K + 1 copies of the rows): few components overlap more, and forming the deviations
#: again for many positive responsibilities would cost half as much again. With more,
#: the chunks are sized by the shifted rows (D columns) and split on the cores: at
#: D = 200, K = 128 the kept copies held chunks to 256 rows on threaded BLAS (0.8 to
#: 1.4 GMA/s under load against 15 on one thread).
KEPT_COMPONENTS = 4
#: Least bytes a row of a whitened-plan chunk beyond :data:`KEPT_COMPONENTS` is counted
#: for (besides twice the shifted row; the deviations are formed by blocks), so that with
#: ``em.CHUNK_BYTES`` up to 16 MiB the chunk has fewer than ``em.SPLIT_ROWS`` rows (7,943)
#: and is not split into row ranges on two threads: its work is scipy's ``trmm`` and
#: ``syrk``, whose wrappers hold the GIL, so two ranges ran one after the other (a fit
#: at D = 200, K = 128, 24,000 rows: 5.5 s on two threads, 5.9 s on one), while an
#: unsplit chunk lets BLAS run each product on both cores (``trmm`` on 655 rows, idle:
#: 20 GMA/s on one thread, 38 on two; that fit: 4.8 s).
UNSPLIT_BYTES = 264 * 8
#: Bytes of one block of a component's deviations ``x - m_k`` (:func:`block_rows`): the
#: (rows, D) block stays in the second-level cache while it is whitened and used.
BLOCK_BYTES = 2**20


def block_rows(n_features: int, itemsize: int) -> int:
    """Rows of a :data:`BLOCK_BYTES` block of deviations, at least 64."""
    return max(64, BLOCK_BYTES // max(1, n_features * itemsize))


def _whiten_block(trmm, white: np.ndarray, factor: np.ndarray) -> None:
    """``white @ factor`` in place, ``factor`` upper triangular: one ``trmm`` (half a GEMM's
    flops), ``U' white'`` on the Fortran-ordered transposed view."""
    out = trmm(1.0, factor, white.T, side=0, lower=0, trans_a=1, overwrite_b=1)
    if not np.shares_memory(out, white):
        white[...] = out.T


def centred_distances(X: np.ndarray, centres: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``|(x - c_g) @ U_g|²`` for every row and component, (G, n): :func:`whiten`'s, unkept.

    By row blocks of :func:`block_rows` rows, one component after another: the
    block's deviations are formed in one buffer, whitened there (``trmm``, half a
    GEMM's flops) and squared, so no (G, n, D) stack is made. ``centres`` (G, D)
    and the upper triangular ``factors`` (G, D, D) in X's dtype. O(G·n·D²) time,
    O(G·n + block·D) memory.
    """
    n_components, (n, d) = factors.shape[0], X.shape
    maha = np.empty((n_components, n), dtype=X.dtype)
    if n == 0 or n_components == 0:
        return maha
    trmm = _blas("trmm", X.dtype)
    rows = block_rows(d, X.dtype.itemsize)
    buffer = np.empty((min(rows, n), d), dtype=X.dtype)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block, white = X[start:stop], buffer[: stop - start]
        for g in range(n_components):
            np.subtract(block, centres[g], out=white)
            _whiten_block(trmm, white, factors[g])
            np.einsum("nd,nd->n", white, white, out=maha[g, start:stop])
    return maha


def sparse_whitened_moments(
    X: np.ndarray, resp: np.ndarray, centres: np.ndarray, factors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`whitened_moments` of ``y = (x - c_g) @ U_g``, reading only positive responsibilities.

    After the E-step's normalisation a row far from a component has 0 or a
    negligible responsibility there, so per component only the rows whose ``r``
    counts (:data:`NEGLIGIBLE`) are gathered, by blocks
    of :func:`block_rows` rows, whitened (``trmm``), scaled by ``sqrt(r)`` and
    added to the component's upper triangle by a symmetric rank-k update (``syrk``);
    the lower triangles stay 0 (:meth:`Full.scatter` mirrors the sum of the chunks'
    triangles once an iteration). With separated components that
    is about one component's work per row instead of K. ``resp`` (G, n),
    ``centres`` (G, D), upper triangular ``factors`` (G, D, D), all in X's dtype.
    O(m·D²) time for the m positive responsibilities (at most G·n), O(G·D² +
    block·D) memory.
    """
    n_components, (n, d) = resp.shape[0], X.shape
    first = np.zeros((n_components, d), dtype=X.dtype)
    upper = np.zeros((n_components, d, d), dtype=X.dtype)
    if n == 0:
        return first, upper
    trmm, syrk = _blas("trmm", X.dtype), _blas("syrk", X.dtype)
    buffer = np.empty((min(block_rows(d, X.dtype.itemsize), n), d), dtype=X.dtype)
    for g in range(n_components):
        _add_positive_rows(
            X, resp[g], buffer, first[g], upper[g], centres[g], factors[g], trmm, syrk
        )
    return first, upper


#: Responsibilities below this fraction of their component's largest in the chunk part
#: are left out of the sparse moments (:func:`_add_positive_rows`): what they would add
#: is at most ``rows · NEGLIGIBLE`` of what the largest adds (5e-15 for 5,000 rows), below
#: the rounding of the sums themselves (``rows · eps`` at worst). After the E-step's
#: normalisation a row far from a component has a responsibility of 0 or about
#: exp(-|gap|) there: with D = 50, K = 128 separated components, 47 % of them are
#: positive and 0.8 % above 2^-60 of the largest.
NEGLIGIBLE = 2.0**-60


def _add_positive_rows(X, resp, buffer, first, upper, centre, factor, trmm, syrk):
    """Add one component's ``sum r v`` to ``first`` (D,) and the upper triangle of
    ``sum r v v'`` to ``upper`` (D, D), in place, over the rows whose ``r`` is positive
    and at least :data:`NEGLIGIBLE` times the largest.

    ``v = (x - centre) @ factor`` (upper triangular, by ``trmm``), formed by blocks
    of ``buffer``'s rows gathered from X; each block is
    scaled by ``sqrt(r)`` and added by a symmetric rank-k update (``syrk``). O(m·D²)
    time for the m positive responsibilities.
    """
    positive = np.flatnonzero(resp >= resp.max(initial=0) * NEGLIGIBLE)
    positive = positive[resp[positive] > 0]  # a component with no mass reads no row
    for start in range(0, positive.size, buffer.shape[0]):
        index = positive[start : start + buffer.shape[0]]
        block, weight = buffer[: index.size], resp[index]
        np.take(X, index, axis=0, out=block)
        block -= centre
        _whiten_block(trmm, block, factor)
        first += weight @ block
        block *= np.sqrt(weight)[:, None]
        # The Fortran-ordered view's lower triangle is the upper triangle of ``upper``.
        out = syrk(1.0, block.T, beta=1.0, c=upper.T, trans=0, lower=1, overwrite_c=1)
        if not np.shares_memory(out, upper):
            upper[...] = out.T
