"""Where event files are: local paths through ``os``, ``scheme://`` paths through ``tf.io.gfile``.

TensorFlow is imported only for a path with a scheme (``gs://``, ``s3://``,
``ram://``, ...), so reading local runs stays free of it.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from typing import IO, Any


def is_remote(path: str) -> bool:
    """Whether ``path`` names a file system of TensorFlow's (``scheme://...``).

    Examples:
        >>> is_remote("gs://bucket/logs"), is_remote("logs/run")
        (True, False)
    """
    return "://" in path


def _gfile() -> Any:
    import tensorflow as tf

    return tf.io.gfile


def isdir(path: str) -> bool:
    """Whether ``path`` is a directory, on any file system."""
    return bool(_gfile().isdir(path)) if is_remote(path) else os.path.isdir(path)


def join(directory: str, name: str) -> str:
    """``directory/name``, with ``/`` on remote file systems."""
    return (
        posixpath.join(directory, name) if is_remote(directory) else os.path.join(directory, name)
    )


def dirname(path: str) -> str:
    """The folder of ``path``, on any file system."""
    return posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)


def relative_parts(root: str, directory: str) -> list[str]:
    """The folders of ``directory`` below ``root``: ``[]`` for root itself."""
    if is_remote(root):
        rel = posixpath.relpath(directory.split("://", 1)[1], root.split("://", 1)[1])
        return [] if rel == "." else rel.split("/")
    prefix = root if root.endswith(os.sep) else root + os.sep
    if directory.startswith(prefix):  # Fast path: a folder walked from root, as joined
        rel = os.path.normpath(directory[len(prefix) :])
    else:
        rel = os.path.relpath(directory, root)
    return [] if rel == "." else rel.split(os.sep)


def walk(
    root: str, aliases: list[tuple[str, str, str]] | None = None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` (top down, sorted) on any file system, into symlinked folders too.

    A local folder is walked once, whatever the number of names it has: the
    folders under ``root`` first, then each symlinked folder (sorted, under the
    link's name) whose target was not walked yet. A symlink to a folder already
    walked (a loop back to a parent, or a second name such as ``latest``) is
    not followed: it is added to ``aliases``, when given, as
    ``(link, its target, the name the target was walked under)``.
    """
    if is_remote(root):
        for directory, dirs, files in _gfile().walk(root):
            dirs.sort()
            yield str(directory), dirs, sorted(str(f) for f in files)
        return
    walked: dict[tuple, str] = {}  # a folder's identity -> the name it was walked under
    tops = [root]
    while tops:
        top = tops.pop(0)
        key = _identity(top)
        if key in walked:
            if aliases is not None:
                aliases.append((top, os.path.realpath(top), walked[key]))
            continue
        walked[key] = top
        links: list[str] = []
        for directory, dirs, files, linked in _walk_local(top):
            links += [os.path.join(directory, name) for name in linked]
            # Every folder's identity (a stat each), not only below a symlink: a bind mount
            # is a second name of a folder that no symlink reveals.
            for name in list(dirs):
                path = os.path.join(directory, name)
                key = _identity(path)
                if key in walked:  # inside a link's target or a mount: walked under another name
                    dirs.remove(name)
                    if aliases is not None:
                        aliases.append((path, os.path.realpath(path), walked[key]))
                else:
                    walked[key] = path
            yield directory, sorted(dirs + linked), files
        tops = sorted(tops + links)


def _walk_local(top: str) -> Iterator[tuple[str, list[str], list[str], list[str]]]:
    """``(folder, its folders, its files, its symlinked folders)`` top down, sorted, without
    entering symlinked folders (``os.walk``, with the links told apart from the directory
    listing rather than by one more ``lstat`` each). Folders removed from the list given
    are not entered; an unreadable folder is passed over, as by ``os.walk``."""
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError:
            continue
        dirs, files, linked = [], [], []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(entry.name)
            elif entry.is_symlink():
                linked.append(entry.name)
            else:
                dirs.append(entry.name)
        dirs.sort()
        yield directory, dirs, sorted(files), sorted(linked)
        stack += [os.path.join(directory, name) for name in reversed(dirs)]


def _identity(path: str) -> tuple:
    """What names one folder whatever the path to it: its device and inode (one ``stat``,
    where its real path costs one per path component), or its real path when it cannot be
    read."""
    try:
        info = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return (info.st_dev, info.st_ino)


def open_sized(path: str) -> tuple[IO[bytes], int]:
    """An open binary file and its size; refuses what is not a regular file.

    Checks with ``os.stat`` before opening, so a FIFO named like an event file
    is never opened (opening one blocks until a writer appears).

    Raises:
        OSError: With a message saying what ``path`` is instead, when it is
            not a readable regular file (a dangling symlink, a FIFO, a folder,
            a file without read permission).
    """
    if is_remote(path):
        gfile = _gfile()
        try:
            size = int(gfile.stat(path).length)
            return gfile.GFile(path, "rb"), size
        except Exception as error:  # noqa: BLE001 - TF raises its own error types
            raise OSError(f"cannot read {path!r}: {error}") from error
    info = os.stat(path)  # follows symlinks: a dangling one raises FileNotFoundError
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO or device)"
        raise OSError(f"{path!r} is {kind}")
    return open(path, "rb"), info.st_size  # noqa: SIM115 - the caller closes it


def version(path: str) -> tuple[int, int] | None:
    """``(size, modification time in ns)`` of a file, or None when it cannot be stat'ed.

    Examples:
        >>> version("no-such-file") is None
        True
    """
    try:
        if is_remote(path):
            info = _gfile().stat(path)
            return int(info.length), int(info.mtime_nsec)
        found = os.stat(path)
    except Exception:  # noqa: BLE001 - gone, unreadable, or TF's own error types
        return None
    return found.st_size, found.st_mtime_ns


def read_from(path: str, start: int) -> bytes:
    """The bytes of a local file from ``start`` to its end (raises ``OSError``)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read()


def cut_broken_tail(path: str, start: int) -> None:
    """Cuts what follows the whole records after byte ``start`` off a local event file: a
    record a failed write left incomplete, so that the file reads to its end without a
    warning. Best effort (never raises); remote files are left as they are.
    """
    from lossboard.events import framing

    if is_remote(path):
        return
    try:
        with open(path, "r+b") as handle:
            handle.seek(start)
            good = start + framing.whole_prefix(handle.read())
            if os.fstat(handle.fileno()).st_size > good:
                handle.truncate(good)
    except OSError:
        pass
