"""Face detection with MTCNN (facenet-pytorch; its P/R/O-Net weights ship inside its wheel).

Returns, per image, every face with its box, five landmarks (left eye, right eye, nose,
left and right mouth corners, in the subject's mirror order MTCNN uses) and a score.
Large images are detected on a downscaled copy (``max_side``) and mapped back: MTCNN's
image pyramid costs grow with pixels, not with face count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np
import torch

from faceid.errors import FaceTooSmall, MultipleFaces, NoFace, describe


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x1, y1, x2, y2) and ``landmarks`` (5, 2) in pixels."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels (what the quality gate checks)."""
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def to_dict(self) -> dict[str, object]:
        return {"box": [round(v, 1) for v in self.box],
                "landmarks": np.round(self.landmarks, 1).tolist(),
                "score": round(self.score, 4)}


class Pick(str, Enum):
    """Which face to use when an operation needs exactly one."""

    one = "one"          # exactly one face, else MultipleFaces (enrolment, access control)
    largest = "largest"  # the biggest box
    center = "center"    # the face nearest the image centre (LFW-style portraits)


class FaceDetector:
    """MTCNN with lazily loaded weights; one instance per process is plenty."""

    def __init__(self, *, min_face_size: int = 20, thresholds: tuple[float, float, float] =
                 (0.6, 0.7, 0.7), max_side: int = 1024, device: str = "cpu") -> None:
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.max_side = max_side
        self.device = device
        self._mtcnn = None

    @property
    def mtcnn(self):  # noqa: ANN201 - facenet_pytorch has no type hints
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(keep_all=True, device=self.device, post_process=False,
                                min_face_size=self.min_face_size, thresholds=list(self.thresholds))
        return self._mtcnn

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in one (H, W, 3) uint8 RGB image, best score first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect in many images; images of one size run through MTCNN as one batch."""
        scaled = [self._shrink(img) for img in images]
        results: list[list[Face]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, (small, _) in enumerate(scaled):
            by_shape.setdefault(small.shape, []).append(i)
        for idx in by_shape.values():
            batch = np.stack([scaled[i][0] for i in idx])
            with torch.inference_mode():
                boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
            for j, i in enumerate(idx):
                results[i] = _faces(boxes[j], probs[j], points[j], scaled[i][1])
        return results

    def _shrink(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale == 1.0:
            return image, 1.0
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _faces(boxes: np.ndarray | None, probs: np.ndarray | None, points: np.ndarray | None,
           scale: float) -> list[Face]:
    if boxes is None or probs is None or points is None:
        return []
    faces = [Face(tuple(float(v) / scale for v in box), np.asarray(pts, np.float64) / scale,
                  float(p)) for box, p, pts in zip(boxes, probs, points) if p is not None]
    return sorted(faces, key=lambda f: -f.score)


def pick_face(faces: list[Face], image_shape: tuple[int, ...], how: Pick, *,
              min_size: float = 0, name: object = "<image>") -> Face:
    """Choose the face an operation works on, or raise NoFace / MultipleFaces / FaceTooSmall.

    The size gate applies to the chosen face: a tiny background face does not make a
    portrait fail, but a photo whose only face is too small for a reliable encoding does.
    """
    if not faces:
        raise NoFace(describe(name, "no face found"))
    if how is Pick.one:
        if len(faces) > 1:
            raise MultipleFaces(describe(name, f"{len(faces)} faces found where one is required"
                                               " (crop the photo, or use --pick largest)"))
        face = faces[0]
    elif how is Pick.largest:
        face = max(faces, key=lambda f: f.size)
    else:
        cy, cx = image_shape[0] / 2, image_shape[1] / 2

        def off_centre(f: Face) -> float:
            return ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2

        face = min(faces, key=off_centre)
    if face.size < min_size:
        raise FaceTooSmall(describe(name, f"face is {face.size:.0f} px, smaller than the "
                                          f"{min_size:.0f} px minimum"))
    return face
