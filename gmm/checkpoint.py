"""Resumable sweeps: every finished fit is one JSON line in a checkpoint file.

The file is JSON Lines. The first line is a header that pins down what the rows
mean: the format and its version, the gmm version, a SHA-256 fingerprint of the
data (X and the sample weights, with their dtype and shape) and the fit settings
(``n_init``, ``random_state`` and the other estimator parameters). Every other
line is one finished fit, a row of the sweep table.

Durability. The header is written to a temporary file, fsynced and renamed into
place (:func:`gmm.writing.write_atomically`, re-exported here), so a half-written
header never exists. The path is checked first (:func:`gmm.writing.check_output_path`):
a link is followed, and a device, FIFO, socket, folder or read-only file is
refused before anything is read or wiped. Lines are read one at a time, at
most :data:`MAX_LINE_BYTES` each; a longer line, or one nested too deeply to
parse, is a damaged line. Each
row is appended with a single ``write``, then flushed and fsynced, so a process
killed with SIGKILL loses at most the fits in flight, and leaves at worst one
partial last line. That last
line, when it does not parse, is dropped (the file is truncated to the end of the
previous line) and its fit is redone. A damaged line anywhere else means the file
was edited or written by something else, and it is refused.

Rows are keyed by ``(n_components, covariance_type)``, so a rerun may use a
larger or smaller grid with the same data and settings: finished points are
reused and only new ones are fitted. Two processes must not share a checkpoint
at the same time (there is no lock).

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from gmm.checkpoint import Checkpoint, data_fingerprint
>>> path = os.path.join(tempfile.mkdtemp(), "sweep.jsonl")
>>> header = {"data": data_fingerprint(np.zeros((3, 2)), None), "settings": {"n_init": 1}}
>>> with Checkpoint(path, header) as ckpt:
...     ckpt.append({"n_components": 1, "covariance_type": "full", "bic": 1.5})
>>> with Checkpoint(path, header) as ckpt:
...     ckpt.rows[(1, "full")]["bic"]
1.5
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from .writing import check_output_path, write_atomically

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "canonical",
    "data_fingerprint",
    "write_atomically",
]

FORMAT = "gmm-sweep-checkpoint"
FORMAT_VERSION = 1
#: A line longer than this is not a line gmm wrote (a row is a few hundred bytes).
MAX_LINE_BYTES = 2**20

#: Header fields that must agree for a checkpoint to be reused.
_PINNED = ("format", "format_version", "gmm_version", "columns", "data", "settings")


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: other data or settings, or a damaged file."""


def data_fingerprint(X, sample_weight: np.ndarray | None, dtype=None) -> dict[str, Any]:
    """SHA-256 of the data and the weights, with dtype and shape.

    Parameters
    ----------
    X : ndarray, memory-mapped array or dask array of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    dtype : numpy dtype, default=None
        Hash X's values in this dtype (the one the fits use), so an integer
        file and the same data as floats in memory have one fingerprint;
        None: X's own dtype.

    Returns
    -------
    dict
        ``{"sha256", "shape", "dtype", "weighted"}``, JSON-serialisable.
        O(n_samples · n_features) time; X is read and hashed in row blocks of
        8 MB, so neither a copy of an in-memory X nor the whole of a
        memory-mapped or dask X is ever in memory.
    """
    dtype = np.dtype(X.dtype if dtype is None else dtype)
    shape = tuple(int(n) for n in X.shape)
    digest = hashlib.sha256()
    digest.update(f"X:{dtype.str}:{shape}".encode())
    rows = max(1, (8 * 2**20) // max(1, shape[1] * dtype.itemsize))
    for start in range(0, shape[0], rows):
        # np.asarray computes a dask block, and reads only this block of a memory map.
        block = np.asarray(X[start : start + rows])
        digest.update(np.ascontiguousarray(block, dtype=dtype).tobytes())
    if sample_weight is not None:
        w = np.ascontiguousarray(sample_weight)
        digest.update(f"w:{w.dtype.str}:{w.shape}".encode())
        digest.update(w.tobytes())
    return {
        "sha256": digest.hexdigest(),
        "shape": list(shape),
        "dtype": dtype.str,
        "weighted": sample_weight is not None,
    }


def canonical(value: Any) -> Any:
    """``value`` as plain JSON types (tuples become lists), for comparison with a file."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        # Arrays in the settings (e.g. means_init) are pinned by content, not stored.
        data = np.ascontiguousarray(value)
        return {
            "ndarray_sha256": hashlib.sha256(data.tobytes()).hexdigest(),
            "shape": list(data.shape),
            "dtype": data.dtype.str,
        }
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Checkpoint:
    """An open checkpoint: the rows already finished, and an append handle.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON Lines file. Created (with its header) when missing or empty.
    header : dict
        What the rows depend on; the keys ``columns``, ``data`` and ``settings``
        are compared with an existing file's header, and every row must hold
        every name in ``columns``. ``format``, ``format_version`` and
        ``gmm_version`` are filled in.
    overwrite : bool, default=False
        Start the file afresh when it belongs to other data or settings (or is
        not a checkpoint at all) instead of raising :class:`CheckpointError`.

    Attributes
    ----------
    rows : dict
        Finished rows keyed by ``(n_components, covariance_type)``.

    Raises
    ------
    gmm.writing.OutputPathError
        Before anything is read or wiped, for a path that is not a writable
        regular file (or a new name in a writable folder), also with
        ``overwrite=True``.
    CheckpointError
        For a file of other data or settings, not a checkpoint, or damaged
        before its last line (unless ``overwrite=True``).

    Notes
    -----
    Opening reads the file once, line by line (O(file size) time, O(rows)
    memory, each line at most :data:`MAX_LINE_BYTES`).
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], *, overwrite=False):
        from . import __version__

        self.path = os.fspath(path)
        # Refuse a device, FIFO, folder or read-only file before reading or wiping it.
        self._target = check_output_path(self.path)
        self.header = canonical(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "gmm_version": __version__,
                **header,
            }
        )
        self.rows: dict[tuple[int, str], dict[str, Any]] = {}
        self._file = None
        try:
            existing = self._read() if os.path.exists(self._target) else None
        except CheckpointError:
            if not overwrite:
                raise
            existing = None  # damaged: start afresh, as asked
        if existing is None:
            self._write_header()
        else:
            stored, rows, keep = existing
            problem = self._mismatch(stored)
            if problem and not overwrite:
                raise CheckpointError(
                    f"checkpoint {self.path!r} {problem}. Use another file, delete "
                    "it, or pass overwrite=True to start it afresh."
                )
            if problem:
                self._write_header()
            else:
                self.rows = rows
                if keep is not None:
                    # Drop the damaged last line so the next row starts on a fresh line.
                    os.truncate(self._target, keep)
        self._file = open(self._target, "ab")

    # ------------------------------------------------------------- reading
    def _read(self):
        """``(header, rows, keep)`` of an existing file, or None when it is empty.

        ``keep`` is the byte length to truncate to when the last line is damaged.
        The file is read line by line, each line at most :data:`MAX_LINE_BYTES`
        long, so memory stays O(rows kept) whatever the file holds.
        """
        with open(self._target, "rb") as file:
            first = file.readline(MAX_LINE_BYTES + 1)
            if not first:
                return None
            header = _parse(first) if first.endswith(b"\n") else None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                return {"format": None}, {}, None
            rows: dict[tuple[int, str], dict[str, Any]] = {}
            position = len(first)
            number = 1
            while True:
                line = file.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return header, rows, None
                number += 1
                row = _parse(line) if line.endswith(b"\n") else None
                if not _is_row(row, self.header.get("columns") or ()):
                    _skip_line(file, line)
                    if not file.read(1):  # a damaged last line: an interrupted append
                        return header, rows, position
                    raise CheckpointError(
                        f"checkpoint {self.path!r} is damaged: line {number} is not a "
                        "finished fit. Delete the file or pass overwrite=True to start afresh."
                    )
                rows.setdefault((row["n_components"], row["covariance_type"]), row)
                position += len(line)

    def _mismatch(self, stored: dict[str, Any]) -> str | None:
        if stored.get("format") != FORMAT:
            return "is not a gmm sweep checkpoint"
        if stored.get("format_version") != FORMAT_VERSION:
            return (
                f"has format version {stored.get('format_version')!r}, this gmm "
                f"reads version {FORMAT_VERSION}"
            )
        if stored.get("data") != self.header["data"]:
            return "was written for different data (X or sample_weight differ)"
        for key in _PINNED:
            if stored.get(key) != self.header.get(key):
                return f"was written with different settings ({key} differs)"
        return None

    # ------------------------------------------------------------- writing
    def _write_header(self) -> None:
        write_atomically(self.path, lambda file: file.write(_dumps(self.header)))
        self.rows = {}

    def append(self, row: dict[str, Any]) -> None:
        """Append one finished fit, then flush and fsync (durable on return)."""
        row = canonical(row)
        try:
            self._file.write(_dumps(row))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:  # e.g. a full disk: name the user's file
            raise OSError(error.errno, error.strerror or str(error), self.path) from None
        self.rows.setdefault((row["n_components"], row["covariance_type"]), row)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dumps(value: Any) -> bytes:
    # Python writes floats with repr, which reads back to the same float exactly.
    return (json.dumps(value, separators=(",", ":"), default=_json_default) + "\n").encode()


def _skip_line(file, start: bytes) -> None:
    """Read past the rest of a line that began with ``start``, in bounded chunks."""
    while start and not start.endswith(b"\n"):
        start = file.readline(MAX_LINE_BYTES)


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not our line
        return None


def _is_row(row: Any, columns) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("n_components"), int)
        and isinstance(row.get("covariance_type"), str)
        and all(column in row for column in columns)
    )
