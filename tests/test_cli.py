"""The gmm command line, end to end through ``python -m gmm`` and in process.

References: the Python API on the same data (gmm.sweep, GaussianMixture), whose
agreement with scikit-learn is tested elsewhere; printed numbers must read back
to exactly the API's values.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from gmm import GaussianMixture, GaussianMixtureIC, load, save, sweep
from gmm.cli import main, read_data


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "gmm", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def call(capsys, *args):
    """Run ``main`` in this process; return (status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def parse(text):
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines()])


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(150, centers=[[0, 0], [6, 0], [0, 6]], random_state=2)
    return X


@pytest.fixture
def files(tmp_path, X):
    np.savetxt(tmp_path / "data.csv", X, delimiter=",", header="a,b", comments="", fmt="%.17g")
    np.save(tmp_path / "data.npy", X)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    (tmp_path / "nan.csv").write_text("a,b\n1,2\nnan,4\n")
    (tmp_path / "ragged.csv").write_text("1,2\n3,4,5\n")
    (tmp_path / "three.csv").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "other_names.csv").write_text("x,y\n1,2\n3,4\n")
    return tmp_path


@pytest.fixture
def model_file(files, X):
    import pandas as pd

    model = GaussianMixture(3, covariance_type="full", random_state=0)
    model.fit(pd.DataFrame(X, columns=["a", "b"]))
    save(model, files / "model.npz")
    return files / "model.npz", model


def start(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "gmm", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process):
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


# ============================================================== end to end
def test_end_to_end_through_python_m_gmm(files, X):
    result = run(
        "sweep", "data.csv", "--k", "1:4", "--covariance", "full,diag", "--criterion", "bic",
        "--jobs", "1", "--checkpoint", "sweep.jsonl", "--out", "model.npz",
        "--table", "table.csv", "--plot", "bic.png", cwd=files,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reference = sweep(X, range(1, 5), ["full", "diag"], progress=False)
    best = reference.best_params_
    assert f"K={best['n_components']}, covariance={best['covariance_type']}" in result.stdout
    with open(files / "table.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [float(r["bic"]) for r in rows] == [r["bic"] for r in reference.table]
    assert (files / "bic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((files / "sweep.jsonl").read_text().splitlines()) == 1 + len(reference.table)
    model = load(files / "model.npz")
    assert isinstance(model, GaussianMixtureIC)
    assert list(model.feature_names_in_) == ["a", "b"]

    # The commands that read the model run at once: each pays the interpreter start-up.
    processes = {
        "predict": start("predict", "model.npz", "data.csv", cwd=files),
        "score": start("score", "model.npz", "data.csv", cwd=files),
        "sample": start("sample", "model.npz", "-n", "7", "--seed", "0", cwd=files),
        "info": start("info", "model.npz", cwd=files),
    }
    out = {}
    for name, process in processes.items():
        status, out[name], err = finish(process)
        assert status == 0 and err == "", (name, err)
    best_model = reference.best_estimator_
    labels = np.array(out["predict"].split(), dtype=int)
    assert np.array_equal(labels, best_model.predict(X))
    assert float(out["score"]) == best_model.score(X)
    lines = out["sample"].splitlines()
    assert lines[0] == "a,b"
    expected, _ = best_model.sample(7, random_state=0)
    assert np.array_equal(parse("\n".join(lines[1:])), expected)
    assert "GaussianMixtureIC" in out["info"] and "criterion" in out["info"]


def test_errors_are_one_line_without_traceback(files, model_file):
    cases = {
        "missing file": (["predict", "model.npz", "missing.csv"], "no such file"),
        "non-numeric cell": (["predict", "model.npz", "bad.csv"], "'x' is not a number"),
        "NaN": (["score", "model.npz", "nan.csv"], "not a finite number"),
        "ragged CSV": (["predict", "model.npz", "ragged.csv"], "line 2 has 3 fields"),
        "model and data mismatch": (["predict", "model.npz", "three.csv"], "3 columns"),
    }
    processes = {name: start(*args, cwd=files) for name, (args, _) in cases.items()}
    for name, process in processes.items():
        status, _, err = finish(process)
        assert status != 0, name
        assert "Traceback" not in err, name
        assert len(err.strip().splitlines()) == 1, (name, err)
        assert err.startswith("gmm: error: ") and cases[name][1] in err, (name, err)


def test_console_script_is_installed(files):
    script = shutil.which("gmm")
    if script is None:
        pytest.skip("the gmm console script is not on PATH (package not installed)")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("gmm ")


# =============================================================== in process
@pytest.mark.parametrize("command", [None, "sweep", "fit", "predict", "score", "sample", "info"])
def test_help_shows_an_example(capsys, command):
    status, out, _ = call(capsys, *([command] if command else []), "--help")
    assert status == 0
    assert "example" in out and "gmm " in out.split("example")[1]


def test_no_command_prints_help(capsys):
    status, _, err = call(capsys)
    assert status == 2 and "usage" in err


def test_predict_proba_in_process(capsys, model_file, files, X):
    path, model = model_file
    import pandas as pd

    status, out, _ = call(capsys, "predict", path, files / "data.npy", "--proba")
    assert status == 0
    expected = model.predict_proba(pd.DataFrame(X, columns=["a", "b"]))
    assert np.array_equal(parse(out), expected)


def test_fit_predict_score_in_process(capsys, files, X):
    status, out, _ = call(capsys, "fit", files / "data.npy", "--k", "3", "--out", files / "m.npz")
    assert status == 0 and "converged" in out
    direct = GaussianMixture(3, random_state=0).fit(X)
    assert f"bic: {direct.bic(X):.10g}" in out
    status, out, _ = call(capsys, "score", files / "m.npz", files / "data.npy", "--samples")
    assert status == 0
    assert np.array_equal(parse(out)[:, 0], direct.score_samples(X))


def test_sample_with_labels(capsys, model_file):
    path, model = model_file
    status, out, _ = call(capsys, "sample", path, "-n", "4", "--seed", "1", "--labels")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "a,b,component"
    values = parse("\n".join(lines[1:]))
    draws, components = model.sample(4, random_state=1)
    assert np.array_equal(values[:, :2], draws) and np.array_equal(values[:, 2], components)


@pytest.mark.parametrize(
    "args, status, match",
    [
        (["predict", "model.npz", "bad.csv"], 1, "bad.csv: line 3, column 2: 'x' is not"),
        (["info", "nothing.npz"], 1, "no such file: 'nothing.npz'"),
        (["predict", "data.csv", "data.csv"], 1, "data.csv: not a gmm model file"),
        (["predict", "model.npz", "other_names.csv"], 1, "do not match the model's features"),
        (["info", "tampered.npz"], 1, "weights_ sum to"),
        (["fit", "data.csv", "--k", "500"], 1, "n_samples >= n_components"),
        (["sweep", "data.csv", "--k", "0:3"], 2, "K must be >= 1"),
        (["sweep", "data.csv", "--k", "1-3"], 2, "expected K like 5, 1:20"),
        (["sweep", "data.csv", "--covariance", "round"], 2, "Unknown covariance_type"),
        (["fit", "data.csv", "--k", "2", "--colour", "red"], 2, "unrecognized arguments"),
        (["fit", "data.csv"], 2, "required: --k"),
    ],
)
def test_errors_in_process_are_one_line(
    capsys, monkeypatch, files, model_file, args, status, match
):
    from tests.test_persistence import read_members, write_members

    save(model_file[1], files / "tampered.npz")  # then tampered: save refuses such weights
    metadata, members = read_members(files / "tampered.npz")
    members["model.weights_"] = members["model.weights_"] * 0.5
    write_members(files / "tampered.npz", metadata, members)
    monkeypatch.chdir(files)
    code, out, err = call(capsys, *args)
    assert code == status and out == ""
    assert err.count("\n") == 1 and err.startswith("gmm: error: ") and match in err


# ===================================================================== data
@pytest.mark.parametrize("delimiter", [",", ";", "\t", " "])
@pytest.mark.parametrize("header", [True, False])
def test_csv_delimiter_sniffed_and_header_detected(tmp_path, X, delimiter, header):
    path = tmp_path / "data.txt"
    buffer = io.StringIO()
    if header:
        buffer.write(delimiter.join(["first", "second"]) + "\n")
    np.savetxt(buffer, X, delimiter=delimiter, fmt="%.17g")
    path.write_text(buffer.getvalue())
    data, names = read_data(str(path))
    assert np.array_equal(data, X)
    assert names == (["first", "second"] if header else None)


def test_single_column_csv(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("value\n1.5\n2.5\n-3\n")
    data, names = read_data(str(path))
    assert names == ["value"] and data.tolist() == [[1.5], [2.5], [-3.0]]


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "the file is empty"),
        ("a,b\n", "no data rows"),
        ("a,a\n1,2\n", "duplicate column names"),
        ("1,2\n3,\n", "an empty cell is not a number"),
        ("1,2\n3,inf\n", "not a finite number"),
    ],
)
def test_bad_csv_is_refused(tmp_path, content, match):
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(Exception, match=match):
        read_data(str(path))


def test_bad_npy_is_refused(tmp_path):
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(Exception, match="expected a 2-D array"):
        read_data(str(tmp_path / "flat.npy"))
    np.save(tmp_path / "objects.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(Exception, match="holds Python objects"):
        read_data(str(tmp_path / "objects.npy"))
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(Exception, match="row 0, column 1 is NaN"):
        read_data(str(tmp_path / "nan.npy"))
