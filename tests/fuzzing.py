"""Fuzzing: damaged model files and data files against ``gmm.load`` and the ``gmm`` command,
and random existing paths against every writer.

    python -m tests.fuzzing --seconds 600 [--seed 0] [--out tests/out/fuzz]
    python -m tests.fuzzing --target writers --seconds 120

(from the repository's root). ``tests/test_fuzz.py`` runs a bounded number of
cases on every test run; this module is the harness both share, like
``tests/mixture_data.py`` for the data generators.

Each case takes a valid input (a model file written by ``gmm.save``, a CSV or a
``.npy`` data file) and damages it. Blind damage: random bytes, truncation, bit
flips, overwritten, repeated or deleted runs. Structure-aware damage, which
keeps the zip checksums valid so that it reaches gmm's own checks: ``.npy``
headers that declare huge shapes or other dtypes, an object member whose
unpickling would run code, edited metadata JSON, edited array values, and
missing, extra, renamed or compressed members. For data files: bad cells,
odd delimiters and quotes, huge lines and fields.

The oracle, per target:

- ``load``: ``gmm.load`` returns a model whose ``predict_proba`` rows are finite
  and sum to 1 on data drawn from it, or raises ``ModelFileError``;
- ``data``: ``gmm.cli.read_data`` returns finite 2-D float data, or raises
  ``CommandLineError``;
- ``cli``: ``gmm.cli.main`` exits 0, or exits 1 or 2 with exactly one line
  ``gmm: error: ...`` on standard error (no traceback);
- ``writer`` (``--target writers``): a path made of 0 to 3 links (absolute or
  relative) or a loop, ending at nothing, a checkpoint, a model, a text file,
  a read-only or no-permission file, a folder, a FIFO, a socket, a character
  or block device (root only), a missing folder or a file used as a folder,
  under ``save``, a checkpoint (plain or ``overwrite=True``), ``to_csv`` or the
  command line's ``--out``, ``--table``, ``--plot``, ``--checkpoint``: either a
  one-line refusal of our types with nothing on disk changed (and never of a
  path whose end, by ``os.path.realpath``, is writable), or a write that
  changes only the final target, keeps every link and the target's mode, and
  gives valid content (see :func:`check_writer`).

For every call: an answer within :data:`CALL_SECONDS`, a peak memory that grows
by less than :data:`MEMORY_BOUND`, and the code planted in pickles never runs
(it would create a folder, which is looked for after every case). Anything else
is a failure; its input is saved under ``--out`` to replay. Unix only (the time
limit is a SIGALRM).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

#: A call that takes longer than this is a hang.
CALL_SECONDS = 10.0
#: A call may raise the process's peak resident memory by at most this much.
MEMORY_BOUND = 256 * 2**20

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "fuzz"


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that ``except Exception`` cannot hide it."""


@dataclass
class Failure:
    target: str
    mutator: str
    problem: str
    saved: str | None = None


@dataclass
class Report:
    cases: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)  # (target, mutator, outcome)
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        by_mutator: dict[tuple[str, str], Counter] = {}
        for (target, mutator, outcome), count in self.outcomes.items():
            by_mutator.setdefault((target, mutator), Counter())[outcome] += count
        lines = [f"{'target':<6} {'damage':<22} outcomes"]
        for (target, mutator), counts in sorted(by_mutator.items()):
            text = ", ".join(f"{name} {n}" for name, n in counts.most_common())
            lines.append(f"{target:<6} {mutator:<22} {text}")
        lines.append(
            f"{self.cases} cases in {self.seconds:.1f} s: {len(self.failures)} failures "
            "(crash, hang, memory blow-up, code execution or garbage)"
        )
        for failure in self.failures[:20]:
            lines.append(f"  FAIL {failure.target}/{failure.mutator}: {failure.problem}")
        return "\n".join(lines)


# ===================================================================== guards
@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_memory() -> int:
    """Peak resident memory of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class Planted:
    """Unpickling this calls ``os.mkdir(path)``: the folder appearing means code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


# ====================================================================== seeds
def _blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(5, 1.5, (60, 3))])


def seed_models(folder: Path) -> dict[str, bytes]:
    """Valid model files: every covariance type in float32 and float64, one with
    feature names (with pandas) and an array parameter, and a GaussianMixtureIC."""
    from gmm import GaussianMixture, GaussianMixtureIC, save

    try:
        import pandas as pd
    except ImportError:
        pd = None

    X = _blobs()
    fitted = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for covariance_type in ("full", "tied", "diag", "spherical"):
            for dtype in (np.float32, np.float64):
                name = f"{covariance_type}-{np.dtype(dtype).name}"
                model = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
                fitted[name] = model.fit(X.astype(dtype))
        named = X if pd is None else pd.DataFrame(X, columns=["a", "b", "c"])
        fitted["named"] = GaussianMixture(2, means_init=X[[0, -1]], random_state=0).fit(named)
        fitted["ic"] = GaussianMixtureIC(
            [1, 2], covariance_type=("full", "diag"), random_state=0
        ).fit(X)
    files = {}
    for name, model in fitted.items():
        path = folder / f"seed-{name}.npz"
        save(model, path)
        files[name] = path.read_bytes()
    return files


def seed_data() -> dict[str, tuple[str, bytes]]:
    """Valid data files with the seed models' 3 features: name -> (suffix, bytes)."""
    X = _blobs(1)[::6]
    files = {}
    for name, delimiter, header in (
        ("csv-header", ",", "a,b,c\n"),
        ("csv-plain", ",", ""),
        ("csv-semicolon", ";", "a;b;c\n"),
        ("csv-tab", "\t", ""),
    ):
        buffer = io.StringIO()
        buffer.write(header)
        np.savetxt(buffer, X, delimiter=delimiter, fmt="%.10g")
        files[name] = (".csv", buffer.getvalue().encode())
    for dtype in (np.float64, np.float32):
        buffer = io.BytesIO()
        np.save(buffer, X.astype(dtype))
        files[f"npy-{np.dtype(dtype).name}"] = (".npy", buffer.getvalue())
    return files


# ============================================================= blind damage
def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        if out:
            bit = rng.randrange(len(out) * 8)
            out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def overwrite(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    start = rng.randrange(max(1, len(out)))
    run = rng.choice([1, 2, 4, 8, 16, 64])
    out[start : start + run] = bytes(rng.randrange(256) for _ in range(run))
    return bytes(out)


def splice(rng: random.Random, data: bytes) -> bytes:
    """Repeat or delete a run of bytes."""
    if not data:
        return data
    start = rng.randrange(len(data))
    stop = min(len(data), start + rng.choice([1, 7, 64, 512]))
    if rng.random() < 0.5:
        return data[:stop] + data[start:]
    return data[:start] + data[stop:]


def random_bytes(rng: random.Random, data: bytes) -> bytes:
    size = rng.choice([0, 1, 22, 100, 1000, 5000])
    prefix = rng.choice([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"a,b,c\n"])
    return prefix + bytes(rng.randrange(256) for _ in range(size))


BLIND = {
    "bit flips": flip_bits,
    "truncation": truncate,
    "overwritten run": overwrite,
    "repeated/deleted run": splice,
    "random bytes": random_bytes,
}


# ================================================================ npy parts
def npy_parts(data: bytes) -> tuple[dict, bytes]:
    """(header dict, body) of a valid .npy file."""
    stream = io.BytesIO(data)
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
    header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": fortran, "shape": shape}
    return header, data[stream.tell() :]


def npy_bytes(header: dict, body: bytes, version: int = 1) -> bytes:
    buffer = io.BytesIO()
    try:
        if version == 1:
            npy_format.write_array_header_1_0(buffer, header)
        else:
            npy_format.write_array_header_2_0(buffer, header)
    except ValueError:  # header too long for version 1.0
        buffer = io.BytesIO()
        npy_format.write_array_header_2_0(buffer, header)
    return buffer.getvalue() + body


HUGE_SHAPES = [
    (10**12,),
    (10**6, 10**6),
    (2**62,),
    (2**31, 2**31, 4),
    (10**12, 3, 3),
    (0,),
    (),
    (1,) * 40,
]
DESCRS = ["<f8", "<f4", ">f8", "<i8", "|u1", "|b1", "<c16", "|O", "<U8", "|S8", "<M8[s]", "|V16"]


def edit_header(rng: random.Random, data: bytes) -> bytes:
    header, body = npy_parts(data)
    change = rng.choice(["shape", "shape", "descr", "fortran", "one dimension"])
    if change == "shape":
        header["shape"] = rng.choice(HUGE_SHAPES)
    elif change == "descr":
        header["descr"] = rng.choice(DESCRS)
    elif change == "fortran":
        header["fortran_order"] = not header["fortran_order"]
    elif header["shape"]:
        shape = list(header["shape"])
        shape[rng.randrange(len(shape))] = rng.choice([0, 1, 2, 10**9, 10**15])
        header["shape"] = tuple(shape)
    return npy_bytes(header, body, version=rng.choice([1, 2]))


def planted_npy(sentinel: str, body_shape=(1,)) -> bytes:
    """An object .npy whose unpickling would create ``sentinel``."""
    buffer = io.BytesIO()
    array = np.empty(body_shape, dtype=object)
    array.fill(Planted(sentinel))
    npy_format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


# ================================================================ zip parts
def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def zip_bytes(members: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are part of the damage
            for name, content in members:
                archive.writestr(name, content)
    return buffer.getvalue()


def _pick(rng: random.Random, members, prefer=None) -> int:
    if prefer is not None:
        chosen = [i for i, (name, _) in enumerate(members) if prefer(name)]
        if chosen:
            return rng.choice(chosen)
    return rng.randrange(len(members))


def member_blind(rng: random.Random, data: bytes) -> bytes:
    """Blind damage inside one member, with a valid checksum (reaches the .npy reader)."""
    members = zip_members(data)
    i = _pick(rng, members)
    name, content = members[i]
    damage = rng.choice([flip_bits, truncate, overwrite, splice])
    members[i] = (name, damage(rng, content))
    return zip_bytes(members)


def member_header(rng: random.Random, data: bytes) -> bytes:
    members = zip_members(data)
    i = _pick(rng, members)
    name, content = members[i]
    members[i] = (name, edit_header(rng, content))
    return zip_bytes(members)


def member_layout(rng: random.Random, data: bytes) -> bytes:
    """Members dropped, repeated, renamed, added, or the archive compressed."""
    members = zip_members(data)
    change = rng.choice(["drop", "repeat", "rename", "add", "compress", "reorder"])
    i = _pick(rng, members)
    if change == "drop":
        del members[i]
    elif change == "repeat":
        members.append(members[i])
    elif change == "rename":
        members[i] = (
            rng.choice(["../../escape.npy", "/abs.npy", "x.npy", "model.weights_", "a/"]),
            members[i][1],
        )
    elif change == "add":
        extra = rng.choice(
            [
                ("run.py", b"import os\n"),
                ("param.tol.npy", members[i][1]),
                ("model.extra_.npy", members[i][1]),
                ("folder/", b""),
            ]
        )
        members.append(extra)
    elif change == "reorder":
        rng.shuffle(members)
    else:
        return zip_bytes(members, compression=zipfile.ZIP_DEFLATED)
    return zip_bytes(members)


JSON_VALUES = [
    None,
    True,
    0,
    -1,
    1,
    10**30,
    -(10**30),
    2**63,
    1e308,
    -1e-308,
    float("nan"),
    float("inf"),
    "",
    "x" * 10_000,
    "full",
    "os.system",
    [],
    [1, 2, 3],
    {},
    {"array": "param.means_init"},
    {"range": [1, 10**12, 1]},
    {"range": [0, 5, 0]},
    {"tuple": ["full", None]},
]


def _json_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:20]):
            yield from _json_paths(item, (*path, index))


def member_metadata(rng: random.Random, data: bytes) -> bytes:
    """One value of the metadata JSON replaced, removed, or a key added."""
    members = zip_members(data)
    i = _pick(rng, members, prefer=lambda name: name == "metadata.npy")
    name, content = members[i]
    try:
        header, body = npy_parts(content)
        metadata = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return member_blind(rng, data)
    paths = [p for p in _json_paths(metadata) if p]
    path = rng.choice(paths)
    parent = metadata
    for key in path[:-1]:
        parent = parent[key]
    action = rng.random()
    if action < 0.75:
        parent[path[-1]] = rng.choice(JSON_VALUES)
    elif action < 0.9 and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent["__" + str(path[-1])] = rng.choice(JSON_VALUES)
    payload = json.dumps(metadata).encode("utf-8")
    header["shape"] = (len(payload),)
    members[i] = (name, npy_bytes(header, payload))
    return zip_bytes(members)


def member_values(rng: random.Random, data: bytes) -> bytes:
    """One array's values changed, with a valid header and checksum."""
    members = zip_members(data)
    i = _pick(rng, members, prefer=lambda name: name.startswith(("model.", "param.")))
    name, content = members[i]
    try:
        array = npy_format.read_array(io.BytesIO(content), allow_pickle=False)
    except ValueError:
        return member_blind(rng, data)
    if array.dtype.kind != "f" or array.size == 0:
        return member_blind(rng, data)
    array = array.copy()
    flat = array.reshape(-1)
    index = rng.randrange(flat.size)
    change = rng.choice(["nan", "inf", "negate", "huge", "tiny", "zero", "scale", "noise"])
    with np.errstate(all="ignore"):
        if change == "nan":
            flat[index] = np.nan
        elif change == "inf":
            flat[index] = np.inf
        elif change == "negate":
            flat[index] = -flat[index]
        elif change == "huge":
            flat[index] = np.finfo(array.dtype).max
        elif change == "tiny":
            flat[index] = np.finfo(array.dtype).tiny
        elif change == "zero":
            flat[:] = 0
        elif change == "scale":
            array *= array.dtype.type(rng.choice([1e-300, 1e-30, 1e30, 1e300]))
        else:
            array += (
                np.random.default_rng(rng.randrange(2**32))
                .normal(size=array.shape)
                .astype(array.dtype)
            )
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array)
    members[i] = (name, buffer.getvalue())
    return zip_bytes(members)


def member_planted(sentinel: str):
    def plant(rng: random.Random, data: bytes) -> bytes:
        members = zip_members(data)
        i = _pick(rng, members)
        members[i] = (members[i][0], planted_npy(sentinel))
        return zip_bytes(members)

    return plant


# ================================================================ data damage
BAD_CELLS = [
    "nan",
    "inf",
    "-inf",
    "1e400",
    "1e-400",
    "",
    "  ",
    "x",
    "0x1F",
    "1_000",
    "\u221e",
    "\uff11",
    "\x00",
    '"1"',
    "'1'",
    "1,5",
    "--1",
    "+1",
    "9" * 400,
    '"',
    "\ufeff1",
]


def bad_cell(rng: random.Random, data: bytes) -> bytes:
    lines = data.decode("utf-8", "replace").split("\n")
    i = rng.randrange(len(lines))
    for delimiter in (",", ";", "\t"):
        if delimiter in lines[i]:
            cells = lines[i].split(delimiter)
            cells[rng.randrange(len(cells))] = rng.choice(BAD_CELLS)
            lines[i] = delimiter.join(cells)
            break
    else:
        lines[i] = rng.choice(BAD_CELLS)
    return "\n".join(lines).encode("utf-8")


def bad_layout(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    change = rng.choice(
        ["extra field", "missing field", "long line", "wide", "no rows", "crlf", "bom", "quotes"]
    )
    i = rng.randrange(len(lines))
    if change == "extra field":
        lines[i] += ",7"
    elif change == "missing field":
        lines[i] = lines[i].rsplit(",", 1)[0]
    elif change == "long line":
        lines[i] = "1" * rng.choice([10_000, 200_000]) + ",2,3"
    elif change == "wide":
        lines = [",".join(["1.5"] * rng.choice([4, 1000, 20_000]))] * 3
    elif change == "no rows":
        lines = lines[:1]
    elif change == "crlf":
        return text.replace("\n", "\r\n").encode("utf-8")
    elif change == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    else:
        lines[i] = '"' + lines[i]
    return "\n".join(lines).encode("utf-8")


# ================================================================== oracles
def _normalised(proba: np.ndarray) -> bool:
    tolerance = 1e-6 if proba.dtype == np.float64 else 1e-4
    return bool(
        np.all(np.isfinite(proba))
        and np.all(np.abs(proba.sum(axis=1, dtype=np.float64) - 1) <= tolerance)
    )


def check_load(path: str) -> str:
    from gmm import ModelFileError, load

    try:
        model = load(path)
    except ModelFileError:
        return "refused"
    # Data the model itself could have drawn (points that make every squared
    # distance overflow are a known gap of the estimator, not of the file).
    probe, _ = model.sample(30, random_state=0)
    if not _normalised(model.predict_proba(probe)):
        raise AssertionError("load returned a model whose predict_proba is not normalised")
    if np.any(np.isnan(model.score_samples(probe))):
        raise AssertionError("load returned a model whose score_samples has NaN")
    return "loaded"


def check_data(path: str) -> str:
    from gmm.cli import CommandLineError, read_data

    try:
        X, names = read_data(path)
    except CommandLineError:
        return "refused"
    if X.ndim != 2 or X.dtype.kind != "f" or not np.all(np.isfinite(X)):
        raise AssertionError(f"read_data returned {X.dtype} data of shape {X.shape}")
    if names is not None and len(names) != X.shape[1]:
        raise AssertionError("read_data returned a header of the wrong length")
    return "read"


def check_cli(argv: list[str]) -> str:
    from gmm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    errors = err.getvalue()
    if status == 0:
        if "Traceback" in errors:
            raise AssertionError("a traceback on standard error")
        return "exit 0"
    if status not in (1, 2):
        raise AssertionError(f"exit status {status!r}")
    lines = errors.splitlines()
    if len(lines) != 1 or not lines[0].startswith("gmm: error: "):
        raise AssertionError(f"the error is not one line: {errors[:300]!r}")
    return f"exit {status}"


# ================================================================== writers
#: What sits at the end of a path's links, made in a fresh folder.
LEAVES = (
    "nothing",
    "checkpoint",
    "model",
    "text file",
    "read-only file",
    "no-permission file",
    "folder",
    "FIFO",
    "socket",
    "character device",
    "block device",
    "missing folder",
    "file as folder",
)
#: A checkpoint's refusal of an existing file that is not its own.
NOT_OURS = re.compile("is not a gmm sweep checkpoint|was written (for|with) different|is damaged")
WRITERS = (
    "save",
    "checkpoint",
    "checkpoint overwrite",
    "to_csv",
    "cli fit --out",
    "cli sweep --out",
    "cli sweep --table",
    "cli sweep --plot",
    "cli sweep --checkpoint",
)


def disk_state(folder: str) -> dict[str, tuple]:
    """Kind, mode, inode, device number, link text or bytes of every entry under ``folder``."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                body: object = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                body = Path(path).read_bytes()
            else:
                body = None
            state[os.path.relpath(path, folder)] = (
                stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_ino,
                info.st_rdev, body,
            )  # fmt: skip
    return state


def make_leaf(rng: random.Random, folder: str, seeds: dict[str, bytes]) -> tuple[str, str]:
    """``(path, leaf kind)``: one entry of :data:`LEAVES` at a new name in ``folder``."""
    kind = rng.choice(LEAVES)
    path = os.path.join(folder, f"leaf{rng.randrange(10**6)}.png")
    if kind in ("checkpoint", "model", "text file", "read-only file", "no-permission file"):
        content = {"checkpoint": seeds["checkpoint"], "model": seeds["model"]}.get(kind, b"x\n")
        Path(path).write_bytes(content)
        mode = {"read-only file": 0o444, "no-permission file": 0o000}.get(kind, 0o640)
        os.chmod(path, mode)
    elif kind == "folder":
        os.mkdir(path)
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "socket":
        if len(path.encode()) > 100:
            return make_leaf(rng, folder, seeds)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.close()
    elif kind in ("character device", "block device"):
        if os.geteuid() != 0:
            return make_leaf(rng, folder, seeds)
        device = stat.S_IFCHR if kind == "character device" else stat.S_IFBLK
        numbers = rng.choice([(1, 3), (1, 5)]) if device == stat.S_IFCHR else (7, 0)
        os.mknod(path, device | 0o666, os.makedev(*numbers))
    elif kind == "missing folder":
        path = os.path.join(folder, "missing", "leaf.png")
    elif kind == "file as folder":
        Path(path).write_bytes(b"x\n")
        path = os.path.join(path, "leaf.png")
    return path, kind


def make_writer_path(rng: random.Random, folder: str, seeds: dict[str, bytes]) -> tuple[str, str]:
    """``(path, recipe)``: a leaf behind 0 to 3 links (absolute or relative), or a loop."""
    path, recipe = make_leaf(rng, folder, seeds)
    if rng.random() < 0.1:
        first, second = (os.path.join(folder, f"loop{i}.png") for i in (1, 2))
        os.symlink(os.path.basename(second), first)
        os.symlink(first if rng.random() < 0.5 else os.path.basename(first), second)
        return first, "link loop"
    for number in range(rng.choice([0, 0, 1, 1, 2, 3])):
        link = os.path.join(folder, f"link{number}.png")
        absolute = rng.random() < 0.5
        os.symlink(path if absolute else os.path.relpath(path, folder), link)
        recipe = f"{'absolute' if absolute else 'relative'} link to {recipe}"
        path = link
    return path, recipe


def _writable_target(path: str) -> bool:
    """Whether the end of ``path``'s links may be written as a regular file (os.path.realpath)."""
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if os.path.islink(target) or not os.path.isdir(folder) or path.endswith("/"):
        return False
    if not os.path.lexists(target):
        return os.access(folder, os.W_OK | os.X_OK)
    info = os.stat(target)
    return (
        stat.S_ISREG(info.st_mode)
        and bool(info.st_mode & 0o222)
        and os.access(target, os.W_OK)
        and os.access(folder, os.W_OK | os.X_OK)
    )


def check_writer(writer: str, path: str, folder: str, data: str, seeds) -> str:
    """One writer on one path: a clear refusal with nothing changed, or a write through links.

    A refusal must be :class:`gmm.writing.OutputPathError` (or ``CheckpointError``
    for an existing file that is not a checkpoint), one line, naming no temporary
    file, and leave every entry under ``folder`` as it was; a path whose final
    target is a writable regular file, or a new name in a writable folder, must
    be written (except a checkpoint over another file). A write must change only
    the final target (every link kept), give it valid content, and keep its mode.
    """
    from gmm import load
    from gmm.checkpoint import CheckpointError
    from gmm.writing import OutputPathError

    before = disk_state(folder)
    target = os.path.realpath(path)
    existed = os.path.lexists(target) and not os.path.islink(target)
    if writer.startswith("cli"):
        status, err = _writer_cli(writer, path, data)
        refused = status != 0
        if refused and (status != 1 or err.count("\n") != 1 or not err.startswith("gmm: error: ")):
            raise AssertionError(f"exit {status}, not one line: {err[:300]!r}")
        message = err
    else:
        try:
            _writer_api(writer, path, seeds)
            refused, message = False, ""
        except (OutputPathError, CheckpointError) as error:
            refused, message = True, str(error)
            if "\n" in message:
                raise AssertionError(
                    f"a refusal of more than one line: {message[:300]!r}"
                ) from None
    if refused:
        if ".tmp" in message:
            raise AssertionError(f"the error names a temporary file: {message[:300]!r}")
        if disk_state(folder) != before:
            raise AssertionError(f"a refusal changed the disk: {message[:200]!r}")
        not_ours = "checkpoint" in writer and existed and NOT_OURS.search(message)
        if _writable_target(path) and not not_ours:
            raise AssertionError(f"a writable path was refused: {message[:300]!r}")
        return "refused"
    after = disk_state(folder)
    name = os.path.relpath(target, os.path.realpath(folder))
    changed = {entry for entry in set(before) | set(after) if before.get(entry) != after.get(entry)}
    if not changed and "checkpoint" in writer and existed:
        return "resumed"  # the seed checkpoint already held this sweep's fit
    if changed != {name}:
        raise AssertionError(f"a write changed {sorted(changed)}, not only {name!r}")
    kind, mode = after[name][0], after[name][1]
    if kind != stat.S_IFREG:
        raise AssertionError(f"the written target is not a regular file ({kind:#o})")
    if name in before and before[name][1] != mode:
        raise AssertionError(f"mode {before[name][1]:#o} became {mode:#o}")
    content = after[name][4]
    if writer in ("save", "cli fit --out", "cli sweep --out"):
        load(target)
    elif "checkpoint" in writer:
        if not content.startswith(b'{"format":"gmm-sweep-checkpoint"'):
            raise AssertionError("the checkpoint has no header")
    elif writer.endswith("--plot"):
        if not content.startswith(b"\x89PNG"):
            raise AssertionError("the plot is not a PNG")
    elif not content.startswith(b"n_components,covariance_type"):
        raise AssertionError("the table has no header")
    return "written"


def _writer_api(writer: str, path: str, seeds) -> None:
    from gmm import save, sweep

    if writer == "save":
        save(seeds["model_object"], path)
    elif writer == "to_csv":
        seeds["result"].to_csv(path)
    else:
        X = seeds["X"]
        overwrite = writer == "checkpoint overwrite"
        sweep(X, [1], "diag", checkpoint=path, overwrite=overwrite, progress=False)


def _writer_cli(writer: str, path: str, data: str) -> tuple[int, str]:
    from gmm.cli import main

    option = writer.split()[-1]
    if writer.startswith("cli fit"):
        argv = ["fit", data, "--k", "1", "--out", path]
    else:
        argv = ["sweep", data, "--k", "1", "--covariance", "diag", option, path]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    return status, err.getvalue()


class WriterFuzzer:
    """Random existing paths under every writer; each case in a fresh folder."""

    def __init__(self, folder: Path, seed: int = 0) -> None:
        from gmm import GaussianMixture, save, sweep

        self.folder = folder
        self.rng = random.Random(seed)
        X = _blobs(seed)[:40, :2]
        self.data = str(folder / "data.npy")
        np.save(self.data, X)
        model = GaussianMixture(1, random_state=0).fit(X)
        save(model, folder / "seed.npz")
        sweep(X, [1], "diag", checkpoint=folder / "seed.jsonl", progress=False)
        self.seeds = {
            "X": X,
            "model_object": model,
            "result": sweep(X, [1], "diag", progress=False),
            "model": (folder / "seed.npz").read_bytes(),
            "checkpoint": (folder / "seed.jsonl").read_bytes(),
        }
        self.count = 0

    def run_one(self, report: Report, out: Path | None) -> None:
        self.count += 1
        case = self.folder / f"case{self.count}"
        case.mkdir()
        try:
            path, recipe = make_writer_path(self.rng, str(case), self.seeds)
            writer = self.rng.choice(WRITERS)
            outcome, problem = judge(
                lambda: check_writer(writer, path, str(case), self.data, self.seeds)
            )
            text = f"{writer} on {os.path.relpath(path, case)}: {recipe}\n"
            record(report, "writer", recipe.split(" to ")[-1], outcome, problem, out, ".txt",
                   text.encode())  # fmt: skip
        finally:
            shutil.rmtree(case, ignore_errors=True)


# ==================================================================== runner
class Fuzzer:
    """Seeds, damage and oracles in a private folder; one :meth:`case` at a time."""

    def __init__(self, folder: Path, seed: int = 0) -> None:
        self.folder = folder
        self.rng = random.Random(seed)
        self.sentinel = str(folder / "code-ran")
        self.models = seed_models(folder)
        self.data = seed_data()
        self.model_path = str(folder / "seed-named.npz")
        self.probe_path = str(folder / "probe.csv")
        Path(self.probe_path).write_bytes(self.data["csv-plain"][1])
        self.model_damage: dict[str, Callable] = {
            **BLIND,
            "member damage": member_blind,
            "npy header": member_header,
            "member layout": member_layout,
            "metadata JSON": member_metadata,
            "array values": member_values,
            "pickle payload": member_planted(self.sentinel),
        }
        self.csv_damage: dict[str, Callable] = {
            **BLIND,
            "bad cell": bad_cell,
            "bad layout": bad_layout,
        }
        self.npy_damage: dict[str, Callable] = {
            **BLIND,
            "npy header": edit_header,
            "pickle payload": lambda rng, data: planted_npy(self.sentinel, (40, 3)),
        }

    def case(self) -> tuple[str, str, Callable[[], str], bytes, str]:
        """(target, damage name, oracle call, damaged bytes, suffix) of one random case."""
        rng = self.rng
        target = rng.choices(["load", "cli", "data"], weights=[5, 2, 3])[0]
        if target in ("load", "cli"):
            name = rng.choice(list(self.model_damage))
            content = self.model_damage[name](rng, self.models[rng.choice(list(self.models))])
            path = str(self.folder / "case.npz")
            if target == "load":
                return target, name, lambda: check_load(path), content, ".npz"
            argv = rng.choice(
                [
                    ["info", path],
                    ["predict", path, self.probe_path],
                    ["score", path, self.probe_path, "--samples"],
                    ["sample", path, "-n", "3", "--seed", "0"],
                ]
            )
            return target, name, lambda: check_cli(argv), content, ".npz"
        seed_name = rng.choice(list(self.data))
        suffix, original = self.data[seed_name]
        damage = self.csv_damage if suffix == ".csv" else self.npy_damage
        name = rng.choice(list(damage))
        content = damage[name](rng, original)
        path = str(self.folder / f"case{suffix}")
        if rng.random() < 0.3:
            argv = ["score", self.model_path, path]
            return "cli", f"data: {name}", lambda: check_cli(argv), content, suffix
        return target, f"{suffix[1:]}: {name}", lambda: check_data(path), content, suffix

    def run_one(self, report: Report, out: Path | None) -> None:
        target, name, call, content, suffix = self.case()
        (self.folder / f"case{suffix}").write_bytes(content)
        outcome, problem = judge(call)
        if os.path.exists(self.sentinel):
            problem, outcome = "the planted pickle ran", "code execution"
            os.rmdir(self.sentinel)
        record(report, target, name, outcome, problem, out, f"{suffix}", content)


def judge(call: Callable[[], str]) -> tuple[str, str | None]:
    """``(outcome, problem or None)`` of one oracle call, under the time and memory guards."""
    before = peak_memory()
    problem = None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            with time_limit(CALL_SECONDS):
                outcome = call()
    except Hang as hang:
        problem, outcome = str(hang), "hang"
    except AssertionError as error:
        problem, outcome = str(error), "garbage"
    except Exception as error:  # anything but the documented refusal is a crash
        problem, outcome = f"{type(error).__name__}: {error}"[:300], "crash"
    grown = peak_memory() - before
    if problem is None and grown > MEMORY_BOUND:
        problem, outcome = f"peak memory grew by {grown / 2**20:.0f} MB", "memory"
    return outcome, problem


def record(report, target, name, outcome, problem, out, suffix, content: bytes) -> None:
    """Count one case; keep a failure's input under ``out`` to replay."""
    report.cases += 1
    report.outcomes[target, name, outcome] += 1
    if problem is not None:
        saved = None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            saved = str(out / f"failure-{report.cases}{suffix}")
            Path(saved).write_bytes(content)
        report.failures.append(Failure(target, name, problem, saved))


def run(
    seconds: float | None = None,
    iterations: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    target: str = "files",
) -> Report:
    """Fuzz for ``seconds`` of wall time or ``iterations`` cases, whichever ends first.

    ``target`` is 'files' (damaged model and data files against ``load``,
    ``read_data`` and the command line) or 'writers' (random existing paths
    under every writer). The same seed and iteration count give the same cases.
    The seconds count from the first case (fitting the seed models comes before).
    """
    if seconds is None and iterations is None:
        raise ValueError("give seconds or iterations")
    report = Report()
    folder = Path(tempfile.mkdtemp(prefix="gmm-fuzz-"))
    try:
        fuzzer = (WriterFuzzer if target == "writers" else Fuzzer)(folder, seed)
        start = time.perf_counter()
        while (iterations is None or report.cases < iterations) and (
            seconds is None or time.perf_counter() - start < seconds
        ):
            fuzzer.run_one(report, out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzzing",
        description="Fuzz gmm.load, gmm.cli.read_data and the gmm command line.",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--target",
        choices=("files", "writers"),
        default="files",
        help="files: damaged model and data files (default); writers: random existing "
        "paths (links, devices, FIFOs, sockets, folders, read-only files) under every writer",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"failing inputs go here ({DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    report = run(seconds=args.seconds, seed=args.seed, out=args.out, target=args.target)
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
