"""Replacing a file atomically: write a temporary file beside it, fsync, rename. A reader
(a door reading its calibration, a monitor reading the health file) sees the old file or
the new one, never half of one, and a crash leaves one of the two."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from faceid.errors import WriteFailed, describe


@contextmanager
def replacing(path: Path, mode: str = "w", *, private: bool = False) -> Iterator[IO]:
    """Open a temporary file to write ``path``'s new content into; on a clean exit it is
    synced and renamed over ``path`` (on an error it is removed and ``path`` is untouched).
    ``private`` makes the file readable by its owner only (biometric data, secrets). A
    file that cannot be written (no such folder, a folder in the way, disk full) is a
    :class:`WriteFailed` naming it."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    opener: Callable[[str, int], int] | None = (
        (lambda p, flags: os.open(p, flags, 0o600)) if private else None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, mode, newline="" if "b" not in mode else None, opener=opener) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteFailed(describe(path, f"cannot write ({exc.strerror or exc})")) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the folder itself is gone or unwritable: nothing was left in it


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, atomically."""
    with replacing(path) as fh:
        fh.write(text)
