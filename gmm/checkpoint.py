"""Resumable sweeps: every finished fit is one JSON line in a checkpoint file.

The file is JSON Lines. The first line is a header that pins down what the rows
mean: the format and its version, the gmm version, a SHA-256 fingerprint of the
data (X and the sample weights, with their dtype and shape) and the fit settings
(``n_init``, ``random_state`` and the other estimator parameters). Every other
line is one finished fit, a row of the sweep table.

Durability. The header is written to a temporary file, fsynced and renamed into
place (:func:`write_atomically`), so a half-written header never exists. Each
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
import stat
import tempfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np

FORMAT = "gmm-sweep-checkpoint"
FORMAT_VERSION = 1

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
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], *, overwrite=False):
        from . import __version__

        self.path = os.fspath(path)
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
            existing = self._read() if os.path.exists(self.path) else None
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
                    os.truncate(self.path, keep)
        self._file = open(self.path, "ab")

    # ------------------------------------------------------------- reading
    def _read(self):
        """``(header, rows, keep)`` of an existing file, or None when it is empty.

        ``keep`` is the byte length to truncate to when the last line is damaged.
        """
        with open(self.path, "rb") as file:
            content = file.read()
        if not content:
            return None
        lines = content.split(b"\n")
        # A trailing newline leaves one empty segment; anything else there is a partial line.
        complete, tail = lines[:-1], lines[-1]
        offsets = []
        position = 0
        for line in complete:
            offsets.append(position)
            position += len(line) + 1
        header = _parse(complete[0]) if complete else None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            return {"format": None}, {}, None
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        keep = None
        for number, line in enumerate(complete[1:], start=2):
            row = _parse(line)
            if not _is_row(row, self.header.get("columns") or ()):
                if number == len(complete) and not tail:
                    keep = offsets[-1]
                    break
                raise CheckpointError(
                    f"checkpoint {self.path!r} is damaged: line {number} is not a "
                    "finished fit. Delete the file or pass overwrite=True to start afresh."
                )
            rows.setdefault((row["n_components"], row["covariance_type"]), row)
        if tail and keep is None:
            keep = position
        return header, rows, keep

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
        self._file.write(_dumps(row))
        self._file.flush()
        os.fsync(self._file.fileno())
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


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_row(row: Any, columns) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("n_components"), int)
        and isinstance(row.get("covariance_type"), str)
        and all(column in row for column in columns)
    )


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file so that readers see the old content or the new, never a mixture.

    ``write(file)`` fills a temporary file in the same folder, which is then
    fsynced and renamed over ``path`` (``os.replace``); on any error, or an
    interruption, the temporary file is removed and ``path`` is untouched. The
    new file gets the mode of the file it replaces, or the usual mode for a new
    file (``0o666`` less the umask) rather than ``mkstemp``'s private ``0o600``.

    Examples
    --------
    >>> import os, tempfile
    >>> from gmm.checkpoint import write_atomically
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> write_atomically(path, lambda file: file.write(b"hello"))
    >>> open(path, "rb").read()
    b'hello'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def _mode_for(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_folder(folder: str) -> None:
    """Make a rename durable; not every platform can open a folder, so it is best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
