"""The main job, ``python -m experiments``, end to end in quick mode."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.runner import EXPERIMENTS, module_exists

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every entry of results.json carries these keys, whatever happened to the experiment.
ENTRY_KEYS = {"name", "title", "status", "ok", "verdict", "error", "seconds", "metrics", "tables"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "experiments", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # A hang guard, not a speed test: speed is measured by the benchmarks.
        timeout=900,
    )
    return completed, out, time.perf_counter() - start


def test_quick_run_succeeds(quick_run):
    completed, _, _seconds = quick_run
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "experiment" in completed.stdout  # the summary table


def test_report_embeds_every_figure_as_png(quick_run):
    _, out, _ = quick_run
    report = (out / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', report)
    assert sources, "the report has no figures"
    assert len(sources) == report.count("<img")
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:60]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE)


def test_results_cover_every_experiment_without_errors(quick_run):
    _, out, _ = quick_run
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    entries = results["experiments"]
    assert set(entries) == set(EXPERIMENTS)
    for name, entry in entries.items():
        assert ENTRY_KEYS <= set(entry), (name, ENTRY_KEYS - set(entry))
        assert entry["error"] is None, f"{name}: {entry['error']}"
        if module_exists(name):
            assert entry["status"] in ("ok", "finding"), (name, entry["status"])
            assert entry["verdict"], name
        else:
            assert entry["status"] == "skipped", name
    assert {"versions", "machine"} <= set(results["environment"])


def test_a_failing_experiment_becomes_an_error_row(monkeypatch):
    from experiments import runner

    def boom(name):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(runner.importlib, "import_module", boom)
    result, status = runner.run_one("blobs", quick=True)
    assert status == "error"
    assert not result.ok
    assert "kaboom" in result.error


def test_a_missing_module_is_skipped_not_an_error():
    from experiments import runner

    result, status = runner.run_one("no_such_experiment", quick=True)
    assert status == "skipped"
    assert result.error is None


def test_grid_parts_with_other_settings_keep_each_others_cells(tmp_path):
    """bench_grid run in parts, each with its own budget, keeps every part's cells in one
    file; a cell measured again under new settings replaces its row, and a rerun with the
    same settings measures nothing."""
    from experiments.bench_grid import measure_grid

    path = tmp_path / "bench_grid.json"
    small = dict(rows=600, features=(2,), components=(2,), dtypes=("float64",), iters=1)
    measure_grid(**small, types=("diag",), repeats=1, path=path, budget=5, log=lambda _: None)
    measure_grid(**small, types=("full",), repeats=1, path=path, budget=10, log=lambda _: None)
    cells = json.loads(path.read_text())["cells"]
    assert [(c["covariance_type"], c["settings"]["budget"]) for c in cells] == [
        ("diag", 5),
        ("full", 10),
    ]
    measure_grid(**small, types=("diag",), repeats=1, path=path, budget=10, log=lambda _: None)
    cells = json.loads(path.read_text())["cells"]
    assert sorted((c["covariance_type"], c["settings"]["budget"]) for c in cells) == [
        ("diag", 10),
        ("full", 10),
    ]
    lines = []
    measure_grid(**small, types=("diag", "full"), repeats=1, path=path, budget=10, log=lines.append)
    assert lines == []
