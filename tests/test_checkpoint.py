"""Resumable sweeps: gmm.checkpoint through gmm.sweep(checkpoint=...).

The reference for a resumed sweep is the same sweep run without interruption
in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from gmm import sweep
from gmm.checkpoint import CheckpointError
from gmm.selection import COLUMNS

GRID = dict(n_components=range(1, 5), covariance_types=("full", "diag"), progress=False)


def without_seconds(table):
    return [{k: v for k, v in row.items() if k != "fit_seconds"} for row in table]


def lines_of(path):
    with open(path, "rb") as file:
        return file.read().split(b"\n")


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(120, centers=3, random_state=5)
    return X


@pytest.fixture(scope="module")
def reference(data):
    return sweep(data, **GRID)


def test_file_holds_a_header_and_one_line_per_fit(tmp_path, data, reference):
    path = tmp_path / "sweep.jsonl"
    result = sweep(data, checkpoint=path, **GRID)
    assert without_seconds(result.table) == without_seconds(reference.table)
    lines = lines_of(path)
    assert lines[-1] == b""  # every line is complete
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:-1]]
    assert header["format"] == "gmm-sweep-checkpoint"
    assert header["data"]["shape"] == list(data.shape)
    assert len(rows) == len(result.table)
    assert all(set(row) == set(COLUMNS) for row in rows)


def test_rerun_skips_finished_fits_and_returns_the_same_table(tmp_path, data, monkeypatch):
    path = tmp_path / "sweep.jsonl"
    first = sweep(data, checkpoint=path, **GRID)
    size = os.path.getsize(path)

    from gmm.selection import search

    calls = []
    original = search.fit_point

    def counting(*args, **kwargs):
        calls.append(args[2:4])  # fit_point(X, w, k, covariance_type, params)
        return original(*args, **kwargs)

    monkeypatch.setattr(search, "fit_point", counting)
    second = sweep(data, checkpoint=path, **GRID)
    # Only the best model is refitted; its row, like every row, comes from the file.
    assert calls == [tuple(first.best_params_.values())]
    assert second.table.to_records() == first.table.to_records()
    assert os.path.getsize(path) == size
    assert np.array_equal(second.best_estimator_.means_, first.best_estimator_.means_)


def test_a_larger_grid_reuses_the_finished_points(tmp_path, data, reference):
    path = tmp_path / "sweep.jsonl"
    sweep(data, checkpoint=path, **{**GRID, "n_components": [1, 2]})
    result = sweep(data, checkpoint=path, **GRID)
    assert without_seconds(result.table) == without_seconds(reference.table)
    assert len(lines_of(path)) == 1 + len(reference.table) + 1


def test_truncated_last_line_is_redone(tmp_path, data, reference):
    path = tmp_path / "sweep.jsonl"
    sweep(data, checkpoint=path, **GRID)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) - 25])  # a kill in the middle of a write
    result = sweep(data, checkpoint=path, **GRID)
    assert without_seconds(result.table) == without_seconds(reference.table)
    lines = lines_of(path)
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    assert len(lines) == 1 + len(reference.table) + 1


def test_corrupted_last_line_is_tolerated(tmp_path, data, reference):
    path = tmp_path / "sweep.jsonl"
    sweep(data, checkpoint=path, **{**GRID, "n_components": [1, 2]})
    with open(path, "ab") as file:
        file.write(b'{"n_components": 3, "covariance_type": "fu\x00\xff garbage\n')
    result = sweep(data, checkpoint=path, **GRID)
    assert without_seconds(result.table) == without_seconds(reference.table)


def test_damage_before_the_last_line_is_refused(tmp_path, data):
    path = tmp_path / "sweep.jsonl"
    sweep(data, checkpoint=path, **GRID)
    lines = lines_of(path)
    lines[2] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CheckpointError, match="damaged: line 3"):
        sweep(data, checkpoint=path, **GRID)
    result = sweep(data, checkpoint=path, overwrite=True, **GRID)
    assert len(lines_of(path)) == 1 + len(result.table) + 1


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(X_shift=1e-9), "different data"),
        (dict(sample_weight=2.0), "different data"),
        (dict(tol=1e-4), "different settings"),
        (dict(random_state=1), "different settings"),
        (dict(n_init=2), "different settings"),
    ],
)
def test_checkpoint_for_other_data_or_settings_is_refused(tmp_path, data, change, match):
    path = tmp_path / "sweep.jsonl"
    sweep(data, checkpoint=path, **GRID)
    before = path.read_bytes()
    change = dict(change)
    X = data + change.pop("X_shift", 0.0)
    if "sample_weight" in change:
        change["sample_weight"] = np.full(len(X), change["sample_weight"])
    with pytest.raises(CheckpointError, match=match):
        sweep(X, checkpoint=path, **GRID, **change)
    assert path.read_bytes() == before
    # overwrite=True starts the file afresh for the new data and settings.
    result = sweep(X, checkpoint=path, overwrite=True, **GRID, **change)
    rerun = sweep(X, checkpoint=path, **GRID, **change)
    assert rerun.table.to_records() == result.table.to_records()


def test_a_file_that_is_not_a_checkpoint_is_left_alone(tmp_path, data):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CheckpointError, match="not a gmm sweep checkpoint"):
        sweep(data, checkpoint=path, **GRID)
    assert path.read_text() == "a,b\n1,2\n"


# (id, what replaces line 3 of a finished checkpoint's 9 lines, or is appended after them)
DAMAGED_LINES = [
    ("JSON nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
    ("object nested 2,000 deep", b'{"a":' * 2_000 + b"1" + b"}" * 2_000),
    ("a line of 3 MB", b'{"n_components": 1, "pad": "' + b"x" * 3 * 2**20 + b'"}'),
    ("a row without its columns", b'{"n_components": 1, "covariance_type": "full"}'),
]


@pytest.mark.parametrize("line", [c[1] for c in DAMAGED_LINES], ids=[c[0] for c in DAMAGED_LINES])
def test_a_damaged_line_is_a_clear_error_or_a_redone_last_fit(tmp_path, data, reference, line):
    """Deep nesting and huge lines are damaged lines, never RecursionError or unbounded reads."""
    path = tmp_path / "sweep.jsonl"
    sweep(data, checkpoint=path, **GRID)
    lines = lines_of(path)
    damaged = b"\n".join([*lines[:2], line, *lines[3:]])
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError, match="damaged: line 3 is not a finished fit"):
        sweep(data, checkpoint=path, **GRID)
    assert path.read_bytes() == damaged
    # The same line last (an interrupted append) is dropped and its fit redone.
    path.write_bytes(b"\n".join(lines[:-2]) + b"\n" + line + b"\n")
    result = sweep(data, checkpoint=path, **GRID)
    assert without_seconds(result.table) == without_seconds(reference.table)


def test_a_huge_file_of_one_line_is_not_read_whole(tmp_path, data):
    """A 64 MB file without a newline is refused after reading at most ~1 MB of it."""
    import tracemalloc

    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as file:
        file.truncate(64 * 2**20)  # 64 MB of zero bytes, no newline
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="not a gmm sweep checkpoint"):
            sweep(data, checkpoint=path, **GRID)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak
    assert os.path.getsize(path) == 64 * 2**20


KILLED_SWEEP = textwrap.dedent(
    """
    import sys
    from sklearn.datasets import make_moons
    from gmm import sweep

    X, _ = make_moons(200, noise=0.05, random_state=0)
    sweep(X, range(1, 13), "all", checkpoint=sys.argv[1], progress=False)
    """
)


def test_sweep_killed_with_sigkill_resumes_to_the_same_table(tmp_path, moons):
    path = tmp_path / "sweep.jsonl"
    process = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, str(path)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if path.exists() and len(lines_of(path)) >= 3:  # header and one finished fit
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    finished = [line for line in lines_of(path)[1:] if line.endswith(b"}")]
    assert process.returncode == -signal.SIGKILL, "the sweep ended before it was killed"
    assert 1 <= len(finished) < 48
    resumed = sweep(moons, range(1, 13), "all", checkpoint=path, progress=False)
    uninterrupted = sweep(moons, range(1, 13), "all", progress=False)
    assert without_seconds(resumed.table) == without_seconds(uninterrupted.table)
    assert resumed.best_params_ == uninterrupted.best_params_
