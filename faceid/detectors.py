"""Choosing the face detector: MTCNN (``faceid.detection``) or YuNet (``faceid.yunet``).

Both give the same :class:`~faceid.detection.Face` with O-Net-refined points, so a template
enrolled through one matches a probe found by the other (``docs/BENCHMARKS.md``, "A faster
detector", measures how closely). The choice is per process: ``faceid --detector`` or
``FACEID_DETECTOR``. Unset, photos on the command line go through MTCNN (the most accurate
on LFW by 0.1 point), ``faceid serve`` through YuNet on photos up to 640 px (a request's
latency), and video (``watch``) through YuNet on frames shrunk to 320 px: a door has 33 ms
per frame at 30 fps, and MTCNN alone takes 35-45 ms of it.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from faceid.detection import Face, FaceDetector
from faceid.errors import UsageError
from faceid.pick import DetectorName

VIDEO_SIDE = 320  # px: YuNet on a 640x480 frame at half size finds faces of 20 to 600 px


class Detector(Protocol):
    """What the pipeline needs of a detector."""

    name: str
    refine: bool

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]: ...


def default_detector(video: bool = False, server: bool = False) -> DetectorName:
    """``FACEID_DETECTOR`` when set (a usage error naming it when it is not a detector's
    name), else YuNet for ``video`` and for the HTTP ``server`` (its latency target needs
    the faster detector; bench.serve_latency), MTCNN for photos on the command line."""
    text = os.environ.get("FACEID_DETECTOR", "").strip().lower()
    if not text:
        return DetectorName.yunet if video or server else DetectorName.mtcnn
    try:
        return DetectorName(text)
    except ValueError:
        names = ", ".join(d.value for d in DetectorName)
        raise UsageError(f"FACEID_DETECTOR={text[:40]!r} is not one of {names}") from None


def make_detector(name: DetectorName | str | None = None, *, video: bool = False,
                  device: str = "cpu") -> Detector:
    """A detector by name (default: :func:`default_detector`); ``video`` sets it up for
    frames (YuNet at :data:`VIDEO_SIDE`)."""
    name = DetectorName(name) if name is not None else default_detector(video)
    if name is DetectorName.yunet:
        from faceid.yunet import YuNetDetector

        return YuNetDetector(device=device, **({"max_side": VIDEO_SIDE} if video else {}))
    return FaceDetector(device=device)
