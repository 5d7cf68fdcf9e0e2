"""Reading data files: a CSV file or a ``.npy`` array, checked, into memory.

:func:`read_data` is what the command line reads as DATA: a ``.npy`` array of
shape (n_samples, n_features), or a CSV file whose delimiter is sniffed and
whose first row, when it is not all numbers, is a header giving the feature
names. Every problem is a :class:`DataFileError` naming the file and, for CSV,
the line and column. :func:`read_npy_header` reads a ``.npy`` header without
the data; model files (:mod:`gmm.persistence`) use it too.
"""

from __future__ import annotations

import array
import csv
import math
import os
import re
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

#: A number as a CSV cell may write it: ASCII digits, an optional sign, decimal
#: point and exponent. Not ``1_000``, ``0x1F``, ``١٢`` or ``１`` (Python's float()
#: takes those).
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: Words float() reads as infinity or NaN: numbers, but never finite data.
NOT_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)

#: Lines whose cells are sniffed for the delimiter.
SNIFF_LINES = 50


def read_data(
    path: str, allow_missing: bool = False, header: bool | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """Read DATA: a ``.npy`` array or a CSV file.

    Parameters
    ----------
    path : str
    allow_missing : bool, default=False
        Read an empty CSV cell, ``NA``, ``NaN``, ``N/A``, ``null``, ``None`` or
        ``?`` (any case), and NaN in a ``.npy``, as NaN (a missing entry).
        Infinities stay an error.
    header : bool or None, default=None
        Whether the first non-blank line of a CSV file is a header of column
        names. None decides from the line: all its cells text, a header; all
        numbers (or missing cells), data; a mix of the two is an error naming
        line 1, since a header with a number for a name and a data row with
        a typo look alike. Ignored for ``.npy`` files.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        float64 (float32 stays float32 for ``.npy``).
    names : list of str or None
        The CSV header.

    Raises
    ------
    DataFileError
        (a ValueError) For a file that is not numeric, finite, rectangular 2-D
        data; the message gives the line and column of the first bad cell.
        CSV lines count from 1, as editors number them (blank lines
        included), and so do CSV columns; rows and columns of a ``.npy``
        count from 0, as numpy indexes the array (the message says which).
    OSError
        If the file cannot be opened (no such file, a folder, ...).

    Notes
    -----
    A CSV number is written in ASCII decimal notation: optional sign, digits
    with an optional decimal point, optional exponent (``-1.5e3``, ``.5``,
    ``7.``); spaces around a cell are ignored. Digit separators (``1_000``),
    hexadecimal and non-ASCII digits (``١٢``, ``１``) are not numbers.

    The file is read line by line into the result: O(file size) time, and
    O(n_samples · n_features) memory, the result's 8 bytes per cell plus 8
    per row (a 22 MB CSV of 220,000 × 5 17-digit numbers: 12 MiB besides the
    imports). For files larger than memory, pass ``np.load(path,
    mmap_mode='r')`` to the estimators instead.

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
    return _read_csv(path, allow_missing, header)


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
            f"{path}: row {row}, column {column} is NaN or infinite (counted from 0: "
            f"X[{row}, {column}]); remove or impute missing values first"
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


def _read_csv(
    path: str, allow_missing: bool = False, header: bool | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """See :func:`read_data`: one pass over the lines, values gathered in an array."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        try:
            delimiter = _sniff_delimiter(file)
            file.seek(0)
            return _parse_csv(path, file, delimiter, allow_missing, header)
        except UnicodeDecodeError:
            raise DataFileError(f"{path}: not a UTF-8 text file (CSV) or a .npy file") from None
        except csv.Error as error:
            raise DataFileError(f"{path}: not a readable CSV file ({error})") from None


def _sniff_delimiter(file: IO[str]) -> str:
    lines = []
    for line in file:
        if line.strip():
            lines.append(line.rstrip("\r\n"))
            if len(lines) == SNIFF_LINES:
                break
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t| ").delimiter
    except csv.Error:
        return ","  # a single column has no delimiter to find


def _parse_csv(path: str, file: IO[str], delimiter: str, allow_missing: bool, header):
    reader = csv.reader(file, delimiter=delimiter, skipinitialspace=True)
    missing = MISSING_CELLS if allow_missing else frozenset()
    names, width = None, None
    values = array.array("d")
    lines = array.array("q")  # the line of each row, for messages
    for row in reader:
        if len(row) <= 1 and not "".join(row).strip():
            continue  # a blank line (a line of delimiters is a row of empty cells)
        if width is None:
            width = len(row)
            if is_header(path, row, missing, header, reader.line_num):
                names = [cell.strip() for cell in row]
                if len(set(names)) != len(names):
                    raise DataFileError(f"{path}: the header has duplicate column names")
                continue
        if len(row) != width:
            raise DataFileError(
                f"{path}: line {reader.line_num} has {len(row)} fields, expected {width}"
            )
        joined = "".join(row)
        if joined.isascii() and "_" not in joined:  # float() then reads ASCII decimals only
            try:
                numbers = list(map(float, row))  # all or nothing: no partial row
            except ValueError:
                pass
            else:
                values.extend(numbers)
                lines.append(reader.line_num)
                continue
        values.extend(_cell_values(path, row, missing, reader.line_num))
        lines.append(reader.line_num)
    if width is None:
        raise DataFileError(f"{path}: the file is empty")
    if not lines:
        raise DataFileError(f"{path}: no data rows")
    X = np.frombuffer(values, dtype=np.float64).reshape(len(lines), width)
    _refuse_not_finite(path, X, lines, missing)
    return X, names


def is_header(
    path: str, row: list[str], missing=frozenset(), header: bool | None = None, line: int = 1
) -> bool:
    """Whether the first row of a CSV file is a header: ``header``, or decided from its cells.

    All text, a header; all numbers (:data:`NUMBER`, or cells in ``missing``),
    data; a mix raises :class:`DataFileError` naming ``path`` and ``line``.

    >>> is_header("x.csv", ["height", "weight"]), is_header("x.csv", ["1.5", " 60"])
    (True, False)
    """
    if header is not None:
        return header
    cells = [cell.strip() for cell in row]
    numbers = [
        bool(NUMBER.fullmatch(c) or NOT_FINITE.fullmatch(c) or c.lower() in missing)
        for c in cells
        if c or "" in missing
    ]
    if all(numbers):
        return False
    if not any(numbers):
        return True
    raise DataFileError(
        f"{path}: line {line} mixes numbers and text ({', '.join(cells)}): it could be a "
        "header or data with a typo. Say which: header=True (--header) or header=False "
        "(--no-header)"
    )


def _cell_values(path: str, row: list[str], missing, line: int) -> list[float]:
    """The row's numbers (NaN for missing cells), or the error naming the first bad cell."""
    out = []
    for column, cell in enumerate(row, start=1):
        text = cell.strip()
        if text.lower() in missing:
            out.append(math.nan)
        elif NUMBER.fullmatch(text) or NOT_FINITE.fullmatch(text):
            out.append(float(text))
        else:
            what = "an empty cell" if not text else f"{text!r}"
            raise DataFileError(
                f"{path}: line {line}, column {column}: {what} is not a number (ASCII "
                "decimal notation, like -1.5e3)"
                + ("" if missing else " (--nan-policy reads empty cells as missing)")
            )
    return out


def _refuse_not_finite(path: str, X: np.ndarray, lines, missing) -> None:
    """Infinity is always an error; NaN too unless it marks a missing cell. O(n·D)."""
    bad = np.isinf(X) if missing else ~np.isfinite(X)
    if not bad.any():
        return
    row, column = np.argwhere(bad)[0]
    raise DataFileError(
        f"{path}: line {lines[row]}, column {column + 1}: '{X[row, column]}' is not a "
        "finite number; remove or impute missing values first, or pass --nan-policy to "
        "read empty cells and NA as missing"
    )


def _message(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
