"""Arrays in files, read in row chunks without keeping their pages resident.

``np.load(path, mmap_mode='r')`` gives a memory map: touching its rows maps
the file's pages into the process, and they count towards its resident memory
until the kernel needs them back, so one pass over a 30 GB file leaves the
process with as much resident memory as the machine can spare. A
:class:`FileRows` copies a chunk of rows into a buffer of its own and then
releases the pages it touched, so a pass needs one chunk of memory, whatever
the file's size.

The rows of a memory map are read through that map, the user's own mapping
(:meth:`FileRows.from_memmap`), never by opening its file's path again: a file
replaced or deleted after ``np.load`` leaves the mapped array, and so what is
read, unchanged. A file truncated in place is found (the mapping's file is
shorter than the rows read) and refused with an ``OSError`` instead of the
crash (SIGBUS) that touching the missing pages would be. Rows of a ``.npy``
given by its path (:meth:`FileRows.from_npy`, the parts of
:func:`gmm.scale.read_parts`) are read with plain file reads.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numpy.lib import format as npy_format

from .. import em

#: Bytes read at a time when scanning a file (validation, predictions).
BLOCK_BYTES = 64 * 2**20

#: Bytes copied out of a memory map before its pages are released.
COPY_BYTES = 4 * 2**20

#: Rows taken out of a memory map before its pages are released (:meth:`FileRows.take`).
TAKE_ROWS = 64

#: Bytes either side of the rows read whose pages are released too (``_Mapped.release``).
RELEASE_AROUND = 4 * 2**20


class FileRows:
    """Rows of a C-ordered 2-D array stored in a file, read on demand.

    It stands in for the array wherever row chunks are enough: ``X[a:b]``
    reads rows ``a`` to ``b`` into a new ndarray, :meth:`take` reads a set of
    rows, and :meth:`blocks` iterates over the whole file. Built from a path
    it pickles as its path, so dask workers on the same file system can read
    their own rows; built from a memory map (:meth:`from_memmap`) it reads
    through that map and does not pickle.

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
        """The rows of a memory-mapped array, read through its own mapping; or None.

        None for what cannot be read in row chunks from the mapping:
        Fortran-ordered or column-sliced maps and anything whose mapping
        cannot be found; those are used as in-memory arrays (still the user's
        array, but their pages stay resident and a truncated file crashes the
        process as it does for numpy). A map in copy-on-write mode
        (``mmap_mode='c'``) is read through its mapping but its pages are not
        released: that would drop the user's changes.
        """
        if X.ndim != 2 or not X.flags.c_contiguous:
            return None
        mapping = X
        while isinstance(mapping, np.ndarray):
            mapping = mapping.base
        if not isinstance(mapping, mmap.mmap) or mapping.closed:
            return None
        rows = cls(X.filename or "<memory map>", 0, X.shape, X.dtype, dtype)
        rows._mapped = _Mapped(np.asarray(X), mapping, X.offset, X.filename, X.mode != "c")
        return rows

    @classmethod
    def from_npy(cls, path, dtype=None) -> FileRows:
        """The rows of a 2-D C-ordered ``.npy`` file (only its header is read)."""
        mapped = np.load(path, mmap_mode="r")
        if mapped.ndim != 2:
            raise ValueError(
                f"{os.fspath(path)} holds an array of shape {mapped.shape}; expected 2-D."
            )
        if not mapped.flags.c_contiguous:
            raise ValueError(
                f"{os.fspath(path)} is stored in Fortran order; save it in C order "
                "(np.save(path, np.ascontiguousarray(X)))."
            )
        return cls(path, mapped.offset, mapped.shape, mapped.dtype, dtype)

    #: Whether NaN (a missing entry) is allowed in the rows (``nan_policy`` not 'raise').
    nan_allowed = False

    #: The user's memory map the rows are read through (None: read the file at ``path``).
    _mapped: _Mapped | None = None

    def with_dtype(self, dtype) -> FileRows:
        """The same rows, read as ``dtype``."""
        out = FileRows(self.path, self.offset, self.shape, self.file_dtype, dtype)
        out.nan_allowed = self.nan_allowed
        out._mapped = self._mapped
        return out

    def __getstate__(self):
        if self._mapped is not None:
            raise TypeError(
                "rows read through a memory map cannot be sent to another process; "
                "pass the array itself (or a dask array) instead."
            )
        return self.__dict__

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
        if self._mapped is not None:
            self._mapped.copy_rows(start, stop, out)
            return self._convert(out)
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
        if rows.size and self._mapped is not None:
            self._mapped.take_rows(rows, out)
        elif rows.size:
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


@contextmanager
def private_copy(X: np.memmap, folder=None) -> Iterator[np.memmap]:
    """A read-only memory map of a private copy of X, deleted on exit.

    For handing a memory map to other processes: joblib pickles an
    ``np.memmap`` as its file name and the workers map that path again, so a
    file replaced or deleted after ``np.load`` would give them other data, or
    none. The copy is written from the user's own mapping, block by block
    (:class:`FileRows` when X is C-ordered, so its pages do not stay
    resident), to a new ``.npy`` file in ``folder`` (None: the system's
    temporary folder) that nothing else knows. O(n · D) time and disk, O(block)
    memory.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(6.0).reshape(3, 2))
    >>> mapped = np.load(path, mmap_mode="r")
    >>> os.remove(path)
    >>> with private_copy(mapped) as copy:
    ...     copy.filename != mapped.filename, copy.tolist()
    (True, [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    """
    fd, path = tempfile.mkstemp(prefix="gmm-data-", suffix=".npy", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            header = {
                "descr": npy_format.dtype_to_descr(X.dtype),
                "fortran_order": False,
                "shape": X.shape,
            }
            npy_format.write_array_header_2_0(file, header)
            rows = FileRows.from_memmap(X, X.dtype) if X.ndim == 2 else None
            if rows is not None:
                for _, block in rows.blocks():
                    file.write(block.tobytes())
            else:
                step = max(1, BLOCK_BYTES // max(1, X[:1].nbytes))
                for start in range(0, X.shape[0], step):
                    file.write(np.ascontiguousarray(X[start : start + step]).tobytes())
        yield np.load(path, mmap_mode="r")
    finally:
        os.remove(path)


class _Mapped:
    """A 2-D C-ordered memory map whose rows are copied out, then its pages released.

    Parameters
    ----------
    array : ndarray
        The user's map (a view of ``mapping``).
    mapping : mmap.mmap
        The mapping under it: it keeps the mapped file open, so its size is
        the size of the file the array shows, whatever became of the path.
    offset : int
        ``np.memmap.offset``: the file position numpy asked to map from.
    filename : str or None
        For messages only; the file is never opened by name.
    shared : bool
        Whether the mapping is shared (its pages can be released without loss).
    """

    def __init__(self, array, mapping: mmap.mmap, offset: int, filename, shared: bool):
        self.array = array
        self.mapping = mapping
        self.filename = filename
        self.shared = shared
        self.row_bytes = array.shape[1] * array.dtype.itemsize
        start = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        #: Position of row 0 in the mapping, and of the mapping in the file
        #: (np.memmap maps from ``offset`` rounded down to the granularity).
        self.at = array.ctypes.data - start
        self.file_start = offset - offset % mmap.ALLOCATIONGRANULARITY

    def copy_rows(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows ``start:stop`` into ``out``; O(rows · D) time.

        Copied :data:`COPY_BYTES` at a time, each piece's pages released before
        the next, so the mapping adds at most a piece to the resident memory.
        """
        self.check_length(start, stop)
        step = max(1, COPY_BYTES // max(1, self.row_bytes))
        for a in range(start, stop, step):
            b = min(a + step, stop)
            np.copyto(out[a - start : b - start], self.array[a:b])
            self.release(a, b)

    def take_rows(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Sorted rows ``rows`` into ``out``, :data:`TAKE_ROWS` at a time.

        Each touched row maps pages around it, so the pages are released after
        every few rows, not once at the end.
        """
        self.check_length(int(rows[0]), int(rows[-1]) + 1)
        for a in range(0, rows.size, TAKE_ROWS):
            some = rows[a : a + TAKE_ROWS]
            np.take(self.array, some, axis=0, out=out[a : a + some.size])
            self.release(int(some[0]), int(some[-1]) + 1)

    def check_length(self, start: int, stop: int) -> None:
        """Refuse rows past the end of a file truncated after it was mapped.

        Touching them would kill the process with SIGBUS. A truncation between
        this check and the copy still can: the check narrows that window, it
        cannot close it.
        """
        try:
            size = self.mapping.size()  # fstat of the mapping's own descriptor
        except (OSError, ValueError):
            return  # a mapping without a descriptor: nothing to ask
        needed = self.file_start + self.at + stop * self.row_bytes
        if size < needed:
            gone = max(start, (size - self.file_start - self.at) // self.row_bytes)
            raise OSError(
                f"the file behind the memory-mapped X ({self.filename}) was truncated to "
                f"{size} bytes after it was mapped: its rows from row {gone} on (counted "
                "from 0) are gone, and touching them would crash the process (SIGBUS). "
                "Load the data again."
            )

    def release(self, start: int, stop: int) -> None:
        """Drop the pages of rows ``start:stop`` from this process (not from the page cache).

        For a shared mapping (modes 'r', 'r+', 'w+') that loses nothing: the
        next touch maps the same pages again. The kernel maps pages around
        the ones touched (fault-around, large folios), so :data:`RELEASE_AROUND`
        bytes on either side of the rows go too.
        """
        if not self.shared or not hasattr(mmap, "MADV_DONTNEED") or stop <= start:
            return
        first = self.at + start * self.row_bytes - RELEASE_AROUND
        first = max(0, first // mmap.PAGESIZE * mmap.PAGESIZE)
        last = self.at + stop * self.row_bytes + RELEASE_AROUND
        self.mapping.madvise(mmap.MADV_DONTNEED, first, last - first)  # clipped to the map


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
