"""Drawing the loop's view of a frame (boxes, names, distances, liveness, prompts) for
``watch --show`` and ``--record``."""

from __future__ import annotations

import cv2
import numpy as np

from faceid.turnstile import FrameReport

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
    """Writes annotated frames to a video file (the codec from the suffix: .avi MJPG, else
    mp4v)."""

    def __init__(self, path: str, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray, report: FrameReport) -> None:
        img = cv2.cvtColor(annotate(frame, report), cv2.COLOR_RGB2BGR)
        if self.writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.endswith(".avi") else "mp4v"))
            self.writer = cv2.VideoWriter(self.path, fourcc, self.fps,
                                          (img.shape[1], img.shape[0]))
        self.writer.write(img)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
