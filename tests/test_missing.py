"""Missing values: exact EM over the observed entries (gmm.missing, gmm.scale.incomplete).

References are independent of the kernels: scipy's ``multivariate_normal.logpdf``
on the observed coordinates with the sub-mean and sub-covariance; conditional
expectations and covariances written per row from the covariance (the kernels
use the precision); the M-step statistics summed row by row in plain numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gmm import GaussianMixture, covariance_types, missing
from gmm import em as em_module
from gmm.covariance import get_family, register, unregister
from gmm.scale import incomplete
from tests.mixture_data import make_mixture
from tests.test_covariance_contract import EqualSpherical


@pytest.fixture(scope="module", autouse=True)
def registered_family():
    """A family registered from outside (mclust's EII): missing values must work for it too."""
    family = register(EqualSpherical())
    yield family
    unregister(family.name)


def families():
    return [*covariance_types(), "test-EII"]


def with_holes(X, fraction, seed):
    """X with ``fraction`` of its entries NaN, completely at random; every row keeps one."""
    rng = np.random.default_rng(seed)
    holes = rng.random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    out = X.astype(float).copy()
    out[holes] = np.nan
    return out


@pytest.fixture(scope="module")
def data():
    X = make_mixture("full", n_samples=180, n_components=3, d=4, seed=1)[0]
    return X, with_holes(X, 0.3, 2)


def dense_covariance(model, k):
    family = get_family(model.covariance_type)
    cov = np.asarray(family.component_covariance(model.covariances_, k), dtype=float)
    d = model.means_.shape[1]
    return cov * np.eye(d) if cov.ndim == 0 else np.diag(cov) if cov.ndim == 1 else cov


def _factors(covariances):
    """Upper factors ``U = L^-T`` of full covariances ``L L'`` (``U U' = Sigma^-1``)."""
    chol = np.linalg.cholesky(covariances)
    return np.swapaxes(np.linalg.inv(chol), -1, -2)


def reference_log_prob(model, x):
    """(K,) log pi_k + scipy's log N(x_o | mu_o, Sigma_oo) of one row with holes."""
    obs = ~np.isnan(x)
    out = np.log(model.weights_.astype(float))
    for k in range(len(out)):
        if obs.any():
            cov = dense_covariance(model, k)[np.ix_(obs, obs)]
            out[k] += multivariate_normal.logpdf(x[obs], model.means_[k][obs], cov)
    return out


def reference_conditional(model, x, k):
    """E[x_m | x_o, k] and Cov[x_m | x_o, k] from the covariance, by np.linalg.solve."""
    obs, hole = ~np.isnan(x), np.isnan(x)
    cov, mean = dense_covariance(model, k), model.means_[k].astype(float)
    gain = np.linalg.solve(cov[np.ix_(obs, obs)], cov[np.ix_(obs, hole)]).T
    cond_mean = mean[hole] + gain @ (x[obs] - mean[obs])
    cond_cov = cov[np.ix_(hole, hole)] - gain @ cov[np.ix_(obs, hole)]
    return cond_mean, cond_cov


# ---------------------------------------------------------------- densities
@pytest.mark.parametrize("covariance_type", families())
def test_score_samples_equal_scipy_on_observed_coordinates(data, covariance_type):
    _, Xm = data
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.set_params(nan_policy="marginalize").fit(Xm)
    expected = np.array([logsumexp(reference_log_prob(model, x)) for x in Xm])
    np.testing.assert_allclose(model.score_samples(Xm), expected, rtol=1e-10, atol=1e-10)
    log_prob = np.array([reference_log_prob(model, x) for x in Xm])
    resp = np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])
    np.testing.assert_allclose(model.predict_proba(Xm), resp, atol=1e-10)
    np.testing.assert_array_equal(model.predict(Xm), model.fit_predict(Xm))
    assert model.score(Xm) == pytest.approx(expected.mean(), rel=1e-12)


def test_row_without_observed_entry_gets_the_weights(data):
    X, _ = data
    model = GaussianMixture(3, random_state=0, nan_policy="omit").fit(X)
    empty = np.full((2, X.shape[1]), np.nan)
    np.testing.assert_allclose(model.predict_proba(empty), np.tile(model.weights_, (2, 1)))
    np.testing.assert_allclose(model.score_samples(empty), 0.0, atol=1e-12)
    np.testing.assert_allclose(model.impute(empty), np.tile(model.weights_ @ model.means_, (2, 1)))


# ---------------------------------------------------------------- the E-step
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
def test_batched_cholesky_inverse_equals_numpy(m):
    rng = np.random.default_rng(m)
    A = rng.standard_normal((50, m, m))
    spd = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(m)
    log_det, inverse = missing.cholesky_inverse(np.ascontiguousarray(spd.transpose(1, 2, 0)))
    np.testing.assert_allclose(log_det, np.linalg.slogdet(spd)[1], rtol=1e-10)
    np.testing.assert_allclose(inverse.transpose(2, 0, 1), np.linalg.inv(spd), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("m", [4, 12])
def test_batched_cholesky_inverse_on_ill_conditioned_and_indefinite_matrices(m):
    """Condition numbers up to 1e10: the error stays within cond · eps of LAPACK's.

    An indefinite matrix gives NaN and leaves the others alone.
    """
    rng = np.random.default_rng(m)
    q = np.linalg.qr(rng.standard_normal((30, m, m)))[0]
    conditions = np.logspace(0, 10, 30)
    eigen = np.exp(np.linspace(0, 1, m) * np.log(conditions)[:, None])  # 1 ... cond
    spd = (q * eigen[:, None, :]) @ np.swapaxes(q, 1, 2)
    spd = (spd + np.swapaxes(spd, 1, 2)) / 2
    indefinite = spd[0].copy()
    indefinite[m - 1, m - 1] = -1.0
    batch = np.concatenate([spd, indefinite[None]])
    log_det, inverse = missing.cholesky_inverse(np.ascontiguousarray(batch.transpose(1, 2, 0)))
    bound = 100 * m * conditions * np.finfo(float).eps
    assert np.all(np.abs(log_det[:-1] - np.linalg.slogdet(spd)[1]) <= bound)
    reference = np.linalg.inv(spd)
    error = np.linalg.norm(inverse.transpose(2, 0, 1)[:-1] - reference, axis=(1, 2))
    assert np.all(error <= bound * np.linalg.norm(reference, axis=(1, 2)))
    assert np.isnan(log_det[-1]) and np.isnan(inverse[..., -1]).any()


@pytest.mark.parametrize("m", [1, 2, 5, 8])
def test_batched_triangular_solves_equal_scipy(m):
    """Forward and back substitution over a batch equal scipy's per-matrix triangular solves."""
    from scipy.linalg import solve_triangular

    rng = np.random.default_rng(10 + m)
    A = rng.standard_normal((40, m, m))
    chol = np.linalg.cholesky(A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(m))  # (B, m, m)
    batch = np.ascontiguousarray(chol.transpose(1, 2, 0))
    batch[np.triu_indices(m, 1)] = np.nan  # the upper triangle is never read
    b = rng.standard_normal((40, m))
    lower = missing.solve_lower(batch, b.T.copy())  # in place: copies
    upper = missing.solve_upper(batch, b.T.copy())
    for i in range(40):
        np.testing.assert_allclose(lower[:, i], solve_triangular(chol[i], b[i], lower=True))
        np.testing.assert_allclose(upper[:, i], solve_triangular(chol[i].T, b[i], lower=False))


@pytest.mark.parametrize("scale", [1.0, 1e-120, 1e120])
@pytest.mark.parametrize("batched", [True, False])
def test_pair_factors_equal_numpy(scale, batched):
    """Factors and log-determinants of every pair's P_mm equal numpy's Cholesky and slogdet.

    ``batched``: the vectorised factorisation (many pairs), else one LAPACK
    call per matrix (few pairs against m²). The scales put the determinants
    of the 8 × 8 blocks out of the normal range.
    """
    _, _, _, means, covariances = make_mixture("full", n_samples=200, d=10, seed=6)
    rng = np.random.default_rng(7)
    dense = missing.dense_components(
        means, _factors(covariances * scale), get_family("full"), np.zeros(10)
    )
    for m in (3, 8):
        n_pairs = 300 if batched else 6
        holes = np.sort([rng.choice(10, m, replace=False) for _ in range(n_pairs)], axis=1)
        k = rng.integers(0, 3, n_pairs)
        # (a_i·D + a_j)·K + k: P_mm's place in the precisions laid out (D, D, K)
        places = (holes.T[:, None] * 10 + holes.T[None]) * 3 + k
        log_det, chol = missing.pair_factors(places, dense)
        assert chol.shape == (m, m, n_pairs) and log_det.shape == (n_pairs,)
        sub = dense.precisions[k[:, None, None], holes[:, :, None], holes[:, None, :]]
        expected = np.linalg.cholesky(sub)
        got = np.tril(chol.transpose(2, 0, 1))
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())
        np.testing.assert_allclose(log_det, np.linalg.slogdet(sub)[1], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("weighted, absent", [(False, False), (True, False), (False, True)])
def test_negligible_responsibilities_dropped_equal_all_pairs(weighted, absent, monkeypatch):
    """Separated components: dropping responsibilities below 2^-60 changes the E-step at rounding.

    Most (row, component) pairs are dropped; the statistics equal those with
    every pair (NEGLIGIBLE 0) to 1e-12 relative, not bit for bit; the
    log-likelihood is the same. ``absent``: a component of weight 0, whose
    pairs (log-probability -inf) every pair's path computes too.
    """
    X, labels, weights, means, covariances = make_mixture("full", 600, n_components=6, d=5)
    X, means = X + 3 * means[labels], 4 * means  # the components further apart
    if absent:
        weights = np.append(weights[:5] / weights[:5].sum(), 0.0)
    Xm = with_holes(X, 0.3, 8)
    w = np.random.default_rng(9).uniform(0, 3, X.shape[0]) if weighted else None
    family = get_family("full")
    source = incomplete.fit_data(incomplete.WithMissing(Xm, "marginalize"), w, family, 6, "t")
    params = em_module.Parameters(weights, means, covariances, _factors(covariances))
    with np.errstate(divide="ignore"):
        log_const = np.log(weights) - 0.5 * np.linalg.slogdet(covariances)[1]
    log_const -= 0.5 * X.shape[1] * missing.LOG_2PI
    kept = []
    original = missing.expanded_statistics

    def count(block, pairs, resp):
        kept.append((np.count_nonzero(resp), block.rows.size * 6))
        return original(block, pairs, resp)

    monkeypatch.setattr(missing, "expanded_statistics", count)
    dropped, _ = source.expectation(params, log_const)
    assert sum(a for a, _ in kept) < 0.5 * sum(b for _, b in kept)  # most pairs dropped
    monkeypatch.setattr(missing, "NEGLIGIBLE", 0.0)
    every, _ = source.expectation(params, log_const)
    assert dropped.log_likelihood == every.log_likelihood
    for name in ("nk", "first", "second"):
        a, b = getattr(dropped.incomplete, name), getattr(every.incomplete, name)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    assert np.isfinite(every.log_likelihood)
    if absent:
        assert every.incomplete.nk[5] == 0.0


def test_float32_nearly_singular_full_fits_with_holes():
    """A float32 covariance that only its factor keeps positive definite.

    One column is another plus noise of 1e-4: rounded to float32 and factored
    again in float64, the covariance is not positive definite; the rows with
    holes use the precision factors of the complete rows' E-step, so the fit
    runs, and its log-density of every row is the scipy one of the model.
    """
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (300, 4)), rng.normal(12, 1, (300, 4))])
    X[:, 2] = X[:, 0] + 1e-4 * rng.standard_normal(len(X))
    holes = rng.random(X.shape) < 0.3
    holes[holes.all(axis=1), 1] = False
    X[holes] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianMixture(2, nan_policy="marginalize", reg_covar=1e-10, random_state=0)
        model.fit(X.astype(np.float32))
    got = model.score_samples(X.astype(np.float32)[:50])
    assert np.all(np.isfinite(got)) and np.isfinite(model.lower_bound_)


# ------------------------------------------------- the expanded kernels, path by path
def kernel_case(case: str, dtype, offset: float):
    """(X with holes, weights, means, covariances) of a 3-component 'full' mixture, D = 6.

    ``case`` picks the holes: every row one hole ('m1'), two ('m2'), every
    pattern of two and of three holes once, so each row has its own pattern ('own'),
    any number from 1 to D - 1 with patterns shared by rows ('mixed'), or
    every feature but one missing ('one-left').
    """
    X, _, weights, means, covariances = make_mixture("full", n_samples=240, d=6, seed=4)
    rng = np.random.default_rng(5)
    n, d = X.shape
    holes = np.zeros(X.shape, dtype=bool)
    if case == "m1":
        holes[np.arange(n), rng.integers(0, d, n)] = True
    elif case == "m2":
        for i in range(n):
            holes[i, rng.choice(d, 2, replace=False)] = True
    elif case == "own":
        from itertools import combinations

        patterns = [*combinations(range(d), 2), *combinations(range(d), 3)]
        X = X[: len(patterns)]
        holes = np.zeros(X.shape, dtype=bool)
        for i, pattern in enumerate(patterns):
            holes[i, list(pattern)] = True
    elif case == "mixed":
        for i in range(n):
            holes[i, rng.choice(d, rng.integers(1, d), replace=False)] = True
    else:  # one-left
        holes[:] = True
        holes[np.arange(n), rng.integers(0, d, n)] = False
    Xm = np.where(holes, np.nan, X + offset).astype(dtype)
    return Xm, weights, means + offset, covariances


def rowwise_reference(Xm, weights, means, covariances, shift, keep=None):
    """log pi_k + log N(x_o) (n, K), and Σ r, Σ r z, Σ r (z z' + C) about ``shift``, per row.

    ``keep`` (n, K) of 0 and 1, if given, multiplies the responsibilities (pairs dropped).
    """
    X = Xm.astype(np.float64)
    n, d = X.shape
    n_components = len(weights)
    log_prob = np.empty((n, n_components))
    filled = np.empty((n, n_components, d))
    extra = np.zeros((n, n_components, d, d))
    for i, x in enumerate(X):
        obs, hole = ~np.isnan(x), np.isnan(x)
        for k in range(n_components):
            cov = covariances[k]
            log_prob[i, k] = np.log(weights[k]) + multivariate_normal.logpdf(
                x[obs], means[k][obs], cov[np.ix_(obs, obs)]
            )
            gain = np.linalg.solve(cov[np.ix_(obs, obs)], cov[np.ix_(obs, hole)]).T
            filled[i, k] = x
            filled[i, k, hole] = means[k][hole] + gain @ (x[obs] - means[k][obs])
            extra[i, k][np.ix_(hole, hole)] = (
                cov[np.ix_(hole, hole)] - gain @ cov[np.ix_(obs, hole)]
            )
    resp = np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])
    if keep is not None:
        resp = resp * keep
    z = filled - shift
    first = np.einsum("nk,nkd->kd", resp, z)
    second = np.einsum("nk,nki,nkj->kij", resp, z, z) + np.einsum("nk,nkij->kij", resp, extra)
    return log_prob, filled, resp.sum(axis=0), first, second


@pytest.mark.parametrize("case", ["m1", "m2", "own", "mixed", "one-left"])
@pytest.mark.parametrize(
    ("dtype", "offset"), [(np.float64, 0.0), (np.float32, 0.0), (np.float64, 1e6)]
)
@pytest.mark.parametrize("rows_as_patterns", [False, True])
@pytest.mark.parametrize("dropped", [False, True])
def test_expanded_kernels_equal_rowwise_reference(
    case, dtype, offset, rows_as_patterns, dropped, monkeypatch
):
    """Log-densities, conditional means and statistics of every block equal a per-row reference.

    ``rows_as_patterns``: every block takes each row as a pattern of its own
    (:data:`gmm.missing.OWN_PATTERNS` 0), as blocks of mostly distinct patterns do.
    ``dropped``: some responsibilities are 0 (every third row's first component,
    and one component in all of the first block's rows), as
    :func:`gmm.missing.drop_negligible` leaves them; the reference drops the same.
    The pairs the screen leaves out (:func:`gmm.missing.screen_pairs`) have a
    reference responsibility below :data:`gmm.missing.NEGLIGIBLE`. With
    ``dropped`` the pairs are also computed in chunks of 16
    (:data:`gmm.missing.PAIR_BYTES`).
    """
    if rows_as_patterns:
        monkeypatch.setattr(missing, "OWN_PATTERNS", 0.0)
    if dropped:
        monkeypatch.setattr(missing, "PAIR_BYTES", 1)
    Xm, weights, means, covariances = kernel_case(case, dtype, offset)
    family = get_family("full")
    shift = incomplete.observed_mean(Xm, None)
    dense = missing.dense_components(means, _factors(covariances), family, shift)
    assert missing.expanded_ok(dense, weights)
    coefs = missing.expanded_coefficients(dense)
    log_const = np.log(weights) - 0.5 * np.linalg.slogdet(covariances)[1]
    log_const -= 0.5 * Xm.shape[1] * missing.LOG_2PI
    blocks = missing.make_blocks(Xm, shift, 3, budget=4000)  # several blocks
    assert len(blocks) > 1
    keep = np.ones((Xm.shape[0], len(weights)))
    if dropped:
        keep[::3, 0] = 0.0
        keep[blocks[0].rows, 1] = 0.0
    ref_log_prob, ref_filled, *ref_stats = rowwise_reference(
        Xm, weights, means, covariances, shift, keep
    )
    if case == "own" or rows_as_patterns:
        assert all(b.missing.shape[0] == b.rows.size for b in blocks)
    elif case == "mixed":
        assert any(b.missing.shape[0] < b.rows.size for b in blocks)
    total, screened, chunks = None, 0, 0
    scale = np.abs(Xm[~np.isnan(Xm)]).max()
    for block in blocks:
        values, pairs = missing.expanded_log_prob(block, dense, coefs, log_const)
        log_prob = np.full((len(weights), block.rows.size), -np.inf)
        log_prob.ravel()[pairs.flat] = values
        # The pairs left out (-inf) are negligible by the reference.
        ref = ref_log_prob[block.rows].T  # (K, n)
        left_out = np.isinf(log_prob)
        screened += left_out.sum()
        assert np.all((ref - logsumexp(ref, axis=0))[left_out] < np.log(missing.NEGLIGIBLE))
        np.testing.assert_allclose(log_prob[~left_out], ref[~left_out], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(pairs.flat, np.flatnonzero(~left_out))
        # pairs.solved is L^-1 u, (m, pairs): -e = L^-T L^-1 u
        assert not dropped or all(f.shape[2] <= 16 for f in pairs.factors)
        chunks += len(pairs.factors)
        factors = np.concatenate(pairs.factors, axis=2)  # the chunks
        negated = missing.solve_upper(factors, np.concatenate(pairs.solved, axis=1))
        holes = block.missing[block.pattern[pairs.rows]]  # (pairs, m)
        got = -negated.T + shift[holes]
        expected = ref_filled[block.rows[pairs.rows][:, None], pairs.components[:, None], holes]
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * scale)
        resp = np.exp(log_prob - logsumexp(log_prob, axis=0)) * keep[block.rows].T
        part = missing.expanded_statistics(block, pairs, resp.ravel()[pairs.flat])
        total = part if total is None else total + part
    # The bounds leave pairs out unless a row has a single observed entry.
    assert (screened > 0) == (case != "one-left")
    assert chunks > len(blocks) if dropped else chunks == len(blocks)
    stats = total.finish()
    nk, first, second = ref_stats
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-10)
    np.testing.assert_allclose(stats.first, first, rtol=1e-9, atol=1e-9 * nk.max())
    np.testing.assert_allclose(stats.second, second, rtol=1e-9, atol=1e-9 * np.abs(second).max())


@pytest.mark.parametrize("scale", [1e-120, 1e120])
def test_batched_cholesky_log_det_out_of_the_normal_range(scale):
    """The product of the factor's diagonal under- or overflows: the sum of logarithms takes over."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((20, 4, 4))
    spd = (A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(4)) * scale
    spd[::2] /= scale  # half of them in the normal range
    log_det, inverse = missing.cholesky_inverse(np.ascontiguousarray(spd.transpose(1, 2, 0)))
    np.testing.assert_allclose(log_det, np.linalg.slogdet(spd)[1], rtol=1e-12)
    np.testing.assert_allclose(
        inverse.transpose(2, 0, 1) * spd[:, :1, :1], np.linalg.inv(spd) * spd[:, :1, :1], rtol=1e-8
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "test-EII"])
def test_conditional_expectations_equal_per_row_reference(data, covariance_type):
    _, Xm = data
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.set_params(nan_policy="marginalize", max_iter=3, tol=1e9).fit(Xm)
    family = get_family(covariance_type)
    shift = np.nanmean(Xm, axis=0)
    dense = missing.dense_components(model.means_, model.precisions_cholesky_, family, shift)
    log_const = model._log_const(model._get_parameters(), family)
    for block in missing.make_blocks(Xm, shift, 3, budget=4000):  # several blocks
        conditionals = missing.conditional_precisions(block, dense)
        log_prob, deviations = missing.block_log_prob(block, dense, log_const, conditionals)
        inverse = conditionals[1][:, block.pattern]
        for i, row in enumerate(block.rows):
            x = Xm[row]
            hole = np.isnan(x)
            np.testing.assert_allclose(log_prob[:, i], reference_log_prob(model, x), rtol=1e-10)
            for k in range(3):
                cond_mean, cond_cov = reference_conditional(model, x, k)
                filled = deviations[k, i] + model.means_[k] - shift
                np.testing.assert_allclose(filled[~hole] + shift[~hole], x[~hole], atol=1e-12)
                np.testing.assert_allclose(filled[hole] + shift[hole], cond_mean, atol=1e-10)
                np.testing.assert_allclose(inverse[k, i], cond_cov, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("every_row_has_a_hole", [False, True])
def test_statistics_step_equals_rowwise_reference(data, covariance_type, every_row_has_a_hole):
    """Means and S_k of one E-step equal sums over rows of r (x̂ x̂' + C) in plain numpy."""
    X, Xm = data
    if every_row_has_a_hole:  # no complete row: the family's moments are all zero
        Xm = X.copy()
        Xm[np.arange(len(X)), np.arange(len(X)) % X.shape[1]] = np.nan
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.set_params(nan_policy="marginalize", max_iter=2, tol=1e9).fit(Xm)
    family = get_family(covariance_type)
    source = incomplete.fit_data(incomplete.WithMissing(Xm, "marginalize"), None, family, 3, "t")
    params = model._get_parameters()
    stats, coefs = source.expectation(params, model._log_const(params, family))
    scatter = em_module.scatter(stats, family, source.shift, coefs, np.dtype(float))

    n, d = Xm.shape
    resp = np.empty((n, 3))
    filled = np.empty((n, 3, d))
    extra = np.zeros((n, 3, d, d))
    for i, x in enumerate(Xm):
        log_prob = reference_log_prob(model, x)
        resp[i] = np.exp(log_prob - logsumexp(log_prob))
        hole = np.isnan(x)
        for k in range(3):
            filled[i, k] = x
            if hole.any():
                cond_mean, cond_cov = reference_conditional(model, x, k)
                filled[i, k, hole] = cond_mean
                extra[i, k][np.ix_(hole, hole)] = cond_cov
    nk = resp.sum(axis=0)
    means = np.einsum("nk,nkd->kd", resp, filled) / nk[:, None]
    dev = filled - means[None]
    W = np.einsum("nk,nki,nkj->kij", resp, dev, dev) + np.einsum("nk,nkij->kij", resp, extra)
    np.testing.assert_allclose(scatter.nk, nk, rtol=1e-10)
    np.testing.assert_allclose(scatter.means, means, rtol=1e-9, atol=1e-10)
    expected = {
        "full": W / nk[:, None, None],
        "diagonal": np.diagonal(W, axis1=1, axis2=2) / nk[:, None],
        "pooled": W.sum(axis=0) / n,
    }[scatter.kind]
    np.testing.assert_allclose(scatter.covariances, expected, rtol=1e-9, atol=1e-10)
    assert stats.log_likelihood == pytest.approx(
        sum(logsumexp(reference_log_prob(model, x)) for x in Xm), rel=1e-12
    )


@pytest.mark.parametrize("covariance_type", families())
def test_observed_log_likelihood_never_decreases(data, covariance_type):
    _, Xm = data
    model = GaussianMixture(
        3, covariance_type=covariance_type, nan_policy="marginalize", tol=0, max_iter=25
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.set_params(init_params="random", random_state=3).fit(Xm)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:]))
    # lower_bound_ is the E-step's value before the last M-step, which can only raise it.
    assert model.score(Xm) >= model.lower_bound_ - 1e-12


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.05, 0.6))
def test_marginal_densities_hold_for_any_pattern(seed, fraction):
    """Property: any MCAR mask; the marginal log-density of every row matches scipy."""
    X = make_mixture("full", n_samples=60, n_components=2, d=5, seed=seed % 7)[0]
    model = GaussianMixture(2, random_state=0, max_iter=5).fit(X)
    model.set_params(nan_policy="marginalize")
    Xm = with_holes(X, fraction, seed)
    Xm[0] = np.nan  # one row with no observed entry
    expected = [logsumexp(reference_log_prob(model, x)) for x in Xm]
    np.testing.assert_allclose(model.score_samples(Xm), expected, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------- no NaN, weights, dtype
@pytest.mark.parametrize("covariance_type", families())
@pytest.mark.parametrize("policy", ["omit", "marginalize"])
def test_without_nan_the_fit_is_bit_identical(data, covariance_type, policy):
    X, _ = data
    w = np.random.default_rng(0).uniform(0.5, 2, X.shape[0])
    for dtype in (np.float64, np.float32):
        base = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
        ours = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
        base.fit(X.astype(dtype), sample_weight=w)
        ours.set_params(nan_policy=policy).fit(X.astype(dtype), sample_weight=w)
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(base, name))
        assert ours.lower_bounds_ == base.lower_bounds_


def fixed_start(Xm, covariance_type="full"):
    """Initial parameters from a fit on the complete rows (both fits start alike)."""
    start = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    start.set_params(nan_policy="omit", max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(Xm)
    return {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
        "covariance_type": covariance_type,
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_integer_weights_equal_repeated_rows(data):
    _, Xm = data
    counts = np.random.default_rng(4).integers(0, 3, Xm.shape[0])
    counts[:10] = 1
    init = fixed_start(Xm)
    a = GaussianMixture(3, nan_policy="marginalize", tol=0, max_iter=10, **init)
    b = GaussianMixture(3, nan_policy="marginalize", tol=0, max_iter=10, **init)
    a.fit(Xm, sample_weight=counts)
    b.fit(np.repeat(Xm, counts, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_stays_float32(data):
    _, Xm = data
    init = fixed_start(Xm)
    a = GaussianMixture(3, nan_policy="marginalize", max_iter=20, tol=0, **init).fit(Xm)
    b = GaussianMixture(3, nan_policy="marginalize", max_iter=20, tol=0, **init)
    b.fit(Xm.astype(np.float32))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(b, name).dtype == np.float32
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=2e-3, atol=2e-4)
    assert b.impute(Xm.astype(np.float32)).dtype == np.float32
    assert b.predict_proba(Xm.astype(np.float32)).dtype == np.float32


def test_omit_fits_the_complete_rows_and_counts_them(data):
    _, Xm = data
    complete = ~np.isnan(Xm).any(axis=1)
    model = GaussianMixture(3, random_state=0, nan_policy="omit")
    with pytest.warns(UserWarning, match=f"dropped {np.sum(~complete)} of {len(Xm)} rows"):
        labels = model.fit_predict(Xm)
    base = GaussianMixture(3, random_state=0).fit(Xm[complete])
    np.testing.assert_array_equal(model.means_, base.means_)
    assert model.n_rows_omitted_ == np.sum(~complete)
    assert labels.shape == (len(Xm),)
    np.testing.assert_array_equal(labels, model.predict(Xm))


# ------------------------------------------------------------------ impute
def test_impute_conditional_mean_equals_reference(data):
    _, Xm = data
    model = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(Xm)
    filled = model.impute(Xm)
    for x, out in zip(Xm[:60], filled[:60], strict=True):
        hole = np.isnan(x)
        log_prob = reference_log_prob(model, x)
        resp = np.exp(log_prob - logsumexp(log_prob))
        expected = x.copy()
        if hole.any():
            expected[hole] = sum(resp[k] * reference_conditional(model, x, k)[0] for k in range(3))
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    assert not np.isnan(filled).any()


def test_impute_draws_follow_the_conditional_distribution():
    """One Gaussian: draws of x_2 | x_1 have mean and variance of the closed form."""
    cov = np.array([[1.0, 0.8], [0.8, 2.0]])
    X = np.random.default_rng(0).multivariate_normal([1, -1], cov, 50)
    model = GaussianMixture(1, max_iter=0, weights_init=[1.0], means_init=[[1.0, -1.0]])
    model.set_params(precisions_init=[np.linalg.inv(cov)]).fit(X)  # the parameters as given
    draws = model.impute([[2.0, np.nan], [np.nan, 0.0]], n_draws=20_000, random_state=0)
    assert draws.shape == (20_000, 2, 2)
    np.testing.assert_array_equal(draws[:, 0, 0], 2.0)
    # closed form: E[x2 | x1=2] = -1 + 0.8 (2 - 1), Var = 2 - 0.8²; E[x1 | x2=0] = 1 + 0.4.
    assert draws[:, 0, 1].mean() == pytest.approx(-0.2, abs=0.03)
    assert draws[:, 0, 1].var() == pytest.approx(2 - 0.64, rel=0.05)
    assert draws[:, 1, 0].mean() == pytest.approx(1.4, abs=0.03)
    assert draws[:, 1, 0].var() == pytest.approx(1 - 0.32, rel=0.05)
    same = model.impute([[2.0, np.nan]], n_draws=3, random_state=1)
    np.testing.assert_array_equal(same, model.impute([[2.0, np.nan]], n_draws=3, random_state=1))


# ---------------------------------------------------------------- bad input
def bad_inputs(X):
    empty_column = X.copy()
    empty_column[:, 1] = np.nan
    empty_row = X.copy()
    empty_row[7] = np.nan
    infinite = X.copy()
    infinite[3, 2] = np.inf
    some_nan = X.copy()
    some_nan[5, 0] = np.nan
    return [
        ({"nan_policy": "marginalize"}, empty_column, None, r"Column\(s\) \[1\].*all NaN"),
        ({"nan_policy": "marginalize"}, empty_row, None, "Row 7 of X has no observed entry"),
        ({"nan_policy": "omit"}, infinite, None, "row 3, column 2.*infinities are always"),
        ({"nan_policy": "marginalize"}, some_nan, np.r_[np.nan, np.ones(len(X) - 1)], "NaN"),
        ({}, some_nan, None, "NaN"),
        ({"nan_policy": "drop"}, X, None, "nan_policy must be one of"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_bad_input_is_refused_before_any_state_changes(data, case):
    X, _ = data
    params, bad, weights, message = bad_inputs(X)[case]
    model = GaussianMixture(3, random_state=0).fit(X)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(model).items()}
    model.set_params(**params)
    with pytest.raises(ValueError, match=message):
        model.fit(bad, sample_weight=weights)
    model.set_params(nan_policy="raise")
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(model, key), value)


@pytest.fixture
def small_file_blocks(monkeypatch):
    """Files read in blocks of a few rows, so a fit crosses many block boundaries."""
    from gmm.scale import files

    monkeypatch.setattr(files, "BLOCK_BYTES", 1000)


@pytest.mark.parametrize("policy", ["marginalize", "omit"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_memmap_with_holes_fits_as_in_memory(
    tmp_path, data, small_file_blocks, policy, covariance_type
):
    """A memory-mapped file read block by block gives the in-memory fit and predictions."""
    _, Xm = data
    path = tmp_path / "x.npy"
    np.save(path, Xm)
    mapped = np.load(path, mmap_mode="r")
    w = np.random.default_rng(4).uniform(0.5, 2, len(Xm))
    kw = dict(covariance_type=covariance_type, nan_policy=policy, random_state=0, tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'omit' warns about the dropped rows
        a = GaussianMixture(3, **kw).fit(Xm, sample_weight=w)
        b = GaussianMixture(3, **kw).fit(mapped, sample_weight=w)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(b.score_samples(mapped), a.score_samples(Xm), rtol=1e-9)
    np.testing.assert_array_equal(b.predict(mapped), a.predict(Xm))
    np.testing.assert_allclose(b.impute(mapped), a.impute(Xm), rtol=1e-9, atol=1e-10)
    if policy == "omit":
        assert b.n_rows_omitted_ == a.n_rows_omitted_ == int(np.isnan(Xm).any(axis=1).sum())


def test_memmap_with_holes_bad_input(tmp_path, data, small_file_blocks):
    """Errors on files name the row in the file; 'raise' refuses NaN as before."""
    _, Xm = data
    cases = {"raise": (Xm, "NaN")}
    empty_row = Xm.copy()
    empty_row[150] = np.nan
    cases["marginalize"] = (empty_row, "Row 150 of X has no observed entry")
    infinite = Xm.copy()
    infinite[120, 1] = -np.inf
    cases["omit"] = (infinite, "row 120, column 1.*infinities")
    for policy, (bad, message) in cases.items():
        path = tmp_path / f"{policy}.npy"
        np.save(path, bad)
        with pytest.raises(ValueError, match=message):
            GaussianMixture(2, nan_policy=policy).fit(np.load(path, mmap_mode="r"))


@pytest.mark.parametrize("policy", ["marginalize", "omit"])
def test_dask_with_holes_fits_as_in_memory(data, policy):
    """A dask array with NaN, block by block, gives the in-memory fit; predictions stay lazy."""
    da = pytest.importorskip("dask.array")
    _, Xm = data
    w = np.random.default_rng(4).uniform(0.5, 2, len(Xm))
    kw = dict(nan_policy=policy, random_state=0, tol=1e-9)
    lazy = da.from_array(Xm, chunks=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'omit' warns about the dropped rows
        a = GaussianMixture(3, **kw).fit(Xm, sample_weight=w)
        b = GaussianMixture(3, **kw).fit(lazy, sample_weight=da.from_array(w, chunks=50))
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-9, atol=1e-10)
    scores = b.score_samples(lazy)
    assert type(scores).__name__ == "Array"
    np.testing.assert_allclose(scores.compute(), a.score_samples(Xm), rtol=1e-9)
    np.testing.assert_allclose(b.impute(lazy), a.impute(Xm), rtol=1e-9, atol=1e-10)
    if policy == "omit":
        assert b.n_rows_omitted_ == a.n_rows_omitted_
    empty_row = Xm.copy()
    empty_row[120] = np.nan
    with pytest.raises(ValueError, match="Row 120 of X has no observed entry"):
        GaussianMixture(2, nan_policy="marginalize").fit(da.from_array(empty_row, chunks=50))
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(lazy)  # 'raise', the default, refuses NaN as before


@pytest.mark.parametrize("covariance_type", ["full", "tied", "spherical", "test-EII"])
def test_expanded_path_equals_centred_path(data, covariance_type, monkeypatch):
    """The E-step statistics by shared matrix products equal the per-component centred ones."""
    _, Xm = data
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.set_params(nan_policy="marginalize", max_iter=2, tol=1e9).fit(Xm)
    family = get_family(covariance_type)
    source = incomplete.fit_data(incomplete.WithMissing(Xm, "marginalize"), None, family, 3, "t")
    params = model._get_parameters()
    log_const = model._log_const(params, family)
    assert missing.expanded_ok(
        incomplete.marginal_components(params, family, source.shift)[0], params.weights
    )
    fast, coefs = source.expectation(params, log_const)
    monkeypatch.setattr(missing, "EXPANDED_KAPPA", 0.0)  # every component on the centred path
    slow, _ = source.expectation(params, log_const)
    assert slow.incomplete.centres.any() and not fast.incomplete.centres.any()
    assert fast.log_likelihood == pytest.approx(slow.log_likelihood, rel=1e-12)
    for stats in (fast, slow):
        scatter = em_module.scatter(stats, family, source.shift, coefs, np.dtype(float))
        stats.result = scatter
    np.testing.assert_allclose(fast.result.means, slow.result.means, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(
        fast.result.covariances, slow.result.covariances, rtol=1e-10, atol=1e-12
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kept", ["all", "first block", "none"])
def test_kept_block_products_give_the_same_e_step(data, kept, monkeypatch):
    """Features and [x, 1] at the holes kept across iterations equal those formed each time."""
    _, Xm = data
    model = GaussianMixture(3, random_state=0).set_params(nan_policy="marginalize", max_iter=2)
    model.fit(Xm)
    family = get_family("full")
    params = model._get_parameters()
    log_const = model._log_const(params, family)
    monkeypatch.setattr(missing, "EXPANDED_BLOCK_BYTES", 2000)  # several blocks
    fresh = incomplete.fit_data(incomplete.WithMissing(Xm, "marginalize"), None, family, 3, "t")
    fresh.products_kept = True  # never keeps: its products are formed at every E-step
    first = missing.products_bytes(fresh.blocks[0])
    budget = {"all": 2**30, "first block": first, "none": 0}[kept]
    monkeypatch.setattr(em_module, "FEATURE_CACHE_BYTES", budget + fresh.complete.chunks.kept_bytes)
    source = incomplete.fit_data(incomplete.WithMissing(Xm, "marginalize"), None, family, 3, "t")
    assert all(block.products is None for block in source.blocks)  # nothing before an E-step
    a = source.expectation(params, log_const)[0]
    held = [block.products is not None for block in source.blocks]
    assert len(held) > 2
    expected = {"all": len(held), "first block": 1, "none": 0}[kept]
    assert held == [True] * expected + [False] * (len(held) - expected)
    assert all(block.products is None for block in fresh.blocks)
    b = fresh.expectation(params, log_const)[0]
    assert a.log_likelihood == b.log_likelihood
    for name in ("nk", "first", "second"):
        np.testing.assert_array_equal(getattr(a.incomplete, name), getattr(b.incomplete, name))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_incomplete_row_out_of_range_is_named(data):
    """A row with holes whose observed entries overflow every distance is refused by its index."""
    _, Xm = data
    model = GaussianMixture(3, random_state=0).set_params(nan_policy="marginalize", max_iter=2)
    model.fit(Xm)
    family = get_family("full")
    params = model._get_parameters()
    far = Xm.copy()
    row = int(np.flatnonzero(np.isnan(far).any(axis=1))[5])
    far[row, ~np.isnan(far[row])] = 1e200  # squares overflow float64
    shift = np.zeros(far.shape[1])
    blocks = missing.make_blocks(far, shift, 3)
    components = incomplete.marginal_components(params, family, shift)
    stats = em_module.Statistics(np.zeros(3), (), 0.0, 0.0)
    with pytest.raises(em_module.OutOfRangeError, match=f"Row {row} ") as error:
        incomplete.add_incomplete(
            stats, blocks, [None] * len(blocks), components, model._log_const(params, family)
        )
    assert error.value.row == row


def test_tight_component_takes_the_centred_path():
    """A component far from the data's centre against its spread would cancel digits."""
    means = np.array([[0.0, 0.0], [1e6, 0.0]])
    covariances = np.array([np.eye(2), 1e-6 * np.eye(2)])
    dense = missing.dense_components(means, _factors(covariances), get_family("full"), np.zeros(2))
    assert not missing.expanded_ok(dense, np.array([0.5, 0.5]))
    dense = missing.dense_components(
        means[:1], _factors(covariances[:1]), get_family("full"), np.zeros(2)
    )
    assert missing.expanded_ok(dense, np.array([1.0]))


def test_model_file_keeps_the_omitted_row_count(tmp_path, data):
    """gmm.save / gmm.load keep n_rows_omitted_; a negative count is refused."""
    from gmm import load, save
    from tests.test_persistence import read_members, write_members

    _, Xm = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = GaussianMixture(2, nan_policy="omit", random_state=0).fit(Xm)
    path = tmp_path / "omit.npz"
    save(model, path)
    loaded = load(path)
    assert loaded.n_rows_omitted_ == model.n_rows_omitted_ == int(np.isnan(Xm).any(axis=1).sum())
    np.testing.assert_array_equal(loaded.predict(Xm), model.predict(Xm))
    # Tampered: a negative count. (A count under another nan_policy is a model
    # whose policy was changed by set_params after the fit: it loads as it was.)
    metadata, members = read_members(path)
    metadata["model"]["n_rows_omitted_"] = -1
    tampered = tmp_path / "tampered.npz"
    write_members(tampered, metadata, members)
    with pytest.raises(ValueError, match="n_rows_omitted_"):
        load(tampered)


# ---------------------------------------------------------------- model selection
@pytest.mark.parametrize("policy", ["marginalize", "omit"])
def test_sweep_scores_by_the_observed_data_likelihood(data, policy):
    """The table's log-likelihood and BIC equal scipy's marginal densities summed by hand."""
    from gmm import GaussianMixtureIC, sweep

    _, Xm = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'omit' warns about the dropped rows
        result = sweep(Xm, [2, 3], ["full", "diag"], nan_policy=policy, progress=False)
        selection = GaussianMixtureIC([2, 3], covariance_type=["full", "diag"], nan_policy=policy)
        selection.set_params(random_state=0).fit(Xm)
    model = result.best_estimator_
    row = next(
        r
        for r in result.table
        if (r["n_components"], r["covariance_type"]) == (model.n_components, model.covariance_type)
    )
    counted = np.ones(len(Xm), bool) if policy == "marginalize" else ~np.isnan(Xm).any(axis=1)
    log_likelihood = sum(logsumexp(reference_log_prob(model, x)) for x in Xm[counted])
    assert row["log_likelihood"] == pytest.approx(log_likelihood, rel=1e-10)
    bic = -2 * log_likelihood + row["n_parameters"] * np.log(counted.sum())
    assert row["bic"] == pytest.approx(bic, rel=1e-10)
    assert selection.best_params_ == result.best_params_
    np.testing.assert_array_equal(selection.predict(Xm), model.predict(Xm))


def test_sweep_with_holes_on_files_and_dask_equals_in_memory(tmp_path, data):
    """The criteria of 'omit' on a memory map and a dask array count the same complete rows."""
    from gmm import sweep

    da = pytest.importorskip("dask.array")
    _, Xm = data
    path = tmp_path / "x.npy"
    np.save(path, Xm)
    sources = [Xm, np.load(path, mmap_mode="r"), da.from_array(Xm, chunks=60)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tables = [sweep(X, [2], "full", nan_policy="omit", progress=False).table for X in sources]
    for table in tables[1:]:
        for column in ("log_likelihood", "bic", "icl"):
            assert table[0][column] == pytest.approx(tables[0][0][column], rel=1e-9)


def test_sweep_and_selection_refuse_nan_by_default(data):
    from gmm import GaussianMixtureIC, sweep

    _, Xm = data
    with pytest.raises(ValueError, match="NaN"):
        sweep(Xm, [2], "full", progress=False)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixtureIC([2], covariance_type="full").fit(Xm)
    infinite = np.where(np.isnan(Xm), np.inf, Xm)
    with pytest.raises(ValueError, match="infinit"):
        sweep(infinite, [2], "full", nan_policy="marginalize", progress=False)


# ---------------------------------------------------------------- the CLI
def test_cli_fits_on_csv_with_holes_and_imputes(tmp_path, capsys):
    from gmm.cli import main
    from gmm.datafiles import read_data

    X = make_mixture("full", n_samples=60, n_components=2, d=3, seed=3)[0]
    Xm = with_holes(X, 0.2, 5)
    lines = ["a,b,c"] + [
        ",".join(("NA" if i % 2 else "") if np.isnan(v) else repr(float(v)) for v in row)
        for i, row in enumerate(Xm)
    ]
    data = tmp_path / "holes.csv"
    data.write_text("\n".join(lines) + "\n")
    read, names = read_data(str(data), allow_missing=True)
    np.testing.assert_array_equal(np.isnan(read), np.isnan(Xm))
    assert names == ["a", "b", "c"]
    assert main(["fit", str(data), "--k", "2"]) != 0  # 'raise': the empty cell is an error
    assert "--nan-policy" in capsys.readouterr().err
    model_path = tmp_path / "model.npz"
    fit = ["fit", str(data), "--k", "2", "--nan-policy", "marginalize", "--out", str(model_path)]
    assert main(fit) == 0
    capsys.readouterr()
    assert main(["impute", str(model_path), str(data)]) == 0
    printed = capsys.readouterr().out.splitlines()
    filled = np.array([[float(v) for v in line.split(",")] for line in printed[1:]])
    expected = GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(Xm).impute(Xm)
    np.testing.assert_allclose(filled, expected, rtol=1e-12)
    assert main(["predict", str(model_path), str(data)]) == 0


def test_refit_under_another_policy_drops_the_omitted_count():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    X[:10, 0] = np.nan
    model = GaussianMixture(2, nan_policy="omit", random_state=0)
    with pytest.warns(UserWarning):
        model.fit(X)
    assert model.n_rows_omitted_ == 10
    model.set_params(nan_policy="marginalize").fit(X)
    assert not hasattr(model, "n_rows_omitted_")


@pytest.mark.parametrize("factor", (1e-300, 1e300))
def test_weights_of_any_scale_give_the_same_marginal_fit(data, factor):
    _, X = data
    w = np.random.default_rng(4).uniform(0.5, 2.0, size=len(X))
    settings_ = dict(nan_policy="marginalize", random_state=0, tol=1e-10)
    plain = GaussianMixture(3, **settings_).fit(X, sample_weight=w)
    scaled = GaussianMixture(3, **settings_).fit(X, sample_weight=w * factor)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(scaled, name), getattr(plain, name), rtol=1e-10)


@pytest.mark.parametrize("policy", ("marginalize", "omit"))
@pytest.mark.parametrize("c", (2.0**-400, 1e150))
def test_data_with_holes_at_any_scale_fit_as_at_unit_scale(data, policy, c):
    # Rescaled as complete data are (gmm.units); a row's log-density shifts by
    # -(its observed entries) · log c.
    _, X = data
    settings_ = dict(nan_policy=policy, random_state=0, reg_covar=0, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'omit' says what it dropped
        plain = GaussianMixture(3, **settings_).fit(X)
        scaled = GaussianMixture(3, **settings_).fit(X * c)
    np.testing.assert_allclose(scaled.means_ / c, plain.means_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(scaled.covariances_ / c**2, plain.covariances_, rtol=1e-8)
    observed = np.sum(~np.isnan(X), axis=1)
    np.testing.assert_allclose(
        scaled.score_samples(X * c) + observed * np.log(c), plain.score_samples(X), rtol=1e-8
    )
    np.testing.assert_array_equal(scaled.predict(X * c), plain.predict(X))
