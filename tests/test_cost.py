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


def test_kept_choices_follow_the_constants(monkeypatch):
    """A kept choice is the cost model's prediction for the constants in force; new
    constants (even a monkeypatched dict) are predicted afresh."""
    import numpy as np

    monkeypatch.delenv("GMM_FULL_FORMULATION", raising=False)
    monkeypatch.setattr(_cost, "_constants", None)
    shapes = [(d, k) for d in (1, 2, 5, 20, 50, 100) for k in (1, 2, 8, 32)]

    def predicted(d, k):
        cost = _cost.predicted_seconds(d, k, _cost.constants())
        return "expanded" if cost["expanded"] <= cost["whitened"] else "whitened"

    rounds = []
    for constants in (
        {"a": 1.0, "b": 1.0, "c": 1.0, "e": 1.0},  # expanded F(1 + K), whitened K(D² + D)
        {"a": 1.0, "b": 1.0, "c": 1e-3, "e": 1e-3},  # whitening cheap: it wins every shape
    ):
        _cost.set_constants(constants)
        for _ in range(2):  # the second round reads the kept choices
            chosen = [_cost.choose(d, k, np.float64) for d, k in shapes]
            assert chosen == [predicted(d, k) for d, k in shapes]
        rounds.append(chosen)
    assert set(rounds[0]) == {"expanded", "whitened"} and set(rounds[1]) == {"whitened"}
    monkeypatch.setattr(_cost, "_constants", {"a": 1.0, "b": 1.0, "c": 1.0, "e": 1.0})
    assert _cost.choose(100, 1, np.float64) == "whitened"  # 5150·2 > 10100
    assert _cost.choose(2, 32, np.float64) == "expanded"  # 5·33 < 32·6
