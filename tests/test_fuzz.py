"""Damaged model and data files: a clear error every time, never a crash, a hang,
a memory blow-up or code execution.

A bounded run of the fuzzer in ``tests/fuzzing.py`` (the long run is
``python -m tests.fuzzing --seconds 600``), then the cases that matter most
done exhaustively: truncations (every length through the zip directory), a
declared 10¹² shape in every member, and a pickle payload in every member and
as a data file. Damaged files are made with zipfile and numpy.lib.format
directly, not with the code under test.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tracemalloc
import zipfile
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from numpy.lib import format as npy_format

from gmm import GaussianMixture, ModelFileError, load, save
from gmm.cli import main

from . import fuzzing as fuzz


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    X = np.random.default_rng(0).normal(size=(50, 3))
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    save(GaussianMixture(2, covariance_type="diag", random_state=0).fit(X), path)
    return path


def members_of(path):
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members:
            archive.writestr(name, content)


def declaring(content: bytes, shape) -> bytes:
    """The .npy member ``content`` with its header declaring ``shape`` (data unchanged)."""
    stream = io.BytesIO(content)
    npy_format.read_magic(stream)
    _, fortran, dtype = npy_format.read_array_header_1_0(stream)
    header = io.BytesIO()
    npy_format.write_array_header_2_0(
        header,
        {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": fortran, "shape": shape},
    )
    return header.getvalue() + content[stream.tell() :]


def call(argv):
    """``gmm.cli.main`` in process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exit:
            status = exit.code
    return status, out.getvalue(), err.getvalue()


# ======================================================== bounded fuzz run
@pytest.mark.timeout(300)
def test_bounded_fuzz_run_has_no_failure(tmp_path):
    report = fuzz.run(iterations=700, seed=0, out=tmp_path)
    assert report.failures == [], report.summary()
    assert report.cases == 700
    outcomes = {}
    for (target, _, outcome), count in report.outcomes.items():
        outcomes.setdefault(target, {}).setdefault(outcome, 0)
        outcomes[target][outcome] += count
    # The oracle saw both answers, so neither the damage nor the checks are vacuous.
    assert outcomes["load"]["refused"] > 0 and outcomes["load"]["loaded"] > 0
    assert outcomes["data"]["refused"] > 0 and outcomes["data"]["read"] > 0
    assert outcomes["cli"]["exit 1"] > 0 and outcomes["cli"]["exit 0"] > 0
    damages = {damage for target, damage, _ in report.outcomes if target == "load"}
    assert {"pickle payload", "npy header", "metadata JSON", "truncation"} <= damages


class _Planned(fuzz.Fuzzer):
    """A fuzzer whose every case is ``planned`` (no seeds needed)."""

    def __init__(self, folder, planned):
        self.folder = folder
        self.sentinel = str(folder / "code-ran")
        self.planned = planned

    def case(self):
        return "load", "planned", self.planned, b"", ".npz"


def test_fuzz_harness_reports_each_kind_of_failure(tmp_path, monkeypatch):
    """The harness must flag what it exists to find; otherwise a clean run means nothing."""
    import time

    monkeypatch.setattr(fuzz, "CALL_SECONDS", 0.2)

    def crash():
        raise KeyError("boom")

    def garbage():
        raise AssertionError("not normalised")

    def hang():
        time.sleep(5)

    def code_execution():
        os.mkdir(tmp_path / "code-ran")
        return "loaded"

    report = fuzz.Report()
    for planned in (crash, garbage, hang, code_execution, lambda: "refused"):
        _Planned(tmp_path, planned).run_one(report, tmp_path / "saved")
    assert [outcome for (_, _, outcome) in report.outcomes] == [
        "crash",
        "garbage",
        "hang",
        "code execution",
        "refused",
    ]
    assert len(report.failures) == 4
    assert all(os.path.exists(failure.saved) for failure in report.failures)


# ======================================================== truncation
def test_every_truncation_of_a_model_file_is_refused(tmp_path, model_file):
    data = model_file.read_bytes()
    path = tmp_path / "cut.npz"
    # Every length through the zip directory at the end, every 5th before it.
    lengths = sorted(set(range(0, len(data) - 400, 5)) | set(range(len(data) - 400, len(data))))
    for length in lengths:
        path.write_bytes(data[:length])
        with pytest.raises(ModelFileError, match=r"not a gmm model file|damaged|missing"):
            load(path)


# ============================================ exhaustive: declared shapes
@pytest.mark.parametrize("shape", [(10**12,), (10**6, 10**6), (2**62, 4)])
def test_huge_declared_shape_in_any_member_is_refused_before_allocation(
    tmp_path, model_file, shape
):
    members = members_of(model_file)
    for index, (name, content) in enumerate(members):
        damaged = list(members)
        damaged[index] = (name, declaring(content, shape))
        path = tmp_path / f"{index}.npz"
        write_zip(path, damaged)
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError, match=r"declares shape|has shape|must be a 1-D"):
                load(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 10 * 2**20, (name, peak)
        status, out, err = call(["info", path])
        assert status == 1 and out == "" and err.count("\n") == 1, (name, err)


def test_huge_declared_shape_in_a_data_file_is_refused_before_allocation(tmp_path, model_file):
    buffer = io.BytesIO()
    np.save(buffer, np.ones((4, 3)))
    path = tmp_path / "huge.npy"
    path.write_bytes(declaring(buffer.getvalue(), (10**12, 3)))
    tracemalloc.start()
    try:
        status, out, err = call(["predict", model_file, path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 1 and out == ""
    assert "declares shape (1000000000000, 3)" in err and err.count("\n") == 1
    assert peak < 10 * 2**20


# ============================================== exhaustive: code execution
def test_pickle_payload_in_any_member_never_runs(tmp_path, model_file):
    sentinel = tmp_path / "code-ran"
    payload = fuzz.planted_npy(str(sentinel))
    members = members_of(model_file)
    for index, (name, _) in enumerate(members):
        damaged = list(members)
        damaged[index] = (name, payload)
        path = tmp_path / f"{index}.npz"
        write_zip(path, damaged)
        with pytest.raises(ModelFileError, match=r"holds Python objects|has dtype object"):
            load(path)
        status, _, err = call(["sample", path])
        assert status == 1 and err.startswith("gmm: error: ")
    assert not sentinel.exists()
    # The payload is live: unpickling it does create the folder.
    np.load(io.BytesIO(payload), allow_pickle=True)
    assert sentinel.exists()


def test_pickled_model_and_pickle_data_never_run(tmp_path, model_file):
    sentinel = tmp_path / "code-ran"
    pickled = tmp_path / "model.npz"
    pickled.write_bytes(pickle.dumps(fuzz.Planted(str(sentinel))))
    with pytest.raises(ModelFileError, match=r"not a \.npz archive"):
        load(pickled)
    data = tmp_path / "data.npy"
    data.write_bytes(fuzz.planted_npy(str(sentinel), (5, 3)))
    status, out, err = call(["predict", model_file, data])
    assert status == 1 and out == "" and "holds Python objects" in err
    assert not sentinel.exists()


# ========================================================== real processes
def test_the_gmm_process_answers_damaged_files_with_one_line(tmp_path, model_file):
    """Through ``python -m gmm``: exit status 1, one line, no traceback, within a timeout."""
    data = bytearray(model_file.read_bytes())
    data[data.index(b'"format"') + 3] ^= 0x10
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 8)
    commands = [
        ["info", "flipped.npz"],
        ["predict", str(model_file), "garbage.csv"],
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gmm", *argv],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in commands
    ]
    for argv, process in zip(commands, processes, strict=True):
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 1, (argv, err)
        assert out == "" and err.count("\n") == 1 and err.startswith("gmm: error: "), err


# ======================================================== writers
@pytest.mark.timeout(300)
def test_bounded_writer_fuzz_run_has_no_failure(tmp_path):
    """Random existing paths under every writer: refused with nothing changed, or written
    through the links (``python -m tests.fuzzing --target writers`` for a long run)."""
    report = fuzz.run(iterations=150, seed=0, out=tmp_path, target="writers")
    assert report.failures == [], report.summary()
    outcomes = {outcome for (_, _, outcome) in report.outcomes}
    assert {"written", "refused"} <= outcomes
    leaves = {leaf for (_, leaf, _) in report.outcomes}
    assert {"FIFO", "socket", "folder", "read-only file", "link loop", "nothing"} <= leaves


def test_the_writer_oracle_flags_a_writer_that_replaces_whatever_is_there(tmp_path, monkeypatch):
    """With the path checks switched off (the behaviour before issue 17), the harness fails."""
    import gmm.checkpoint
    import gmm.selection.search
    import gmm.writing

    def no_check(path):
        return os.path.abspath(os.fspath(path))

    for module in (gmm.writing, gmm.checkpoint, gmm.selection.search):
        monkeypatch.setattr(module, "check_output_path", no_check)
    monkeypatch.setattr(fuzz, "CALL_SECONDS", 0.5)  # a FIFO opened for writing hangs
    report = fuzz.run(iterations=20, seed=0, out=None, target="writers")
    problems = " ".join(failure.problem for failure in report.failures)
    assert "a write changed" in problems, report.summary()
