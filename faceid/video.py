"""Frame sources: a camera index, a video file, a stream URL, or a folder of frames, all
read through OpenCV and yielded as (frame index, RGB array)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from faceid.errors import FaceIDError, SourceError
from faceid.imageio import load_image

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def open_capture(spec: str) -> cv2.VideoCapture:
    """Open a camera (``0``, ``1``...), a file or a URL; SourceError when it will not."""
    target: int | str = int(spec) if spec.isdigit() else spec
    if isinstance(target, str) and "://" not in target and not Path(target).exists():
        raise SourceError(f"{spec}: no such video file or camera")
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise SourceError(f"{spec}: cannot open as a camera, video file or stream")
    return cap


def read_frames(spec: str, *, every: int = 1,
                max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Every ``every``-th frame of the source, up to ``max_frames`` of them. A folder is read
    as sorted image files; unreadable ones are skipped."""
    path = Path(spec)
    count = 0
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in FRAME_SUFFIXES)
        for i, f in enumerate(files[::every]):
            if max_frames is not None and count >= max_frames:
                return
            try:
                yield i * every, load_image(f)
            except FaceIDError:
                continue
            count += 1
        return
    cap = open_capture(spec)
    try:
        index = -1
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok:
                return
            index += 1
            if index % every:
                continue
            count += 1
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
