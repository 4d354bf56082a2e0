"""YuNet, the fast detector for video: same faces and points as MTCNN on real LFW photos,
faces cut by the frame, faces too big for one pass, its shipped model file, and how a
process chooses its detector."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceid.detection import Pick, pick_face
from faceid.detectors import VIDEO_SIDE, default_detector, make_detector
from faceid.errors import ModelError, UsageError
from faceid.imageio import load_image
from faceid.pick import DetectorName
from faceid.yunet import MODEL_DIR, MODEL_FILE, YuNetDetector
from tests.conftest import lfw
from tests.test_cli import run


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector()


def eye_units(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance in units of the true eye distance."""
    return float(np.linalg.norm(points - truth, axis=1).mean()
                 / np.linalg.norm(truth[0] - truth[1]))


def test_finds_the_faces_mtcnn_finds_with_the_same_points(fid, yunet, lfw_images):
    """O-Net's points on YuNet's box: the chip the encoder sees is nearly MTCNN's."""
    errors = []
    for path in sorted(lfw_images.glob("B*/*_0001.jpg"))[:15]:
        img = load_image(path)
        truth = pick_face(fid.detect(img), img.shape, Pick.center)
        face = pick_face(yunet.detect(img), img.shape, Pick.center)
        assert face.score > 0.6
        x1, y1, x2, y2 = face.box
        assert x1 < truth.landmarks[:, 0].min() and truth.landmarks[:, 0].max() < x2
        assert y1 < truth.landmarks[:, 1].min() and truth.landmarks[:, 1].max() < y2
        errors.append(eye_units(face.landmarks, truth.landmarks))
    assert np.median(errors) < 0.04, errors


def test_the_faces_embed_like_mtcnns(fid, yunet, lfw_images):
    """A template found by MTCNN and a probe found by YuNet of the same photo are far
    closer than the model's tau (a door on YuNet matches a gallery enrolled on MTCNN)."""
    img = load_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    a = fid.embed_image(img).embedding
    face = pick_face(yunet.detect(img), img.shape, Pick.one)
    b = fid.encoder.embed_views(fid.view_chips(img, face)[None], fid.views.flip)[0]
    assert np.linalg.norm(a - b) < fid.tau / 4


def test_a_face_cut_by_the_frame_is_found_with_its_points(fid, yunet, lfw_images):
    """A face close to a door camera: 30% of its box outside the picture. MTCNN loses a third
    of these on LFW (bench.detectors); YuNet keeps them, and its points stay near the ones
    of the uncut photo."""
    errors = []
    for path in sorted(lfw_images.glob("A*/*_0001.jpg"))[:12]:
        img = load_image(path)
        whole = pick_face(fid.detect(img), img.shape, Pick.center)
        x1, y1, x2, y2 = whole.box
        dx, dy = int(x1 + 0.3 * (x2 - x1)), int(y1 + 0.3 * (y2 - y1))
        faces = yunet.detect(np.ascontiguousarray(img[dy:, dx:]))
        assert faces, path.name
        face = max(faces, key=lambda f: f.size)
        errors.append(eye_units(face.landmarks + [dx, dy], whole.landmarks))
    assert np.mean(errors) < 0.25, errors


def test_a_face_too_big_for_one_pass_is_found_on_the_second(yunet, lfw_images):
    """YuNet is trained on faces up to about 300 px: a face filling a 1,200-px photo is
    still ~500 px at the 640-px first pass, and is found at half that scale."""
    img = load_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    close = cv2.resize(np.ascontiguousarray(img[60:190, 60:190]), (1200, 1200),
                       interpolation=cv2.INTER_CUBIC)
    faces = yunet.detect(close)
    assert len(faces) == 1 and faces[0].size > 600


def test_no_face_and_tiny_images_give_nothing(yunet):
    assert yunet.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert yunet.detect(np.zeros((8, 8, 3), np.uint8)) == []
    assert yunet.detect_batch([np.zeros((30, 900, 3), np.uint8)]) == [[]]


def test_shipped_model_file_names_its_licence_source_and_checksum():
    doc = json.loads((MODEL_DIR / MODEL_FILE).read_text())
    data = (MODEL_DIR / doc["weights"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == doc["sha256"]
    assert doc["license"].startswith("MIT")
    assert "Shiqi Yu" in (MODEL_DIR / "LICENSE").read_text()
    assert "faceid/models/yunet" in (MODEL_DIR.parents[2] / "NOTICE").read_text()


@pytest.mark.parametrize("damage", ["missing", "changed", "no model file"])
def test_a_missing_or_damaged_model_is_refused_naming_the_file(tmp_path, damage):
    model_dir = tmp_path / "yunet"
    shutil.copytree(MODEL_DIR, model_dir)
    onnx = model_dir / "face_detection_yunet.onnx"
    if damage == "missing":
        onnx.unlink()
    elif damage == "changed":
        onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    else:
        (model_dir / MODEL_FILE).unlink()
    with pytest.raises(ModelError, match=str(model_dir)):
        YuNetDetector(model_dir=model_dir, refine=False).detect(np.zeros((64, 64, 3), np.uint8))


def test_photos_use_mtcnn_and_video_yunet_unless_told(monkeypatch):
    monkeypatch.delenv("FACEID_DETECTOR", raising=False)
    assert default_detector() is DetectorName.mtcnn
    assert default_detector(video=True) is DetectorName.yunet
    assert default_detector(server=True) is DetectorName.yunet  # faceid serve's latency
    door = make_detector(video=True)
    assert isinstance(door, YuNetDetector) and door.max_side == VIDEO_SIDE
    monkeypatch.setenv("FACEID_DETECTOR", "YuNet")
    assert default_detector() is DetectorName.yunet
    monkeypatch.setenv("FACEID_DETECTOR", "haar")
    with pytest.raises(UsageError, match="FACEID_DETECTOR='haar'"):
        default_detector()


def test_the_command_line_picks_the_detector(lfw_images: Path):
    photo = lfw(lfw_images, "Aaron_Peirsol", 1)
    p = run("--detector", "yunet", "detect", photo, "--json")
    assert p.returncode == 0, p.stderr
    faces = json.loads(p.stdout)["faces"]
    assert len(faces) == 1 and faces[0]["score"] > 0.6
    p = run("--detector", "haar", "detect", photo)
    assert p.returncode == 2 and "haar" in p.stderr
    p = run("detect", photo, env={**os.environ, "FACEID_DETECTOR": "haar"})
    assert p.returncode == 2 and "FACEID_DETECTOR" in p.stderr


def test_loading_writes_nothing_to_the_terminal(capfd):
    """OpenCV 5 logs a warning about its graph engine while loading YuNet; a user of
    `faceid detect` should see faces, not that."""
    YuNetDetector(refine=False).detect(np.zeros((64, 64, 3), np.uint8))
    assert capfd.readouterr().err == ""
