"""Reading data files: a CSV file or a ``.npy`` array, checked, into memory.

:func:`read_data` is what the command line reads as DATA: a ``.npy`` array of
shape (n_samples, n_features), or a CSV file whose delimiter is sniffed and
whose first row, when it is not all numbers, is a header giving the feature
names. Every problem is a :class:`DataFileError` naming the file and, for CSV,
the line and column. :func:`read_npy_header` reads a ``.npy`` header without
the data; model files (:mod:`gmm.persistence`) use it too.
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import IO

import numpy as np
from numpy.lib import format as npy_format


class DataFileError(ValueError):
    """A data file is not numeric, finite, rectangular 2-D data; the message says where."""


class NpyVersionError(ValueError):
    """A ``.npy`` header of a format version numpy's reader does not know."""

    def __init__(self, version: tuple[int, int]):
        super().__init__(f"unknown .npy version {version}")
        self.version = version


def read_npy_header(file: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from the header of a ``.npy`` stream.

    Leaves ``file`` at the first byte of the data. Reads only the header (a few
    hundred bytes), so a header declaring a huge shape can be refused before
    anything is allocated.

    Raises
    ------
    NpyVersionError
        For a format version other than 1.0, 2.0 or 3.0.
    ValueError, SyntaxError, ...
        Whatever numpy's parser raises for a damaged header.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> buffer = io.BytesIO()
    >>> np.save(buffer, np.zeros((3, 2), dtype=np.float32))
    >>> _ = buffer.seek(0)
    >>> read_npy_header(buffer)
    ((3, 2), False, dtype('float32'))
    """
    version = npy_format.read_magic(file)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(file)
    if version in ((2, 0), (3, 0)):
        return npy_format.read_array_header_2_0(file)
    raise NpyVersionError(version)


#: CSV cells that mean "missing" when missing values are allowed (besides an empty cell).
MISSING_CELLS = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})


def read_data(path: str, allow_missing: bool = False) -> tuple[np.ndarray, list[str] | None]:
    """Read DATA: a ``.npy`` array or a CSV file.

    Parameters
    ----------
    path : str
    allow_missing : bool, default=False
        Read an empty CSV cell, ``NA``, ``NaN``, ``N/A``, ``null``, ``None`` or
        ``?`` (any case), and NaN in a ``.npy``, as NaN (a missing entry).
        Infinities stay an error.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        float64 (float32 stays float32 for ``.npy``).
    names : list of str or None
        The CSV header, when the first row is not all numbers.

    Raises
    ------
    DataFileError
        (a ValueError) For a file that is not numeric, finite, rectangular 2-D
        data; the message gives the line and column of the first bad cell.
    OSError
        If the file cannot be opened (no such file, a folder, ...).

    Notes
    -----
    The whole file is read into memory: O(file size) time and memory. For
    files larger than memory, pass ``np.load(path, mmap_mode='r')`` to the
    estimators instead.

    Examples
    --------
    >>> import os, tempfile
    >>> from gmm.datafiles import read_data
    >>> path = os.path.join(tempfile.mkdtemp(), "data.csv")
    >>> with open(path, "w") as file:
    ...     _ = file.write("height;weight\\n1.5;60\\n1.8;75\\n")
    >>> X, names = read_data(path)
    >>> X.tolist(), names
    ([[1.5, 60.0], [1.8, 75.0]], ['height', 'weight'])
    """
    if path.lower().endswith(".npy"):
        return _read_npy(path, allow_missing), None
    return _read_csv(path, allow_missing)


def _read_npy(path: str, allow_missing: bool = False) -> np.ndarray:
    _check_npy_size(path)
    try:
        X = np.load(path, allow_pickle=False)
    except OSError:
        raise  # no such file, a folder, ...: reported with the file name
    except Exception as error:  # numpy raises ValueError, EOFError, BadZipFile, TokenError...
        if "allow_pickle" in str(error):
            raise DataFileError(f"{path}: holds Python objects; DATA must be numbers") from None
        raise DataFileError(f"{path}: not a readable .npy file ({_message(error)})") from None
    if not isinstance(X, np.ndarray):  # an .npz archive
        X.close()
        raise DataFileError(f"{path}: DATA must be a numeric array, not an .npz archive")
    if X.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: DATA must be a numeric array")
    if X.ndim != 2:
        raise DataFileError(
            f"{path}: expected a 2-D array (n_samples, n_features), got shape {X.shape}"
            + ("; save X.reshape(-1, 1) for one feature" if X.ndim == 1 else "")
        )
    bad = (np.isinf(X) if allow_missing else ~np.isfinite(X)) if X.dtype.kind == "f" else None
    if bad is not None and bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataFileError(
            f"{path}: row {row}, column {column} is NaN or infinite; remove or impute "
            "missing values first"
            + ("" if allow_missing else " (or pass --nan-policy to treat NaN as missing)")
        )
    return X if X.dtype == np.float32 else X.astype(np.float64)


def _check_npy_size(path: str) -> None:
    """Refuse a header that declares more data than the file holds, before allocating.

    ``np.load`` allocates the declared shape first, so a 40-byte file declaring
    10¹² elements would otherwise ask for terabytes.
    """
    with open(path, "rb") as file:
        try:
            shape, _, dtype = read_npy_header(file)
        except Exception:  # numpy's header parser raises more than ValueError
            return  # not a valid header: np.load says why
        available = os.fstat(file.fileno()).st_size - file.tell()
    if dtype.hasobject:
        return  # np.load refuses it without unpickling
    declared = math.prod(shape) * dtype.itemsize
    if declared > available:
        raise DataFileError(
            f"{path}: the .npy header declares shape {shape} ({declared} bytes) but "
            f"the file holds only {available} bytes"
        )


def _read_csv(path: str, allow_missing: bool = False) -> tuple[np.ndarray, list[str] | None]:
    with open(path, encoding="utf-8-sig", newline="") as file:
        try:
            text = file.read()
        except UnicodeDecodeError:
            raise DataFileError(f"{path}: not a UTF-8 text file (CSV) or a .npy file") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataFileError(f"{path}: the file is empty")
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t| ")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","  # a single column has no delimiter to find
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, skipinitialspace=True)
    try:
        rows = list(reader)
    except csv.Error as error:
        raise DataFileError(f"{path}: not a readable CSV file ({error})") from None
    names = None
    first = [cell.strip() for cell in rows[0]]
    missing = MISSING_CELLS if allow_missing else frozenset()
    if not all(_is_number(cell) or cell.lower() in missing for cell in first):
        names = first
        rows = rows[1:]
        if len(set(names)) != len(names):
            raise DataFileError(f"{path}: the header has duplicate column names")
    if not rows:
        raise DataFileError(f"{path}: no data rows")
    width = len(first)
    X = np.empty((len(rows), width))
    offset = 2 if names is not None else 1
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DataFileError(
                f"{path}: line {i + offset} has {len(row)} fields, expected {width}"
            )
        for j, cell in enumerate(row):
            if cell.strip().lower() in missing:
                X[i, j] = np.nan
                continue
            try:
                value = float(cell)
            except ValueError:
                what = "an empty cell" if not cell.strip() else f"{cell.strip()!r}"
                raise DataFileError(
                    f"{path}: line {i + offset}, column {j + 1}: {what} is not a number"
                    + ("" if allow_missing else " (--nan-policy reads empty cells as missing)")
                ) from None
            if not math.isfinite(value):
                raise DataFileError(
                    f"{path}: line {i + offset}, column {j + 1}: {cell.strip()!r} is not a "
                    "finite number; remove or impute missing values first, or pass "
                    "--nan-policy to read empty cells and NA as missing"
                )
            X[i, j] = value
    return X, names


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _message(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
