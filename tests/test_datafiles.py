"""gmm.datafiles: reading DATA files and .npy headers.

References: numpy's own np.load and np.save (the header must describe what
np.load returns). The CSV and .npy refusals are also tested through the
command line in test_cli.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.lib import format as npy_format

from gmm.datafiles import DataFileError, NpyVersionError, read_data, read_npy_header


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
    with pytest.raises(DataFileError, match=r"row 0, column 1 is NaN.*--nan-policy"):
        read_data(str(npy))
