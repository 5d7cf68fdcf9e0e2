"""Tests of gmm.lockstep: fits advanced together, their E-steps stacked.

References: each fit's own E-step (gmm.em.own_expectation, the path of a fit run
alone, itself checked against scikit-learn and scipy elsewhere), the same fits
run one by one, and the sweep without lockstep.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gmm import GaussianMixture, em, lockstep, sweep
from gmm.covariance import get_family
from gmm.selection import search

GENERAL = ("VVV", "EEV", "VEV", "EVV", "VEE", "EVE", "VVE")


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 2.0]])
    X = np.concatenate([rng.normal(c, [1.0, 0.7, 1.3], size=(400, 3)) for c in centres])
    return rng.permutation(X)


def _requests(inputs, X, names, k, w=None, entropy=False):
    """One request per model for its fitted parameters, on chunks of the same rows."""
    shift = X.mean(axis=0)
    requests, alone = [], []
    for name in names:
        family, params, log_const = inputs(X, k, name, max_iter=5)
        data = em.ChunkedData(X, w, family, shift, k)
        with em.tracking_entropy() if entropy else contextlib.nullcontext():
            request = lockstep._request(data, params, log_const)
            request.entropy = entropy
            requests.append(request)
            alone.append(em.own_expectation(data, params, log_const))
    return requests, alone


def _assert_same_statistics(stacked, alone, rtol=1e-12):
    (stats, _), (ref, _) = stacked, alone
    np.testing.assert_allclose(stats.nk, ref.nk, rtol=rtol)
    for mine, theirs in zip(stats.moments, ref.moments, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=1e-9 * np.abs(theirs).max())
    assert stats.log_likelihood == pytest.approx(ref.log_likelihood, rel=rtol)
    assert stats.total_weight == pytest.approx(ref.total_weight, rel=rtol)
    if ref.entropy is None:
        assert stats.entropy is None
    else:
        assert stats.entropy == pytest.approx(ref.entropy, rel=1e-10)


AXIS_ALIGNED = ("EEI", "VEI", "EVI", "VVI")
SPHERICAL = ("EII", "VII")


@pytest.mark.parametrize(
    "names", [GENERAL, AXIS_ALIGNED, SPHERICAL], ids=["general", "axis", "sph"]
)
@pytest.mark.parametrize("k", [1, 2, 4, 12])  # 12: the axis-aligned kernels read features
def test_stacked_statistics_equal_each_fits_own(estep_inputs, blobs, names, k):
    requests, alone = _requests(estep_inputs, blobs, names, k)
    assert len({request.key for request in requests}) == 1  # one stack
    for stacked, ref in zip(lockstep.stacked_expectation(requests), alone, strict=True):
        _assert_same_statistics(stacked, ref)


def test_stacked_statistics_with_weights_and_entropy(estep_inputs, blobs):
    w = np.random.default_rng(3).uniform(0.2, 3.0, blobs.shape[0])
    requests, alone = _requests(estep_inputs, blobs, ("VVV", "EVE", "EEV"), 3, w=w, entropy=True)
    assert all(ref[0].entropy is not None for ref in alone)
    for stacked, ref in zip(lockstep.stacked_expectation(requests), alone, strict=True):
        _assert_same_statistics(stacked, ref)


def test_families_that_cannot_stack_are_computed_alone(blobs):
    # 'tied' (and mclust's EEE) drop the shared term: no request, the fit's own path.
    assert lockstep.stack_kind(get_family("EEE")) is None
    assert lockstep.stack_kind(get_family("tied")) is None
    kind = lockstep.stack_kind
    assert kind(get_family("VVV")) == kind(get_family("EVE")) == kind(get_family("full"))
    assert kind(get_family("EEI")) == kind(get_family("VVI")) != kind(get_family("VVV"))
    assert kind(get_family("EII")) == kind(get_family("VII")) != kind(get_family("EEI"))
    model = GaussianMixture(2, covariance_type="tied", random_state=0).fit(blobs)
    family = get_family("tied")
    params = model._get_parameters()
    data = em.ChunkedData(blobs, None, family, blobs.mean(axis=0), 2)
    assert lockstep._request(data, params, model._log_const(params, family)) is None


def test_a_far_row_fails_its_own_fit_only(estep_inputs, blobs):
    """A fit whose components overflow on some row gets the error it gets alone; the
    others in its stack get their own numbers."""
    requests, alone = _requests(estep_inputs, blobs, ("VVV", "EEV", "VEV"), 2)
    far = requests[1]
    far.coefs.linear[:] = np.inf  # every distance overflows: no row is representable
    answers = lockstep.stacked_expectation(requests)
    assert isinstance(answers[1], em.OutOfRangeError)
    for index in (0, 2):
        _assert_same_statistics(answers[index], alone[index])


@pytest.fixture(scope="module")
def long_blobs():
    """Rows enough that a chunk's E-step is split in two ranges (gmm.em.SPLIT_ROWS)."""
    rng = np.random.default_rng(11)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 2.0]])
    X = np.concatenate([rng.normal(c, [1.0, 0.7, 1.3], size=(3500, 3)) for c in centres])
    return rng.permutation(X)


def _recording_ranges(monkeypatch, family, method="stacked_log_prob"):
    """Record (thread name, CPUs, numpy's error settings) of each row range whose
    log-probabilities ``family``'s ``method`` computes."""
    seen = []
    original = getattr(type(family), method)

    def recorded(self, *args):
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        seen.append((threading.current_thread().name, cpus, np.geterr()))
        return original(self, *args)

    monkeypatch.setattr(type(family), method, recorded)
    return seen


def test_ranges_on_helper_threads_give_the_same_numbers(estep_inputs, long_blobs, monkeypatch):
    """A large stacked E-step runs its second row range on the pool's thread: the same
    bits as in turn, and each fit's own numbers within rounding (its own E-step, of a
    shape that runs in turn, computes these rows as one range)."""
    from concurrent.futures import ThreadPoolExecutor

    assert len(em._parts(long_blobs.shape[0])) == 2
    requests, alone = _requests(estep_inputs, long_blobs, GENERAL, 3)
    seen = _recording_ranges(monkeypatch, requests[0].data.family)
    monkeypatch.setattr(lockstep, "STACK_THREAD_WORK", 0)  # every stack is large enough
    in_turn = lockstep.stacked_expectation(requests)
    assert {name for name, *_ in seen} == {threading.current_thread().name}
    seen.clear()
    with ThreadPoolExecutor(1, "test-rows") as pool:
        threaded = lockstep.stacked_expectation(requests, pool)
    assert sorted(name.split("_")[0] for name, *_ in seen) == sorted(
        [threading.current_thread().name.split("_")[0], "test-rows"]
    )
    for mine, theirs, ref in zip(threaded, in_turn, alone, strict=True):
        np.testing.assert_array_equal(mine[0].nk, theirs[0].nk)
        for a, b in zip(mine[0].moments, theirs[0].moments, strict=True):
            np.testing.assert_array_equal(a, b)
        assert mine[0].log_likelihood == theirs[0].log_likelihood
        _assert_same_statistics(mine, ref)
    # A stack below STACK_THREAD_WORK stays in this thread.
    monkeypatch.setattr(lockstep, "STACK_THREAD_WORK", float("inf"))
    seen.clear()
    with ThreadPoolExecutor(1, "test-rows") as pool:
        lockstep.stacked_expectation(requests, pool)
    assert {name for name, *_ in seen} == {threading.current_thread().name}


def test_helper_ranges_keep_the_callers_numpy_error_settings(estep_inputs, long_blobs, monkeypatch):
    """numpy's error settings live in the context; the helper's range runs in the caller's,
    so an underflow that raises in one range raises in the other."""
    from concurrent.futures import ThreadPoolExecutor

    requests, _ = _requests(estep_inputs, long_blobs, GENERAL[:3], 3)
    seen = _recording_ranges(monkeypatch, requests[0].data.family)
    monkeypatch.setattr(lockstep, "STACK_THREAD_WORK", 0)
    with ThreadPoolExecutor(1, "test-rows") as pool, np.errstate(under="raise", divide="warn"):
        lockstep.stacked_expectation(requests, pool)
    assert {name.split("_")[0] for name, *_ in seen} >= {"test-rows"}
    assert all(errors["under"] == "raise" for *_, errors in seen)


def test_a_far_row_on_a_helper_thread_fails_its_own_fit_only(estep_inputs, long_blobs, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    requests, alone = _requests(estep_inputs, long_blobs, ("VVV", "EEV", "VEV"), 2)
    requests[1].coefs.linear[:] = np.inf
    monkeypatch.setattr(lockstep, "STACK_THREAD_WORK", 0)
    with ThreadPoolExecutor(1) as pool:
        answers = lockstep.stacked_expectation(requests, pool)
    assert isinstance(answers[1], em.OutOfRangeError)
    for index in (0, 2):
        _assert_same_statistics(answers[index], alone[index])


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux thread affinity and two CPUs",
)
def test_helpers_run_ranges_on_the_other_cpus_and_change_no_number(long_blobs, monkeypatch):
    monkeypatch.setattr(lockstep, "STACK_THREAD_WORK", 0)
    seen = _recording_ranges(monkeypatch, get_family("VVV"))
    before = os.sched_getaffinity(0)
    tasks = [(name, (long_blobs, name, 2)) for name in GENERAL[:3]]
    runs = {}
    for helpers in (0, 1):
        seen.clear()
        runs[helpers] = dict(lockstep.run_together(_fit, tasks, helpers))
        assert threading.active_count() == 1 or all(
            not thread.name.startswith("gmm-lockstep") for thread in threading.enumerate()
        )
        assert os.sched_getaffinity(0) == before
        names = {name.split("_")[0] for name, *_ in seen}
        if helpers == 0:
            assert names == {threading.current_thread().name.split("_")[0]}
        else:
            assert "gmm-lockstep-rows" in names
            helper = {frozenset(c) for name, c, _ in seen if name.startswith("gmm-lockstep-rows")}
            mine = {frozenset(c) for name, c, _ in seen if not name.startswith("gmm-lockstep-rows")}
            assert len(mine) == 1 and len(next(iter(mine))) == 1  # the coordinator: pinned
            assert all(not (cpus & next(iter(mine))) for cpus in helper)  # the other CPUs
    for name in GENERAL[:3]:
        assert runs[1][name].n_iter_ == runs[0][name].n_iter_
        assert runs[1][name].lower_bound_ == runs[0][name].lower_bound_
        np.testing.assert_array_equal(runs[1][name].means_, runs[0][name].means_)


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux thread affinity and two CPUs",
)
def test_an_e_step_that_runs_on_threads_alone_uses_the_helpers_cpus(long_blobs, monkeypatch):
    """A fit's E-step large enough for threads (gmm.em.expectation's rule) is computed
    alone by the coordinator, its second range on the run's helper (on the other CPUs,
    not the fits' one), with the numbers of the fit run by itself."""
    monkeypatch.setattr(em, "THREAD_WORK", 0)  # K >= 8 on these rows: threaded E-steps
    monkeypatch.setattr(em, "_e_step_threads", lambda split: 2 if split else 1)  # BLAS at 1 here
    monkeypatch.setattr(lockstep, "STACK_THREAD_WORK", float("inf"))
    seen = _recording_ranges(monkeypatch, get_family("VVV"), "log_prob")
    tasks = [(name, (long_blobs, name, 8)) for name in ("VVV", "EEV")]
    together = dict(lockstep.run_together(_fit, tasks, 1))
    helper = [cpus for name, cpus, _ in seen if name.startswith("gmm-lockstep-rows")]
    mine = [cpus for name, cpus, _ in seen if not name.startswith("gmm-lockstep-rows")]
    assert helper and mine  # the first range in the coordinator, pinned with the fits
    assert all(len(cpus) == 1 for cpus in mine)
    assert all(not (cpus & mine[0]) for cpus in helper)
    for name, _ in tasks:
        alone = _fit(long_blobs, name, 8)
        assert together[name].n_iter_ == alone.n_iter_
        assert together[name].lower_bound_ == alone.lower_bound_


def test_a_helper_that_cannot_move_stays_where_it_is():
    lockstep._move_to({10**6})  # no such CPU: the thread stays, no error
    lockstep._move_to(None)


def _fit(X, name, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(k, covariance_type=name, init_params="hc", random_state=0)
        model.fit(X)
    return model


def test_fits_together_equal_fits_one_by_one(blobs, monkeypatch):
    stacked = []
    original = lockstep.stacked_expectation
    monkeypatch.setattr(
        lockstep,
        "stacked_expectation",
        lambda requests, pool=None: stacked.append(len(requests)) or original(requests, pool),
    )
    tasks = [(name, (blobs, name, 3)) for name in GENERAL]
    together = dict(lockstep.run_together(_fit, tasks))
    assert stacked and max(stacked) == len(GENERAL)
    for name in GENERAL:
        alone = _fit(blobs, name, 3)
        model = together[name]
        assert model.n_iter_ == alone.n_iter_
        assert model.lower_bound_ == pytest.approx(alone.lower_bound_, rel=1e-12)
        np.testing.assert_allclose(model.means_, alone.means_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.covariances_, alone.covariances_, rtol=1e-8, atol=1e-12)


def test_an_error_ends_the_run_and_stops_every_thread(blobs):
    before = threading.active_count()

    def fit(name):
        if name == "EEV":
            raise ValueError("this fit fails")
        return _fit(blobs, name, 2)

    with pytest.raises(ValueError, match="this fit fails"):
        list(lockstep.run_together(fit, [(name, (name,)) for name in GENERAL]))
    assert threading.active_count() == before


def test_a_caller_that_stops_reading_stops_the_fits(blobs):
    before = threading.active_count()
    models = {name: GaussianMixture(2, covariance_type=name, random_state=0) for name in GENERAL}

    def fit(name):
        return models[name].fit(blobs)

    results = lockstep.run_together(fit, [(name, (name,)) for name in GENERAL])
    next(results)  # one fit finished; the others wait at an E-step
    results.close()
    assert threading.active_count() == before
    unfinished = [model for model in models.values() if not hasattr(model, "means_")]
    assert unfinished  # stopped part-way, and left as they were: unfitted


def test_sweep_in_lockstep_equals_the_sweep_fit_by_fit(blobs, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filters = list(warnings.filters)
        together = sweep(blobs, range(1, 5), "mclust", random_state=0, progress=False)
        assert warnings.filters == filters  # the fits' silencing is undone
        monkeypatch.setattr(search, "stackable_fits", lambda *args: False)
        alone = sweep(blobs, range(1, 5), "mclust", random_state=0, progress=False)
    assert together.best_params_ == alone.best_params_
    for mine, theirs in zip(together.table, alone.table, strict=True):
        assert (mine["covariance_type"], mine["n_components"]) == (
            theirs["covariance_type"],
            theirs["n_components"],
        )
        assert mine["error"] == theirs["error"]
        if mine["error"] is None:
            assert mine["n_iter"] == theirs["n_iter"]
            assert mine["bic"] == pytest.approx(theirs["bic"], rel=1e-10)
            assert mine["icl"] == pytest.approx(theirs["icl"], rel=1e-10)


def test_stackable_fits_needs_two_stacking_families_and_plain_rows(blobs):
    grid = [(1, "VVV"), (1, "EEV"), (1, "EII")]
    assert search.stackable_fits(grid, blobs, None, {})
    assert not search.stackable_fits([(1, "VVV"), (1, "EII")], blobs, None, {})
    assert search.stackable_fits([(1, "EEI"), (2, "VVI")], blobs, None, {})
    sklearn_types = [(1, "full"), (1, "tied"), (1, "diag"), (1, "spherical")]
    assert not search.stackable_fits(sklearn_types, blobs, None, {})
    assert not search.stackable_fits(grid, blobs, np.ones(len(blobs)), {})
    assert not search.stackable_fits(grid, blobs, None, {"nan_policy": "omit"})
    assert not search.stackable_fits(grid, blobs.view(np.memmap), None, {})


def test_fit_seconds_of_fits_run_together_are_their_own(blobs):
    """Each fit counts the slices its thread ran and its share of the stacked E-steps,
    which are disjoint: together they are at most the sweep's wall time (each fit's
    wall time from its start to its end would add up to several times it)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep(blobs, range(1, 5), "mclust", random_state=0, progress=False)
    wall = time.perf_counter() - start
    seconds = [row["fit_seconds"] for row in result.table]
    assert all(value > 0 for value in seconds)
    assert sum(seconds) <= wall
    assert lockstep.fit_clock() is time.perf_counter  # outside a lockstep


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux thread affinity and two CPUs",
)
def test_fits_run_together_on_one_cpu_and_the_caller_gets_its_cpus_back():
    before = os.sched_getaffinity(0)
    seen = dict(lockstep.run_together(lambda: os.sched_getaffinity(0), [(i, ()) for i in range(3)]))
    assert all(len(cpus) == 1 for cpus in seen.values())
    assert len({frozenset(cpus) for cpus in seen.values()}) == 1  # the same CPU for all
    assert os.sched_getaffinity(0) == before
