"""Data sets stored as many files: a folder of ``.npy`` or ``.csv`` parts, or a zarr store.

:func:`read_parts` opens them as one dask array chunked by rows, which
:class:`gmm.GaussianMixture` fits on a cluster or streams on one machine (see
:mod:`gmm.scale`). Nothing is read until dask computes: on the client only the
``.npy`` headers and the first line of each ``.csv`` part are read. Needs
``pip install "gmm[dask]"`` (and zarr for zarr stores).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .. import em
from ..datafiles import is_header
from .dask_arrays import import_dask
from .files import FileRows

#: Target size of one block of a ``.npy`` part.
BLOCK_BYTES = 128 * 2**20


def read_parts(path, *, rows_per_block: int | None = None, delimiter: str = ","):
    """Open a folder of ``.npy`` or ``.csv`` parts, or a zarr store, as a dask array.

    Parameters
    ----------
    path : str or path
        A folder holding ``.npy`` files or ``.csv`` files (not both), taken in
        the natural order of their names (``part-2`` before ``part-10``); a
        single such file; or a zarr store (a folder whose name ends in
        ``.zarr`` or that holds ``.zarray`` or ``zarr.json``).
    rows_per_block : int, default=None
        Rows per dask block of a ``.npy`` part; None means about 128 MB. Each
        ``.csv`` part is one block (split large CSV files beforehand).
    delimiter : str, default=','
        Field separator of the CSV parts. A first line of text is taken as a
        header and skipped; one that mixes numbers and text is an error
        (:func:`gmm.datafiles.is_header`). Numbers are read by
        ``np.loadtxt`` (ASCII decimal notation).

    Returns
    -------
    dask.array.Array of shape (n_samples, n_features)
        Parts stacked by rows, one chunk across the columns. Row counts of CSV
        parts are unknown (NaN) until computed; ``fit`` finds them when it
        persists the array.

    Raises
    ------
    ImportError
        Without dask (or, for a zarr store, without zarr): says what to install.
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For a folder with no parts, with both kinds of part, or with parts of
        different numbers of columns, and for parts that are not 2-D.

    Notes
    -----
    ``.npy`` blocks are read with plain file reads (:class:`gmm.scale.FileRows`),
    so every worker needs the folder at the same path (a shared file system).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "part-1.npy"), np.zeros((3, 2)))
    >>> np.save(os.path.join(folder, "part-2.npy"), np.ones((2, 2)))
    >>> X = read_parts(folder)
    >>> X.shape, X.chunks[0]
    ((5, 2), (3, 2))
    >>> X.sum(axis=0).compute()
    array([2., 2.])
    """
    _, da = import_dask()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: {os.fspath(path)}")
    if _is_zarr(path):
        return _read_zarr(path)
    files = [path] if path.is_file() else sorted(path.iterdir(), key=_natural_key)
    npy = [f for f in files if f.suffix == ".npy"]
    csv = [f for f in files if f.suffix == ".csv"]
    if npy and csv:
        raise ValueError(
            f"{os.fspath(path)} holds both .npy and .csv parts; keep one kind per folder."
        )
    if not npy and not csv:
        raise ValueError(
            f"{os.fspath(path)} holds no .npy or .csv parts (nor is it a zarr store). "
            "Point read_parts at a folder of part files."
        )
    parts = [(f, _npy_blocks(f, rows_per_block)) for f in npy] or [
        (f, [_csv_block(f, delimiter)]) for f in csv
    ]
    widths = {blocks[0].shape[1] for _, blocks in parts}
    if len(widths) > 1:
        first_width = parts[0][1][0].shape[1]
        odd = next(f for f, blocks in parts if blocks[0].shape[1] != first_width)
        raise ValueError(
            f"The parts in {os.fspath(path)} have different numbers of columns "
            f"({sorted(widths)}), e.g. {odd.name}; all parts must have the same columns."
        )
    arrays = [block for _, blocks in parts for block in blocks]
    return da.concatenate(arrays, axis=0) if len(arrays) > 1 else arrays[0]


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and (
        path.suffix == ".zarr" or (path / ".zarray").exists() or (path / "zarr.json").exists()
    )


def _read_zarr(path: Path):
    _, da = import_dask()
    try:
        import zarr  # noqa: F401
    except ImportError:
        raise ImportError(
            f"{os.fspath(path)} is a zarr store; reading it needs zarr: pip install zarr"
        ) from None
    X = da.from_zarr(os.fspath(path))
    if X.ndim != 2:
        raise ValueError(f"The zarr store {os.fspath(path)} holds shape {X.shape}; expected 2-D.")
    return X.rechunk({1: -1})


def _npy_blocks(path: Path, rows_per_block: int | None):
    dask, da = import_dask()
    rows = FileRows.from_npy(path)
    n_samples, n_features = rows.shape
    step = rows_per_block or em.chunk_rows(n_features, rows.dtype.itemsize, BLOCK_BYTES)
    read = dask.delayed(_read_rows, pure=False)
    return [
        da.from_delayed(
            read(rows, start, min(start + step, n_samples)),
            shape=(min(start + step, n_samples) - start, n_features),
            dtype=rows.dtype,
        )
        for start in range(0, n_samples, step)
    ] or [da.empty((0, n_features), dtype=rows.dtype)]


def _read_rows(rows: FileRows, start: int, stop: int) -> np.ndarray:
    return rows.read(start, stop)


def _csv_block(path: Path, delimiter: str):
    dask, da = import_dask()
    with open(path, encoding="utf-8") as file:
        first = file.readline()
        header = int(is_header(os.fspath(path), first.rstrip("\r\n").split(delimiter)))
        data_line = first if header == 0 else file.readline()
    n_features = len(data_line.split(delimiter)) if data_line.strip() else 0
    read = dask.delayed(_read_csv, pure=False)
    return da.from_delayed(
        read(os.fspath(path), header, delimiter, n_features),
        shape=(np.nan, n_features),
        dtype=np.float64,
        name=False,
    )


def _read_csv(path: str, header: int, delimiter: str, n_features: int) -> np.ndarray:
    X = np.loadtxt(path, delimiter=delimiter, skiprows=header, ndmin=2, dtype=np.float64)
    if X.size == 0:
        return np.empty((0, n_features))
    if X.shape[1] != n_features:
        raise ValueError(f"{path} has {X.shape[1]} columns; its first line has {n_features}.")
    return X
