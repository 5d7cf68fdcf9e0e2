"""The chunked, fused EM pass: chunking must not change the answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gmm import GaussianMixture, em

from .mixture_data import COVARIANCE_TYPES, make_mixture


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunk_size_does_not_change_the_fit(covariance_type, monkeypatch):
    X, *_ = make_mixture(covariance_type, n_samples=2000, n_components=3, d=3, seed=2)
    params = dict(covariance_type=covariance_type, random_state=0, max_iter=15, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = GaussianMixture(3, **params).fit(X)
        monkeypatch.setattr(em, "CHUNK_BYTES", 1)  # 256-row chunks
        monkeypatch.setattr(em, "FEATURE_CACHE_BYTES", 0)  # no cache: stream every pass
        chunked = GaussianMixture(3, **params).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-10)
    np.testing.assert_allclose(chunked.score_samples(X), whole.score_samples(X), rtol=1e-12)


def test_statistics_add_up_over_row_splits():
    X, *_ = make_mixture("full", n_samples=500, n_components=2, d=2, seed=3)
    model = GaussianMixture(2, random_state=0).fit(X)
    from gmm.covariance import get_family

    family = get_family("full")
    params = em.Parameters(
        model.weights_, model.means_, model.covariances_, model.precisions_cholesky_
    )
    shift = X.mean(axis=0)
    coefs, const = em.prepare(params, family, shift)

    def stats(rows):
        Xc = X[rows] - shift
        return em.chunk_statistics(Xc, family.features(Xc), None, family, coefs, const)

    whole = stats(slice(0, 500))
    parts = stats(slice(0, 123)) + stats(slice(123, 500))
    np.testing.assert_allclose(parts.nk, whole.nk, rtol=1e-12)
    for a, b in zip(parts.moments, whole.moments, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    assert whole.total_weight == 500
    # nk sums to the number of rows: responsibilities are normalised.
    assert whole.nk.sum() == pytest.approx(500, rel=1e-12)


def test_memmapped_data_fit_equals_in_memory(tmp_path):
    X, *_ = make_mixture("diag", n_samples=3000, n_components=3, d=4, seed=5)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    a = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    b = GaussianMixture(3, covariance_type="diag", random_state=0).fit(mapped)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-12)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-12)
