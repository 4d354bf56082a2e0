"""Face quality measures shared by enrolment and the camera loop: sharpness of the aligned
chip and a head-pose estimate from the five MTCNN landmarks.

Why these: a blurred or turned face makes a poor template (its encoding sits far from the
person's other images), and both are cheap to compute from what the pipeline already has.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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


def face_quality(chip: np.ndarray, face_size: float, landmarks: np.ndarray,
                 min_face: float) -> tuple[float, float]:
    """(quality 0..1, sharpness): the product of size, sharpness and frontalness scores,
    each saturating at twice its minimum, used to rank frames and templates."""
    sharp = sharpness(chip, face_size)
    size_score = min(1.0, face_size / (2 * min_face))
    sharp_score = min(1.0, sharp / (2 * MIN_SHARPNESS))
    return size_score * sharp_score * head_pose(landmarks).frontalness, sharp
