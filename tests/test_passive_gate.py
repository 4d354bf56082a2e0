"""The passive liveness gate at the door (issue 12): MiniFASNet's running score per track,
motion as evidence, and the quality reasons, on real frames: the anti-spoofing samples (a live
face, a printed photo, a screen replay) and the head-pose clip of a live, enrolled woman."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from db.store import Store
from faceid.detection import FaceDetector
from faceid.enrolment import enroll_images
from faceid.errors import LivenessModelError
from faceid.gallery import Gallery
from faceid.imageio import load_image
from faceid.door.liveness import LivenessGate, PassiveCheck
from faceid.door.turnstile import Turnstile, WatchConfig
from faceid.door.sources import read_frames
from tests.conftest import DATASETS

SAMPLES = DATASETS / "antispoof_samples"
FEMALE = DATASETS / "videos" / "preview" / "head-pose-face-detection-female.gif"


@pytest.fixture(scope="module")
def check() -> PassiveCheck:
    return PassiveCheck.load()


def _track(check: PassiveCheck, image: np.ndarray, frames: int = 5):
    gate = LivenessGate(passive=check, motion=True)
    track = gate.new_track()
    face = max(FaceDetector().detect(image), key=lambda f: f.size)
    for i in range(frames):
        track.update(image, face, i / 15)
    return track.result()


def test_still_live_face_passes_and_attacks_fail(check: PassiveCheck) -> None:
    # the same frame over and over: no motion at all, as a person standing still
    live = _track(check, load_image(SAMPLES / "image_T1.jpg"))
    assert live.live is True, live.to_dict()
    for name in ("image_F1.jpg", "image_F2.jpg"):  # a print, a screen
        attack = _track(check, load_image(SAMPLES / name))
        # never live; the door denies it when its time runs out
        assert attack.live is None and attack.reason == "passive_low", attack.to_dict()
        assert attack.details["passive"]["details"]["p_live"] < 0.2  # 0.148 print, 0.004 screen


def test_dark_frame_is_low_quality_not_an_attack(check: PassiveCheck) -> None:
    dark = (load_image(SAMPLES / "image_T1.jpg") * 0.12).astype(np.uint8)
    gate = LivenessGate(passive=check, motion=False)
    track = gate.new_track()
    face = max(FaceDetector().detect(load_image(SAMPLES / "image_T1.jpg")),
               key=lambda f: f.size)
    for i in range(5):
        track.update(dark, face, i / 15)
    r = track.result()
    assert r.live is None and r.reason == "quality:dark_face", r.to_dict()


def test_missing_weights_stop_the_door_from_starting(tmp_path: Path, check: PassiveCheck) -> None:
    from faceid.antispoof import MODEL_DIR

    broken = tmp_path / "minifasnet"
    shutil.copytree(MODEL_DIR, broken)
    (broken / "minifasnet_v2.pt").unlink()
    with pytest.raises(LivenessModelError, match="minifasnet_v2.pt"):
        PassiveCheck(0.5, model_dir=broken).scorer.networks  # noqa: B018
    bad = tmp_path / "liveness.json"
    bad.write_text('{"format": "faceid-passive-liveness/1"}')
    with pytest.raises(LivenessModelError, match="liveness.json"):
        PassiveCheck.load(bad)


def test_still_enrolled_person_is_granted_by_the_passive_gate(fid, tmp_path: Path,
                                                               check: PassiveCheck) -> None:
    frames = [f for _, f in read_frames(str(FEMALE))]
    g = Gallery(Store(f"sqlite:///{tmp_path / 'door.db'}"), fid, tmp_path / "index")
    enroll_images(g, "Head Pose Female", [frames[0]])
    # one frame of the clip held for 4 s: a live person standing perfectly still
    still = [frames[8]] * 60
    door = Turnstile(g, WatchConfig(source=str(FEMALE), timeout_s=3.0),
                     LivenessGate(passive=check))
    decisions = door.run((i, i / 15, f) for i, f in enumerate(still))
    assert [d.decision for d in decisions] == ["grant"], [d.to_dict() for d in decisions]
    motion_only = Turnstile(g, WatchConfig(source=str(FEMALE), timeout_s=3.0), LivenessGate())
    before = motion_only.run((i, i / 15, f) for i, f in enumerate(still))
    # the motion-only gate that shipped before wanted the head to move
    assert [(d.decision, d.reason) for d in before] == [("deny", "not_live")]


def test_still_photo_liveness_from_the_command_line(tmp_path: Path) -> None:
    from tests.test_gallery_cli import as_json, faceid

    home = tmp_path / "home"
    assert faceid(home, "enroll", "Sample Person", SAMPLES / "image_T1.jpg").returncode == 0
    p = faceid(home, "identify", SAMPLES / "image_T1.jpg", "--liveness", "--json")
    assert p.returncode == 0 and as_json(p)["decision"] == "match", p.stdout + p.stderr
    for name in ("image_F1.jpg", "image_F2.jpg"):  # a print, a screen
        p = faceid(home, "identify", SAMPLES / name, "--liveness", "--json")
        assert p.returncode == 1 and as_json(p)["decision"] == "not_live", p.stdout
        p = faceid(home, "verify", SAMPLES / name, "--as", "Sample Person", "--liveness",
                   "--json", "--tau", "1.9")  # a tau that accepts anyone: liveness decides
        assert p.returncode == 1 and as_json(p)["reason"] == "not_live", p.stdout
    rows = tmp_path / "rows.csv"
    p = faceid(home, "identify", SAMPLES, "--liveness", "--out", rows)
    assert p.returncode == 0, p.stderr
    text = rows.read_text()
    assert "image_F1.jpg,1" in text and ",not_live,not_live," in text
    assert "image_T1.jpg,1" in text and ",match,match," in text
