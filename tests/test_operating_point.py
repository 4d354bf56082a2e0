"""The gallery's operating point (issue 11): thresholds estimated from the site's own enrolled
templates for a target FPIR / FAR, stored with the gallery, shown, overridable, and the batch
identification command. Real LFW photos and real SQLite / PostgreSQL databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from db.store import NewTemplate, Store
from faceid import operating_point as opt
from faceid.detection import Pick
from faceid.gallery import Gallery
from tests.conftest import lfw
from tests.test_cli import assert_one_line_error
from tests.test_gallery_cli import as_json, faceid

# 40 enrolled people and 400 strangers, one LFW photo each (people with one photo only, so
# no stranger is secretly enrolled)
ENROLLED = 40
STRANGERS = 400


@pytest.fixture(scope="module")
def single_photo_people(lfw_images: Path) -> list[Path]:
    people = sorted(d for d in lfw_images.iterdir() if len(list(d.iterdir())) == 1)
    return [next(d.iterdir()) for d in people[:ENROLLED + STRANGERS]]


@pytest.fixture(scope="module")
def encodings(fid, single_photo_people: list[Path]) -> np.ndarray:
    results = fid.embed_images(single_photo_people, Pick.center)
    assert all(r.error is None for r in results), [str(r.error) for r in results if r.error]
    return np.stack([r.embedding for r in results])


def _enrol(gallery: Gallery, vectors: np.ndarray, names: list[str]) -> None:
    for v, name in zip(vectors, names):
        gallery.enroll(name, [NewTemplate(v, name, name, 1.0, 100.0, 100.0)])


def test_threshold_is_the_normal_quantile_of_the_best_of_n() -> None:
    # 1 - (1 - p)^N = FPIR, with the fit aiming at TARGET_SHARE of the rate
    p = opt.per_pair_rate(1e-3 * opt.TARGET_SHARE, 1000)
    assert abs((1 - (1 - p) ** 1000) - 1e-3 * opt.TARGET_SHARE) < 1e-12
    assert opt.threshold(0.5, 0.1, 1e-3, 1000) < opt.threshold(0.5, 0.1, 1e-3, 10)
    assert opt.threshold(0.5, 0.1, 1e-3, 1) == pytest.approx(0.5 + 0.1 * -3.2905, abs=1e-4)


def test_gallery_never_loosens_the_models_reference_threshold(encodings: np.ndarray) -> None:
    # with a reference that would admit fewer strangers than the gallery's own fit, the
    # reference caps tau; with a looser reference, the gallery's own (stricter) bound rules
    strict_ref = opt.ReferenceImpostors(mean=0.40, sd=0.05, pairs=1100)
    capped = opt.estimate(encodings[:40], np.arange(40), reference=strict_ref)
    assert capped.tau_identify == pytest.approx(opt.threshold(0.40, 0.05, 1e-3, 40))
    loose_ref = opt.ReferenceImpostors(mean=0.90, sd=0.02, pairs=1100)
    own = opt.estimate(encodings[:40], np.arange(40), reference=loose_ref)
    assert own.tau_identify < opt.threshold(0.90, 0.02, 1e-3, 40) - 0.1
    assert own.tau_identify < opt.threshold(own.mean, own.sd, 1e-3, 40) + 1e-9  # the bound


def test_fused_template_weights_photos_by_quality() -> None:
    a, b = np.eye(4, dtype=np.float32)[:2]
    ids, fused = opt.person_centroids(np.stack([a, b]), np.array([7, 7]), np.array([3.0, 1.0]))
    want = (3 * a + b) / np.linalg.norm(3 * a + b)
    assert ids.tolist() == [7] and np.allclose(fused[0], want, atol=1e-6)


def test_gallery_keeps_strangers_out_where_the_model_tau_let_them_in(
        db_url: str, fid, encodings: np.ndarray, tmp_path: Path) -> None:
    gallery = Gallery(Store(db_url), fid, tmp_path / "index")
    _enrol(gallery, encodings[:ENROLLED], [f"P{i}" for i in range(ENROLLED)])
    strangers = encodings[ENROLLED:]
    old = Gallery(Store(db_url), fid, tmp_path / "index", tau=fid.tau, margin=0.0)
    let_in_before = sum(old.identify(v).decision == "match" for v in strangers)
    point = gallery.operating_point()
    assert not point.thin and point.people == ENROLLED and point.fpir == 1e-3
    assert point.tau_identify < point.tau_verify < fid.tau
    let_in_now = sum(gallery.identify(v).decision == "match" for v in strangers)
    # the target is FPIR 1e-3: 0.4 of 400 strangers expected; the model's 1:1 tau lets in
    # several percent of them
    assert let_in_before >= 8, let_in_before
    assert let_in_now <= 1, (let_in_now, point)
    # enrolled people are still found from their own encodings
    assert all(gallery.identify(v).person.name == f"P{i}"
               for i, v in enumerate(encodings[:5]))


def test_operating_point_is_stored_and_reestimated_when_the_gallery_grows(
        db_url: str, fid, encodings: np.ndarray, tmp_path: Path) -> None:
    gallery = Gallery(Store(db_url), fid, tmp_path / "index")
    _enrol(gallery, encodings[:20], [f"P{i}" for i in range(20)])
    first = gallery.operating_point()
    stored = gallery.store.operating_point(gallery.model.id)
    assert stored.tau_identify == pytest.approx(first.tau_identify) and stored.people == 20
    assert stored.gallery_revision == gallery.index.revision and stored.method == opt.METHOD
    # another process sees the stored point without estimating again
    again = Gallery(Store(db_url), fid, tmp_path / "index")
    assert again.operating_point().tau_identify == pytest.approx(first.tau_identify)
    _enrol(gallery, encodings[20:30], [f"P{i}" for i in range(20, 30)])
    grown = gallery.operating_point()
    assert grown.people == 30 and gallery.store.operating_point(gallery.model.id).people == 30
    # more people to be mistaken for: a stricter 1:K threshold for the same FPIR target
    assert grown.tau_identify < opt.threshold(grown.mean, grown.sd, 1e-3, 20)


def test_tiny_gallery_is_strict_and_says_so(db_url: str, fid, encodings: np.ndarray,
                                            tmp_path: Path) -> None:
    gallery = Gallery(Store(db_url), fid, tmp_path / "index")
    _enrol(gallery, encodings[:2], ["A", "B"])
    point = gallery.operating_point()
    ref = gallery.reference()
    assert point.thin and point.pairs == 0
    assert point.tau_identify == pytest.approx(
        opt.threshold(ref.mean, ref.sd, 1e-3, opt.STRICT_GALLERY))
    assert "at least 10" in point.notes[0]
    assert gallery.status()["operating_point"]["thin"]


def test_empty_gallery_answers_unknown_at_the_strict_threshold(db_url: str, fid,
                                                               encodings: np.ndarray,
                                                               tmp_path: Path) -> None:
    gallery = Gallery(Store(db_url), fid, tmp_path / "index")
    found = gallery.identify(encodings[0])
    assert found.decision == "unknown" and found.reason == "empty_gallery"
    assert gallery.operating_point().thin and gallery.operating_point().people == 0


def test_fpir_override_is_used_but_not_stored(db_url: str, fid, encodings: np.ndarray,
                                              tmp_path: Path) -> None:
    gallery = Gallery(Store(db_url), fid, tmp_path / "index")
    _enrol(gallery, encodings[:20], [f"P{i}" for i in range(20)])
    stored = gallery.operating_point()
    loose = Gallery(Store(db_url), fid, tmp_path / "index", fpir=1e-1)
    assert loose.tau > stored.tau_identify
    assert gallery.store.operating_point(gallery.model.id).fpir == 1e-3
    with pytest.raises(ValueError):
        Gallery(Store(db_url), fid, tmp_path / "index", fpir=0.0)


def test_cli_operating_point_usage_errors(tmp_path: Path, lfw_images: Path) -> None:
    probe = lfw(lfw_images, "Tony_Blair", 1)
    home = tmp_path / "home"
    for args in (("--fpir", "0"), ("--fpir", "2"), ("--tau", "-1"), ("--tau", "nan"),
                 ("--tau", "3"), ("--margin", "-0.1")):
        p = faceid(home, "identify", probe, *args)
        assert p.returncode == 2 and "Traceback" not in p.stderr, (args, p.stderr)
    p = faceid(home, "verify", probe, "--as", "x", "--far", "1.5")
    assert p.returncode == 2


def test_cli_gallery_status_calibrate_and_cohort(tmp_path: Path, lfw_images: Path,
                                                 single_photo_people: list[Path]) -> None:
    home = tmp_path / "home"
    people = tmp_path / "people"
    for f in single_photo_people[:12]:
        (people / f.parent.name).mkdir(parents=True)
        (people / f.parent.name / f.name).symlink_to(f)
    assert faceid(home, "enroll-dir", people).returncode == 0
    enrolled = len(as_json(faceid(home, "people", "list", "--json"))["people"])
    assert enrolled >= 10  # a photo or two may be refused as blurred
    status = as_json(faceid(home, "gallery", "status", "--json"))["operating_point"]
    assert status["people"] == enrolled and not status["thin"] and status["fpir"] == 1e-3
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for f in single_photo_people[100:110]:
        (cohort / f.name).symlink_to(f)
    (cohort / "broken.jpg").write_text("not a photo")
    p = faceid(home, "gallery", "calibrate", "--fpir", "1e-2", "--cohort", cohort, "--json")
    assert p.returncode == 0, p.stderr
    doc = as_json(p)
    assert doc["cohort"]["added"] == 10 and doc["cohort"]["failed"] == 1
    assert doc["operating_point"]["cohort"] == 10 and doc["operating_point"]["fpir"] == 1e-2
    assert doc["operating_point"]["tau_identify"] > status["tau_identify"]  # looser target
    text = faceid(home, "gallery", "status").stdout
    assert "FPIR 0.01" in text and "10 cohort photos" in text
    assert_one_line_error(faceid(home, "gallery", "calibrate", "--cohort", tmp_path / "nope"),
                          10, "nope")


def test_cli_batch_identify_rows_per_face(tmp_path: Path, lfw_images: Path,
                                          two_face_image: np.ndarray) -> None:
    from PIL import Image

    home = tmp_path / "home"
    enrol = faceid(home, "enroll", "George W Bush", lfw(lfw_images, "George_W_Bush", 1),
                   lfw(lfw_images, "George_W_Bush", 2))
    assert enrol.returncode == 0, enrol.stderr
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(two_face_image).save(photos / "a_group.jpg")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(photos / "b_wall.png")
    (photos / "c_text.jpg").write_text("not a photo")
    out = tmp_path / "rows.csv"
    p = faceid(home, "identify", photos, lfw(lfw_images, "George_W_Bush", 3), "--out", out,
               "--tau", "0.4156")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(out.open()))
    group = [r for r in rows if r["path"].endswith("a_group.jpg")]
    assert [r["face"] for r in group] == ["1", "2"]
    assert group[0]["decision"] == "unknown" and group[0]["name"] == ""  # Aaron Peirsol
    # the fused template of photos 1 and 2; photo 1 is in the group
    assert group[1]["name"] == "George W Bush" and float(group[1]["distance"]) < 0.2
    assert len(group[1]["box"].split()) == 4
    wall, text = (next(r for r in rows if r["path"].endswith(n)) for n in ("b_wall.png",
                                                                        "c_text.jpg"))
    assert wall["error_code"] == "21" and "no face" in wall["error"]
    assert text["error_code"] == "13" and "c_text.jpg" in text["error"]
    assert rows[-1]["name"] == "George W Bush" and rows[-1]["path"].endswith("_0003.jpg")
    js = tmp_path / "rows.json"
    p = faceid(home, "identify", photos, "--out", js, "--json", "--tau", "0.4156")
    assert json.loads(p.stdout)["faces"] == 2 and json.loads(p.stdout)["errors"] == 2
    assert [r["face"] for r in json.loads(js.read_text())] == [1, 2, None, None]
