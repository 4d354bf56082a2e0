"""Face detection with MTCNN (the cascade in ``faceid/cascade.py``, the stage networks in
``faceid/nn/mtcnn.py``; their weights ship inside facenet-pytorch's wheel).

Returns, per image, every face with its box, five landmarks (left eye, right eye, nose,
left and right mouth corners, in the subject's mirror order MTCNN uses) and a score.
Large images are detected on a downscaled copy (``max_side``) and mapped back: MTCNN's
image pyramid costs grow with pixels, not with face count.

The landmarks are refined by one more O-Net pass on each face's final box: MTCNN predicts
its points from the R-Net box, before O-Net's own box correction, and facenet-pytorch crops
that box clamped to the image (a face touching the edge reaches O-Net squashed). The extra
pass sees the corrected box, zero-padded as the original MTCNN does. It costs one 48-px
O-Net call per face; ``docs/BENCHMARKS.md`` ("Landmark refinement") has what it does to LFW.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from faceid.cascade import detect_cascade
from faceid.errors import FaceTooSmall, MultipleFaces, NoFace, describe
from faceid.modelfile import mtcnn_weights_dir
from faceid.netrun import Net, load_net
from faceid.pick import Pick


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


SMALLEST_FACE = 20  # px: the detector's last pass looks for faces down to this size


# each stage: an input shape to export and check it with, its number of outputs, and
# whether it takes any image size (P-Net runs over the whole pyramid)
_STAGES = {"pnet": ((1, 3, 30, 40), 2, True), "rnet": ((2, 3, 24, 24), 2, False),
           "onet": ((2, 3, 48, 48), 3, False)}


def load_mtcnn(device: str = "cpu") -> tuple[Net, ...]:
    """P-Net, R-Net and O-Net, each named in the export cache by its weight file's hash."""
    folder = mtcnn_weights_dir()
    nets = []
    for name, (example, outputs, dynamic) in _STAGES.items():
        try:
            identity: dict[str, object] | None = {
                "mtcnn": name, "sha256": hashlib.sha256((folder / f"{name}.pt").read_bytes())
                .hexdigest()}
        except OSError:
            identity = None  # torch's loader says what is wrong with the file
        nets.append(load_net(f"mtcnn-{name}", identity, partial(_stage_module, name), example,
                             outputs=outputs, value_range=(-1.0, 1.0), dynamic_size=dynamic,
                             device=device))
    return tuple(nets)


def _stage_module(name: str):  # noqa: ANN202 - a torch module; torch is imported only here
    from faceid.nn.mtcnn import load_stage

    return load_stage(name)


class FaceDetector:
    """MTCNN with lazily loaded weights; one instance per process is plenty.

    A first pass looks for faces of at least ``min_face_size`` px (a shallower image pyramid,
    so faster); only images where it finds nothing get a second pass at ``retry_min_face_size``
    with looser stage thresholds. That keeps the common case fast, still finds hard faces,
    and lets the caller tell "no face" from "a face too small to use".
    """

    name = "mtcnn"

    def __init__(self, *, min_face_size: int = 40,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 retry_min_face_size: int = SMALLEST_FACE,
                 retry_thresholds: tuple[float, float, float] = (0.5, 0.6, 0.6),
                 max_side: int = 1024, refine: bool = True, device: str = "cpu") -> None:
        self.passes = ((min_face_size, list(thresholds)),
                       (retry_min_face_size, list(retry_thresholds)))
        self.max_side = max_side
        self.refine = refine
        self.device = device
        self._nets: tuple[Net, ...] | None = None

    @property
    def nets(self) -> tuple[Net, ...]:
        if self._nets is None:
            self._nets = load_mtcnn(self.device)
        return self._nets

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in one (H, W, 3) uint8 RGB image, best score first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect in many images; images of one size run through MTCNN as one batch."""
        scaled = [self._shrink(img) for img in images]
        results: list[list[Face]] = [[] for _ in images]
        todo = list(range(len(images)))
        for min_size, thresholds in self.passes:
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i in todo:
                # MTCNN's pyramid starts at min_size px: a smaller image holds no face of
                # that size (and facenet-pytorch fails on an empty pyramid)
                if min(scaled[i][0].shape[:2]) >= min_size:
                    by_shape.setdefault(scaled[i][0].shape, []).append(i)
            for idx in by_shape.values():
                found = self._run(np.stack([scaled[i][0] for i in idx]), min_size, thresholds)
                for i, (boxes, points) in zip(idx, found):
                    if self.refine and len(boxes):
                        points = self.refine_landmarks(scaled[i][0], np.asarray(boxes)[:, :4])
                    results[i] = _faces(boxes, points, scaled[i][1])
            todo = [i for i in todo if not results[i]]
            if not todo:
                break
        return results

    def _run(self, batch: np.ndarray, min_size: int, thresholds: list[float]) -> list:
        return detect_cascade(batch, min_size, self.nets, thresholds)

    def refine_landmarks(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The five points O-Net finds in the square crop around each (x1, y1, x2, y2) box,
        zero-padded where it leaves the image; (N, 5, 2) in ``image`` pixels."""
        return self.onet_pass(image, boxes)[1]

    def onet_pass(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One O-Net pass on the square crop around each box: (N, 4) boxes as O-Net
        corrects them (MTCNN's last stage: what its own final boxes are) and (N, 5, 2)
        points, both in ``image`` pixels."""
        crops, corners = [], []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float64):
            extent = max(x2 - x1, y2 - y1)
            left, top = int((x1 + x2 - extent) / 2), int((y1 + y2 - extent) / 2)
            side = max(1, round(extent))
            crops.append(cv2.resize(_crop_padded(image, left, top, side), (48, 48),
                                    interpolation=cv2.INTER_AREA))
            corners.append((left, top, side))
        x = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
        shifts, points, _ = self.nets[2]((x - 127.5) * 0.0078125)
        points = points.astype(np.float64)
        corner = np.asarray(corners, np.float64)
        xs = corner[:, :1] + points[:, :5] * corner[:, 2:]
        ys = corner[:, 1:2] + points[:, 5:] * corner[:, 2:]
        square = np.column_stack([corner[:, 0], corner[:, 1], corner[:, 0] + corner[:, 2],
                                  corner[:, 1] + corner[:, 2]])
        corrected = square + shifts.astype(np.float64) * corner[:, 2:]
        return corrected, np.stack([xs, ys], axis=2)

    def _shrink(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale == 1.0:
            return image, 1.0
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _crop_padded(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The side x side square at (left, top), black where it leaves the image."""
    h, w = image.shape[:2]
    out = np.zeros((side, side, image.shape[2]), image.dtype)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    if x1 > x0 and y1 > y0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def _faces(boxes: np.ndarray, points: np.ndarray, scale: float) -> list[Face]:
    """MTCNN rows (x1, y1, x2, y2, score) and (5, 2) points -> Faces in original pixels."""
    faces = [Face(tuple(float(v) / scale for v in box[:4]), np.asarray(pts, np.float64) / scale,
                  float(box[4])) for box, pts in zip(np.asarray(boxes), np.asarray(points))]
    return sorted(faces, key=lambda f: -f.score)


def _no_face(image_shape: tuple[int, ...]) -> str:
    h, w = image_shape[:2]
    if min(h, w) < SMALLEST_FACE:
        return f"no face found (the image is only {w}x{h} px)"
    return "no face found"


def pick_faces(faces: list[Face], image_shape: tuple[int, ...], how: Pick, *,
               min_size: float = 0, name: object = "<image>") -> list[Face]:
    """The faces an operation works on: every face of at least ``min_size`` for
    ``Pick.all`` (NoFace / FaceTooSmall when there is none), else the one :func:`pick_face`
    chooses."""
    if how is not Pick.all:
        return [pick_face(faces, image_shape, how, min_size=min_size, name=name)]
    if not faces:
        raise NoFace(describe(name, _no_face(image_shape)))
    usable = [f for f in faces if f.size >= min_size]
    if not usable:
        raise FaceTooSmall(describe(name, f"{len(faces)} face(s) found, all smaller than the "
                                          f"{min_size:.0f} px minimum"))
    return usable


def pick_face(faces: list[Face], image_shape: tuple[int, ...], how: Pick, *,
              min_size: float = 0, name: object = "<image>") -> Face:
    """Choose the face an operation works on, or raise NoFace / MultipleFaces / FaceTooSmall.

    The size gate applies to the chosen face: a tiny background face does not make a
    portrait fail, but a photo whose only face is too small for a reliable encoding does.
    """
    if not faces:
        raise NoFace(describe(name, _no_face(image_shape)))
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
