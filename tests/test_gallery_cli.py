"""Enrolment and recognition from the command line, as a site would run them: real LFW
photos, a real SQLite file, and the faults the issue lists (locked database, newer schema,
bad photos, another model's templates, a killed enrol-dir)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import lfw
from tests.test_cli import FACEID, ROOT, assert_one_line_error


def faceid(home: Path, *args: object, extra_env: dict | None = None,
           timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACEID_HOME": str(home), **(extra_env or {})}
    env.pop("FACEID_DB", None)
    return subprocess.run([*FACEID, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def as_json(p: subprocess.CompletedProcess) -> dict:
    return json.loads(p.stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(scope="module")
def people_tree(tmp_path_factory, lfw_images: Path) -> Path:
    """A small LFW-layout tree: 6 people x 2 photos, plus one unreadable file."""
    root = tmp_path_factory.mktemp("people")
    for name in ["Colin_Powell", "Tony_Blair", "Serena_Williams", "Hugo_Chavez",
                 "Gloria_Macapagal_Arroyo", "Jean_Chretien"]:
        (root / name).mkdir()
        for n in (1, 2):
            (root / name / f"{name}_{n:04d}.jpg").symlink_to(lfw(lfw_images, name, n))
    (root / "Jean_Chretien" / "Jean_Chretien_0003.jpg").write_text("not a photo")
    return root


# Galleries of one or two people run on the strict fallback threshold (too few people to
# estimate their own; tests/test_operating_point.py covers that). The tests of plumbing below
# pass the model's 1:1 tau as a fixed site threshold instead.
SITE_TAU = ("--tau", "0.4156")


def test_enrol_identify_verify_people(home: Path, lfw_images: Path) -> None:
    p = faceid(home, "enroll", "Colin Powell", lfw(lfw_images, "Colin_Powell", 1),
               lfw(lfw_images, "Colin_Powell", 2), "--external-id", "B-7", "--json")
    assert p.returncode == 0, p.stderr
    assert as_json(p)["added"] == 2 and as_json(p)["created"]
    assert faceid(home, "enroll", "Tony Blair", lfw(lfw_images, "Tony_Blair", 1)).returncode == 0

    p = faceid(home, "identify", lfw(lfw_images, "Colin_Powell", 6), "--json", *SITE_TAU)
    assert p.returncode == 0, p.stderr
    assert as_json(p)["person"]["name"] == "Colin Powell"
    p = faceid(home, "identify", lfw(lfw_images, "Aaron_Peirsol", 1), *SITE_TAU)
    assert p.returncode == 1 and "unknown" in p.stdout
    p = faceid(home, "verify", lfw(lfw_images, "Tony_Blair", 3), "--as", "Tony Blair", "--json",
               *SITE_TAU)
    assert p.returncode == 0 and as_json(p)["same"], p.stdout
    p = faceid(home, "verify", lfw(lfw_images, "Tony_Blair", 3), "--as", "B-7", "--json",
               *SITE_TAU)
    assert p.returncode == 1 and not as_json(p)["same"]

    listed = as_json(faceid(home, "people", "list", "--json"))["people"]
    assert [(x["name"], x["templates"]) for x in listed] == [("Colin Powell", 2),
                                                             ("Tony Blair", 1)]
    assert faceid(home, "people", "rename", "Tony Blair", "Anthony Blair").returncode == 0
    shown = as_json(faceid(home, "people", "show", "Anthony Blair", "--json"))
    assert shown["templates"][0]["source"].endswith("Tony_Blair_0001.jpg")
    events = as_json(faceid(home, "events", "--kind", "decision", "--json"))["events"]
    assert [e["decision"] for e in events] == ["no_match", "match", "unknown", "match"]
    assert events[1]["person_name"] == "Tony Blair" and events[3]["person_name"] == "Colin Powell"

    assert faceid(home, "people", "remove", "B-7", "--yes").returncode == 0
    p = faceid(home, "identify", lfw(lfw_images, "Colin_Powell", 6), "--json", *SITE_TAU)
    assert p.returncode == 1 and as_json(p)["decision"] == "unknown"
    status = as_json(faceid(home, "index", "status", "--json"))
    assert status["templates"] == 1 and status["in_step"]
    assert_one_line_error(faceid(home, "verify", lfw(lfw_images, "Colin_Powell", 6), "--as",
                                 "Colin Powell"), 53, "Colin Powell")


def test_enrol_refuses_bad_photos_naming_them(home: Path, lfw_images: Path, tmp_path: Path,
                                              two_face_image: np.ndarray) -> None:
    good = lfw(lfw_images, "Colin_Powell", 1)
    two = tmp_path / "two.jpg"
    Image.fromarray(two_face_image).save(two)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    blurred = tmp_path / "blurred.png"
    from PIL import ImageFilter

    Image.open(good).filter(ImageFilter.GaussianBlur(4)).save(blurred)
    for bad, code in [(two, 22), (blank, 21), (blurred, 24), (tmp_path / "nope.jpg", 10)]:
        assert_one_line_error(faceid(home, "enroll", "X", good, bad), code, bad.name)
    # all or nothing: the good photo before the bad one was not stored either
    assert as_json(faceid(home, "people", "list", "--json"))["people"] == []


def test_locked_database_waits_then_fails_clearly(home: Path, lfw_images: Path) -> None:
    assert faceid(home, "init").returncode == 0  # creates the database
    conn = sqlite3.connect(home / "faceid.db", isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        t = time.monotonic()
        p = faceid(home, "enroll", "Colin Powell", lfw(lfw_images, "Colin_Powell", 1),
                   extra_env={"FACEID_DB_TIMEOUT": "1.5"})
        assert_one_line_error(p, 51, "locked")
        assert time.monotonic() - t >= 1.5
    finally:
        conn.rollback()
        conn.close()
    assert faceid(home, "enroll", "Colin Powell",
                  lfw(lfw_images, "Colin_Powell", 1)).returncode == 0


def test_newer_schema_is_refused_clearly(home: Path) -> None:
    assert faceid(home, "init").returncode == 0
    with sqlite3.connect(home / "faceid.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999_future'")
    assert_one_line_error(faceid(home, "people", "list"), 52, "newer than this faceid")


def test_other_models_templates_refused_then_reembedded(home: Path, lfw_images: Path) -> None:
    assert faceid(home, "enroll", "Tony Blair", lfw(lfw_images, "Tony_Blair", 1),
                  "--views", "fast").returncode == 0
    probe = lfw(lfw_images, "Tony_Blair", 2)
    assert_one_line_error(faceid(home, "identify", probe), 56, "reembed")
    p = faceid(home, "reembed", "--json")
    assert p.returncode == 0 and as_json(p)["added"] == 1, p.stderr
    p = faceid(home, "identify", probe, "--json", *SITE_TAU)
    assert p.returncode == 0 and as_json(p)["person"]["name"] == "Tony Blair"


def test_missing_index_is_rebuilt_with_a_note(home: Path, lfw_images: Path) -> None:
    assert faceid(home, "enroll", "Tony Blair", lfw(lfw_images, "Tony_Blair", 1)).returncode == 0
    for f in (home / "index").iterdir():
        f.write_bytes(f.read_bytes()[:100])  # truncated
    p = faceid(home, "identify", lfw(lfw_images, "Tony_Blair", 2), *SITE_TAU)
    assert p.returncode == 0 and "rebuilt from the database" in p.stderr


def test_enroll_dir_killed_then_rerun_finishes(home: Path, people_tree: Path) -> None:
    env = {**os.environ, "FACEID_HOME": str(home)}
    proc = subprocess.Popen([*FACEID, "enroll-dir", str(people_tree)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = home / "faceid.db"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                if conn.execute("SELECT count(*) FROM people").fetchone()[0] >= 1:
                    break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = faceid(home, "enroll-dir", str(people_tree), "--json")
    assert p.returncode == 0, p.stderr
    rep = as_json(p)
    assert rep["images_failed"] == 1 and "Jean_Chretien_0003.jpg" in rep["failures"][0]
    listed = as_json(faceid(home, "people", "list", "--json"))["people"]
    assert len(listed) == 6 and all(x["templates"] == 2 for x in listed)
    status = as_json(faceid(home, "index", "status", "--json"))
    assert status["templates"] == 12 and status["in_step"]
    again = as_json(faceid(home, "enroll-dir", str(people_tree), "--json"))
    assert again["templates_added"] == 0 and again["people_unchanged"] == 5
    assert again["images_failed"] == 1  # the bad file is tried (and reported) again


def test_enrol_from_a_real_clip_picks_good_frames(home: Path, tmp_path: Path) -> None:
    from faceid.door.sources import read_frames

    clips = ROOT.parent / "shared" / "datasets" / "videos" / "preview"
    male = clips / "head-pose-face-detection-male.gif"
    p = faceid(home, "enroll", "Head Pose Male", "--source", male, "--max-frames", "20",
               "--json")
    assert p.returncode == 0, p.stderr
    assert as_json(p)["added"] == 3
    shown = as_json(faceid(home, "people", "show", "Head Pose Male", "--json"))
    frames = sorted(int(t["source"].rsplit("=", 1)[1]) for t in shown["templates"])
    assert len(set(frames)) == 3 and frames[-1] < 40  # spread over the frames examined
    later = tmp_path / "later.png"
    Image.fromarray(dict(read_frames(str(male)))[61]).save(later)
    p = faceid(home, "identify", later, "--json")
    assert p.returncode == 0 and as_json(p)["person"]["name"] == "Head Pose Male", p.stdout
    other = tmp_path / "other.png"
    Image.fromarray(next(read_frames(str(clips / "head-pose-face-detection-female.gif")))[1]
                    ).save(other)
    assert faceid(home, "identify", other).returncode == 1
    assert_one_line_error(faceid(home, "enroll", "X", "--source", tmp_path / "nope.mp4"),
                          42, "nope.mp4")


def test_watch_grants_an_enrolled_live_person_and_runs_the_grant_command(
        home: Path, tmp_path: Path) -> None:
    from faceid.door.sources import read_frames

    clip = ROOT.parent / "shared" / "datasets" / "videos" / "preview" / \
        "head-pose-face-detection-female.gif"
    first = tmp_path / "first.png"
    Image.fromarray(next(read_frames(str(clip)))[1]).save(first)
    assert faceid(home, "enroll", "Head Pose Female", first).returncode == 0
    opened = tmp_path / "opened.txt"
    p = faceid(home, "watch", "--source", clip, "--timeout", "1.5", "--json",
               "--on-grant", f'echo "$FACEID_PERSON_NAME" >> {opened}')
    assert p.returncode == 0, p.stderr
    decisions = as_json(p)["decisions"]
    assert [(d["decision"], d["person_name"]) for d in decisions] == [
        ("grant", "Head Pose Female")]
    assert opened.read_text().strip() == "Head Pose Female"
    events = as_json(faceid(home, "events", "--person", "Head Pose Female", "--kind",
                                "decision", "--json"))
    assert [e["decision"] for e in events["events"]] == ["grant"]
