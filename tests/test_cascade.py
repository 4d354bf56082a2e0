"""faceid's MTCNN cascade against facenet-pytorch's own ``detect_face`` (the reference, a
test-only import here, on torch's run of the weights): the same boxes, scores and points on
real photos, for both of the detector's passes; and the runtime never imports torchvision or
facenet-pytorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from faceid.cascade import detect_cascade
from faceid.detection import FaceDetector
from faceid.imageio import load_image
from faceid.nn.mtcnn import load_stages
from tests.conftest import ROOT, lfw

PASSES = [(40, [0.6, 0.7, 0.7]), (20, [0.5, 0.6, 0.6])]  # FaceDetector's two passes


@pytest.fixture(scope="module")
def nets():
    return FaceDetector(refine=False).nets


def reference(images: np.ndarray, min_size: int, thresholds: list[float]):  # noqa: ANN201
    """facenet-pytorch's cascade, on torch's run of the same weights."""
    from facenet_pytorch.models.utils.detect_face import detect_face

    with torch.inference_mode():
        boxes, points = detect_face(images, min_size, *load_stages(), thresholds, 0.709, "cpu")
    return [(np.asarray(b, np.float64).reshape(-1, 5), np.asarray(p, np.float64).reshape(-1, 5, 2))
            for b, p in zip(boxes, points)]


def by_score(boxes: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-boxes[:, 4], kind="stable")
    return boxes[order], points[order]


@pytest.mark.parametrize("min_size,thresholds", PASSES)
def test_same_faces_as_facenet_pytorch(nets, lfw_images, two_face_image, min_size, thresholds):
    photos = [load_image(p) for p in sorted(lfw_images.glob("[D-G]*/*_0001.jpg"))[:40]]
    batches = [np.stack(photos[:8]), *[p[None] for p in photos[8:]], two_face_image[None]]
    faces = 0
    for batch in batches:
        ours = detect_cascade(batch, min_size, nets, thresholds)
        for (ob, op), (rb, rp) in zip(ours, reference(batch, min_size, thresholds)):
            assert ob.shape == rb.shape
            ob, op = by_score(ob.astype(np.float64), op.astype(np.float64))
            rb, rp = by_score(rb, rp)
            np.testing.assert_allclose(ob, rb, atol=1e-3)
            np.testing.assert_allclose(op, rp, atol=1e-3)
            faces += len(ob)
    assert faces >= 41  # every portrait and both faces of the pair at least


def test_nothing_found_in_a_blank_frame(nets):
    (boxes, points), = detect_cascade(np.full((1, 240, 320, 3), 127, np.uint8), 40, nets,
                                      PASSES[0][1])
    assert boxes.shape == (0, 5) and points.shape == (0, 5, 2)


def test_the_runtime_does_not_import_torchvision(lfw_images):
    """facenet-pytorch's detection module imports torchvision (about 2 s of CPU per process);
    faceid reads only its weight files."""
    photo = lfw(lfw_images, "Aaron_Peirsol", 1)
    code = ("import sys; from faceid.pipeline import FaceID; r = FaceID().embed_image(%r); "
            "print(r.embedding.shape, [m for m in ('torchvision', 'facenet_pytorch') "
            "if m in sys.modules])" % str(photo))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "(128,) []", out
