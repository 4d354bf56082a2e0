"""Face detection with YuNet (OpenCV's ``cv2.FaceDetectorYN``): the fast detector for video.

MTCNN's image pyramid costs 35-55 ms on a 640x480 frame on one core, most of a door's frame
budget; YuNet finds the same faces in a few milliseconds on a downscaled copy. It is trained
for faces of about 10 to 300 px, so the frame is shrunk to ``max_side`` (a 640x480 frame to
320x240 at the door's default: faces of 20 to 600 px), and an image where nothing is found
is tried once more at half that scale, for a face too big for the first pass.

Its own five points are coarse, and the encoder's alignment is tuned on MTCNN's refined
points (``docs/ALIGNMENT.md``), so by default the points are re-found by MTCNN's O-Net on
YuNet's box (:meth:`faceid.detection.FaceDetector.onet_pass`, one 48-px pass per face): the
same refinement the MTCNN path uses, so templates from either detector align alike. The same
pass corrects the box the way MTCNN's last stage does, so the liveness crop (tuned on
MTCNN's boxes) sees the proportions it was chosen on.
``docs/BENCHMARKS.md`` ("A faster detector") has what each choice does to LFW and to speed.

The ONNX file is package data (``faceid/models/yunet/``, MIT, written by
``scripts/ship_yunet.py``); its bytes are checked against ``yunet.json`` before OpenCV loads
them, and a missing or damaged file is a :class:`~faceid.errors.ModelError` naming it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from faceid.config import apply_threads
from faceid.detection import Face, FaceDetector, _faces
from faceid.errors import ModelError
from faceid.modelfile import read_checked, read_json_document

MODEL_DIR = Path(__file__).parent / "models" / "yunet"
MODEL_FILE = "yunet.json"
MODEL_FORMAT = "faceid-yunet/1"
SCORE_THRESHOLD = 0.6   # OpenCV's demo uses 0.9 for display; 0.6 keeps hard faces, NMS at 0.3
NMS_THRESHOLD = 0.3
TOP_K = 50


def read_model(model_dir: Path = MODEL_DIR) -> bytes:
    """The ONNX bytes the model file names, after checking them against its SHA-256."""
    path = model_dir / MODEL_FILE
    doc = read_json_document(path, MODEL_FORMAT, ModelError, "detector model")
    try:
        weights, sha = model_dir / str(doc["weights"]), str(doc["sha256"])
    except KeyError as exc:
        raise ModelError(f"{path}: incomplete detector model file (no {exc})") from None
    return read_checked(weights, sha, ModelError, "detector weights")


class YuNetDetector:
    """YuNet boxes, O-Net landmarks; the same ``detect`` / ``detect_batch`` as
    :class:`~faceid.detection.FaceDetector`. One OpenCV detector per instance, used under a lock
    (it keeps the input size as state)."""

    name = "yunet"

    def __init__(self, *, max_side: int = 640, refine: bool = True,
                 score_threshold: float = SCORE_THRESHOLD, model_dir: Path = MODEL_DIR,
                 device: str = "cpu") -> None:
        self.max_side = max_side
        self.refine = refine
        self.score_threshold = score_threshold
        self.model_dir = model_dir
        self._net: cv2.FaceDetectorYN | None = None
        self._lock = threading.Lock()
        self._onet = FaceDetector(device=device) if refine else None

    @property
    def net(self) -> cv2.FaceDetectorYN:
        if self._net is None:
            apply_threads()
            data = np.frombuffer(read_model(self.model_dir), np.uint8)
            log = cv2.utils.logging
            level = log.getLogLevel()
            log.setLogLevel(log.LOG_LEVEL_ERROR)  # OpenCV 5 warns of its graph engine here
            try:
                self._net = cv2.FaceDetectorYN.create("onnx", data, np.array([], np.uint8),
                                                      (320, 320), self.score_threshold,
                                                      NMS_THRESHOLD, TOP_K)
            finally:
                log.setLogLevel(level)
        return self._net

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in one (H, W, 3) uint8 RGB image, best score first."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        rows = self._run(image, scale)
        if not len(rows) and min(h, w) * scale >= 40:
            scale /= 2  # a face filling the frame is beyond YuNet's 300 px: look smaller
            rows = self._run(image, scale)
        if not len(rows):
            return []
        boxes = np.column_stack([rows[:, :2] / scale, (rows[:, :2] + rows[:, 2:4]) / scale,
                                 rows[:, 14]])
        if self._onet is not None:
            # O-Net's own correction of the box too: MTCNN's final boxes come from it, and
            # the passive liveness crop was chosen on those (bench.liveness_pad --detector)
            boxes[:, :4], points = self._onet.onet_pass(image, boxes[:, :4])
        else:
            points = rows[:, 4:14].reshape(-1, 5, 2) / scale
        return _faces(boxes, points, 1.0)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect in many images (one at a time: YuNet's cost is per pixel, not per call)."""
        return [self.detect(img) for img in images]

    def _run(self, image: np.ndarray, scale: float) -> np.ndarray:
        """YuNet's rows (x, y, w, h, 5 points, score) on ``image`` shrunk by ``scale``."""
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(small[:, :, ::-1])
        with self._lock:
            self.net.setInputSize(size)
            _, rows = self.net.detect(bgr)
        return np.zeros((0, 15), np.float32) if rows is None else rows
