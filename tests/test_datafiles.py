"""gmm.datafiles: reading DATA files and .npy headers.

References: numpy's own np.load and np.save (the header must describe what
np.load returns). The CSV and .npy refusals are also tested through the
command line in test_cli.py.
"""

from __future__ import annotations

import io
import os
import tracemalloc

import numpy as np
import pytest
from numpy.lib import format as npy_format

from gmm.datafiles import DataFileError, NpyVersionError, read_data, read_npy_header
from gmm.scale import read_parts


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_npy_header_describes_what_np_load_returns(version, dtype):
    array = np.arange(12, dtype=dtype).reshape(4, 3)
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, version=version)
    buffer.seek(0)
    shape, fortran, found = read_npy_header(buffer)
    data_starts = buffer.tell()
    buffer.seek(0)
    loaded = np.load(buffer)
    assert (shape, fortran, found) == (loaded.shape, False, loaded.dtype)
    assert len(buffer.getvalue()) - data_starts == loaded.nbytes


def test_unknown_npy_version_is_named():
    buffer = io.BytesIO(npy_format.magic(9, 0) + b"\x00" * 16)
    with pytest.raises(NpyVersionError, match=r"\(9, 0\)"):
        read_npy_header(buffer)


def test_read_data_refuses_with_a_value_error(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2\n3,x\n")
    with pytest.raises(DataFileError, match="line 2, column 2: 'x' is not a number"):
        read_data(str(path))
    assert issubclass(DataFileError, ValueError)


def test_npy_is_read_as_np_load_reads_it(tmp_path):
    X = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    data, names = read_data(str(tmp_path / "X.npy"))
    assert names is None and data.dtype == np.float32
    assert np.array_equal(data, np.load(tmp_path / "X.npy"))


def test_missing_cells_are_nan_only_when_allowed(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("a,b,c\n1,,3\nNA,2,?\nnan,N/A,null\n4,5,6\n")
    X, names = read_data(str(path), allow_missing=True)
    assert names == ["a", "b", "c"]
    expected = np.array(
        [[1, np.nan, 3], [np.nan, 2, np.nan], [np.nan, np.nan, np.nan], [4, 5, 6]], dtype=float
    )
    np.testing.assert_array_equal(X, expected)  # NaN compare equal here
    with pytest.raises(DataFileError, match=r"line 2, column 2: an empty cell.*--nan-policy"):
        read_data(str(path))
    path.write_text("1,inf\n2,3\n")
    with pytest.raises(DataFileError, match="line 1, column 2: 'inf' is not a finite"):
        read_data(str(path), allow_missing=True)
    npy = tmp_path / "holes.npy"
    np.save(npy, expected)
    np.testing.assert_array_equal(read_data(str(npy), allow_missing=True)[0], expected)
    with pytest.raises(
        DataFileError,
        match=r"row 0, column 1 is NaN or infinite \(counted from 0: X\[0, 1\]\).*--nan-pol",
    ):
        read_data(str(npy))


# ------------------------------------------------------------ CSV (issue 17, class 9)
# Lines count from 1 as editors do, blank lines included; columns from 1.
#: name -> (file text, read_data keywords, expected (X, names) or (error message))
CSV_CASES = {
    "header of text": ("a,b\n1,2\n", {}, ([[1, 2]], ["a", "b"])),
    "no header": ("1,2\n3,4\n", {}, ([[1, 2], [3, 4]], None)),
    "typo in the first row of a headerless file": (
        "1,2x\n3,4\n",
        {},
        r"line 1 mixes numbers and text \(1, 2x\).*header=True \(--header\).*header=False",
    ),
    "a header with a number for a name": ("a,1\n1,2\n", {}, "line 1 mixes numbers and text"),
    "the typo after blank lines": ("\n\n1,x\n3,4\n", {}, "line 3 mixes numbers and text"),
    "header=True takes number-like names": ("1,2\n3,4\n", {"header": True}, ([[3, 4]], ["1", "2"])),
    "header=True with the mixed line": ("a,1\n3,4\n", {"header": True}, ([[3, 4]], ["a", "1"])),
    "header=False refuses text in line 1": (
        "1,2x\n3,4\n",
        {"header": False},
        r"line 1, column 2: '2x' is not a number \(ASCII decimal",
    ),
    "missing cells in a headerless first row": (
        "NA,1\n2,3\n",
        {"allow_missing": True},
        ([[np.nan, 1], [2, 3]], None),
    ),
    "digit separator": ("a,b\n1_000,2\n", {}, r"line 2, column 1: '1_000' is not a number"),
    "digit separator in the first row": ("1_000,2\n3,4\n", {}, "line 1 mixes numbers and text"),
    "Arabic-Indic digits": ("a,b\n1,\u0661\u0662\n", {}, "line 2, column 2: '\u0661\u0662' is not"),
    "full-width digit": ("a,b\n\uff11,2\n", {}, "line 2, column 1: '\uff11' is not a number"),
    "hexadecimal": ("a,b\n0x1F,2\n", {}, "line 2, column 1: '0x1F' is not a number"),
    "ASCII notations": (
        "a,b,c\n-1.5e3, .5,7.\n+2,1E-2 ,  3\n",
        {},
        ([[-1500, 0.5, 7], [2, 0.01, 3]], ["a", "b", "c"]),
    ),
    "non-ASCII names": (
        "hauteur,Gewicht,\u91cd\u3055\n1,2,3\n",
        {},
        ([[1, 2, 3]], ["hauteur", "Gewicht", "\u91cd\u3055"]),
    ),
    "blank lines count": ("a,b\n\n1,2\n\n3,x\n", {}, "line 5, column 2: 'x' is not a number"),
    "CRLF line ends": ("a,b\r\n1,2\r\n3,x\r\n", {}, "line 3, column 2: 'x'"),
    "byte order mark": ("\ufeffa;b\n1;2\n", {}, ([[1, 2]], ["a", "b"])),
    "quoted names": ('"a,1","b"\n1,2\n', {}, ([[1, 2]], ["a,1", "b"])),
    "ragged row": ("a,b\n1,2\n3,4,5\n", {}, "line 3 has 3 fields, expected 2"),
    "infinity": ("a,b\n1,2\n-inf,3\n", {}, "line 3, column 1: '-inf' is not a finite number"),
    "NaN without allow_missing": ("a,b\n1,nan\n", {}, "line 2, column 2: 'nan' is not a finite"),
    "empty cell": ("a,b\n1,\n", {}, "line 2, column 2: an empty cell is not a number"),
    "only a header": ("a,b\n\n", {}, "no data rows"),
    "empty file": ("\n  \n", {}, "the file is empty"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_is_read_as_written(tmp_path, case):
    text, keywords, expected = CSV_CASES[case]
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode("utf-8"))
    if isinstance(expected, str):
        with pytest.raises(DataFileError, match=expected):
            read_data(str(path), **keywords)
        return
    X, names = read_data(str(path), **keywords)
    assert names == expected[1]
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, np.array(expected[0], dtype=np.float64))


def test_csv_values_equal_numpy_s_reading(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 4)) * 10.0 ** np.arange(-150, 150, 75)
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=";", header="w;x;y;z", comments="", fmt="%.17g")
    got, names = read_data(str(path))
    assert names == ["w", "x", "y", "z"]
    np.testing.assert_array_equal(got, np.loadtxt(path, delimiter=";", skiprows=1))


def test_csv_reading_memory_is_about_the_result(tmp_path):
    """The values go into one array as they are read: no list of rows of strings."""
    X = np.random.default_rng(1).normal(size=(20_000, 5))
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c,d,e", comments="", fmt="%.17g")
    assert os.path.getsize(path) > 2e6
    tracemalloc.start()
    try:
        got, _ = read_data(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * X.nbytes  # 800 kB of result; reading it whole took about 30 MB
    np.testing.assert_array_equal(got, X)


def test_csv_parts_detect_their_header_by_the_same_rule(tmp_path):
    pytest.importorskip("dask")
    (tmp_path / "part-1.csv").write_text("a,b\n1,2\n")
    (tmp_path / "part-2.csv").write_text("3,4\n")
    np.testing.assert_array_equal(read_parts(tmp_path).compute(), [[1, 2], [3, 4]])
    (tmp_path / "part-2.csv").write_text("3,4x\n5,6\n")
    with pytest.raises(DataFileError, match=r"part-2\.csv: line 1 mixes numbers and text"):
        read_parts(tmp_path)


def test_a_line_of_delimiters_is_a_row_of_empty_cells_not_a_blank_line(tmp_path):
    # It was skipped as blank, so labels and line numbers no longer matched the rows.
    path = tmp_path / "holes.csv"
    path.write_text("1,2\n,\n3,4\n\n5,6\n")
    with pytest.raises(DataFileError, match="line 2, column 1: an empty cell"):
        read_data(str(path))
    X, _ = read_data(str(path), allow_missing=True)
    assert X.shape == (4, 2) and np.isnan(X[1]).all() and X[3].tolist() == [5.0, 6.0]
