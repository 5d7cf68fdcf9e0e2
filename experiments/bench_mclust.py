"""Benchmark: mclust's whole default, ``Mclust(X)``, against our mclust sweep.

Run alone with ``python -m experiments.bench_mclust [out.json]`` to write the
numbers as JSON; in the report they go to results.json like every experiment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from time import perf_counter

import numpy as np

import gmm

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
    "on all), as a median of repeats. Both use mclust's defaults otherwise (gmm keeps its "
    "tol=1e-3 on the mean log-likelihood and reg_covar=1e-6). Before the mclust families "
    "are merged gmm fits only the 4 models it has while R fits 14: the ratio is then "
    "not like for like, and the verdict says so. Timings were measured on a shared, "
    "busy 2-core machine. Quick mode skips it."
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


def time_gmm(X: np.ndarray, repeats: int) -> dict:
    times, result = [], None
    for _ in range(repeats):
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
    theirs = time_r(X)
    ratio_wall = theirs["wall_seconds"] / ours["seconds"]
    ratio_inside = theirs["mclust_seconds"] / ours["seconds"]
    all_models = len(ours["models"]) == 14
    same = (ours["model"], ours["G"]) == (theirs["model"], theirs["G"])
    verdict = (
        f"{n:,} × {d}: R's Mclust(X) took {theirs['wall_seconds']:.1f} s wall "
        f"({theirs['mclust_seconds']:.1f} s inside R), gmm {ours['seconds']:.1f} s: "
        f"{ratio_wall:.1f}× faster by wall time ({ratio_inside:.1f}× against R's own timing); "
        f"chosen model gmm {ours['model']},{ours['G']}, mclust {theirs['model']},{theirs['G']}"
        + (
            ""
            if all_models
            else f". Not like for like: gmm fitted {len(ours['models'])} of mclust's 14 models."
        )
    )
    return ExperimentResult(
        name="bench_mclust",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(all_models and same and ratio_wall >= 10),
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
                {
                    "": "gmm",
                    "seconds": round(ours["seconds"], 2),
                    "seconds inside R": None,
                    "models": len(ours["models"]),
                    "chosen": f"{ours['model']},{ours['G']}",
                    "BIC (mclust's sign)": round(ours["bic"], 3),
                },
            ]
        },
        metrics={
            "n": n,
            "d": d,
            "r": theirs,
            "gmm": ours,
            "ratio_wall": ratio_wall,
            "ratio_inside_r": ratio_inside,
        },
    )


if __name__ == "__main__":
    outcome = run()
    print(outcome.verdict)
    paths = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    if paths:
        with open(paths[0], "w") as file:
            json.dump({"verdict": outcome.verdict, **outcome.metrics}, file, indent=2)
