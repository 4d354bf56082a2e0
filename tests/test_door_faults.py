"""The door under faults, on real clips and a real database: one honest decision per pass,
no enrolled name on a stranger, a relay or webhook that fails never becomes a second,
contrary event, and a database or detector fault denies without ending the loop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from db.store import Store
from faceid.door.actuators import Opener, Webhook
from faceid.enrolment import enroll_images
from faceid.gallery import Gallery
from faceid.door.liveness import LivenessGate
from faceid.door.turnstile import Turnstile, WatchConfig
from faceid.door.sources import FrameSource, read_frames
from tests.test_turnstile import FEMALE, MALE


@pytest.fixture
def gallery(fid, tmp_path: Path) -> Gallery:
    """Enrolled: the woman of the head-pose clip, from its first frame."""
    g = Gallery(Store(f"sqlite:///{tmp_path / 'door.db'}", timeout=0.3), fid,
                tmp_path / "index")
    enroll_images(g, "Head Pose Female", [next(read_frames(str(FEMALE)))[1]])
    return g


def clip(path: Path, n: int = 40) -> list:
    """The first ``n`` frames of a clip (the enrolled woman is granted well within them)."""
    return list(FrameSource(str(path)))[:n]


def door(gallery: Gallery, **kw) -> Turnstile:
    return Turnstile(gallery, WatchConfig(source="test", timeout_s=1.5, door="front"),
                     LivenessGate(), **kw)


def test_a_stranger_is_never_shown_or_recorded_under_an_enrolled_name(
        gallery: Gallery) -> None:
    t = door(gallery)
    labels: list = []
    decisions = t.run(iter(clip(MALE)),
                      lambda frame, report: labels.append(report.label))
    assert decisions and all(d.decision == "deny" for d in decisions)
    assert all(d.person_id is None and d.person_name is None for d in decisions)
    assert "Head Pose Female" not in labels  # the overlay never names the nearest person
    assert "Head Pose Female" not in json.dumps([d.to_dict() for d in decisions])
    events = gallery.store.events(kind="decision")
    assert all(e.person_name is None and e.person_id is None for e in events)
    # the nearest candidate is kept for the auditor only, by id, in the event's details
    nearest = [json.loads(e.details).get("nearest") for e in events if e.reason == "unknown"]
    assert nearest and all(n is None or set(n) == {"person_id", "distance"} for n in nearest)


def test_a_relay_that_fails_is_recorded_on_the_grant_not_as_a_second_event(
        gallery: Gallery) -> None:
    decisions = door(gallery, opener=Opener("exit 3")).run(iter(clip(FEMALE)))
    assert [(d.decision, d.opened) for d in decisions] == [("grant", False)]
    assert decisions[0].actuation.startswith("failed: command 'exit 3' exited 3")
    (event,) = gallery.store.events(kind="decision")
    assert (event.decision, event.door, event.actuation) == ("grant", "front",
                                                             decisions[0].actuation)


def test_a_dead_webhook_never_turns_a_grant_into_a_deny(gallery: Gallery,
                                                        tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    t = door(gallery, opener=Opener(f"echo open >> {opened}"),
             notifiers=[Webhook("http://127.0.0.1:9/panel", b"secret", timeout=1)])
    decisions = t.run(iter(clip(FEMALE)))
    assert [(d.decision, d.opened) for d in decisions] == [("grant", True)]
    assert opened.read_text() == "open\n"
    assert t.close(wait_s=0.5) >= 0
    (event,) = gallery.store.events(kind="decision")
    assert event.decision == "grant" and event.actuation == "opened"
    status = json.loads(event.delivery)["webhook"]
    assert status["status"] in ("retrying", "undelivered", "failed")
    assert "unreachable" in status["error"] or status["status"] == "undelivered"


def test_a_locked_database_keeps_the_door_shut_and_the_decision_is_written_later(
        gallery: Gallery, tmp_path: Path) -> None:
    """Another process holds SQLite's write lock for the whole clip: the live, enrolled
    woman is granted but nothing may open while her decision cannot be recorded; the loop
    runs on, and once the lock is gone her decision is written with its own time."""
    import sqlite3

    opened = tmp_path / "opened"
    t = door(gallery, opener=Opener(f"echo open >> {opened}"))
    locker = sqlite3.connect(tmp_path / "door.db", timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    frames = clip(FEMALE)
    decisions = t.run(iter(frames))
    assert [d.decision for d in decisions] == ["grant"]
    assert not opened.exists() and decisions[0].actuation.startswith("not_opened")
    assert t.health.degraded and t.health.unwritten == 1 and t.health.faults["record"] >= 1
    assert gallery.store.events(kind="decision") == []
    locker.execute("ROLLBACK")
    last_t = frames[-1][1]
    t.process(np.zeros((120, 160, 3), np.uint8), last_t + 5.0)  # any later frame retries
    (event,) = gallery.store.events(kind="decision")
    assert event.decision == "grant" and event.actuation.startswith("not_opened")
    assert event.id and not t.health.degraded
    assert gallery.store.verify_chain().ok


def test_a_database_that_vanishes_mid_run_does_not_end_the_loop(gallery: Gallery,
                                                                 tmp_path: Path) -> None:
    """The database file is replaced by garbage while the door runs (a disk fault):
    refresh and recording fail, every frame is still processed, nothing opens; with the
    file back, the door recovers and writes what it held."""
    db = tmp_path / "door.db"
    t = door(gallery, opener=Opener(f"echo open >> {tmp_path / 'opened'}"))
    frames = clip(FEMALE)
    t.run(iter(frames[:3]))
    gallery.store.engine.dispose()
    shutil.move(db, tmp_path / "saved.db")
    db.write_bytes(b"this is not a database" * 100)
    later = [(i, ts + 2.0, f) for i, ts, f in frames[3:]]  # a refresh falls due
    decisions = list(t.run(iter(later)))  # must not raise
    assert t.health.faults.get("refresh", 0) >= 1 and t.health.degraded
    assert not (tmp_path / "opened").exists()
    assert all(not d.opened for d in decisions)
    gallery.store.engine.dispose()
    shutil.move(tmp_path / "saved.db", db)
    t.process(np.zeros((120, 160, 3), np.uint8), frames[-1][1] + 10.0)  # refresh + retry
    assert not t.health.degraded, t.health.to_dict()
    assert len(gallery.store.events(kind="decision")) == len(decisions) >= 1
    assert gallery.store.verify_chain().ok


def test_a_frame_the_detector_cannot_take_is_dropped_and_the_loop_goes_on(
        gallery: Gallery) -> None:
    t = door(gallery)
    report = t.process(np.zeros((0, 0, 3), np.uint8), 0.0)
    assert report.state == "error" and t.health.faults["detect"] == 1
    frames = clip(FEMALE)
    decisions = t.run((i, ts + 0.1, f) for i, ts, f in frames)
    assert [d.decision for d in decisions] == ["grant"]
    assert "detect" not in t.health.failing
