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
