"""Benchmark: mclust's whole default, ``Mclust(X)``, against our mclust sweep.

Run alone with ``python -m experiments.bench_mclust [out.json]`` to write the
numbers as JSON; in the report they go to results.json like every experiment.
``--part sweep`` times only the ``Mclust(X)`` comparison, ``--part ours`` only
our sweep (no R), ``--part stages`` the seconds of its stages and ``--part stacking``
its E-steps alone against stacked (no R),
``--part per-iteration --models EVE,VVE`` only those rows of the per-iteration table,
``--part profile`` where our sweep's time goes
(cProfile by cumulative and own time, then per model: fit seconds and EM
iterations, and the sweep's wall and CPU time with the serial sweep's one-thread limit
and without it, alternating).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from time import perf_counter, process_time

import numpy as np

import gmm
from gmm.hierarchical import clear_cache

from .result import ExperimentResult

TITLE = "Speed: R's Mclust(X) against gmm's mclust sweep"
DESCRIPTION = (
    "The whole of mclust's default model choice on 20,000 × 10 synthetic rows (a seeded "
    "mixture of 4 Gaussians with random covariances): R's `Mclust(X)` (the registered "
    "mclust models × G = 1…9 from the hierarchical start on a random subset of 2,000 "
    "rows), timed as the wall time of `Rscript` and inside R with `system.time` (which "
    "leaves out R's start-up and reading the data), against "
    "`gmm.sweep(X, range(1, 10), 'mclust', init_params='hc', init_sample_size=2000)` "
    "in this process (the same subset scheme: tree and M-step on 2,000 rows, then EM "
    "on all), as a median of repeats. gmm's mclust sweep takes mclust's settings "
    "(no regulariser; mclust's stopping rule, a relative change of at most 1e-5 in the "
    "total log-likelihood). "
    "If fewer than mclust's 14 models are registered the ratio is not like for like, "
    "and the verdict says so. Then per EM iteration for each of the 14 models on 100,000 × 20 "
    "with K = 20, both started from one k-means partition: R's `me()` with 5 iterations "
    "(`emControl(tol = c(0, ...), itmax = c(5, Inf))`, timed inside R) against "
    "`GaussianMixture(init_params=<the partition as integer labels>, tol=0, max_iter=5, "
    "reg_covar=0)`, "
    "seconds over iterations (both include the first M-step; ours also the fit's "
    "validation, features and start statistics), and the time one more iteration adds "
    "(10 iterations less 5, over 5, on both sides). Quick mode skips it."
)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1], header = FALSE))
set.seed(0)
elapsed <- system.time(fit <- Mclust(X, verbose = FALSE))[["elapsed"]]
cat(sprintf("%.6f %s %d %.10f %d\n", elapsed, fit$modelName, fit$G, fit$bic,
            sum(!is.na(fit$BIC))))
"""

ME_SCRIPT = r"""
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1], header = FALSE))
z <- unmap(scan(args[2], quiet = TRUE))
iterations <- as.integer(args[3])
for (model in strsplit(args[4], ",")[[1]]) {
  seconds <- c()
  for (itmax in c(iterations, 2 * iterations)) {
    control <- emControl(tol = c(0, sqrt(.Machine$double.eps)), itmax = c(itmax, Inf))
    elapsed <- system.time(fit <- me(data = X, modelName = model, z = z, control = control,
                                     warn = FALSE))[["elapsed"]]
    if (itmax == iterations) {
      info <- attr(fit, "info")
      done <- if (is.null(info)) NA else info[[1]]
      loglik <- fit$loglik
    }
    seconds <- c(seconds, elapsed)
  }
  cat(sprintf("%s %.6f %s %.10f %.6f\n", model, seconds[1], done, loglik, seconds[2]))
}
"""


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A seeded mixture of 4 Gaussians with random covariances."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(4):
        factor = rng.normal(size=(d, d)) / np.sqrt(d)
        parts.append(rng.normal(size=(n // 4, d)) @ factor + 4 * rng.normal(size=d) * (k + 1) / 2)
    return np.vstack(parts)


def has_mclust() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "library(mclust)"], capture_output=True, timeout=120)
    return probe.returncode == 0


def time_r(X: np.ndarray) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        data, script = Path(folder) / "X.csv", Path(folder) / "mclust.R"
        np.savetxt(data, X, delimiter=",", fmt="%.17g")
        script.write_text(R_SCRIPT)
        start = perf_counter()
        done = subprocess.run(
            ["Rscript", str(script), str(data)], capture_output=True, text=True, timeout=3600
        )
        wall = perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"Rscript failed: {done.stderr.strip()[-500:]}")
    elapsed, model, G, bic, cells = done.stdout.split()
    return {
        "wall_seconds": wall,
        "mclust_seconds": float(elapsed),
        "model": model,
        "G": int(G),
        "bic": float(bic),
        "cells": int(cells),
    }


def time_r_iterations(X: np.ndarray, labels: np.ndarray, iterations: int, models) -> dict:
    """Seconds per EM iteration of R's ``me()`` for each model, from the partition ``labels``."""
    with tempfile.TemporaryDirectory() as folder:
        data, start = Path(folder) / "X.csv", Path(folder) / "labels.txt"
        script = Path(folder) / "me.R"
        np.savetxt(data, X, delimiter=",", fmt="%.17g")
        np.savetxt(start, labels + 1, fmt="%d")
        script.write_text(ME_SCRIPT)
        done = subprocess.run(
            ["Rscript", str(script), str(data), str(start), str(iterations), ",".join(models)],
            capture_output=True,
            text=True,
            timeout=7200,
        )
    if done.returncode != 0:
        raise RuntimeError(f"Rscript failed: {done.stderr.strip()[-500:]}")
    out = {}
    for line in done.stdout.splitlines():
        model, elapsed, n_iter, loglik, twice = line.split()
        # me() reports the iterations negated when it stops at itmax, as here.
        n_iter = abs(int(n_iter)) if n_iter != "NA" else None
        out[model] = {
            "seconds": float(elapsed),
            "iterations": n_iter,
            "per_iteration": float(elapsed) / n_iter if n_iter else None,
            "loglik": float(loglik) if loglik != "NA" else None,
            "seconds_twice": float(twice),
            "marginal_per_iteration": (float(twice) - float(elapsed)) / iterations,
        }
    return out


def time_gmm_iterations(X: np.ndarray, labels: np.ndarray, iterations: int, models, repeats: int):
    """Seconds per EM iteration of ours from the same partition (median of repeats).

    Like ``me()``, a fit starts with the M-step from the partition (given as
    integer labels, the cheapest form ``init_params`` takes; ``me()`` takes
    its indicator matrix) and runs ``iterations`` EM iterations with no stop on the tolerance.
    Also a fit of twice the iterations, alternating with the first: the
    difference over ``iterations`` is the marginal time of one iteration,
    without what a fit does once (validation, features, the start's
    statistics), measured the same way on R's side.
    """
    K = int(labels.max()) + 1
    start = np.asarray(labels, dtype=np.intp)

    def partition(X, n_components, random_state):
        return start

    def fit(model, max_iter):
        estimator = gmm.GaussianMixture(
            K, covariance_type=model, init_params=partition, max_iter=max_iter, tol=0.0,
            reg_covar=0.0,
        )  # fmt: skip
        begin = perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fitted = estimator.fit(X)
            except ValueError as error:  # a collapse without regularisation, as mclust's NA
                fitted = error
        return perf_counter() - begin, fitted

    out = {}
    for model in models:
        times, twice, fitted = [], [], None
        for _ in range(repeats):
            seconds, fitted = fit(model, iterations)
            times.append(seconds)
            twice.append(fit(model, 2 * iterations)[0])
        ok = not isinstance(fitted, Exception)
        seconds = float(np.median(times))
        out[model] = {
            "seconds": seconds,
            "iterations": fitted.n_iter_ if ok else None,
            "per_iteration": seconds / fitted.n_iter_ if ok else None,
            "loglik": float(fitted.score(X) * X.shape[0]) if ok else None,
            "error": None if ok else str(fitted)[:200],
            "seconds_twice": float(np.median(twice)),
            "marginal_per_iteration": (
                float(np.median(np.subtract(twice, times))) / iterations if ok else None
            ),
        }
    return out


def per_iteration_table(n: int, d: int, K: int, iterations: int, repeats: int, models=None) -> dict:
    """Both libraries per EM iteration, every mclust model (or ``models``), from one
    k-means partition."""
    from sklearn.cluster import KMeans

    X = make_data(n, d, seed=1)
    labels = KMeans(K, n_init=1, random_state=0).fit_predict(X)
    models = list(gmm.selection.mclust.MCLUST_MODELS if models is None else models)
    theirs = time_r_iterations(X, labels, iterations, models)
    ours = time_gmm_iterations(X, labels, iterations, models, repeats)
    rows = []
    for model in models:
        r, g = theirs.get(model, {}), ours[model]
        ratio = (
            r["per_iteration"] / g["per_iteration"]
            if r.get("per_iteration") and g["per_iteration"]
            else None
        )
        marginal = (
            r["marginal_per_iteration"] / g["marginal_per_iteration"]
            if r.get("marginal_per_iteration") and g["marginal_per_iteration"]
            else None
        )
        rows.append(
            {
                "model": model,
                "mclust ms per iteration": _ms(r.get("per_iteration")),
                "gmm ms per iteration": _ms(g["per_iteration"]),
                "ratio": None if ratio is None else round(ratio, 2),
                "iterations (mclust, gmm)": f"{r.get('iterations')}, {g['iterations']}",
                "mclust ms per added iteration": _ms(r.get("marginal_per_iteration")),
                "gmm ms per added iteration": _ms(g["marginal_per_iteration"]),
                "ratio per added iteration": None if marginal is None else round(marginal, 2),
            }
        )
    return {"n": n, "d": d, "K": K, "iterations": iterations, "rows": rows, "r": theirs,
            "gmm": ours}  # fmt: skip


def _ms(seconds):
    return None if seconds is None else round(1000 * seconds, 2)


def time_gmm(X: np.ndarray, repeats: int, n_jobs: int = 1) -> dict:
    """Our sweep as a first call: the kept hc trees are forgotten before each repeat.

    ``gmm.hierarchical`` keeps the last few trees across calls (a second sweep
    on the same rows reuses its tree); R's ``Mclust(X)`` computes its tree on
    every call, so each timed sweep here computes its own (about a second at
    2,000 rows).
    """
    times, result = [], None
    for _ in range(repeats):
        clear_cache()
        start = perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = gmm.sweep(
                X,
                range(1, 10),
                "mclust",
                init_params="hc",
                init_sample_size=2000,
                random_state=0,
                progress=False,
                n_jobs=n_jobs,
            )
        times.append(perf_counter() - start)
    model, G, bic = result.mclust_bic().best(1)[0]
    return {
        "seconds": float(np.median(times)),
        "all_seconds": times,
        "model": model,
        "G": int(G),
        "bic": float(bic),
        "models": result.mclust_bic().models,
    }


def run(quick: bool = False) -> ExperimentResult:
    if quick:
        return ExperimentResult(
            name="bench_mclust",
            title=TITLE,
            description=DESCRIPTION,
            verdict="skipped in quick mode: R's Mclust on 20,000 rows takes minutes; "
            "run `python -m experiments` (or `python -m experiments.bench_mclust`).",
            ok=True,
        )
    if not has_mclust():
        return ExperimentResult(
            name="bench_mclust",
            title=TITLE,
            description=DESCRIPTION,
            verdict="skipped: Rscript with the mclust package is not installed on this machine.",
            ok=True,
        )
    n, d, repeats = 20_000, 10, 3
    X = make_data(n, d)
    ours = time_gmm(X, repeats)
    # Both cores through the sweep's own workers (a user's choice, not the default).
    ours_2 = time_gmm(X, repeats, n_jobs=2)
    theirs = time_r(X)
    step = per_iteration_table(100_000, 20, 20, iterations=5, repeats=3)
    ratios = [row["ratio"] for row in step["rows"] if row["ratio"] is not None]
    slow = [row["model"] for row in step["rows"] if row["ratio"] is not None and row["ratio"] < 5]
    ratio_wall = theirs["wall_seconds"] / ours["seconds"]
    ratio_inside = theirs["mclust_seconds"] / ours["seconds"]
    ratio_jobs = theirs["wall_seconds"] / ours_2["seconds"]
    all_models = len(ours["models"]) == 14
    same = (ours["model"], ours["G"]) == (theirs["model"], theirs["G"])
    verdict = (
        f"{n:,} × {d}: R's Mclust(X) took {theirs['wall_seconds']:.1f} s wall "
        f"({theirs['mclust_seconds']:.1f} s inside R), gmm {ours['seconds']:.1f} s: "
        f"{ratio_wall:.1f}× faster by wall time ({ratio_inside:.1f}× against R's own timing; "
        f"with n_jobs=2 {ours_2['seconds']:.1f} s, {ratio_jobs:.1f}×); "
        f"chosen model gmm {ours['model']},{ours['G']}, mclust {theirs['model']},{theirs['G']}"
        + (
            ""
            if all_models
            else f". Not like for like: gmm fitted {len(ours['models'])} of mclust's 14 models."
        )
        + f". Per EM iteration at 100,000 × 20, K = 20, from one partition: gmm "
        f"{min(ratios):.1f}× to {max(ratios):.1f}× faster than me() over {len(ratios)} models"
        + (f"; below the 5× goal: {', '.join(slow)}" if slow else "; all at least 5×")
    )
    return ExperimentResult(
        name="bench_mclust",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(all_models and same and ratio_wall >= 10 and not slow),
        tables={
            "Mclust(X) against gmm.sweep(..., 'mclust', init_params='hc')": [
                {
                    "": "R mclust",
                    "seconds": round(theirs["wall_seconds"], 2),
                    "seconds inside R": round(theirs["mclust_seconds"], 2),
                    "models": theirs["cells"] // 9,
                    "chosen": f"{theirs['model']},{theirs['G']}",
                    "BIC (mclust's sign)": round(theirs["bic"], 3),
                },
                *(
                    {
                        "": label,
                        "seconds": round(result["seconds"], 2),
                        "seconds inside R": None,
                        "models": len(result["models"]),
                        "chosen": f"{result['model']},{result['G']}",
                        "BIC (mclust's sign)": round(result["bic"], 3),
                    }
                    for label, result in (("gmm", ours), ("gmm, n_jobs=2", ours_2))
                ),
            ],
            "Per EM iteration, 100,000 × 20, K = 20, from one k-means partition (me() and "
            "GaussianMixture(init_params=<that partition>, tol=0, max_iter=5))": step["rows"],
        },
        metrics={
            "n": n,
            "d": d,
            "r": theirs,
            "gmm": ours,
            "gmm_n_jobs_2": ours_2,
            "ratio_wall": ratio_wall,
            "ratio_wall_n_jobs_2": ratio_jobs,
            "ratio_inside_r": ratio_inside,
            "per_iteration": step,
        },
    )


def profile_sweep(X: np.ndarray, lines: int = 30, repeats: int = 2) -> dict:
    """Where our sweep's time goes: cProfile's top ``lines`` (cumulative, then own
    time) printed, and per model the fit seconds and EM iterations of the table.

    The sweep runs once untimed (one-time costs; every run computes its hc tree), then its
    wall and process CPU times are taken ``repeats`` times each, alternating: with and
    without the one-thread limit of a serial sweep's small fits
    (``gmm.selection.search.SERIAL_THREADED_WORK``; without it, BLAS and OpenMP keep
    their threads); with the limit but no helper thread for the stacked E-steps
    (:func:`gmm.lockstep.run_together`'s ``helpers``); and with the limit but its
    fits run one by one instead of together (``gmm.selection.search.stackable_fits``,
    :mod:`gmm.lockstep`), then once under cProfile (which slows the
    Python parts several times and sees only this thread: the fits run together
    are in others, so the profile is of the sweep fit by fit).
    """
    import cProfile
    import pstats

    from gmm import lockstep
    from gmm.selection import search

    def sweep_once():
        clear_cache()  # each run computes its hc tree, as R's Mclust(X) does
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gmm.sweep(X, range(1, 10), "mclust", random_state=0, progress=False, n_jobs=1)

    sweep_once()
    limit = search.SERIAL_THREADED_WORK
    together = search.stackable_fits
    run_together = lockstep.run_together
    times: dict[str, list[tuple[float, float]]] = {
        "threads_as_they_are": [],
        "limited": [],
        "limited_no_helper": [],
        "limited_fit_by_fit": [],
    }
    settings = (
        ("threads_as_they_are", 0, together, run_together),
        ("limited", limit, together, run_together),
        # The fits together, each stacked E-step in the coordinator alone (no helper thread).
        ("limited_no_helper", limit, together, lambda f, t, helpers=0: run_together(f, t)),
        ("limited_fit_by_fit", limit, lambda *args: False, run_together),
    )
    try:
        for _ in range(repeats):
            for name, work, stackable, runner in settings:
                search.SERIAL_THREADED_WORK = work
                search.stackable_fits = stackable
                lockstep.run_together = runner
                wall, cpu = perf_counter(), process_time()
                sweep_once()
                times[name].append((perf_counter() - wall, process_time() - cpu))
    finally:
        search.SERIAL_THREADED_WORK = limit
        search.stackable_fits = together
        lockstep.run_together = run_together
    profiler = cProfile.Profile()
    search.stackable_fits = lambda *args: False  # cProfile sees this thread only
    try:
        profiler.enable()
        result = sweep_once()
        profiler.disable()
    finally:
        search.stackable_fits = together
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    per_model: dict[str, dict[str, float]] = {}
    for row in result.table:
        entry = per_model.setdefault(row["covariance_type"], {"seconds": 0.0, "iterations": 0})
        entry["seconds"] += row["fit_seconds"]
        entry["iterations"] += row["n_iter"] or 0
    for model, entry in sorted(per_model.items(), key=lambda item: -item[1]["seconds"]):
        print(f"{model}: {entry['seconds']:.3f} s (profiled), {entry['iterations']} iterations")
    for name, pairs in times.items():
        print(f"{name}: " + ", ".join(f"wall {wall:.2f} s cpu {cpu:.2f} s" for wall, cpu in pairs))
    return {
        "wall_and_cpu_seconds": times,
        "per_model_profiled": per_model,
        "iterations": {
            f"{row['covariance_type']},{row['n_components']}": row["n_iter"] for row in result.table
        },
    }


def stage_seconds(X: np.ndarray, repeats: int) -> dict:
    """Seconds of our sweep's stages, with timers around them (no profiler's slowdown).

    After one untimed sweep, ``repeats`` sweeps (each computing its hc tree) with
    wall-clock timers around the stacked E-steps of fits run together
    (``gmm.lockstep.stacked_expectation``), the E-steps computed alone (the
    lockstep's and each fit's own), their normalisations (inside both), the
    M-steps and the hc tree; prints each sweep's total and stages.
    """
    from collections import defaultdict

    from gmm import em, hierarchical, lockstep

    seconds: dict[str, float] = defaultdict(float)
    stages = (
        (lockstep, "stacked_expectation", "E-steps stacked"),
        (lockstep, "_alone", "E-steps alone (lockstep)"),
        (em, "own_expectation", "E-steps alone (fit)"),
        (em, "_normalize", "normalisation (in E-steps)"),
        (em, "maximization", "M-steps"),
        (hierarchical, "_tree", "hc tree"),
    )
    originals = [(module, name, getattr(module, name)) for module, name, _ in stages]

    def timed(function, label):
        def call(*args, **kwargs):
            start = perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[label] += perf_counter() - start

        return call

    def sweep_once():
        clear_cache()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = perf_counter()
            gmm.sweep(X, range(1, 10), "mclust", random_state=0, progress=False, n_jobs=1)
            return perf_counter() - start

    sweep_once()
    runs = []
    try:
        for (module, name, label), (_, _, function) in zip(stages, originals, strict=True):
            setattr(module, name, timed(function, label))
        for _ in range(repeats):
            seconds.clear()
            total = sweep_once()
            runs.append({"total": total, **seconds})
            print(
                f"sweep {total:.2f} s: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
            )
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
    return {"runs": runs}


#: The families whose E-steps stack with each other (``stack_kind``), as the sweep groups them.
STACKS = {
    "oriented": ("VVV", "EEV", "VEV", "EVV", "VEE", "EVE", "VVE"),
    "axis-aligned": ("EEI", "VEI", "EVI", "VVI"),
    "spherical": ("EII", "VII"),
}


def stacking(X: np.ndarray, repeats: int = 30) -> dict:
    """ms of one E-step of each stack's fits, each alone against stacked (:mod:`gmm.lockstep`).

    The fits' parameters after 3 EM iterations from k-means at K = 2, 5 and 9;
    one BLAS thread; medians of ``repeats`` alternating rounds (each round: every
    fit's own E-step, the stacked one, then the stacked one with a helper thread).
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from gmm import em, lockstep
    from gmm.covariance import get_family

    shift = X.mean(axis=0)
    rows = []
    with threadpool_limits(1), ThreadPoolExecutor(1) as pool:
        for stack, names in STACKS.items():
            for k in (2, 5, 9):
                inputs = []
                for name in names:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = gmm.GaussianMixture(k, covariance_type=name, max_iter=3)
                        model.set_params(random_state=0).fit(X)
                    family = get_family(name)
                    params = model._get_parameters()
                    log_const = model._log_const(params, family)
                    inputs.append((em.ChunkedData(X, None, family, shift, k), params, log_const))
                requests = [lockstep._request(*args) for args in inputs]
                alone, together, helped = [], [], []
                for _ in range(repeats):
                    start = perf_counter()
                    for args in inputs:
                        em.own_expectation(*args)
                    alone.append(perf_counter() - start)
                    start = perf_counter()
                    lockstep.stacked_expectation(requests)
                    together.append(perf_counter() - start)
                    start = perf_counter()
                    lockstep.stacked_expectation(requests, pool)
                    helped.append(perf_counter() - start)
                row = {
                    "stack": stack,
                    "K": k,
                    "fits": len(names),
                    "alone_ms": _ms(float(np.median(alone))),
                    "stacked_ms": _ms(float(np.median(together))),
                    # Its rows' second half on a helper thread, where the stack is large
                    # enough (em.THREAD_WORK), as a sweep on two CPUs runs it.
                    "stacked_helper_ms": _ms(float(np.median(helped))),
                }
                print(row)
                rows.append(row)
    return {"rows": rows}


def run_part(part: str, models, repeats: int) -> dict:
    """One part alone: ``'sweep'`` (ours and R's ``Mclust(X)``), ``'ours'`` (our sweep
    only, no R) or ``'per-iteration'`` (``models``, or all 14, against ``me()``)."""
    if part == "per-iteration":
        step = per_iteration_table(100_000, 20, 20, iterations=5, repeats=repeats, models=models)
        for row in step["rows"]:
            print(row)
        return step
    X = make_data(20_000, 10)
    if part == "profile":
        return profile_sweep(X, repeats=repeats)
    if part == "stages":
        return stage_seconds(X, repeats)
    if part == "stacking":
        return stacking(X)
    ours = time_gmm(X, repeats)
    out = {"gmm": ours}
    print(f"gmm: {ours['seconds']:.2f} s (median of {repeats}: {ours['all_seconds']}), "
          f"chosen {ours['model']},{ours['G']}")  # fmt: skip
    if part == "sweep":
        theirs = time_r(X)
        out["r"] = theirs
        print(f"R: {theirs['wall_seconds']:.2f} s wall ({theirs['mclust_seconds']:.2f} s in R), "
              f"chosen {theirs['model']},{theirs['G']}; ratio "
              f"{theirs['wall_seconds'] / ours['seconds']:.2f}x wall")  # fmt: skip
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", help="write the numbers to this JSON file")
    parser.add_argument(
        "--part",
        choices=["all", "sweep", "ours", "per-iteration", "profile", "stages", "stacking"],
        default="all",
        help="all (default: the report's experiment), only the Mclust(X) sweep, only our "
        "sweep (no R), only the per-iteration table, a profile of our sweep (no R), or "
        "the seconds of our sweep's stages or its E-steps alone against stacked (no R)",
    )
    parser.add_argument("--models", help="comma-separated models for --part per-iteration")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.part == "all":
        outcome = run()
        print(outcome.verdict)
        metrics = {"verdict": outcome.verdict, **outcome.metrics}
    else:
        if not (args.part in ("ours", "profile", "stages", "stacking") or has_mclust()):
            sys.exit("Rscript with the mclust package is not installed on this machine.")
        chosen = args.models.split(",") if args.models else None
        metrics = run_part(args.part, chosen, args.repeats)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(metrics, file, indent=2)
