"""BLAS thread policy: small kernels on one thread, large ones left to the library."""

from __future__ import annotations

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


def test_by_default_nothing_is_limited():
    before = _blas_threads()
    with blas_threads.blas_threads_for(1.0):
        assert _blas_threads() == before


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
