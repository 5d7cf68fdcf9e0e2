"""Files gmm writes (issue 17, class 1): every kind of path under every writer.

One table of path kinds (regular files, links of every shape, folders, devices,
FIFOs, sockets, read-only files, missing folders) crossed with every writer
(``save``, sweep checkpoints created and overwritten, ``to_csv``, the command
line's ``--out``, ``--table``, ``--plot`` and ``--checkpoint``). Each case
either writes through the links, with every link kept and every other entry on
disk unchanged, or raises the clear error (``OutputPathError`` from the API,
one line and exit 1 from the command line) with nothing on disk changed:
bytes, mode, link-ness, link targets, inodes, device numbers. The permission
cases run as an unprivileged user (uid 65534) in a forked child.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import socket
import stat
import tempfile

import numpy as np
import pytest

from gmm import GaussianMixture, load, save, sweep
from gmm.checkpoint import CheckpointError
from gmm.checkpoint import write_atomically as reexported
from gmm.cli import main
from gmm.writing import OutputPathError

rng = np.random.default_rng(0)
X = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(6, 1, (30, 2))])
MODEL = GaussianMixture(2, random_state=0).fit(X)
RESULT = sweep(X, [1, 2], "diag", progress=False)
OLD = b"old content\n"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
UMASK_MODE = 0o666 & ~_UMASK


# ================================================================ disk state
def snapshot(folder) -> dict:
    """Everything about every entry under ``folder`` that a writer could change."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            entry = [stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_ino]
            entry += [info.st_uid, info.st_gid, info.st_rdev]
            if stat.S_ISLNK(info.st_mode):
                entry.append(os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as file:
                    entry.append(file.read())
            state[os.path.relpath(path, folder)] = entry
    return state


# ================================================================ path kinds
# Every name ends in .png, so the plot writer takes it too (save writes any name).
T = "target.png"


def _file(folder, name=T, mode=0o640, content=OLD):
    path = os.path.join(folder, name)
    with open(path, "wb") as file:
        file.write(content)
    os.chmod(path, mode)
    return path


def _link(folder, name, to):
    path = os.path.join(folder, name)
    os.symlink(to, path)
    return path


def _folder(folder, name="f.png"):
    path = os.path.join(folder, name)
    os.mkdir(path)
    return path


def _fifo(folder):
    path = os.path.join(folder, "p.png")
    os.mkfifo(path)
    return path


def _socket(folder):
    path = os.path.join(folder, "s.png")
    if len(path.encode()) > 100:
        pytest.skip("the folder's path is too long for an AF_UNIX socket (108 bytes)")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(path)
    except OSError as error:
        pytest.skip(f"cannot make a socket file here: {error}")
    finally:
        sock.close()
    return path


def _device(folder, kind, numbers):
    if os.geteuid() != 0:
        pytest.skip("making a device file needs root")
    path = os.path.join(folder, "dev.png")
    os.mknod(path, kind | 0o666, os.makedev(*numbers))
    return path


def _in_linked_folder(folder):
    _file(_folder(folder, "real"))
    _link(folder, "alias", "real")
    return os.path.join(folder, "alias", T)


# kind -> (make(folder) -> the path given to the writer; None: it is written,
# else words of the refusal)
KINDS = {
    "new file": (lambda d: os.path.join(d, T), None),
    "regular file": (lambda d: _file(d), None),
    "absolute link": (lambda d: _link(d, "link.png", _file(d)), None),
    "relative link": (lambda d: (_file(d), _link(d, "link.png", T))[1], None),
    "file in a linked folder": (_in_linked_folder, None),
    "chain of links": (
        lambda d: (_file(d), _link(d, "b.png", T), _link(d, "a.png", "b.png"))[2],
        None,
    ),
    "dangling link, folder exists": (lambda d: _link(d, "link.png", T), None),
    "link loop": (lambda d: (_link(d, "b.png", "a.png"), _link(d, "a.png", "b.png"))[1], "loop"),
    "self link": (lambda d: _link(d, "a.png", "a.png"), "loop"),
    "folder": (_folder, "a folder"),
    "link to a folder": (lambda d: (_folder(d), _link(d, "link.png", "f.png"))[1], "a folder"),
    "trailing slash": (lambda d: os.path.join(d, T) + "/", "names a folder"),
    "character device": (lambda d: _device(d, stat.S_IFCHR, (1, 3)), "a character device"),
    "link to a character device": (
        lambda d: _link(d, "link.png", _device(d, stat.S_IFCHR, (1, 5))),
        "a character device",
    ),
    "block device": (lambda d: _device(d, stat.S_IFBLK, (7, 0)), "a block device"),
    "FIFO": (_fifo, "FIFO"),
    "socket": (_socket, "a socket"),
    "read-only file": (lambda d: _file(d, mode=0o444), "read-only"),
    "link to a read-only file": (lambda d: _link(d, "link.png", _file(d, mode=0o400)), "read-only"),
    "missing folder": (lambda d: os.path.join(d, "missing", T), "does not exist"),
    "dangling link into a missing folder": (
        lambda d: _link(d, "link.png", "missing/" + T),
        "does not exist",
    ),
    "a file used as a folder": (lambda d: os.path.join(_file(d), T), "Not a directory"),
}


# ================================================================== writers
def _checkpoint(path, overwrite=False):
    sweep(X, [1], "diag", checkpoint=path, overwrite=overwrite, progress=False)


def cli(*argv):
    """``gmm.cli.main`` in process: (status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exit:
            status = exit.code
    return status, err.getvalue()


def _model_reads_back(target):
    assert np.array_equal(load(target).predict_proba(X), MODEL.predict_proba(X))


def _checkpoint_reads_back(target):
    with open(target, "rb") as file:
        lines = file.read().splitlines()
    assert len(lines) == 2 and b"gmm-sweep-checkpoint" in lines[0]


def _table_reads_back(target):
    with open(target, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["bic"]) for row in rows] == list(RESULT.table.column("bic"))


def _image(target):
    with open(target, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def _selection_reads_back(target):
    reference = sweep(X, [1, 2], "diag", progress=False).best_estimator_
    assert np.array_equal(load(target).predict_proba(X), reference.predict_proba(X))


def _written(content):
    def check(target):
        with open(target, "rb") as file:
            assert file.read() == content

    return check


SWEEP = ("sweep", "--k", "1:2", "--covariance", "diag")

# writer -> (write(path, data file) -> None for the API or (status, stderr), check(target))
WRITERS = {
    "save": (lambda p, data: save(MODEL, p), _model_reads_back),
    "checkpoint": (lambda p, data: _checkpoint(p), _checkpoint_reads_back),
    "checkpoint overwrite=True": (
        lambda p, data: _checkpoint(p, overwrite=True),
        _checkpoint_reads_back,
    ),
    "to_csv": (lambda p, data: RESULT.to_csv(p), _table_reads_back),
    "gmm.checkpoint.write_atomically": (
        lambda p, data: reexported(p, lambda file: file.write(b"new")),
        _written(b"new"),
    ),
    "cli fit --out": (
        lambda p, data: cli("fit", data, "--k", "2", "--seed", "0", "--out", p),
        _model_reads_back,
    ),
    "cli sweep --out": (
        lambda p, data: cli(*SWEEP[:1], data, *SWEEP[1:], "--out", p),
        _selection_reads_back,
    ),
    "cli sweep --table": (
        lambda p, data: cli(*SWEEP[:1], data, *SWEEP[1:], "--table", p),
        _table_reads_back,
    ),
    "cli sweep --plot": (lambda p, data: cli(*SWEEP[:1], data, *SWEEP[1:], "--plot", p), _image),
    "cli sweep --checkpoint": (
        lambda p, data: cli("sweep", data, "--k", "1", "--covariance", "diag", "--checkpoint", p),
        _checkpoint_reads_back,
    ),
}

CASES = [(kind, writer) for kind in KINDS for writer in WRITERS]
#: Writers that refuse an existing file that is not theirs (the old bytes are not a
#: checkpoint): a refusal with nothing changed, like the path kinds' refusals.
NOT_A_CHECKPOINT = {"checkpoint", "cli sweep --checkpoint"}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "data.npy"
    np.save(path, X)
    return str(path)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind, writer", CASES, ids=[f"{k} | {w}" for k, w in CASES])
def test_every_path_kind_under_every_writer(tmp_path, data_file, kind, writer):
    make, refusal = KINDS[kind]
    write, check = WRITERS[writer]
    folder = tmp_path / "case"
    folder.mkdir()
    path = make(str(folder))
    links = {link: os.readlink(link) for link in _links(folder)}
    before = snapshot(folder)
    error_type = OutputPathError
    if refusal is None and writer in NOT_A_CHECKPOINT and os.path.exists(path):
        refusal, error_type = "is not a gmm sweep checkpoint", CheckpointError
    if refusal is not None:
        if writer.startswith("cli"):
            status, err = write(path, data_file)
            assert status == 1 and err.startswith("gmm: error: "), err
            assert err.count("\n") == 1 and refusal in err, err
        else:
            with pytest.raises(error_type, match=refusal) as error:
                write(path, data_file)
            assert "\n" not in str(error.value) and ".tmp" not in str(error.value)
        assert snapshot(folder) == before
        return
    answer = write(path, data_file)
    assert answer is None or answer[0] == 0, answer
    target = os.path.realpath(path)  # the end of the links, by Python's own resolver
    check(target)
    after = snapshot(folder)
    # Every link is still the same link; only the link's target changed.
    assert {link: os.readlink(link) for link in _links(folder)} == links
    name = os.path.relpath(target, os.path.realpath(folder))
    assert {n for n in after if after[n] != before.get(n)} == {name}
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode == (before[name][1] if name in before else UMASK_MODE)


def _links(folder):
    return [
        os.path.join(root, name)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
        if os.path.islink(os.path.join(root, name))
    ]


# ===================================================== as an unprivileged user
NOBODY = 65534


def as_nobody(function) -> str:
    """``function()`` in a forked child running as uid and gid 65534: its outcome as text."""
    if os.name != "posix" or not hasattr(os, "fork"):
        pytest.skip("dropping privileges needs POSIX fork and setuid")
    if os.geteuid() != 0:
        pytest.skip("not root: cannot drop to another user to test permissions")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                function()
                outcome = "written"
            except BaseException as error:
                outcome = f"{type(error).__name__}: {error}"
            os.write(write, outcome.encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.fixture
def shared_folder():
    """A fresh folder under /tmp that the unprivileged user can reach and write."""
    folder = tempfile.mkdtemp(dir="/tmp", prefix="gmm-writing-")
    os.chmod(folder, 0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _checkpoint_of_other_data(path):
    sweep(X + 1, [1], "diag", checkpoint=path, progress=False)


# writer -> write(path) run as the unprivileged user
NOBODY_WRITERS = {
    "save": lambda p: save(MODEL, p),
    "to_csv": RESULT.to_csv,
    "checkpoint overwrite=True": lambda p: _checkpoint(p, overwrite=True),
    "cli fit --out": lambda p: _cli_raises("fit", "/nonexistent.npy", "--k", "2", "--out", p),
    "cli sweep --table": lambda p: _cli_raises("sweep", "/nonexistent.npy", "--table", p),
}


def _cli_raises(*argv):
    status, err = cli(*argv)
    raise RuntimeError(f"exit {status}: {err.strip()}")


# place -> (make(shared folder) -> the path, words of the refusal)
NOBODY_PLACES = {
    "root's 0o644 file in a folder anyone may write": (
        lambda d: _checkpoint_of_other_data(os.path.join(d, T)) or os.path.join(d, T),
        "permission denied (this user may not write the file)",
    ),
    "a 0o666 file in a folder only root may write": (
        lambda d: _file(_folder(d, "private"), mode=0o666),
        "may not create files in",
    ),
    "a link to root's file": (
        lambda d: (_file(d, mode=0o644), _link(d, "link.png", T))[1],
        "permission denied (this user may not write the file)",
    ),
    "a new file in a folder only root may write": (
        lambda d: os.path.join(_folder(d, "private"), T),
        "may not create files in",
    ),
}
NOBODY_CASES = [(place, writer) for place in NOBODY_PLACES for writer in NOBODY_WRITERS]


@pytest.mark.parametrize("place, writer", NOBODY_CASES, ids=[f"{p} | {w}" for p, w in NOBODY_CASES])
def test_a_file_the_user_may_not_write_is_refused_not_swapped(shared_folder, place, writer):
    make, words = NOBODY_PLACES[place]
    path = make(shared_folder)
    before = snapshot(shared_folder)
    outcome = as_nobody(lambda: NOBODY_WRITERS[writer](path))
    assert words in outcome and "Error" in outcome, outcome
    if writer.startswith("cli"):
        assert "exit 1: gmm: error: --" in outcome, outcome
    # The overwrite=True checkpoint was not wiped, nothing was swapped or left behind.
    assert snapshot(shared_folder) == before


def test_the_unprivileged_user_writes_its_own_file_keeping_mode(shared_folder):
    path = _file(shared_folder, mode=0o600)
    os.chown(path, NOBODY, NOBODY)
    outcome = as_nobody(lambda: save(MODEL, path))
    assert outcome == "written"
    _model_reads_back(path)
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (NOBODY, NOBODY, 0o600)


def test_root_replacing_another_users_file_keeps_its_owner_and_mode(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root may give a file to another user")
    path = _file(str(tmp_path), mode=0o640)
    os.chown(path, NOBODY, NOBODY)
    save(MODEL, path)
    _model_reads_back(path)
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (NOBODY, NOBODY, 0o640)
