"""Every file gmm writes: where it may go, and how it is put there atomically.

Model files (:func:`gmm.save`), sweep checkpoints, the sweep table's CSV and the
command line's ``--out``, ``--table``, ``--plot`` and ``--checkpoint`` all go
through :func:`check_output_path` (before any work) and
:func:`write_atomically` (at the end). The rules:

- A symbolic link is followed (relative links and chains of links too) and its
  final target is written; the link stays a link. A dangling link whose folder
  exists creates its target. A loop of links is refused.
- Only regular files are replaced. A folder, a character or block device, a
  FIFO or a socket at the path (or at the end of its links) is refused, never
  replaced and never read.
- A file we may not write is refused instead of being swapped out from under
  its permissions: one with no write bit at all (mode 0o444 and the like, even
  for root, as careful tools do), one ``os.access`` says this user may not
  write, and one whose folder does not let us create the temporary file.
- A replaced file keeps its mode (and, when the process may, its owner and
  group); a new file gets ``0o666`` less the umask.
- Errors name the user's path, never the temporary file.

The checks and the rename are separate system calls: another process that
swaps the path in between is not defended against (there is no lock). A hard
link cannot be followed: the rename gives the path a new inode, and the file's
other names keep the old content.

Examples
--------
>>> import os, tempfile
>>> from gmm.writing import check_output_path, write_atomically
>>> folder = tempfile.mkdtemp()
>>> os.symlink("model.npz", os.path.join(folder, "latest.npz"))
>>> check_output_path(os.path.join(folder, "latest.npz")) == os.path.join(
...     os.path.realpath(folder), "model.npz")
True
>>> write_atomically(os.path.join(folder, "latest.npz"), lambda file: file.write(b"v1"))
>>> os.path.islink(os.path.join(folder, "latest.npz"))
True
>>> open(os.path.join(folder, "model.npz"), "rb").read()
b'v1'
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from typing import IO

#: Links followed before a path counts as a loop (Linux's own limit is 40).
MAX_LINKS = 40

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


class OutputPathError(ValueError):
    """A path gmm was asked to write cannot or must not be written; the message says why."""


def file_kind(mode: int) -> str:
    """``'a regular file'``, ``'a folder'``, ``'a character device'``, ... for an ``st_mode``."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def resolve_links(path: str | os.PathLike) -> str:
    """The absolute path at the end of ``path``'s chain of symbolic links.

    Folders on the way are resolved with :func:`os.path.realpath`; the last
    component is followed link by link, so a dangling link gives the path it
    points to. O(number of links) system calls.

    Raises
    ------
    OutputPathError
        For a loop (more than :data:`MAX_LINKS` links), naming ``path``.
    """
    shown = os.fspath(path)
    current = os.path.abspath(shown)
    for _ in range(MAX_LINKS):
        current = os.path.join(
            os.path.realpath(os.path.dirname(current)), os.path.basename(current)
        )
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return current
        except OSError as error:  # ELOOP or ENOTDIR in the folders on the way
            raise OutputPathError(
                f"cannot write {shown!r}: {error.strerror or error}. Choose another path."
            ) from None
        if not stat.S_ISLNK(mode):
            return current
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    raise OutputPathError(
        f"cannot write {shown!r}: its symbolic links form a loop (more than {MAX_LINKS} "
        "links). Fix the links or choose another path."
    )


def check_output_path(path: str | os.PathLike) -> str:
    """Check that gmm may write ``path``; return the regular file that would be written.

    Cheap (a few ``stat`` calls, nothing is created or read): call it before
    any work whose result goes to ``path``. :func:`write_atomically` calls it
    again when it writes.

    Parameters
    ----------
    path : str or os.PathLike
        Where the user asked for the output.

    Returns
    -------
    str
        The absolute path of the file that will be replaced or created: the end
        of ``path``'s symbolic links.

    Raises
    ------
    OutputPathError
        When the path (or the end of its links) is a folder, a device, a FIFO or
        a socket; when it is a file with no write bit (refused even for root) or
        one this user may not write; when its folder does not exist, is not a
        folder, or does not let this user create files; for a loop of links;
        for an empty path. The message names ``path`` and says how to fix it.

    Examples
    --------
    >>> import tempfile
    >>> from gmm.writing import OutputPathError, check_output_path
    >>> folder = tempfile.mkdtemp()
    >>> try:
    ...     check_output_path(folder)
    ... except OutputPathError as error:
    ...     print("it is a folder" in str(error))
    True
    """
    shown = os.fspath(path)
    if not isinstance(shown, str):
        shown = os.fsdecode(shown)
    if not shown:
        raise OutputPathError("cannot write '': the path is empty. Give a file name.")
    if shown.endswith(("/", os.sep)):
        raise OutputPathError(f"cannot write {shown!r}: it names a folder. Give a file name.")
    target = resolve_links(shown)
    where = f"{shown!r} (a link to {target!r})" if os.path.islink(shown) else repr(shown)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise OutputPathError(
            f"cannot write {where}: {error.strerror or error}. Choose another path."
        ) from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            kind = file_kind(info.st_mode)
            raise OutputPathError(
                f"cannot write {where}: it is {kind}, not a file; gmm replaces only "
                "regular files. Choose a file name."
            )
        if not info.st_mode & 0o222:
            raise OutputPathError(
                f"cannot write {where}: the file is read-only (mode "
                f"{stat.S_IMODE(info.st_mode):#o}); gmm does not replace read-only files, "
                "even as root. Make it writable (chmod u+w) or choose another path."
            )
        if not os.access(target, os.W_OK):
            raise OutputPathError(
                f"cannot write {where}: permission denied (this user may not write the "
                "file). Choose another path."
            )
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputPathError(
            f"cannot write {where}: the folder {folder!r} does not exist. Create it "
            "first or choose another path."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"cannot write {where}: permission denied (this user may not create files "
            f"in {folder!r}, which an atomic write needs). Choose another folder."
        )
    return target


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file so that readers see the old content or the new, never a mixture.

    ``path`` is checked by :func:`check_output_path` first (links are followed
    and their target replaced; anything but a writable regular file is refused
    before ``write`` runs). ``write(file)`` then fills a temporary file in the
    target's folder, which is fsynced and renamed over the target
    (``os.replace``); on any error, or an interruption, the temporary file is
    removed and the target is untouched. The new file gets the mode of the file
    it replaces (and its owner and group, when the process may set them), or
    the usual mode for a new file (``0o666`` less the umask) rather than
    ``mkstemp``'s private ``0o600``. An ``OSError`` of the write (a full disk,
    a folder removed meanwhile) is raised again naming ``path``, not the
    temporary file.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        Called once with a binary file open for writing.

    Raises
    ------
    OutputPathError
        From :func:`check_output_path`, before ``write`` is called.
    OSError
        When the write or the rename fails; ``filename`` is ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from gmm.checkpoint import write_atomically
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> write_atomically(path, lambda file: file.write(b"hello"))
    >>> open(path, "rb").read()
    b'hello'
    """
    shown = os.fspath(path)
    target = check_output_path(shown)
    folder = os.path.dirname(target)
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder
        )
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        _copy_ownership(tmp, old)
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(error, OSError) and not isinstance(error, OutputPathError):
            raise OSError(error.errno, error.strerror or str(error), shown) from None
        raise
    fsync_folder(folder)


def _copy_ownership(tmp: str, old: os.stat_result | None) -> None:
    if old is None:
        os.chmod(tmp, 0o666 & ~_umask())
        return
    os.chmod(tmp, stat.S_IMODE(old.st_mode))
    mine = os.stat(tmp)
    if (mine.st_uid, mine.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.chown(tmp, old.st_uid, old.st_gid)
        except OSError:  # only root (or a member of the group) may; best effort
            pass
        else:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))  # chown clears set-id bits


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


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
