"""The gmm command line, end to end through ``python -m gmm`` and in process.

References: the Python API on the same data (gmm.sweep, GaussianMixture), whose
agreement with scikit-learn is tested elsewhere; printed numbers must read back
to exactly the API's values.
"""

from __future__ import annotations

import csv
import io
import os
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
    # Another process: BLAS kernels may round the last bit differently with the
    # heap's alignment (measured: 1 ulp of the log-likelihood, diag K=2), so to rounding.
    np.testing.assert_allclose(
        [float(r["bic"]) for r in rows], [r["bic"] for r in reference.table], rtol=1e-13
    )
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
        (
            ["fit", "nan.csv", "--k", "1", "--online", "--nan-policy", "omit"],
            1,
            "not with --online",
        ),
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


# ================================================= outputs (issue 17, class 4)
SWEEP_ARGS = ("sweep", "data.csv", "--k", "1:3", "--covariance", "diag")


def test_an_output_that_fails_at_the_end_does_not_lose_the_others(files, X, capsys, monkeypatch):
    """The table's folder vanishes during the fits: the model and the plot are still written."""
    import gmm.selection

    (files / "sub").mkdir()
    real_sweep = gmm.selection.sweep

    def sweep_then_remove_folder(*args, **kwargs):
        result = real_sweep(*args, **kwargs)
        shutil.rmtree(files / "sub")
        return result

    monkeypatch.setattr(gmm.selection, "sweep", sweep_then_remove_folder)
    monkeypatch.chdir(files)
    status, _, err = call(
        capsys, *SWEEP_ARGS, "--out", "keep.npz", "--table", "sub/t.csv", "--plot", "bic.png"
    )
    assert status == 1 and err.count("\n") == 1, err
    assert err.startswith("gmm: error: not written: --table 'sub/t.csv' (cannot write")
    assert "does not exist" in err and "the other 2 output(s) were written" in err
    assert ".tmp" not in err
    reference = sweep(X, range(1, 4), ["diag"], progress=False).best_estimator_
    kept = load(files / "keep.npz")
    assert list(kept.feature_names_in_) == ["a", "b"]
    assert np.array_equal(kept.best_estimator_.predict_proba(X), reference.predict_proba(X))
    assert (files / "bic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (files / "sub").exists()


def test_a_full_disk_names_the_users_file_and_leaves_no_temporary(files, capsys, monkeypatch):
    import errno

    import gmm.selection.table as table
    from gmm.writing import write_atomically

    def full_disk(path, write):
        def write_then_fail(file):
            write(file)
            raise OSError(errno.ENOSPC, "No space left on device")

        write_atomically(path, write_then_fail)

    monkeypatch.setattr(table, "write_atomically", full_disk)
    monkeypatch.chdir(files)
    (files / "t.csv").write_text("old table\n")
    status, _, err = call(capsys, *SWEEP_ARGS, "--table", "t.csv", "--out", "keep.npz")
    assert status == 1, err
    assert err == (
        "gmm: error: not written: --table 't.csv' (No space left on device: 't.csv'); "
        "the other 1 output(s) were written\n"
    )
    assert (files / "t.csv").read_text() == "old table\n"
    assert load(files / "keep.npz").n_features_in_ == 2
    assert not [p for p in os.listdir(files) if p.endswith(".tmp")]


@pytest.mark.parametrize(
    "outputs, words",
    [
        (["--plot", "bic.xyz"], "ends in .xyz, which is not an image format"),
        (["--table", "missing/t.csv"], "--table: cannot write 'missing/t.csv'"),
        (["--checkpoint", "."], "--checkpoint: cannot write '.': it is a folder"),
        (["--out", "m.npz", "--plot", "m.npz"], "--out and --plot name the same file"),
        (["--out", "data.csv"], "--out 'data.csv' is the DATA file"),
    ],
)
def test_outputs_are_checked_before_data_is_read_or_anything_fits(
    files, capsys, monkeypatch, outputs, words
):
    import gmm.cli
    import gmm.selection

    def no(*args, **kwargs):
        raise AssertionError("reached work that a bad output path should have prevented")

    monkeypatch.setattr(gmm.selection, "sweep", no)
    monkeypatch.setattr(gmm.cli, "read_data", no)
    monkeypatch.chdir(files)
    before = {p: p.read_bytes() for p in files.iterdir() if p.is_file()}
    status, out, err = call(capsys, *SWEEP_ARGS, *outputs)
    assert status == 1 and out == "" and err.count("\n") == 1 and words in err, err
    assert {p: p.read_bytes() for p in files.iterdir() if p.is_file()} == before


# ============================================ rows in errors (issue 17, class 9)
def test_an_error_naming_a_row_gives_the_line_of_the_csv(files, capsys, monkeypatch):
    """Rows count from 0 in the API; the CLI adds the 1-based line of DATA, header and
    blank lines counted."""
    from gmm.em import OutOfRangeError

    def far(self, X):
        error = OutOfRangeError("Row 2 lies so far from every component ...")
        error.row = 2
        raise error

    (files / "holes.csv").write_text("a,b\n\n1,2\n3,4\n\n5,6\n")
    model_path = files / "m.npz"
    save(GaussianMixture(1).fit(np.array([[0.0, 0], [1, 1], [2, 0]])), model_path)
    monkeypatch.setattr(GaussianMixture, "predict", far)
    status, _, err = call(capsys, "predict", model_path, files / "holes.csv")
    assert status == 1
    # Data rows 0, 1, 2 are the lines 3, 4 and 6 of the file.
    assert err.endswith(f"(rows count from 0: that is line 6 of {files / 'holes.csv'})\n"), err
    np.save(files / "d.npy", np.ones((4, 2)))
    status, _, err = call(capsys, "predict", model_path, files / "d.npy")
    assert err.endswith(f"(rows count from 0: row 2 of the array in {files / 'd.npy'})\n"), err


def test_plot_without_matplotlib_is_refused_before_any_fit(files, capsys, monkeypatch):
    import gmm.selection

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import raises ImportError
    monkeypatch.setattr(gmm.selection, "sweep", lambda *a, **k: pytest.fail("a fit ran"))
    monkeypatch.chdir(files)
    status, out, err = call(capsys, *SWEEP_ARGS, "--plot", "bic.png", "--out", "m.npz")
    assert (status, out) == (1, "")
    assert err == 'gmm: error: --plot needs matplotlib: pip install "gmm[plot]"\n'
    assert not (files / "m.npz").exists()


def test_draws_beyond_memory_are_refused_naming_the_most_that_fit(files, capsys, model_file):
    status, _, err = call(capsys, "impute", model_file[0], files / "data.csv", "--draws", 10**15)
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("gmm: error: --draws 1000000000000000 needs about ")
    assert "of memory is available; the most that fits is " in err


def test_header_flag_says_what_the_first_line_is(files, capsys):
    """A first line that mixes text and numbers is refused naming line 1 and the flag;
    --header takes it as column names, --no-header as data (its text cell then
    named as not a number); a numeric first line is data unless --header says not."""
    model_path = files / "m.npz"
    save(GaussianMixture(1).fit(np.array([[0.0, 0], [1, 1], [2, 0]])), model_path)
    mixed = files / "mixed.csv"
    mixed.write_text("x1,2\n1,2\n3,4\n5,6\n")
    status, out, err = call(capsys, "score", model_path, mixed)
    assert (status, out) == (1, "") and "line 1" in err and "header" in err, err
    status, out, err = call(capsys, "score", model_path, mixed, "--header")
    assert status == 0, err
    expected = GaussianMixture(1).fit(np.array([[0.0, 0], [1, 1], [2, 0]]))
    assert float(out) == pytest.approx(expected.score(np.array([[1.0, 2], [3, 4], [5, 6]])))
    status, out, err = call(capsys, "score", model_path, mixed, "--no-header")
    assert (status, out) == (1, "") and "x1" in err, err
    numbers = files / "numbers.csv"
    numbers.write_text("1,2\n3,4\n5,6\n")
    status, out, _ = call(capsys, "score", model_path, numbers)
    assert status == 0
    assert float(out) == pytest.approx(expected.score(np.array([[1.0, 2], [3, 4], [5, 6]])))
    status, out, _ = call(capsys, "score", model_path, numbers, "--header")
    assert status == 0
    assert float(out) == pytest.approx(expected.score(np.array([[3.0, 4], [5, 6]])))


def test_sweep_mclust_is_gmm_sweep_mclust(capsys, files, X):
    # 'mclust' reaches the sweep as the word: mclust's defaults (hc start, relative
    # rule, no reg_covar) and, on one feature, the models 'E' and 'V'.
    status, _, _ = call(
        capsys,
        "sweep",
        files / "data.npy",
        "--k",
        "1:3",
        "--covariance",
        "mclust",
        "--table",
        files / "table.csv",
    )
    assert status == 0
    direct = sweep(X, range(1, 4), covariance_types="mclust", progress=False)
    with open(files / "table.csv") as handle:
        rows = {(int(r["n_components"]), r["covariance_type"]): r for r in csv.DictReader(handle)}
    assert len(rows) == len(direct.table) == 3 * 14
    for row in direct.table:
        theirs = rows[row["n_components"], row["covariance_type"]]
        if row["bic"] is None:
            assert theirs["bic"] == ""
        else:
            assert float(theirs["bic"]) == pytest.approx(row["bic"], rel=1e-12)
    np.save(files / "one.npy", X[:, :1])
    status, out, _ = call(
        capsys, "sweep", files / "one.npy", "--k", "1:2", "--covariance", "mclust"
    )
    assert status == 0
    best = sweep(X[:, :1], range(1, 3), covariance_types="mclust", progress=False).best_params_
    assert f"covariance={best['covariance_type']}" in out and best["covariance_type"] in "EV"


def test_fit_options_left_out_keep_the_estimators_defaults(capsys, files, X):
    status, _, _ = call(capsys, "fit", files / "data.npy", "--k", "2", "--out", files / "d.npz")
    assert status == 0
    model = load(files / "d.npz")
    defaults = GaussianMixture().get_params()
    for name in ("max_iter", "tol", "reg_covar", "init_params"):
        assert model.get_params()[name] == defaults[name]
