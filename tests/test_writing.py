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
import socket
import stat

import numpy as np
import pytest

from gmm import GaussianMixture, load, save, sweep
from gmm.checkpoint import CheckpointError
from gmm.checkpoint import write_atomically as reexported
from gmm.cli import main
from gmm.writing import OutputPathError, check_output_path

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
    target = check_output_path(path)
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
