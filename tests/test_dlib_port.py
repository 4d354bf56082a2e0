"""The PyTorch port of dlib's ResNet, loaded by our own .dat reader, computes what dlib
computes: compared with dlib-bin's compute_face_descriptor on the same LFW chips."""

from __future__ import annotations

import numpy as np
import pytest

from faceid.detection import Pick
from faceid.imageio import load_image
from faceid.modelfile import weights_path

dlib = pytest.importorskip("dlib", reason="dlib-bin is the test-only reference")


def test_embeddings_match_dlib_on_lfw_chips(fid, lfw_images):
    files = sorted(lfw_images.glob("*/*_0001.jpg"))[::100][:60]
    chips = []
    for f in files:
        img = load_image(f)
        faces = fid.detect(img)
        if faces:
            from faceid.detection import pick_face

            chips.append(fid.chip(img, pick_face(faces, img.shape, Pick.center)))
    assert len(chips) >= 50
    chips = np.stack(chips)
    ours = fid.encoder.embed(chips)
    rec = dlib.face_recognition_model_v1(str(weights_path(fid.info)))
    ref = np.array([np.array(rec.compute_face_descriptor(c)) for c in chips])
    cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, f"worst cosine {cos.min():.6f}"
