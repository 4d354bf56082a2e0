"""Opening the files users name: regular files only, checked before a byte is read, and
read with a size limit.

A FIFO or a link to ``/dev/zero`` given as a photo, a pair list or a model file used to
hang faceid (hashing or reading it never ended) or read until memory ran out. The file is
opened non-blocking (opening a FIFO with no writer returns at once) and its type taken from
the open descriptor (``fstat``), so there is no window between the check and the read in
which a file could be swapped for something else.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from faceid.errors import FileMissing, FileTooLarge, InputError, NotAFile, UsageError, describe
from faceid.terminal import shown

_KINDS = ((stat.S_ISDIR, "is a directory, not a file"),
          (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
          (stat.S_ISCHR, "is a character device, not a regular file"),
          (stat.S_ISBLK, "is a block device, not a regular file"),
          (stat.S_ISSOCK, "is a socket, not a regular file"))


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (symbolic links
    followed); else :class:`FileMissing` or :class:`NotAFile` naming it and why."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _error(path, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            why = next((text for test, text in _KINDS if test(mode)), "is not a regular file")
            raise NotAFile(describe(path, why))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, refused (:class:`FileTooLarge`) past ``limit``
    bytes without reading more than ``limit + 1``."""
    with open_regular(path) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(describe(path, f"{what} is larger than the {limit:,}-byte limit"))
    return data


def _error(path: Path, exc: OSError) -> InputError:
    if exc.errno == errno.ENOENT:
        return FileMissing(describe(path, "no such file"))
    if exc.errno == errno.ENAMETOOLONG:
        return FileMissing(describe(shown(path, 80), "path too long"))
    if exc.errno in (errno.EACCES, errno.EPERM):
        return NotAFile(describe(path, "permission denied"))
    if exc.errno == errno.ENOTDIR:
        return FileMissing(describe(path, "a part of the path is not a folder"))
    return NotAFile(describe(path, exc.strerror or str(exc)))


def writable_target(path: str | Path, option: str) -> Path:
    """``path`` if a result file can be written there (checked before a long run, not
    after it): not a folder, its folder exists and is writable; else :class:`UsageError`
    naming ``option``."""
    path = Path(path)
    try:
        if path.is_dir():
            raise UsageError(f"{option} {path}: is a folder; give a file name")
        folder = path.parent
        if not folder.is_dir():
            raise UsageError(f"{option} {path}: no such folder {str(folder)!r}")
    except OSError as exc:
        raise UsageError(f"{option} {shown(path, 80)}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in {str(folder)!r}")
    return path

