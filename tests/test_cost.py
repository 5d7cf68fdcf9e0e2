"""The 'full' cost model's calibration: what it times."""

from __future__ import annotations

import time

from gmm.covariance import _cost


def test_calibration_times_cpu_not_the_wall():
    """A run that waits (another job's time slice) costs it nothing: process CPU time."""
    seconds = _cost._best_seconds(lambda: time.sleep(0.02), repeats=2)
    assert 0 <= seconds < 0.01


def test_calibration_runs_on_one_blas_thread(monkeypatch):
    """The kernels are timed as the E-step's threads run them, BLAS on one thread."""
    from gmm.blas_threads import blas_thread_count

    seen = []

    def fake(run, repeats=5):
        seen.append(blas_thread_count())
        return 1e-6

    monkeypatch.setattr(_cost, "_best_seconds", fake)
    constants = _cost.calibrate(rows=64)
    assert set(constants) == {"a", "b", "c", "e"}
    assert seen and all(count in (1, None) for count in seen)
