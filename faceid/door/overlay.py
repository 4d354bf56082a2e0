"""Drawing the loop's view of a frame (boxes, names, distances, liveness, prompts) for
``watch --show`` and ``--record``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceid.errors import InputError
from faceid.door.turnstile import FrameReport

COLOURS = {"granted": (0, 200, 0), "denied": (220, 0, 0), "checking": (230, 180, 0),
           "tracking": (200, 200, 200), "cooldown": (120, 120, 255), "idle": (200, 200, 200)}


def annotate(frame: np.ndarray, report: FrameReport) -> np.ndarray:
    """A copy of the RGB frame with the report drawn on it."""
    out = np.ascontiguousarray(frame.copy())
    colour = COLOURS.get(report.state, (255, 255, 255))
    for face in report.faces:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
    lines = [report.state.upper()]
    if report.label:
        lines.append(report.label)
    if report.liveness is not None:
        lines.append(f"liveness {report.liveness:.2f}")
    if report.prompt:
        lines.append(f"please {report.prompt.replace('_', ' ')}")
    for d in report.decisions:
        lines.append(f"{d.decision}: {d.reason}"
                     + (f" d={d.distance:.3f}" if d.distance is not None else ""))
    for i, text in enumerate(lines):
        cv2.putText(out, text, (8, 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                    cv2.LINE_AA)
    return out


class Recorder:
    """Writes annotated frames to a video file (the codec from the suffix: .avi MJPG, .mp4
    mp4v). The file is tried at construction, so a path that cannot be written fails when
    the door starts, not silently at the end."""

    SUFFIXES = {".avi": "MJPG", ".mp4": "mp4v"}

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        fourcc = self.SUFFIXES.get(self.path.suffix.lower())
        if fourcc is None:
            raise InputError(f"{self.path}: record to a .mp4 or .avi file")
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: no such folder {str(self.path.parent)!r}")
        self.fourcc = cv2.VideoWriter_fourcc(*fourcc)
        probe = cv2.VideoWriter(str(self.path), self.fourcc, fps, (64, 64))
        opened = probe.isOpened()
        probe.release()
        if not opened:
            raise InputError(f"{self.path}: cannot write a video file here")

    def write(self, frame: np.ndarray, report: FrameReport) -> None:
        img = cv2.cvtColor(annotate(frame, report), cv2.COLOR_RGB2BGR)
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), self.fourcc, self.fps,
                                          (img.shape[1], img.shape[0]))
        self.writer.write(img)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
