"""Face quality: the one gate every path runs on a face before it is encoded
(:class:`QualityGate`: enrolment from photos, folders and video, re-embedding, and the door),
and the measures it is made of: sharpness of the aligned chip and a head-pose estimate from
the five landmarks.

Why these: a blurred or turned face makes a poor template (its encoding sits far from the
person's other images), and both are cheap to compute from what the pipeline already has.
Checking before encoding also saves the encoder's time on faces that would be thrown away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from faceid.detection import Face

MIN_SHARPNESS = 25.0  # Laplacian variance at the face's own resolution (see docs/DESIGN-NOTES.md)


def sharpness(chip: np.ndarray, face_size: float | None = None) -> float:
    """Variance of the Laplacian of the grey chip, low for blurred faces. With
    ``face_size`` the chip is first brought back to about the face's own resolution, so a
    small but sharp face (upsampled into the chip) is not mistaken for a blurred one."""
    grey = cv2.cvtColor(np.ascontiguousarray(chip), cv2.COLOR_RGB2GRAY)
    if face_size is not None and face_size < grey.shape[0]:
        side = max(16, int(round(face_size)))
        grey = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass(frozen=True)
class Pose:
    """Head pose proxies from landmarks, both 0 for a frontal face: ``yaw`` is the nose's
    sideways offset from the eye midpoint in inter-ocular units (positive: the nose points to
    the image's right), ``pitch`` its vertical offset from where it sits on a level face,
    in eye-to-mouth units (positive: looking down)."""

    yaw: float
    pitch: float
    roll: float  # degrees, the eye line's tilt

    @property
    def frontalness(self) -> float:
        """1 for a frontal face, falling to 0 at about 45 degrees of yaw or pitch."""
        return float(max(0.0, 1.0 - 2.0 * max(abs(self.yaw), abs(self.pitch))))


LEVEL_NOSE = 0.53  # nose height between eye line and mouth line on a level face (LFW median)


def head_pose(landmarks: np.ndarray) -> Pose:
    """Pose from (5, 2) landmarks: left eye, right eye, nose, left and right mouth corner."""
    le, re, nose, lm, rm = np.asarray(landmarks, dtype=np.float64)
    eyes = (le + re) / 2
    mouth = (lm + rm) / 2
    axis = re - le
    iod = float(np.hypot(*axis)) or 1.0
    ex = axis / iod  # unit vector along the eye line
    ey = np.array([-ex[1], ex[0]])  # perpendicular, pointing down the face
    rel = nose - eyes
    height = float(np.dot(mouth - eyes, ey)) or 1.0
    return Pose(yaw=float(np.dot(rel, ex) / iod),
                pitch=float(np.dot(rel, ey) / height - LEVEL_NOSE),
                roll=float(np.degrees(np.arctan2(axis[1], axis[0]))))


@dataclass(frozen=True)
class Assessment:
    """One face through the gate: ``quality`` (0..1, ranks frames and templates),
    ``sharpness`` (None when the gate stopped before measuring it) and ``reason`` (why the
    face is refused; None: usable)."""

    quality: float
    sharpness: float | None
    reason: str | None


@dataclass(frozen=True)
class QualityGate:
    """What a face must be before it is encoded. ``min_face``: the shorter box side in px;
    ``min_sharpness``: Laplacian variance at the face's resolution (None: not checked, as
    for re-embedding faces accepted once already); ``max_yaw``: the nose's sideways offset
    in inter-ocular units (None: not checked; the door sets it, enrolment ranks by
    frontalness instead)."""

    min_face: float = 40.0
    min_sharpness: float | None = MIN_SHARPNESS
    max_yaw: float | None = None

    def assess(self, face: Face, chip: Callable[[], np.ndarray]) -> Assessment:
        """Size and pose first (free), then sharpness on ``chip()``, the aligned chip at
        scale 1, made only when those pass."""
        if face.size < self.min_face:
            return Assessment(0.0, None, f"face is {face.size:.0f} px, smaller than the "
                                         f"{self.min_face:.0f} px minimum")
        pose = head_pose(face.landmarks)
        if self.max_yaw is not None and abs(pose.yaw) > self.max_yaw:
            return Assessment(0.0, None, f"face turned too far (yaw {pose.yaw:+.2f}, "
                                         f"limit {self.max_yaw:g})")
        sharp = sharpness(chip(), face.size)
        if self.min_sharpness is not None and sharp < self.min_sharpness:
            return Assessment(0.0, sharp, f"face too blurred to enrol (sharpness {sharp:.1f}"
                                          f" < {self.min_sharpness:g})")
        size_score = min(1.0, face.size / (2 * self.min_face))
        sharp_score = min(1.0, sharp / (2 * MIN_SHARPNESS))
        return Assessment(size_score * sharp_score * pose.frontalness, sharp, None)
