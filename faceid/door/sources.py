"""Frame sources: a camera index, a video file, a stream URL, or a folder of frames, all
read through OpenCV and yielded as (frame index, RGB array)."""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from faceid.errors import FaceIDError, SourceError
from faceid.imageio import image_files, load_image

SECRET_KEYS = re.compile(r"pass|pwd|token|key|secret|auth|sig|cred", re.IGNORECASE)


def redact(spec: str) -> str:
    """``spec`` as it may be shown or stored: a stream URL's password, and query values
    that look like credentials (token, key, password...), replaced by ``***``. Cameras are
    often reached as ``rtsp://admin:PASSWORD@host/``; the password must not reach stderr,
    the events table or a webhook."""
    if "://" not in spec:
        return spec
    try:
        parts = urlsplit(spec)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username}:***@{netloc.rpartition('@')[2]}"
        query = "&".join(
            f"{k}=***" if SECRET_KEYS.search(k) else (f"{k}={v}" if v or "=" in item else k)
            for item in parts.query.split("&") if item
            for k, _, v in [item.partition("=")])
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not parseable: show nothing of what follows the scheme
        return spec.split("://", 1)[0] + "://***"


def open_capture(spec: str) -> cv2.VideoCapture:
    """Open a camera (``0``, ``1``...), a file or a URL; SourceError when it will not."""
    target: int | str = int(spec) if spec.isdigit() else spec
    if isinstance(target, str) and "://" not in target and not Path(target).exists():
        raise SourceError(f"{spec}: no such video file or camera")
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise SourceError(f"{redact(spec)}: cannot open as a camera, video file or stream")
    return cap


def read_frames(spec: str, *, every: int = 1,
                max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Every ``every``-th frame of the source as (frame index, RGB), up to ``max_frames``
    of them; unreadable frames are skipped (see :class:`FrameSource`)."""
    frames = ((i, f) for i, _, f in FrameSource(spec) if i % every == 0)
    return itertools.islice(frames, max_frames)


class FrameSource:
    """Frames with their time, from any source, for the camera loop.

    Files and folders are read once, with time = index / fps (video time, so a clip gives
    the same decisions however fast the machine is). Cameras and streams use the wall clock
    and reconnect with exponential backoff (capped at ``max_backoff_s``) when they fail or
    drop: forever by default, so a camera reboot never stops a door; with ``retries`` set,
    after that many failed reconnects in a row the source gives up with SourceError. Frames that decode to nothing
    usable are skipped and counted in ``corrupt``.
    """

    def __init__(self, spec: str, *, fps: float | None = None, retries: int | None = None,
                 backoff_s: float = 0.5, max_backoff_s: float = 8.0) -> None:
        self.spec = spec
        self.name = redact(spec)  # what messages and logs show
        self.live = spec.isdigit() or "://" in spec
        self.fps = fps
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.corrupt = 0
        self.reconnects = 0
        self.frames = 0

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        if Path(self.spec).is_dir():
            yield from self._folder()
        else:
            yield from (self._live() if self.live else self._file())

    def _accept(self, frame: np.ndarray | None) -> np.ndarray | None:
        """The frame as RGB, counted; None (and counted as corrupt) when it is unusable."""
        if not _usable(frame):
            self.corrupt += 1
            return None
        self.frames += 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _folder(self) -> Iterator[tuple[int, float, np.ndarray]]:
        fps = self.fps or 15.0
        files = image_files(Path(self.spec))
        for index, f in enumerate(files):
            try:
                frame = load_image(f)
            except FaceIDError:
                self.corrupt += 1
                continue
            self.frames += 1
            yield index, index / fps, frame

    def _file(self) -> Iterator[tuple[int, float, np.ndarray]]:
        cap = open_capture(self.spec)
        fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
        fps = fps if 1 <= fps <= 240 else 25.0
        index = -1
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                index += 1
                if (rgb := self._accept(frame)) is not None:
                    yield index, index / fps, rgb
        finally:
            cap.release()

    def _live(self) -> Iterator[tuple[int, float, np.ndarray]]:
        log = logging.getLogger("faceid.source")
        start = time.monotonic()
        index = -1
        failures = 0
        cap: cv2.VideoCapture | None = None
        while True:
            if cap is None:
                try:
                    cap = open_capture(self.spec)
                except SourceError:
                    failures += 1
                    self._give_up_or_wait(failures, "cannot open", log)
                    continue
            ok, frame = cap.read()
            if not ok:
                cap.release()
                cap = None
                self.reconnects += 1
                failures += 1  # a stream that opens but yields nothing backs off too
                self._give_up_or_wait(failures, "stream dropped", log)
                continue
            failures = 0
            index += 1
            if (rgb := self._accept(frame)) is not None:
                yield index, time.monotonic() - start, rgb

    def _give_up_or_wait(self, failures: int, what: str, log: logging.Logger) -> None:
        """Sleep before the next reconnect (exponential, capped), or raise once ``retries``
        consecutive attempts have failed."""
        if self.retries is not None and failures > self.retries:
            raise SourceError(f"{self.name}: camera or stream lost; gave up after "
                              f"{self.retries} reconnects")
        wait = min(self.max_backoff_s, self.backoff_s * 2 ** min(failures - 1, 16))
        log.warning("%s: %s; retrying in %.1f s", self.name, what, wait)
        time.sleep(wait)


def _usable(frame: np.ndarray | None) -> bool:
    return frame is not None and frame.ndim == 3 and frame.shape[0] > 8 and frame.shape[1] > 8
