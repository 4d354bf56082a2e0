"""dlib's face pipeline as face_recognition runs it, for side-by-side benchmarks only (dlib-bin
is a test-only dependency): HOG detector with one upsample, the face nearest the image
centre, 5-point shape predictor, 150-px chip with padding 0.25, ResNet descriptor."""

from __future__ import annotations

import numpy as np

from faceid.modelfile import load_model_info, weights_path


class DlibPeer:
    def __init__(self) -> None:
        import dlib

        self.dlib = dlib
        models = weights_path(load_model_info()).parent
        self.hog = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.rec = dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def detect(self, img: np.ndarray):  # noqa: ANN201 - a dlib.rectangle or None
        """The HOG detection nearest the image centre, or None."""
        dets = self.hog(img, 1)
        if not dets:
            return None
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
        return min(dets, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)

    def chip(self, img: np.ndarray, rect) -> np.ndarray:  # noqa: ANN001
        return self.dlib.get_face_chip(img, self.sp(img, rect), size=150, padding=0.25)

    def descriptor(self, chip: np.ndarray, jitter: int = 0) -> np.ndarray:
        return np.array(self.rec.compute_face_descriptor(chip, jitter))

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """dlib's batched call on many chips."""
        return np.array([np.array(d) for d in self.rec.compute_face_descriptor(chips)])
