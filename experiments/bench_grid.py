"""Speed on every shape: the per-iteration ratio over a grid of (D, K, family, dtype).

``python -m experiments.bench_grid`` measures the speed issue's grid — N = 100,000
rows; D in {1, 2, 5, 10, 20, 50, 100, 200}; K in {1, 2, 4, 8, 32, 128}; every
covariance type scikit-learn has; float64 and float32 — and writes
``experiments/out/bench_grid.json`` after every cell. The full grid takes hours on
a small machine at fixed repeats (scikit-learn's 'full' iteration at D = 200, K = 128
alone is about a minute), so each cell has a time budget (``--budget`` seconds of
scikit-learn fits, 60 by default): a probe fit of one iteration sizes it, heavy cells
run fewer iterations (down to 1), then fewer repeats (down to 1), and each row records
the iterations and repeats it ran, the probe and the 1-minute load. A run that is
stopped resumes where it stopped: cells already in the JSON for the same settings are
not measured again, and runs with other settings (say, each part of the grid with its own
``--budget``) add their cells beside the earlier ones. ``--rows``, ``--features``,
``--components``, ``--types`` and ``--dtypes`` choose a smaller grid.

Each cell fits both libraries from identical initial parameters (the moments of
scikit-learn's k-means partition, :func:`grid_start`) with ``tol=0`` and a fixed
number of iterations, in the same process, and reports the ratio of the medians of
repeats. ``python -m experiments
bench_grid`` draws the stored grid as heatmaps (D × K, one panel per family); when
no grid has been stored it measures a small one and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from time import perf_counter

import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture

from .bench import OUT, _fit, per_iteration_case
from .result import ExperimentResult, figure_png

FEATURES = (1, 2, 5, 10, 20, 50, 100, 200)
COMPONENTS = (1, 2, 4, 8, 32, 128)
TYPES = ("full", "tied", "diag", "spherical")
DTYPES = ("float64", "float32")
GRID_FILE = "bench_grid.json"
#: Most Lloyd iterations of the k-means that gives a cell its start (:func:`grid_start`).
START_KMEANS_ITERS = 30
#: Rows of the probe fit that sizes a cell (:func:`measure_cell`).
PROBE_ROWS = 10_000
QUICK = {"rows": 3_000, "features": (2, 20), "components": (2, 8), "iters": 2, "repeats": 1}


def grid_data(n_samples: int, n_features: int, n_components: int, dtype: str) -> np.ndarray:
    """Rows drawn from a mixture of ``n_components`` unit Gaussians with spread means."""
    rng = np.random.default_rng(n_features * 1000 + n_components)
    centres = rng.uniform(-6, 6, (max(n_components, 1), n_features))
    labels = rng.integers(0, len(centres), n_samples)
    X = rng.standard_normal((n_samples, n_features)) + centres[labels]
    return X.astype(dtype)


def _key(cell: dict) -> str:
    d, k = cell["n_features"], cell["n_components"]
    return f"{cell['covariance_type']}|{cell['dtype']}|D={d}|K={k}"


def grid_start(X: np.ndarray, n_components: int, covariance_type: str) -> dict:
    """Identical initial parameters for both libraries: the moments of a k-means partition.

    scikit-learn's own k-means labels (``n_init=1``, ``random_state=0``, at most
    :data:`START_KMEANS_ITERS` Lloyd iterations), then each cluster's weight, mean
    and covariance in float64 (plus scikit-learn's ``reg_covar``, 1e-6), as the
    family shapes them, cast to X's dtype. This is the partition scikit-learn's
    'kmeans' start takes, without its EM iteration: at D = 200, K = 128 ('full'),
    scikit-learn's own start (``experiments.bench._start``) costs a minute and a half.
    O(N·K·D) per Lloyd iteration and O(N·D²) for the covariances.
    """
    from sklearn.cluster import KMeans

    labels = (
        KMeans(n_components, n_init=1, random_state=0, max_iter=START_KMEANS_ITERS).fit(X).labels_
    )
    wide = X.astype(np.float64)
    counts = np.bincount(labels, minlength=n_components).astype(np.float64)
    means = np.zeros((n_components, X.shape[1]))
    for k in range(n_components):
        means[k] = wide[labels == k].mean(axis=0)
    if covariance_type in ("full", "tied"):
        covs = np.empty((n_components, X.shape[1], X.shape[1]))
        for k in range(n_components):
            diff = wide[labels == k] - means[k]
            covs[k] = diff.T @ diff / counts[k]
        if covariance_type == "tied":
            covs = np.tensordot(counts, covs, axes=1) / counts.sum()
        covs += 1e-6 * np.eye(X.shape[1])
        precisions = np.linalg.inv(covs)
    else:
        variances = np.empty((n_components, X.shape[1]))
        for k in range(n_components):
            variances[k] = ((wide[labels == k] - means[k]) ** 2).mean(axis=0)
        if covariance_type == "spherical":
            variances = variances.mean(axis=1)
        precisions = 1.0 / (variances + 1e-6)
    return {
        "weights_init": (counts / counts.sum()).astype(X.dtype),
        "means_init": means.astype(X.dtype),
        "precisions_init": precisions.astype(X.dtype),
    }


def cell_plan(probe_seconds: float, iters: int, repeats: int, budget: float) -> tuple[int, int]:
    """Iterations and repeats of a cell that fit ``budget`` seconds of scikit-learn fits.

    ``probe_seconds`` is one scikit-learn fit of one iteration. Iterations are cut
    first (to 1), then repeats (to 1): a heavy cell's fixed costs are a small share
    of its iteration, so one iteration measures it, and its median is of fewer
    repeats. Light cells keep ``iters`` and ``repeats``.
    """
    per_iter = max(probe_seconds, 1e-9) / 2  # a fit of one iteration runs about two passes
    if per_iter * (iters + 1) * repeats <= budget:
        return iters, repeats
    fit_iters = max(1, min(iters, int(budget / (per_iter * repeats)) - 1))
    if per_iter * (fit_iters + 1) * repeats <= budget:
        return fit_iters, repeats
    return 1, max(1, min(repeats, int(budget / probe_seconds)))


def _fewest_rows(covariance_type: str, n_features: int, n_components: int) -> int:
    """Fewest rows a probe or a shortened cell keeps: for 'full', 8 rows per component
    and feature, so no component's covariance is singular on the first rows
    (scikit-learn's float32 fit of 10,000 rows at D = 200, K = 128 failed its Cholesky)."""
    return 8 * n_features * n_components if covariance_type == "full" else 0


def measure_cell(
    n_samples, n_features, n_components, covariance_type, dtype, iters, repeats, budget=None
):
    """One cell of the grid: both libraries from the same start, ratio of medians.

    With ``budget`` (seconds), a probe fit of scikit-learn's (one iteration, on the
    first :data:`PROBE_ROWS` rows or :func:`_fewest_rows`, scaled to all of them) sizes the cell
    (:func:`cell_plan`). Where even one fit of one iteration on all rows would
    exceed the budget, the cell runs on the first rows that fit it (at least
    :data:`PROBE_ROWS` and :func:`_fewest_rows`; the rows are independent draws, and a heavy cell's
    iteration is proportional to its rows). The row records the rows, iterations
    and repeats run, the probe's estimate and the 1-minute load.
    """
    X = grid_data(n_samples, n_features, n_components, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = perf_counter()
        start = grid_start(X, n_components, covariance_type)
        start_s = perf_counter() - t0
        probe_s = None
        if budget is not None:
            fewest = _fewest_rows(covariance_type, n_features, n_components)
            probe_rows = min(n_samples, max(PROBE_ROWS, fewest))
            t0 = perf_counter()
            _fit(SkGaussianMixture, X[:probe_rows], n_components, covariance_type, 1, start)
            probe_s = (perf_counter() - t0) * n_samples / probe_rows
            if probe_s > budget:
                X = X[: max(probe_rows, int(n_samples * budget / probe_s))]
            iters, repeats = cell_plan(probe_s * len(X) / n_samples, iters, repeats, budget)
        row = per_iteration_case(
            f"{covariance_type}, {dtype}, D={n_features}, K={n_components}",
            X,
            n_components,
            covariance_type,
            iters,
            repeats,
            start=start,
        )
    row = {k: float(v) if isinstance(v, np.floating) else v for k, v in row.items()}
    row.update(
        covariance_type=covariance_type,
        dtype=dtype,
        n_features=n_features,
        n_components=n_components,
        n_samples=len(X),
        rows_asked=n_samples,
        iters=iters,
        repeats=repeats,
        start="k-means moments",
        start_seconds=start_s,
        probe_seconds=probe_s,
        load=os.getloadavg()[0],
    )
    return row


def warm_up() -> None:
    """One small fit of each library and family, so no cell pays the process's first-use
    costs (threadpoolctl's controller, 'full''s cost model calibration, imports)."""
    X = grid_data(2_000, 3, 2, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for covariance_type in TYPES:
            start = grid_start(X, 2, covariance_type)
            for cls in (SkGaussianMixture, GaussianMixture):
                _fit(cls, X, 2, covariance_type, 2, start)


def measure_grid(
    rows: int = 100_000,
    features=FEATURES,
    components=COMPONENTS,
    types=TYPES,
    dtypes=DTYPES,
    iters: int = 3,
    repeats: int = 3,
    path: Path | None = None,
    log=print,
    budget: float | None = None,
) -> dict:
    """Measure every cell not yet stored in ``path`` (for the same settings); return the grid.

    ``budget``: seconds of scikit-learn fits a cell may take (:func:`cell_plan`);
    None runs ``iters`` and ``repeats`` everywhere. Each cell records the
    settings it was measured with; the file keeps the cells of earlier runs
    with other settings (a grid run in parts, each with its own budget), and a
    cell measured again replaces its earlier row.
    """
    settings = {"rows": rows, "iters": iters, "repeats": repeats, "budget": budget}
    stored = {"settings": settings, "cells": []}
    if path is not None and path.exists():
        previous = json.loads(path.read_text())
        for cell in previous.get("cells", []):
            cell.setdefault("settings", previous.get("settings"))
            stored["cells"].append(cell)
    done = {_key(c) for c in stored["cells"] if c["settings"] == settings}
    warm_up()
    for covariance_type in types:
        for dtype in dtypes:
            for d in features:
                for k in components:
                    cell = {
                        "covariance_type": covariance_type,
                        "dtype": dtype,
                        "n_features": d,
                        "n_components": k,
                    }
                    if _key(cell) in done:
                        continue
                    try:
                        row = measure_cell(
                            rows, d, k, covariance_type, dtype, iters, repeats, budget
                        )
                    except (ValueError, np.linalg.LinAlgError) as error:
                        log(f"{_key(cell):32s} failed: {type(error).__name__}: {error}")
                        continue
                    row["settings"] = settings
                    stored["cells"] = [c for c in stored["cells"] if _key(c) != _key(cell)]
                    stored["cells"].append(row)
                    log(
                        f"{_key(cell):32s} sklearn {row['sklearn_ms_per_iter']:9.1f} ms  "
                        f"gmm {row['gmm_ms_per_iter']:9.1f} ms  ratio {row['ratio']:6.2f}x  "
                        f"({row['n_samples']} rows, {row['iters']} it x {row['repeats']}, "
                        f"load {row['load']:.1f})"
                    )
                    if path is not None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(json.dumps(stored, indent=1))
    return stored


def summary(grid: dict) -> list[dict]:
    """Minimum, median and maximum ratio per (family, dtype), and the worst cell."""
    out = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in grid["cells"]:
        groups.setdefault((cell["covariance_type"], cell["dtype"]), []).append(cell)
    for (cov, dtype), cells in groups.items():
        ratios = np.array([c["ratio"] for c in cells])
        worst = cells[int(np.argmin(ratios))]
        out.append(
            {
                "family": cov,
                "dtype": dtype,
                "cells": len(cells),
                "min": f"{ratios.min():.2f}x",
                "median": f"{np.median(ratios):.2f}x",
                "max": f"{ratios.max():.2f}x",
                "worst cell": f"D={worst['n_features']}, K={worst['n_components']}",
                "cells below 1.5x": int((ratios < 1.5).sum()),
            }
        )
    return out


def heatmaps(grid: dict, dtype: str):
    """One panel per family: log2 of the ratio over D (rows) × K (columns)."""
    import matplotlib.pyplot as plt

    cells = [c for c in grid["cells"] if c["dtype"] == dtype]
    types = [t for t in TYPES if any(c["covariance_type"] == t for c in cells)]
    ds = sorted({c["n_features"] for c in cells})
    ks = sorted({c["n_components"] for c in cells})
    fig, axes = plt.subplots(1, len(types), figsize=(3.2 * len(types), 3.4), squeeze=False)
    image = None
    for ax, cov in zip(axes[0], types, strict=True):
        table = np.full((len(ds), len(ks)), np.nan)
        for c in cells:
            if c["covariance_type"] == cov:
                table[ds.index(c["n_features"]), ks.index(c["n_components"])] = c["ratio"]
        image = ax.imshow(np.log2(table), cmap="RdBu", vmin=-4, vmax=4, aspect="auto")
        for i in range(len(ds)):
            for j in range(len(ks)):
                if np.isfinite(table[i, j]):
                    ax.text(j, i, f"{table[i, j]:.1f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(ks)), ks)
        ax.set_yticks(range(len(ds)), ds)
        ax.set_xlabel("K")
        ax.set_title(cov)
    axes[0][0].set_ylabel("D")
    fig.colorbar(image, ax=axes[0].tolist(), label="log2(speed-up over scikit-learn)")
    fig.suptitle(f"Per-iteration speed-up over scikit-learn, {dtype}")
    return fig


def run(quick: bool = False) -> ExperimentResult:
    path = OUT / GRID_FILE
    stored = not quick and path.exists()
    if stored:
        grid = json.loads(path.read_text())
    else:
        grid = measure_grid(
            rows=QUICK["rows"],
            features=QUICK["features"],
            components=QUICK["components"],
            iters=QUICK["iters"],
            repeats=QUICK["repeats"],
            log=lambda _line: None,
        )
    table = summary(grid)
    ratios = np.array([c["ratio"] for c in grid["cells"]])
    n = grid["settings"]["rows"]
    source = (
        f"the stored grid ({len(ratios)} cells, N = {n:,}, from python -m experiments.bench_grid)"
        if stored
        else f"a small grid measured now ({len(ratios)} cells, N = {n:,}; run "
        "python -m experiments.bench_grid for the full one)"
    )
    verdict = (
        f"Over {source}: speed-up {ratios.min():.2f}x at worst, median {np.median(ratios):.2f}x, "
        f"best {ratios.max():.2f}x; {int((ratios < 1).sum())} cells slower than scikit-learn."
    )
    figures = {
        f"Speed-up over the grid, {dtype}": figure_png(heatmaps(grid, dtype))
        for dtype in DTYPES
        if any(c["dtype"] == dtype for c in grid["cells"])
    }
    return ExperimentResult(
        name="bench_grid",
        title="Speed on every shape",
        description=(
            "The per-iteration speed-up over scikit-learn on every (D, K) of the grid, for "
            "each covariance type and dtype, from identical starts (median of repeats)."
        ),
        verdict=verdict,
        ok=quick or bool(ratios.min() >= 1.0),
        figures=figures,
        tables={"Speed-up per family": table},
        metrics=grid,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, nargs="+", default=list(FEATURES))
    parser.add_argument("--components", type=int, nargs="+", default=list(COMPONENTS))
    parser.add_argument(
        "--types", nargs="+", default=list(TYPES), choices=TYPES, help="in this order"
    )
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds of scikit-learn fits per cell; heavier cells run fewer iterations, "
        "then fewer repeats (0: no limit)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    path = args.out / GRID_FILE
    grid = measure_grid(
        args.rows,
        args.features,
        args.components,
        args.types,
        args.dtypes,
        args.iters,
        args.repeats,
        path,
        budget=args.budget or None,
    )
    for row in summary(grid):
        print(" | ".join(f"{k}: {v}" for k, v in row.items()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
