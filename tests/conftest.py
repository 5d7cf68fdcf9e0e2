"""Shared fixtures: the reference data sets of the project's agreement tests."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_moons
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

# Tests check correctness, not speed: one BLAS/OpenMP thread per process keeps the
# suite's subprocesses (dask workers, the CLI, the experiments) from oversubscribing
# two cores, where spinning BLAS threads made small solves a hundred times slower.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """Limit the already-loaded BLAS libraries of this process to one thread."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def moons() -> np.ndarray:
    """make_moons(200, noise=0.05, random_state=0), the tutorial's density example."""
    X, _ = make_moons(200, noise=0.05, random_state=0)
    return X


@pytest.fixture(scope="session")
def digits_pca() -> np.ndarray:
    """load_digits → PCA(0.99, whiten=True, random_state=0): 1797 × 41."""
    return PCA(0.99, whiten=True, random_state=0).fit_transform(load_digits().data)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def chunk_calls(monkeypatch):
    """The rows of each ``gmm.em.chunk_statistics`` call from here on, in a list.

    Clear it before the calls a test counts (a fit made before them adds its own).
    """
    from gmm import em

    calls: list[int] = []
    chunk_statistics = em.chunk_statistics

    def counted(Xc, *args):
        calls.append(Xc.shape[0])
        return chunk_statistics(Xc, *args)

    monkeypatch.setattr(em, "chunk_statistics", counted)
    return calls


@pytest.fixture
def estep_inputs():
    """``(X, k, covariance_type, max_iter) -> (family, params, log_const)``: the E-step's
    inputs of a short fit (ConvergenceWarning silenced), for tests of the E-step kernels."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from gmm import GaussianMixture
    from gmm.covariance import get_family

    def inputs(X, k, covariance_type, max_iter=2):
        model = GaussianMixture(
            k, covariance_type=covariance_type, max_iter=max_iter, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        family = get_family(covariance_type)
        params = model._get_parameters()
        return family, params, model._log_const(params, family)

    return inputs
