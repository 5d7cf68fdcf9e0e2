"""'tied' E-step without the shared term against the whitening path, in one process.

``python -m experiments.bench_tied`` fits 'tied' from scikit-learn's k-means start
(the grid's data, :func:`experiments.bench_grid.grid_data`) three ways, in turn
within each repeat: scikit-learn, ours as it runs (the fitting E-step drops
``-|U'x|²/2``, :meth:`gmm.covariance.Tied.log_prob_less_shared`), and ours with
that hook off (the whitening path, :meth:`gmm.covariance.Tied.log_prob`). Process
CPU time with one BLAS thread (``threadpoolctl``), so other load on the machine
moves the figures less; medians of repeats; written to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from unittest import mock

import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

from gmm import GaussianMixture, em

from .bench import _fit, _start
from .bench_grid import grid_data


def _cpu_seconds(func) -> tuple[float, object]:
    t0 = time.process_time()
    result = func()
    return time.process_time() - t0, result


def measure(n_samples, n_features, n_components, iters, repeats) -> dict:
    """One shape: per-iteration CPU milliseconds of the three, and the bounds' difference."""
    X = grid_data(n_samples, n_features, n_components, "float64")
    start = _start(X, n_components, "tied")
    runs = {
        "sklearn": lambda: _fit(SkGaussianMixture, X, n_components, "tied", iters, start),
        "shared_dropped": lambda: _fit(GaussianMixture, X, n_components, "tied", iters, start),
    }

    def whitening():
        with mock.patch.object(em, "_drops_shared", lambda cls: False):
            return _fit(GaussianMixture, X, n_components, "tied", iters, start)

    runs["whitening"] = whitening
    times = {name: [] for name in runs}
    models = {}
    for _ in range(repeats):
        for name, run in runs.items():
            seconds, models[name] = _cpu_seconds(run)
            times[name].append(seconds)
    ms = {name: 1000 * float(np.median(t)) / iters for name, t in times.items()}
    new, old = models["shared_dropped"], models["whitening"]
    return {
        "n_features": n_features,
        "n_components": n_components,
        "ms_per_iter": ms,
        "ratio_vs_sklearn_new": ms["sklearn"] / ms["shared_dropped"],
        "ratio_vs_sklearn_old": ms["sklearn"] / ms["whitening"],
        "speedup_new_over_old": ms["whitening"] / ms["shared_dropped"],
        "lower_bound_rel_diff_new_old": abs(new.lower_bound_ - old.lower_bound_)
        / abs(old.lower_bound_),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, nargs="+", default=[20, 50, 100, 200])
    parser.add_argument("--components", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="experiments/out/bench_tied.json")
    args = parser.parse_args(argv)
    rows = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for d in args.features:
            for k in args.components:
                row = measure(args.rows, d, k, args.iters, args.repeats)
                rows.append(row)
                print(json.dumps(row), flush=True)
                with open(args.out, "w") as f:
                    json.dump({"settings": vars(args), "cells": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
