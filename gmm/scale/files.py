"""Arrays in files, read in row chunks with ordinary file reads.

``np.load(path, mmap_mode='r')`` gives a memory map: touching its rows maps
the file's pages into the process, and they count towards its resident memory
until the kernel needs them back, so one pass over a 30 GB file leaves the
process with as much resident memory as the machine can spare. A
:class:`FileRows` reads the same rows with ``readinto`` into a buffer of its
own, so a pass over the file needs one chunk of memory, whatever its size.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator

import numpy as np

from .. import em

#: Bytes read at a time when scanning a file (validation, predictions).
BLOCK_BYTES = 64 * 2**20


class FileRows:
    """Rows of a C-ordered 2-D array stored in a file, read on demand.

    It stands in for the array wherever row chunks are enough: ``X[a:b]``
    reads rows ``a`` to ``b`` into a new ndarray, :meth:`take` reads a set of
    rows, and :meth:`blocks` iterates over the whole file. It pickles as its
    path, so dask workers on the same file system can read their own rows.

    Parameters
    ----------
    path : str or path
    offset : int
        Byte position of element ``[0, 0]`` in the file.
    shape : (int, int)
    file_dtype : dtype
        How the elements are stored (any byte order).
    dtype : dtype, default=None
        What reads return: float32 and float64 stay, other numbers become
        float64 (as scikit-learn's validation does). None keeps ``file_dtype``
        in native byte order.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(12.0).reshape(4, 3))
    >>> rows = FileRows.from_npy(path)
    >>> rows.shape, rows.dtype
    ((4, 3), dtype('float64'))
    >>> rows[1:3]
    array([[3., 4., 5.],
           [6., 7., 8.]])
    >>> rows.take(np.array([0, 3]))[:, 0]
    array([0., 9.])
    """

    def __init__(self, path, offset: int, shape: tuple[int, int], file_dtype, dtype=None):
        self.path = os.fspath(path)
        self.offset = int(offset)
        self.shape = (int(shape[0]), int(shape[1]))
        self.file_dtype = np.dtype(file_dtype)
        self.dtype = np.dtype(dtype) if dtype is not None else self.file_dtype.newbyteorder("=")
        self.row_bytes = self.shape[1] * self.file_dtype.itemsize

    # ------------------------------------------------------------ building
    @classmethod
    def from_memmap(cls, X: np.memmap, dtype=None) -> FileRows | None:
        """The rows of a memory-mapped array, or None when they cannot be read from its file.

        That is the case for Fortran-ordered or column-sliced maps, for maps in
        copy-on-write mode (``mmap_mode='c'``, whose changes are not in the
        file) and for anything whose mapping cannot be found.
        """
        if X.ndim != 2 or X.filename is None or X.mode == "c" or not X.flags.c_contiguous:
            return None
        base = X
        while isinstance(base, np.ndarray):
            base = base.base
        if not isinstance(base, mmap.mmap) or base.closed:
            return None
        mapped_at = np.frombuffer(base, dtype=np.uint8).ctypes.data
        # np.memmap maps the file from ``offset`` rounded down to the granularity.
        mapping_start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
        offset = mapping_start + (X.ctypes.data - mapped_at)
        return cls(X.filename, offset, X.shape, X.dtype, dtype)

    @classmethod
    def from_npy(cls, path, dtype=None) -> FileRows:
        """The rows of a 2-D C-ordered ``.npy`` file (only its header is read)."""
        mapped = np.load(path, mmap_mode="r")
        if mapped.ndim != 2:
            raise ValueError(
                f"{os.fspath(path)} holds an array of shape {mapped.shape}; expected 2-D."
            )
        rows = cls.from_memmap(mapped, dtype)
        if rows is None:
            raise ValueError(
                f"{os.fspath(path)} is stored in Fortran order; save it in C order "
                "(np.save(path, np.ascontiguousarray(X)))."
            )
        return rows

    #: Whether NaN (a missing entry) is allowed in the rows (``nan_policy`` not 'raise').
    nan_allowed = False

    def with_dtype(self, dtype) -> FileRows:
        """The same rows, read as ``dtype``."""
        out = FileRows(self.path, self.offset, self.shape, self.file_dtype, dtype)
        out.nan_allowed = self.nan_allowed
        return out

    def with_nan(self) -> FileRows:
        """The same rows, NaN allowed: predictions use the observed entries of a row."""
        out = self.with_dtype(self.dtype)
        out.nan_allowed = True
        return out

    # ------------------------------------------------------------- reading
    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError(
                "FileRows supports row slices X[a:b] only; use take() for a set of rows."
            )
        start, stop, step = key.indices(self.shape[0])
        if step != 1:
            raise TypeError("FileRows supports contiguous row slices only (step 1).")
        return self.read(start, max(start, stop))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new ndarray. O(rows · D) time and memory."""
        out = np.empty((stop - start, self.shape[1]), dtype=self.file_dtype)
        with open(self.path, "rb", buffering=0) as file:
            _read_into(file, self.offset + start * self.row_bytes, out)
            if stop < self.shape[0] and hasattr(os, "posix_fadvise"):
                # Ask the kernel to fetch the next rows now, so that reading them
                # overlaps with the computation on these.
                ahead = min(stop - start, self.shape[0] - stop) * self.row_bytes
                os.posix_fadvise(
                    file.fileno(),
                    self.offset + stop * self.row_bytes,
                    ahead,
                    os.POSIX_FADV_WILLNEED,
                )
        return self._convert(out)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows at sorted indices ``rows``, one read per run of consecutive rows."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, self.shape[1]), dtype=self.file_dtype)
        if rows.size:
            breaks = np.flatnonzero(np.diff(rows) != 1) + 1
            starts = np.concatenate([[0], breaks])
            stops = np.concatenate([breaks, [rows.size]])
            with open(self.path, "rb", buffering=0) as file:
                for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
                    _read_into(file, self.offset + int(rows[a]) * self.row_bytes, out[a:b])
        return self._convert(out)

    def blocks(self, block_bytes: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, rows)`` for successive blocks of about ``block_bytes``.

        None: :data:`BLOCK_BYTES`, read when called.
        """
        budget = BLOCK_BYTES if block_bytes is None else block_bytes
        step = em.chunk_rows(self.shape[1], self.dtype.itemsize, budget)
        for start in range(0, self.shape[0], step):
            yield start, self.read(start, min(start + step, self.shape[0]))

    def _convert(self, block: np.ndarray) -> np.ndarray:
        return block if block.dtype == self.dtype else block.astype(self.dtype)

    def __repr__(self) -> str:
        return f"FileRows({self.path!r}, shape={self.shape}, dtype={self.dtype})"


def _read_into(file, position: int, out: np.ndarray) -> None:
    view = memoryview(out.reshape(-1).view(np.uint8))
    file.seek(position)
    done = 0
    while done < view.nbytes:
        count = file.readinto(view[done:])
        if not count:
            raise OSError(
                f"{file.name} ended after {position + done} bytes; it is shorter than "
                "its header says (truncated while being written?)."
            )
        done += count
