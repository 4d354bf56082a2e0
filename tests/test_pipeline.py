"""The API end to end on real photos: embeddings, 1:1 decisions, per-item batch errors."""

from __future__ import annotations

import numpy as np

from faceid.detection import Pick
from faceid.errors import EmptyFile, MultipleFaces
from tests.conftest import lfw


def test_embedding_is_a_unit_128_vector(fid, lfw_images):
    r = fid.embed_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    assert r.embedding.shape == (128,) and r.embedding.dtype == np.float32
    assert abs(np.linalg.norm(r.embedding) - 1) < 1e-5


def test_same_and_different_people(fid, lfw_images):
    same = fid.compare(lfw(lfw_images, "Aaron_Peirsol", 1), lfw(lfw_images, "Aaron_Peirsol", 2))
    diff = fid.compare(lfw(lfw_images, "Aaron_Peirsol", 1), lfw(lfw_images, "George_W_Bush", 1))
    assert same.same and same.distance < fid.tau and same.probability > 0.9
    assert not diff.same and diff.distance > fid.tau and diff.probability < 0.1


def test_batch_reports_bad_items_without_stopping(fid, lfw_images, tmp_path, two_face_image):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    good = lfw(lfw_images, "Aaron_Peirsol", 3)
    results = fid.embed_images([good, empty, two_face_image, good], Pick.one)
    assert results[0].embedding is not None and results[3].embedding is not None
    assert isinstance(results[1].error, EmptyFile)
    assert isinstance(results[2].error, MultipleFaces)
    np.testing.assert_allclose(results[0].embedding, results[3].embedding, atol=1e-5)


def test_batched_and_single_embeddings_agree(fid, lfw_images):
    files = [lfw(lfw_images, "George_W_Bush", i) for i in range(1, 9)]
    batch = fid.embed_images(files, Pick.center)
    single = fid.embed_image(files[5], Pick.center)
    np.testing.assert_allclose(batch[5].embedding, single.embedding, atol=1e-4)


def test_templates_made_without_refined_landmarks_are_another_configuration(fid):
    """Refined landmarks move the chip, so a gallery enrolled before the refinement must not
    be compared with new encodings as if nothing changed (``faceid reembed`` brings it over)."""
    from faceid.detection import FaceDetector
    from faceid.gallery import model_identity
    from faceid.pipeline import FaceID

    new, old = model_identity(fid), model_identity(FaceID(detector=FaceDetector(refine=False)))
    assert new[:2] == old[:2] and new[2] != old[2]
