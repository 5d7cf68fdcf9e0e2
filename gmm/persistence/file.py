"""The model file itself: a zip of ``.npy`` members, written atomically, read with care.

:func:`write_archive` writes the metadata and the arrays; :class:`ModelReader`
checks an archive step by step (known members only, stored uncompressed, sizes
that fit in the file, each ``.npy`` header against the shape and dtype
expected) before it reads any array, and turns every problem into a
:class:`ModelFileError` naming the file. Nothing here knows an estimator: the
codecs of :mod:`gmm.persistence.mixture` and :mod:`gmm.persistence.selection`
say what goes in and what comes out.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from ..checkpoint import write_atomically
from ..datafiles import NpyVersionError, read_npy_header

FORMAT = "gmm-model"
FORMAT_VERSION = 1

#: Largest metadata member read (the sweep table lives there).
MAX_METADATA_BYTES = 64 * 2**20

#: The member holding the metadata.
METADATA = "metadata"

#: Deepest nesting of JSON lists and objects in the metadata (gmm writes fewer than 10).
MAX_METADATA_DEPTH = 32

#: Largest magnitude of an integer in the metadata: 64-bit integers only.
MAX_METADATA_INT = 2**63 - 1

#: What zipfile raises on a damaged archive: a bad CRC or local header
#: (BadZipFile), a garbled version or flag field (NotImplementedError), a member
#: marked encrypted (RuntimeError), an offset outside the file (OSError, EOFError),
#: a member name flagged UTF-8 that is not (UnicodeDecodeError).
_ZIP_DAMAGE = (
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    UnicodeDecodeError,
)


class ModelFileError(ValueError):
    """A model file is not a valid gmm model file; the message says what is wrong."""


@dataclass(frozen=True)
class Codec:
    """How one estimator class goes into a model file and comes back out.

    Attributes
    ----------
    cls : type
        The estimator class.
    encode : callable
        ``encode(model, arrays) -> sections``: checks the model is fitted, adds
        its arrays to ``arrays`` (member name → array) and returns the metadata
        sections (``{"model": {...}, ...}``).
    decode : callable
        ``decode(reader, metadata) -> (model, members)``: the fitted model,
        checked, and the names of the members it read.
    """

    cls: type
    encode: Callable[[Any, dict[str, np.ndarray]], dict[str, Any]]
    decode: Callable[[ModelReader, dict[str, Any]], tuple[Any, set[str]]]


def gmm_version() -> str:
    from .. import __version__

    return __version__


# ===================================================================== write
def build_archive(class_name: str, sections: dict[str, Any], arrays: dict) -> bytes:
    """The model file's bytes: the metadata and ``arrays`` in a zip of ``.npy`` members.

    Raises ValueError, before anything is written, for metadata that
    :class:`ModelReader` would refuse (:func:`metadata_problem`). O(size of
    the arrays) time and memory.
    """
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gmm_version": gmm_version(),
        "class": class_name,
        **sections,
        "arrays": {
            name: {"shape": list(array.shape), "dtype": array.dtype.str}
            for name, array in arrays.items()
        },
    }
    problem = metadata_problem(metadata)
    if problem is not None:
        raise ValueError(f"Cannot save the model: {problem}. Nothing was written.")
    payload = json.dumps(metadata, allow_nan=True, separators=(",", ":")).encode("utf-8")
    members = {METADATA: np.frombuffer(payload, dtype=np.uint8), **arrays}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in members.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy_format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_archive(path: str | os.PathLike, data: bytes) -> None:
    """Write the bytes of :func:`build_archive` to ``path`` atomically (see :func:`gmm.save`)."""
    write_atomically(path, lambda file: file.write(data))


def metadata_problem(value: Any) -> str | None:
    """Why ``value`` cannot be metadata that :func:`json.loads` gives back equal; or None.

    Allowed: dicts with str keys, lists, str, bool, None, floats (NaN and
    infinities included) and integers within :data:`MAX_METADATA_INT`, nested
    at most :data:`MAX_METADATA_DEPTH` deep. :func:`write_archive` asks it
    before writing and :class:`ModelReader` after parsing, so ``save`` writes
    only what ``load`` reads. Iterative (no recursion); O(size of ``value``).

    >>> metadata_problem({"a": [1, 2.5, None, "x"]}) is None
    True
    >>> metadata_problem({"a": 2**70})
    'metadata field a holds an integer of 71 bits; model files hold 64-bit integers'
    """
    stack = [(value, 0, "metadata")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, (dict, list)) and depth >= MAX_METADATA_DEPTH:
            where = where if len(where) <= 60 else where[:56] + "..."
            return f"{_field(where)} nests lists or objects more than {MAX_METADATA_DEPTH} deep"
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return f"{where} has a key of type {type(key).__name__}, not str"
                field = key if where == "metadata" else f"{where}.{key}"
                stack.append((inner, depth + 1, field))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1, f"{where}[{i}]") for i, inner in enumerate(item))
        elif isinstance(item, bool) or item is None or type(item) in (str, float):
            continue
        elif type(item) is int:
            if abs(item) > MAX_METADATA_INT:
                return (
                    f"{_field(where)} holds an integer of {item.bit_length()} bits; "
                    "model files hold 64-bit integers"
                )
        else:
            return f"{_field(where)} holds a {type(item).__name__}, not a JSON value"
    return None


def _field(where: str) -> str:
    return where if where == "metadata" else f"metadata field {where}"


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages about file contents."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return f"<{type(value).__name__}>"
    return cut(text, limit)


def cut(text: str, limit: int = 200) -> str:
    """``text`` cut to about ``limit`` characters: a file's contents in a one-line message."""
    return text if len(text) <= limit else text[: limit - 5] + "[...]"


def names_array(names) -> np.ndarray:
    """Column names as a fixed-width str array (an object array would need pickle).

    Raises ValueError for a name such an array cannot give back: one holding
    a NUL character (numpy drops trailing NULs, so two names could become one)
    or an unpaired surrogate (not Unicode text; a loaded file is checked for
    valid Unicode).
    """
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ValueError(
                f"Cannot save the model: feature name {i} is a {type(name).__name__}, not a str."
            )
        if "\0" in name:
            raise ValueError(
                f"Cannot save the model: feature name {i} ({shown(name)}) holds a NUL "
                "character, which a model file cannot store. Rename the column and refit."
            )
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"Cannot save the model: feature name {i} ({shown(name)}) holds an unpaired "
                "surrogate, which is not Unicode text. Rename the column and refit."
            ) from None
    return np.asarray([str(name) for name in names], dtype=str)


# ====================================================================== read
@contextmanager
def open_model_file(path: str | os.PathLike) -> Iterator[ModelReader]:
    """A :class:`ModelReader` over the archive at ``path``, closed afterwards.

    Raises
    ------
    ModelFileError
        If the file is not a zip archive, or its members are not what
        :func:`gmm.save` writes.
    FileNotFoundError
        If there is no such file.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        with _reader(path, file, os.fstat(file.fileno()).st_size) as reader:
            yield reader


@contextmanager
def read_archive(name: str, data: bytes) -> Iterator[ModelReader]:
    """A :class:`ModelReader` over the bytes of :func:`build_archive`; ``name`` for messages."""
    with _reader(name, io.BytesIO(data), len(data)) as reader:
        yield reader


@contextmanager
def _reader(name: str, file: IO[bytes], size: int) -> Iterator[ModelReader]:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        raise ModelFileError(f"{name}: not a gmm model file (not a .npz archive)") from None
    with archive:
        yield ModelReader(name, archive, size)


class ModelReader:
    """Checks one archive step by step; every failure names the file and the problem.

    Parameters
    ----------
    path : str
        For the messages.
    archive : zipfile.ZipFile
    file_size : int
        Bytes in the file: no member may claim more.
    """

    def __init__(self, path: str, archive: zipfile.ZipFile, file_size: int):
        self.path = path
        self.archive = archive
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy") or info.is_dir():
                self.fail(f"unexpected member {name!r} (only .npy members belong here)")
            if name[:-4] in self.members:
                self.fail(f"member {name!r} appears twice")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                self.fail(f"member {name!r} is compressed; gmm.save writes stored members")
            if info.header_offset + info.compress_size > file_size:
                self.fail(f"member {name!r} claims more bytes than the file holds")
            self.members[name[:-4]] = info

    def fail(self, problem: str):
        raise ModelFileError(f"{self.path}: {problem}")

    @contextmanager
    def open(self, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
        """A member's bytes; damage that zipfile detects while reading is refused."""
        try:
            with self.archive.open(info) as member:
                yield member
        except _ZIP_DAMAGE as error:
            self.fail(f"the archive is damaged ({error})")

    # ------------------------------------------------------------ arrays
    def header(self, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
        """``(shape, fortran_order, dtype)`` of a member, checked to fit in its bytes."""
        info = self.members.get(name)
        if info is None:
            self.fail(f"member {name}.npy is missing")
        with self.open(info) as member:
            try:
                shape, fortran, dtype = read_npy_header(member)
            except NpyVersionError as error:
                self.fail(f"member {name}.npy has unknown .npy version {error.version}")
            except _ZIP_DAMAGE:
                raise
            except Exception as error:  # ValueError, SyntaxError, TokenError, SystemError...
                self.fail(f"member {name}.npy has a damaged .npy header ({error})")
            offset = member.tell()
        if dtype.hasobject:
            self.fail(
                f"member {name}.npy holds Python objects (it would need pickle to "
                "load); model files hold numbers and strings only"
            )
        declared = math.prod(shape) * dtype.itemsize
        if declared + offset > info.file_size:
            self.fail(
                f"member {name}.npy declares shape {shape} ({declared} bytes) but holds "
                f"only {info.file_size - offset} bytes"
            )
        return shape, fortran, dtype

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """Check the member's header against ``shape`` and ``dtype``, then read it."""
        found_shape, _, found_dtype = self.header(name)
        dtype = np.dtype(dtype)
        if found_dtype != dtype:
            self.fail(f"{name} has dtype {found_dtype}, expected {dtype}")
        if tuple(found_shape) != tuple(shape):
            self.fail(f"{name} has shape {tuple(found_shape)}, expected {tuple(shape)}")
        with self.open(self.members[name]) as member:
            try:
                array = npy_format.read_array(member, allow_pickle=False)
            except (ValueError, OSError, EOFError) as error:
                self.fail(f"member {name}.npy cannot be read ({error})")
        return array

    def names_array(self, name: str, n_features: int) -> np.ndarray:
        """``n_features`` column names, as an object array of valid Unicode str."""
        shape, _, dtype = self.header(name)
        if dtype.kind != "U" or tuple(shape) != (n_features,):
            self.fail(f"{name} must be {n_features} strings, got {dtype} of shape {shape}")
        names = self.array(name, (n_features,), dtype)
        try:
            # numpy raises SystemError for code points past U+10FFFF; surrogates fail to encode.
            names = names.astype(object)
            for text in names:
                text.encode("utf-8")
        except (SystemError, ValueError):
            self.fail(f"{name} holds characters that are not valid Unicode")
        return names

    # ---------------------------------------------------------- metadata
    def metadata(self, classes: tuple[str, ...]) -> dict[str, Any]:
        """The metadata, checked: a gmm model file of a readable version and known class."""
        shape, _, dtype = self.header(METADATA)
        if dtype != np.uint8 or len(shape) != 1:
            self.fail("metadata must be a 1-D uint8 array of UTF-8 JSON")
        if shape[0] > MAX_METADATA_BYTES:
            self.fail(f"metadata is {shape[0]} bytes, more than the {MAX_METADATA_BYTES} allowed")
        raw = self.array(METADATA, shape, np.uint8).tobytes()
        try:
            metadata = json.loads(
                raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_int=_bounded_int
            )
        except _MetadataProblem as problem:
            self.fail(f"metadata {problem}")
        except (UnicodeDecodeError, ValueError) as error:
            self.fail(f"metadata is not valid UTF-8 JSON ({error})")
        except RecursionError:
            self.fail(f"metadata nests lists or objects more than {MAX_METADATA_DEPTH} deep")
        problem = metadata_problem(metadata)
        if problem is not None:
            self.fail(problem)
        if not isinstance(metadata, dict):
            self.fail("metadata is not a JSON object")
        if metadata.get("format") != FORMAT:
            self.fail(f"not a gmm model file (format {shown(metadata.get('format'))})")
        version = metadata.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.fail(f"format_version must be a positive integer, got {shown(version)}")
        if version > FORMAT_VERSION:
            self.fail(
                f"written with model format version {version} by gmm "
                f"{shown(metadata.get('gmm_version'))}; this gmm ({gmm_version()}) reads "
                f"versions up to {FORMAT_VERSION}. Upgrade gmm to load it"
            )
        if metadata.get("class") not in classes:
            self.fail(
                f"unknown model class {shown(metadata.get('class'))}; expected one of {classes}"
            )
        return metadata

    def section(self, metadata, key) -> dict[str, Any]:
        """``metadata[key]``, which must be a JSON object."""
        section = metadata.get(key)
        if not isinstance(section, dict):
            self.fail(f"metadata has no {key!r} section")
        return section

    def field(self, section, key, kind):
        """``section[key]``, checked to be of ``kind`` (bool is not an int; an int is a float)."""
        value = section.get(key)
        kinds = (int, float) if kind is float else kind
        if not isinstance(value, kinds) or (kind is not bool and isinstance(value, bool)):
            self.fail(f"metadata field {key!r} is {shown(value)}, expected {kind.__name__}")
        return value

    def check_members(self, read: set[str]) -> None:
        """Refuse members that nothing read: a model file holds nothing else."""
        extra = sorted(set(self.members) - read - {METADATA})
        if extra:
            self.fail(f"unexpected member(s) {', '.join(m + '.npy' for m in extra)}")


class _MetadataProblem(ValueError):
    """Found while parsing the metadata: a repeated key, an integer too long."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON keeps the last of repeated keys silently; a file gmm wrote has none.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _MetadataProblem(f"has the key {shown(repeated)} twice in one object")
    return result


def _bounded_int(text: str) -> int:
    # Bounded before int() converts it: a million digits would take seconds.
    if len(text.lstrip("-")) > len(str(MAX_METADATA_INT)):
        raise _MetadataProblem(
            f"holds an integer of {len(text.lstrip('-'))} digits; model files hold 64-bit integers"
        )
    return int(text)
