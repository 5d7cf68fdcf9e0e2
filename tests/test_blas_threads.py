"""BLAS thread policy: small kernels on one thread, large ones left to the library."""

from __future__ import annotations

import numpy as np
import pytest

from gmm import blas_threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_small_work_runs_on_one_thread_and_large_work_is_left_alone(monkeypatch):
    monkeypatch.setattr(blas_threads, "THREADED_WORK", 2**28)
    before = _blas_threads()
    with blas_threads.blas_threads_for(1.0):
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before  # restored on exit
    with blas_threads.blas_threads_for(blas_threads.THREADED_WORK):
        assert _blas_threads() == before


def test_matrix_work_is_k_d_cubed():
    assert blas_threads.matrix_work(3, 10) == 3000.0


def test_on_a_quiet_machine_only_tiny_products_are_limited_by_default(monkeypatch):
    monkeypatch.setattr(blas_threads, "machine_busy", lambda: False)
    assert blas_threads.THREADED_WORK is None
    limit = blas_threads.SMALL_WORK
    assert blas_threads.threaded_work(rows=True) == limit
    # The (D, D) matrix kernels are left alone (OpenBLAS keeps small ones on one thread).
    assert blas_threads.threaded_work() == 0
    # The measured case: tied D = 1, K = 1 at 100,000 rows, whose products
    # (1e5 multiply-adds) took 5-16 ms with two BLAS threads, 0.02-0.3 ms on one.
    assert 100_000 * 1 * 1 < limit
    before = _blas_threads()
    with blas_threads.blas_threads_for(100_000.0, rows=True):
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before
    with blas_threads.blas_threads_for(100_000.0):  # not over rows: unchanged
        assert _blas_threads() == before
    for work in (limit, 1797.0 * 902 * 110, None):  # the digits' E-step gains from threads
        with blas_threads.blas_threads_for(work, rows=True):
            assert _blas_threads() == before


def test_a_block_inside_a_limited_one_keeps_the_limit_and_restores_nothing(monkeypatch):
    """BLAS already on one thread: the inner block leaves it so, the outer restores."""
    monkeypatch.setattr(blas_threads, "machine_busy", lambda: False)
    before = _blas_threads()
    with blas_threads.blas_threads(1):
        with blas_threads.blas_threads_for(10.0, rows=True):
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def test_inside_a_one_thread_block_no_load_or_library_is_read(monkeypatch):
    """Within this module's own one-thread block a kernel's block reads nothing;
    a block setting another limit inside it reads both again, and every count is
    restored on the way out."""
    reads = []

    def busy() -> bool:
        reads.append("load")
        return True

    monkeypatch.setattr(blas_threads, "machine_busy", busy)
    before = _blas_threads()
    with blas_threads.blas_threads(1):
        with blas_threads.blas_threads_for(10.0, rows=True):
            assert all(n == 1 for n in _blas_threads())
        assert reads == []
        with blas_threads.blas_threads(2):
            assert blas_threads._one_thread_depth == 0
            with blas_threads.blas_threads_for(10.0, rows=True):
                assert all(n == 1 for n in _blas_threads())
            assert reads == ["load"]
        assert blas_threads._one_thread_depth == 1
        with blas_threads.blas_threads(1, user_api="openmp"):
            assert blas_threads._one_thread_depth == 1
    assert blas_threads._one_thread_depth == 0
    assert _blas_threads() == before
    with blas_threads.blas_threads_for(10.0, rows=True):  # outside: the load is read
        pass
    assert reads == ["load", "load"]


def test_on_a_busy_machine_products_below_the_busy_limit_get_one_thread(monkeypatch):
    monkeypatch.setattr(blas_threads, "machine_busy", lambda: True)
    limit = blas_threads.BUSY_THREADED_WORK
    assert blas_threads.threaded_work() == limit
    # The measured shapes: the digits E-step (1,797 rows x 902 features x K) up to
    # K = 200 lost with threads on the busy machine; a 6.5e8 product gained.
    assert 1797 * 902 * 200 < limit < 6.5e8
    before = _blas_threads()
    with blas_threads.blas_threads_for(1797.0 * 902 * 110):
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before
    for work in (limit, None):  # large, or not known: left alone
        with blas_threads.blas_threads_for(work):
            assert _blas_threads() == before


def test_a_fixed_limit_overrides_the_load(monkeypatch):
    monkeypatch.setattr(blas_threads, "machine_busy", lambda: True)
    monkeypatch.setattr(blas_threads, "THREADED_WORK", 0)
    assert blas_threads.threaded_work() == 0
    monkeypatch.setattr(blas_threads, "machine_busy", lambda: False)
    monkeypatch.setattr(blas_threads, "THREADED_WORK", 2**28)
    assert blas_threads.threaded_work() == 2**28


def test_machine_busy_compares_the_load_with_the_cores():
    assert not blas_threads.machine_busy(load=1.9, cores=2)  # one fit, its threads spinning
    assert not blas_threads.machine_busy(load=2.4, cores=2)
    assert blas_threads.machine_busy(load=2.5, cores=2)
    assert blas_threads.machine_busy(load=5.0, cores=2)
    assert not blas_threads.machine_busy(load=5.0, cores=8)
    assert isinstance(blas_threads.machine_busy(), bool)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_fit_is_the_same_to_rounding_with_and_without_blas_threads(monkeypatch, dtype):
    """Small data, many components (the digits' regime: the E-step is not split),
    hard data (offset 1e6, features from 1e-4 to 1e4): one BLAS thread for every
    product against the library's threads, and both against scikit-learn."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from gmm import GaussianMixture

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, 6)) * 4
    X = centres[rng.integers(0, 12, 600)] + rng.standard_normal((600, 6))
    X = X * np.logspace(-4, 4, 6) + 1e6
    start = SkGaussianMixture(12, max_iter=1, random_state=0).fit(X)
    init = {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }
    fits = {}
    for name, limit in (("threads", 0), ("one thread", float("inf"))):
        monkeypatch.setattr(blas_threads, "THREADED_WORK", limit)
        fits[name] = GaussianMixture(12, max_iter=5, tol=0, **init).fit(X.astype(dtype))
    a, b = fits["threads"], fits["one thread"]
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol)
    if dtype == np.float64:
        ref = SkGaussianMixture(12, max_iter=5, tol=0, **init).fit(X)
        np.testing.assert_allclose(b.means_, ref.means_, rtol=1e-9)
        np.testing.assert_allclose(b.lower_bound_, ref.lower_bound_, rtol=1e-9)


def test_blas_thread_count_reads_the_limit_in_force():
    from threadpoolctl import threadpool_info, threadpool_limits

    from gmm.blas_threads import blas_thread_count

    def fewest():  # a fresh scan of the loaded libraries, independent of our controller
        counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        return min(counts) if counts else None

    if fewest() is None:
        pytest.skip("no BLAS library that threadpoolctl can see")
    for limit in (2, 1):
        with threadpool_limits(limit, user_api="blas"):
            assert blas_thread_count() == fewest()
    with threadpool_limits(1, user_api="blas"):
        assert blas_thread_count() == 1


def test_a_block_limits_when_only_some_blas_libraries_are_at_one_thread(monkeypatch):
    """The skip needs every BLAS library at one thread (the reviewer's case: scipy's
    OpenBLAS limited, numpy's not)."""
    monkeypatch.setattr(blas_threads, "machine_busy", lambda: False)
    controller = blas_threads._get_controller()
    libs = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    if len(libs) < 2:
        pytest.skip("needs two BLAS libraries (numpy's and scipy's)")
    saved = [lib.num_threads for lib in libs]
    try:
        for lib, threads in zip(libs, [1] + [2] * (len(libs) - 1), strict=True):
            lib.set_num_threads(threads)
        with blas_threads.blas_threads_for(10.0, rows=True):
            assert all(lib.num_threads == 1 for lib in libs)
        assert [lib.num_threads for lib in libs] == [1] + [2] * (len(libs) - 1)
    finally:
        for lib, threads in zip(libs, saved, strict=True):
            lib.set_num_threads(threads)


def test_the_load_average_is_read_at_most_once_a_second(monkeypatch):
    calls = []
    clock = [100.0]
    monkeypatch.setattr(blas_threads, "_load_reading", None)
    monkeypatch.setattr(blas_threads.os, "getloadavg", lambda: calls.append(1) or (3.0, 0, 0))
    monkeypatch.setattr(blas_threads.time, "monotonic", lambda: clock[0])
    assert blas_threads.load_average() == 3.0 and blas_threads.machine_busy(cores=1)
    clock[0] += 0.5
    assert blas_threads.load_average() == 3.0 and len(calls) == 1  # the same reading
    clock[0] += blas_threads.LOAD_READING_SECONDS
    monkeypatch.setattr(blas_threads.os, "getloadavg", lambda: calls.append(1) or (0.5, 0, 0))
    assert blas_threads.load_average() == 0.5 and len(calls) == 2  # read again
    assert not blas_threads.machine_busy(cores=1)
    clock[0] -= 10  # a clock that went back reads again
    assert blas_threads.load_average() == 0.5 and len(calls) == 3
