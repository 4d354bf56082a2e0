"""Detection, face choice, the quality gate and alignment on real LFW photos."""

from __future__ import annotations

import numpy as np
import pytest

from faceid.align import similarity_transform
from faceid.detection import FaceDetector, Pick, pick_face
from faceid.errors import FaceTooSmall, MultipleFaces, NoFace
from faceid.imageio import load_image
from tests.conftest import lfw


def test_detects_the_face_with_landmarks_inside_the_box(fid, lfw_images):
    img = load_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    faces = fid.detect(img)
    face = pick_face(faces, img.shape, Pick.center)
    x1, y1, x2, y2 = face.box
    assert face.score > 0.95 and 60 < face.size < 200
    assert np.all((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2))
    assert np.all((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2))
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    assert left_eye[0] < right_eye[0]


def test_batch_detection_matches_single(fid, lfw_images):
    imgs = [load_image(lfw(lfw_images, "Aaron_Peirsol", i)) for i in (1, 2, 3)]
    batch = fid.detector.detect_batch(imgs)
    for img, faces in zip(imgs, batch):
        single = fid.detect(img)
        assert len(single) == len(faces)
        np.testing.assert_allclose(single[0].landmarks, faces[0].landmarks, atol=0.5)


def test_refined_landmarks_hold_when_the_frame_cuts_the_face(fid, lfw_images):
    """A face whose box leaves the image (close to the camera): MTCNN's own points come from
    a crop squashed at the edge; the refined ones stay near the points of the uncut photo."""
    raw = FaceDetector(refine=False)
    errors = {"refined": [], "mtcnn": []}
    for path in sorted(lfw_images.glob("A*/*_0001.jpg"))[:12]:
        img = load_image(path)
        whole = pick_face(fid.detect(img), img.shape, Pick.center)
        x1, y1, x2, y2 = whole.box
        dx, dy = int(x1 + 0.15 * (x2 - x1)), int(y1 + 0.15 * (y2 - y1))
        cut = np.ascontiguousarray(img[dy:, dx:])
        for name, detector in (("refined", fid.detector), ("mtcnn", raw)):
            face = max(detector.detect(cut), key=lambda f: f.size)
            errors[name].append(np.linalg.norm(face.landmarks + [dx, dy] - whole.landmarks, axis=1).mean())
    refined, mtcnn = np.mean(errors["refined"]), np.mean(errors["mtcnn"])
    assert refined < 10 and refined < mtcnn / 2, (refined, mtcnn)


def test_two_faces_where_one_is_needed(fid, two_face_image):
    faces = fid.detect(two_face_image)
    assert len(faces) >= 2
    with pytest.raises(MultipleFaces, match="faces found where one is required"):
        pick_face(faces, two_face_image.shape, Pick.one, name="pair.jpg")
    largest = pick_face(faces, two_face_image.shape, Pick.largest)
    assert largest.size == max(f.size for f in faces)


def test_no_face_in_a_blank_image(fid):
    blank = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(NoFace, match="no face"):
        pick_face(fid.detect(blank), blank.shape, Pick.one, name="blank.png")


def test_face_smaller_than_minimum(fid, lfw_images):
    img = load_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    with pytest.raises(FaceTooSmall, match="smaller than the 200 px minimum"):
        pick_face(fid.detect(img), img.shape, Pick.one, min_size=200)


def test_small_face_is_found_by_the_second_pass_and_gated(fid, lfw_images):
    import cv2

    img = cv2.resize(load_image(lfw(lfw_images, "Aaron_Peirsol", 1)), (80, 80),
                     interpolation=cv2.INTER_AREA)
    faces = fid.detect(img)
    assert len(faces) == 1 and 20 <= faces[0].size < 40
    with pytest.raises(FaceTooSmall, match="smaller than the 40 px minimum"):
        pick_face(faces, img.shape, Pick.one, min_size=40)


def test_hard_face_is_found_with_looser_thresholds(fid, lfw_images):
    # the first (strict) pass finds no face in this LFW photo; the retry does
    img = load_image(lfw(lfw_images, "Marilyn_Monroe", 1))
    strict = fid.detector._run(img[None], *fid.detector.passes[0])
    assert len(strict[0][0]) == 0
    assert len(fid.detect(img)) >= 1


def test_large_photo_is_detected_on_a_downscaled_copy(fid, lfw_images):
    import cv2

    img = load_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    big = cv2.resize(img, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    small_face = pick_face(fid.detect(img), img.shape, Pick.center)
    big_face = pick_face(fid.detect(big), big.shape, Pick.center)
    np.testing.assert_allclose(big_face.landmarks / 8, small_face.landmarks, atol=2.0)


def test_similarity_transform_recovers_a_known_warp():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a = np.deg2rad(17)
    m = 1.3 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ m.T + [5, -7]
    est = similarity_transform(src, dst)
    np.testing.assert_allclose(est[:, :2], m, atol=1e-9)
    np.testing.assert_allclose(est[:, 2], [5, -7], atol=1e-9)


def test_chip_puts_landmarks_on_the_template(fid, lfw_images):
    img = load_image(lfw(lfw_images, "George_W_Bush", 1))
    face = pick_face(fid.detect(img), img.shape, Pick.center)
    chip = fid.chip(img, face)
    assert chip.shape == (150, 150, 3)
    again = pick_face(fid.detect(np.pad(chip, ((50, 50), (50, 50), (0, 0)), mode="edge")),
                      (250, 250), Pick.center)
    assert np.abs(again.landmarks - 50 - fid.info.template).max() < 6
