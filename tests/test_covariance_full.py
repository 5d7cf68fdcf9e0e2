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
