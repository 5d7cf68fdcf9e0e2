"""'full': the cheap bound that settles the expansion decision before the exact estimate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gmm.covariance import full
from gmm.covariance.base import kappa_max
from gmm.covariance.full import Full

from .mixture_data import random_covariances


def _exact_condition(weights, means, covariances):
    """kappa_k = lambda_max(P_k) (spread + |m_k|)² / D from eigvalsh and a general inverse."""
    d = means.shape[1]
    precisions = np.linalg.inv(covariances)
    spread2 = weights @ (np.trace(covariances, axis1=1, axis2=2) + (means**2).sum(axis=1))
    top = np.linalg.eigvalsh(precisions)[:, -1]
    return top * (np.sqrt(spread2) + np.linalg.norm(means, axis=1)) ** 2 / d


def _cases():
    """(weights, means, covariances, dtype): ordinary, far, wide-ranged, tight, near-singular."""
    rng = np.random.default_rng(7)
    for d, k in [(1, 3), (2, 3), (2, 8), (3, 5), (5, 4), (8, 2)]:
        for dtype in (np.float64, np.float32):
            weights = rng.dirichlet(np.ones(k))
            cov = random_covariances(rng, "full", k, d)
            means = rng.normal(0, 3, (k, d))
            yield "ordinary", weights, means, cov, dtype
            yield "offset 1e6", weights, means + 1e6, cov, dtype
            scales = np.logspace(-4, 4, d)
            yield (
                "features 1e-4..1e4",
                weights,
                means * scales,
                cov * np.outer(scales, scales),
                dtype,
            )
            tight = cov * np.logspace(-12, 0, k)[:, None, None]
            yield "tight", weights, means, tight, dtype
            u, _ = np.linalg.qr(rng.standard_normal((d, d)))
            flat = np.stack([u @ np.diag(np.logspace(-10, 0, d)) @ u.T] * k)
            yield "near-singular", weights, means, flat, dtype


def test_settled_means_the_exact_estimate_expands_every_component():
    """Whenever the cheap bound settles the decision, the exact condition (here from
    eigenvalues) and the family's estimate put every component at or below kappa_max;
    the bound settles the ordinary cases and leaves some hard ones to the exact estimate."""
    family = Full()
    settled_kinds, unsettled_kinds = set(), set()
    for kind, weights, means, cov, dtype in _cases():
        factor = family.precision_cholesky(cov)  # float64
        limit = kappa_max(dtype)
        settled = full.expansion_settled(weights, means, factor, limit)
        if settled:
            assert np.all(_exact_condition(weights, means, cov) <= limit), kind
            assert np.all(family.expansion_condition(weights, means, factor, limit=limit) <= limit)
            settled_kinds.add(kind)
        else:
            unsettled_kinds.add(kind)
    assert "ordinary" in settled_kinds
    assert {"tight", "near-singular", "offset 1e6"} <= unsettled_kinds


def test_settled_bound_refuses_what_it_cannot_bound():
    factor = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    weights, means = np.full(3, 1 / 3), np.zeros((3, 2))
    assert full.expansion_settled(weights, means, factor, 1e6)
    for bad in (0.0, np.inf, np.nan):
        broken = factor.copy()
        broken[1, 1, 1] = bad
        assert not full.expansion_settled(weights, means, broken, 1e6)
    assert not full.expansion_settled(weights, means + np.inf, factor, 1e6)
    assert not full.expansion_settled(weights, means, factor * 1e300, 1e6)  # bound overflows
    big = np.broadcast_to(np.eye(6), (4, 6, 6)).copy()  # 144 entries > SETTLED_ENTRIES
    assert not full.expansion_settled(np.full(4, 0.25), np.zeros((4, 6)), big, 1e6)


@pytest.mark.parametrize("formulation", [None, "expanded"])
def test_coefficients_the_same_with_and_without_the_bound(monkeypatch, formulation):
    """The bound only skips work: every coefficient is bit-for-bit the one the exact
    estimate gives, on every case (components on either path)."""
    from gmm.covariance import _cost

    family = Full()
    with _cost.forced(formulation):
        for kind, weights, means, cov, dtype in _cases():
            factor = family.precision_cholesky(cov).astype(dtype)
            w, m = weights.astype(dtype), means.astype(dtype)
            ours = family.coefficients(w, m, factor)
            with monkeypatch.context() as patch:
                patch.setattr(full, "expansion_settled", lambda *args: False)
                theirs = family.coefficients(w, m, factor)
            for field in dataclasses.fields(ours):
                a, b = getattr(ours, field.name), getattr(theirs, field.name)
                assert a.dtype == b.dtype and np.array_equal(a, b), (kind, field.name)


# ------------------------------------------- centred components, deviations not kept
def _sparse_case(rng, dtype, n=300, d=5, g=4):
    """Rows, centres, upper factors and responsibilities with exact zeros (about half
    of them; component 1 has none, component 2 only zeros), in ``dtype``."""
    X = rng.normal(0, 3, (n, d)).astype(dtype)
    centres = rng.normal(0, 3, (g, d)).astype(dtype)
    factors = (np.triu(rng.normal(0, 0.3, (g, d, d))) + np.eye(d)).astype(dtype)
    resp = rng.random((g, n)).astype(dtype)
    resp[rng.random((g, n)) < 0.5] = 0
    resp[1] = rng.random(n) + 0.1
    resp[2] = 0
    return X, centres, factors, resp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_centred_kernels_by_blocks_equal_numpy(monkeypatch, dtype):
    """Distances and whitened moments formed by 64-row blocks, gathering only the
    positive responsibilities, against numpy's products in float64 on all rows."""
    monkeypatch.setattr(full, "BLOCK_BYTES", 1)  # 64-row blocks: several per component
    X, centres, factors, resp = _sparse_case(np.random.default_rng(5), dtype)
    X64, c64, U64, r64 = (a.astype(np.float64) for a in (X, centres, factors, resp))
    white = np.stack([(X64 - c) @ U for c, U in zip(c64, U64, strict=True)])
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    maha = full.centred_distances(X, centres, factors)
    assert maha.dtype == dtype
    np.testing.assert_allclose(maha, np.einsum("gnd,gnd->gn", white, white), rtol=rtol)
    first, gram = full.sparse_whitened_moments(X, resp, centres, factors)
    assert first.dtype == gram.dtype == dtype
    expected_first = np.einsum("gn,gnd->gd", r64, white)
    expected_gram = np.einsum("gn,gni,gnj->gij", r64, white, white)
    scale = np.abs(expected_gram).max()
    np.testing.assert_allclose(first, expected_first, rtol=rtol, atol=rtol * scale)
    # The upper triangles; the lower ones stay 0 (the scatter mirrors the chunks' sum).
    assert not np.tril(gram, -1).any() and not gram[2].any()
    gram = gram + np.swapaxes(np.triu(gram, 1), 1, 2)
    np.testing.assert_allclose(gram, expected_gram, rtol=rtol, atol=rtol * scale)


def _separated(rng, dtype, offset=0.0, tight=1.0, n=400, d=6, k=4):
    """Four separated clusters (responsibilities of exactly 0 between them), the last
    ``tight`` times narrower, around ``offset``; the start: their means and identity
    precisions scaled to the clusters."""
    centres = rng.uniform(-20, 20, (k, d))
    labels = np.arange(n) % k
    scales = np.where(np.arange(k) == k - 1, tight, 1.0)
    X = rng.standard_normal((n, d)) * scales[labels, None] + centres[labels] + offset
    precisions = np.stack([np.eye(d) / s**2 for s in scales])
    start = dict(
        weights_init=np.full(k, 1 / k),
        means_init=np.stack([X[labels == j].mean(axis=0) for j in range(k)]),
        precisions_init=precisions,
    )
    return X.astype(dtype), start


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("formulation", ["whitened", "expanded"])
@pytest.mark.parametrize(
    "offset, tight", [(0.0, 1.0), (1e6, 1.0), (0.0, 1e-6), (1e6, 1e-4)], ids=str
)
@pytest.mark.parametrize("d", [6, 20])
def test_unkept_deviations_fit_as_scikit_learn(monkeypatch, formulation, offset, tight, d):
    """Centred components whose deviations are not kept (KEPT_BYTES = 0: the distances
    by blocks, the moments from the positive responsibilities only) fit as
    scikit-learn from the same start: far from the origin, a tight component, both;
    with 20 features the expanded components' moments are the sparse sums too."""
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from gmm import GaussianMixture
    from gmm.covariance import _cost

    monkeypatch.setattr(full, "KEPT_BYTES", 0)
    monkeypatch.setattr(full, "BLOCK_BYTES", 1)
    X, start = _separated(np.random.default_rng(11), np.float64, offset, tight, d=d)
    settings = dict(covariance_type="full", tol=0.0, max_iter=4, reg_covar=0.0, **start)
    reference = SklearnGaussianMixture(4, **settings).fit(X)
    with _cost.forced(formulation):
        model = GaussianMixture(4, **settings).fit(X)
        assert (model.predict_proba(X) == 0).any()  # the gather skips rows
    # As in test_extremes: the data's own rounding in the tight component's units.
    kappa = np.finfo(np.float64).eps * np.abs(X).max() / tight
    np.testing.assert_allclose(model.weights_, reference.weights_, rtol=1e-12)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12, atol=20 * kappa * tight)
    for ours, theirs in zip(model.covariances_, reference.covariances_, strict=True):
        scale = np.abs(theirs).max()
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=(1e-8 + 20 * kappa) * scale)
    np.testing.assert_allclose(model.lower_bound_, reference.lower_bound_, atol=20 * kappa + 1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("formulation", ["whitened", "expanded"])
def test_unkept_deviations_equal_kept_ones_in_float32(monkeypatch, formulation):
    """float32, offset 1e6 and a tight component: the path that forms the deviations
    again gives the kept path's fit to float32's rounding."""
    from gmm import GaussianMixture
    from gmm.covariance import _cost

    X, start = _separated(np.random.default_rng(12), np.float32, 1e3, 1e-2)
    start = {key: value.astype(np.float32) for key, value in start.items()}
    settings = dict(covariance_type="full", tol=0.0, max_iter=4, **start)
    with _cost.forced(formulation):
        kept = GaussianMixture(4, **settings).fit(X)
        monkeypatch.setattr(full, "KEPT_BYTES", 0)
        unkept = GaussianMixture(4, **settings).fit(X)
    assert unkept.means_.dtype == np.float32
    np.testing.assert_allclose(unkept.means_, kept.means_, rtol=1e-6)
    for ours, theirs in zip(unkept.covariances_, kept.covariances_, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())
    np.testing.assert_allclose(unkept.lower_bound_, kept.lower_bound_, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("formulation", ["whitened", "expanded"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unkept_deviations_pass_the_extremes(monkeypatch, formulation, dtype):
    """tests/test_extremes.py's agreement (scaled by 1e-8 and 1e8, offset 1e6, 12
    orders of magnitude) with every centred component's deviations formed again."""
    from .test_extremes import TRANSFORMS, check_agreement

    monkeypatch.setattr(full, "KEPT_BYTES", 0)
    for transform in TRANSFORMS:
        check_agreement(transform, "full", dtype, formulation)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["ordinary", "offset 1e6", "features 1e-4..1e4"])
def test_summed_moments_equal_the_ranges_moments_bit_for_bit(dtype, case):
    """``summed_moments`` over row ranges: the per-range ``moments`` summed in row order
    in float64 (what em summed before the hook; float64's products run transposed, so
    to rounding), and numpy's float64
    product on all rows to rounding; hard data (offset 1e6, features from 1e-4 to 1e4,
    float32). The tight, centred case: the next test."""
    import itertools

    rng = np.random.default_rng(11)
    n, d, k = 3000, 4, 5
    X = rng.standard_normal((n, d)) * 3
    if case == "offset 1e6":
        X = X + 1e6
    elif case == "features 1e-4..1e4":
        X = X * np.logspace(-4, 4, d)
    X = (X - X.mean(axis=0)).astype(dtype)
    resp = rng.dirichlet(np.ones(k), size=n).T.astype(dtype)
    resp[:, ::7] = 0.0  # rows a component does not touch
    family = Full()
    weights = np.full(k, 1 / k)
    means = X[rng.choice(n, k, replace=False)].astype(np.float64)
    factors = np.stack([np.linalg.cholesky(np.linalg.inv(np.cov(X.T.astype(np.float64))))] * k)
    coefs = family.coefficients(weights, means.astype(dtype), factors.astype(dtype))
    feats = family.features(X)
    bounds = [0, 700, 1400, 2200, n]
    blocks = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    summed = family.summed_moments(X, feats, resp, coefs, blocks)
    if case == "features 1e-4..1e4":
        # Eight orders of magnitude: no component can be expanded (centred in either
        # dtype), so the hook leaves them to em's per-range moments.
        assert coefs.centred.size == k and summed is None
        return
    assert coefs.centred.size == 0  # every component expanded: the hook's path
    parts = [family.moments(X[r], feats[r], resp[:, r], coefs, None) for r in blocks]
    expected = [
        np.add.reduce(np.array(same), axis=0, dtype=np.float64) for same in zip(*parts, strict=True)
    ]
    for ours, theirs in zip(summed, expected, strict=True):
        assert ours.dtype == np.float64
        if dtype == np.float32:  # the same products (feature_moments): bit for bit
            np.testing.assert_array_equal(ours, theirs)
        else:  # the products in the other orientation: equal here, rounding at most
            scale = np.abs(theirs).max() + 1e-300
            np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=1e-14 * scale)
    reference = resp.astype(np.float64) @ feats.astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(summed[0], reference, rtol=rtol, atol=rtol * np.abs(reference).max())


def test_summed_moments_leave_centred_components_to_the_ranges():
    """A tight component is centred (its expansion would cancel): the hook returns None,
    so em sums the per-range ``moments`` (their whitened parts) instead."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 3)) * 10
    family = Full()
    means = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    factors = np.stack([np.eye(3), np.eye(3) * 1e9])  # the second: spread 1e-9 against 10
    coefs = family.coefficients(np.array([0.5, 0.5]), means, factors)
    assert coefs.centred.tolist() == [1]
    resp = np.full((2, 500), 0.5)
    assert family.summed_moments(X, family.features(X), resp, coefs, [slice(0, 500)]) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["ordinary", "offset 1e6"])
def test_column_major_coefficients_give_the_row_major_products(dtype, case):
    """The expanded coefficients are column-major (BLAS's faster orientation for the
    (K, F) @ (F, rows) product): the log-probabilities equal those of a row-major copy
    to rounding, and scipy's normal log-densities on the same rows."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(21)
    n, d, k = 2000, 5, 4
    offset = 1e6 if case == "offset 1e6" else 0.0
    covariances = random_covariances(rng, "full", k, d)
    means = rng.normal(0, 3, (k, d))
    X = rng.normal(0, 3, (n, d)) + offset
    shift = X.mean(axis=0)
    Xc = (X - shift).astype(dtype)
    family = Full()
    factors = np.linalg.cholesky(np.linalg.inv(covariances)).astype(dtype)
    weights = np.full(k, 1 / k)
    coefs = family.coefficients(weights, (means + offset - shift).astype(dtype), factors)
    assert coefs.centred.size == 0 and coefs.linear.flags.f_contiguous
    row_major = dataclasses.replace(coefs, linear=np.ascontiguousarray(coefs.linear))
    log_norm = family.log_det_precision_cholesky(factors, d).astype(dtype) - d / 2 * np.log(
        2 * np.pi
    )
    feats = family.features(Xc)
    ours = family.log_prob(Xc, feats, coefs, log_norm)[0]
    theirs = family.log_prob(Xc, feats, row_major, log_norm)[0]
    assert ours.dtype == dtype
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)
    reference = np.stack(
        [
            multivariate_normal(m + offset, c).logpdf(X)
            for m, c in zip(means, covariances, strict=True)
        ]
    )
    tolerance = 1e-6 if dtype == np.float64 else 1e-2
    np.testing.assert_allclose(
        ours, reference, rtol=tolerance, atol=tolerance * np.abs(reference).max()
    )
