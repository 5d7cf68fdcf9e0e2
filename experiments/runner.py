"""Run the experiments, each in isolation, and write the report and the results.

Every experiment is a module ``experiments.<name>`` with ``run(quick) ->
ExperimentResult``. A module that does not exist yet is skipped (and recorded as
skipped); a module that fails to import, or whose ``run`` raises, becomes an
error row and the other experiments go on. The exit code is 1 if any errored.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import traceback
from pathlib import Path
from time import perf_counter

import numpy as np

from .result import ExperimentResult

# The one list of experiments, in report order.
EXPERIMENTS = [
    "blobs",
    "stretched",
    "covariance_types",
    "moons_density",
    "moons_selection",
    "digits",
    "how_many",
    "agreement",
    "articles",
    "missing_values",
    "mclust",
    "bench",
    "bench_grid",
    "bench_sweep",
    "bench_scale",
    "bench_bayesian",
    "online",
    "bench_online",
    "bench_mclust",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
SKIPPED = "skipped: module missing"

# Experiments that manage threads themselves (they measure thread scaling). All
# others run with one BLAS and one OpenMP thread: their problems are small (D ≤ 64),
# where extra threads do not help, and on a shared machine spinning BLAS threads
# made a 41×41 triangular solve a hundred times slower. gmm and scikit-learn are
# timed under the same limit.
OWN_THREADS = {"bench", "bench_sweep"}


def thread_limit(name: str):
    """A context that limits native threads to one, unless ``name`` manages its own."""
    if name in OWN_THREADS:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def module_exists(name: str) -> bool:
    """Whether ``experiments.<name>`` is present (without importing it)."""
    return importlib.util.find_spec(f"{__package__}.{name}") is not None


def run_one(name: str, quick: bool) -> tuple[ExperimentResult, str]:
    """Run one experiment; return its result and its status.

    Status is 'ok', 'finding' (ran, verdict against us), 'error' or 'skipped'.
    """
    if not module_exists(name):
        return ExperimentResult(name=name, title=name, verdict=SKIPPED), "skipped"
    start = perf_counter()
    try:
        module = importlib.import_module(f"{__package__}.{name}")
        with thread_limit(name):
            result = module.run(quick)
        if not isinstance(result, ExperimentResult):
            raise TypeError(f"run() returned {type(result).__name__}, not ExperimentResult")
    except Exception as error:  # one experiment must not stop the others
        detail = traceback.format_exc()
        result = ExperimentResult(
            name=name,
            title=name,
            verdict=f"error: {type(error).__name__}: {error}",
            ok=False,
            error=detail,
        )
    result.name = name
    result.seconds = perf_counter() - start
    if result.error is not None:
        result.ok = False
        return result, "error"
    return result, "ok" if result.ok else "finding"


def environment() -> dict:
    """Versions and machine, for the footer and results.json."""
    import matplotlib
    import scipy
    import sklearn

    import gmm

    env = {
        "versions": {
            "gmm": gmm.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "matplotlib": matplotlib.__version__,
            "python": platform.python_version(),
        },
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
    }
    try:
        from threadpoolctl import threadpool_info

        env["machine"]["blas"] = [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ]
    except ImportError:
        env["machine"]["blas"] = "threadpoolctl not installed"
    return env


def _jsonable(value):
    """numpy scalars and arrays to plain Python; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_json(results, statuses, env, quick, total_seconds) -> dict:
    return _jsonable(
        {
            "quick": quick,
            "total_seconds": total_seconds,
            "environment": env,
            "experiments": {
                r.name: {
                    "name": r.name,
                    "title": r.title,
                    "status": statuses[r.name],
                    "ok": r.ok,
                    "verdict": r.verdict,
                    "error": r.error,
                    "seconds": r.seconds,
                    "metrics": r.metrics,
                    "tables": r.tables,
                    "figures": list(r.figures),
                }
                for r in results
            },
        }
    )


def summary_table(results, statuses) -> str:
    """A plain-text table: one line per experiment."""
    width = max(len(r.name) for r in results)
    lines = [f"{'experiment':<{width}}  {'status':<8}  {'seconds':>7}  verdict"]
    lines.append("-" * (width + 30))
    for r in results:
        verdict = r.verdict if len(r.verdict) <= 140 else r.verdict[:137] + "..."
        lines.append(f"{r.name:<{width}}  {statuses[r.name]:<8}  {r.seconds:7.1f}  {verdict}")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description="Run the gmm experiments and write report.html and results.json.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"experiments to run (default: all): {', '.join(EXPERIMENTS)}",
    )
    parser.add_argument("--quick", action="store_true", help="small versions (under a minute)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {EXPERIMENTS}")
    return args


def main(argv=None) -> int:
    from .report import write_report

    args = parse_args(sys.argv[1:] if argv is None else argv)
    names = args.names or EXPERIMENTS
    start = perf_counter()
    results, statuses = [], {}
    for name in names:
        print(f"running {name} ...", flush=True)
        result, status = run_one(name, args.quick)
        results.append(result)
        statuses[name] = status
        print(f"  {status} in {result.seconds:.1f} s: {result.verdict}", flush=True)
    total = perf_counter() - start
    env = environment()

    args.out.mkdir(parents=True, exist_ok=True)
    data = results_json(results, statuses, env, args.quick, total)
    (args.out / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    write_report(args.out / "report.html", results, statuses, env, args.quick, total)

    print()
    print(summary_table(results, statuses))
    print(f"\ntotal {total:.1f} s; wrote {args.out / 'report.html'} and results.json")
    errors = [r for r in results if statuses[r.name] == "error"]
    for r in errors:
        print(f"\n--- {r.name} failed ---\n{r.error}", file=sys.stderr)
    return 1 if errors else 0
