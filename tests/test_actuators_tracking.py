"""Actuators against a real local HTTP server and real shell commands; the tracker and the
zone rule on real detections."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from faceid.door.actuators import (SIGNATURE_HEADER, TIMESTAMP_HEADER, Decision, DenyCommand,
                              Opener, Outbox, Webhook, sign)
from faceid.detection import Face
from faceid.door.tracking import Tracker, pick_subject


def decision(**kw) -> Decision:
    base = dict(decision="grant", reason="match", source="door-1",
                time="2026-11-23T08:00:00+00:00", person_id=7, person_name="Ada Lovelace",
                distance=0.31, liveness=0.93)
    return Decision(**{**base, **kw})


SECRET = b"site-secret"


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict, dict]] = []
    status = 200
    delay = 0.0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(_Hook.delay)
        _Hook.received.append((json.loads(body), {
            "body": body, "stamp": self.headers[TIMESTAMP_HEADER],
            "signature": self.headers[SIGNATURE_HEADER]}))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def hook_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    _Hook.status = 200
    _Hook.delay = 0.0
    yield f"http://127.0.0.1:{server.server_port}/door"
    server.shutdown()


def test_webhook_posts_the_decision_as_signed_json(hook_url: str) -> None:
    Webhook(hook_url, SECRET).send(decision(audit={"nearest": {"person_id": 3}}))
    ((got, meta),) = _Hook.received
    assert got["decision"] == "grant" and got["person_name"] == "Ada Lovelace"
    assert got["distance"] == 0.31
    assert "audit" not in got  # the restricted field never leaves the event row
    # the receiver can check the signature with the shared secret, and a changed body fails
    expected = hmac.new(SECRET, meta["stamp"].encode() + b"." + meta["body"], hashlib.sha256)
    assert meta["signature"] == "sha256=" + expected.hexdigest()
    assert sign(SECRET, meta["stamp"], meta["body"].replace(b"grant", b"deny!")) != meta["signature"]
    assert sign(b"other", meta["stamp"], meta["body"]) != meta["signature"]


def test_webhook_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        Webhook("http://127.0.0.1:9/x", b"")


def test_webhook_error_status_raises(hook_url: str) -> None:
    _Hook.status = 503
    with pytest.raises(RuntimeError, match="503"):
        Webhook(hook_url, SECRET).send(decision())


def test_webhook_unreachable_raises_one_line() -> None:
    with pytest.raises(RuntimeError, match="unreachable: ConnectionError"):
        Webhook("http://127.0.0.1:9/nothing", SECRET, timeout=1).send(decision())


def test_opener_gets_the_decision_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    Opener(f'echo "$FACEID_DECISION $FACEID_PERSON_NAME $FACEID_PERSON_ID" > {out}'
           ).open(decision())
    assert out.read_text().strip() == "grant Ada Lovelace 7"
    DenyCommand(f"echo unused > {tmp_path / 'x'}").send(decision(decision="grant"))
    assert not (tmp_path / "x").exists()  # the deny notifier ignores grants


def test_command_failure_and_timeout_raise() -> None:
    with pytest.raises(RuntimeError, match="exited 3"):
        Opener("exit 3").open(decision())
    with pytest.raises(RuntimeError, match="longer than 0.5 s"):
        Opener("sleep 5", timeout=0.5).open(decision())


def test_outbox_retries_then_reports_and_never_blocks(hook_url: str) -> None:
    """A failing webhook is retried in the background; put() returns at once even when the
    receiver is slow, and every outcome reaches on_status."""
    statuses: list[tuple[int | None, str, str]] = []
    box = Outbox([Webhook(hook_url, SECRET)],
                 lambda eid, name, st: statuses.append((eid, name, st["status"])),
                 attempts=3, backoff_s=0.05)
    _Hook.status = 500
    _Hook.delay = 0.3
    t0 = time.monotonic()
    box.put(decision(event_id=1))
    assert time.monotonic() - t0 < 0.1  # the door does not wait for the webhook
    assert box.close(wait_s=10) == 0
    assert statuses == [(1, "webhook", "retrying"), (1, "webhook", "retrying"),
                        (1, "webhook", "failed")]
    assert len(_Hook.received) == 3
    statuses.clear()
    _Hook.status, _Hook.delay = 200, 0.0
    box = Outbox([Webhook(hook_url, SECRET)],
                 lambda eid, name, st: statuses.append((eid, name, st["status"])))
    box.put(decision(event_id=2))
    box.close(wait_s=10)
    assert statuses == [(2, "webhook", "delivered")]


def _face(x0: float, y0: float, size: float) -> Face:
    return Face((x0, y0, x0 + size, y0 + size), np.zeros((5, 2)), 0.99)


def test_tracker_keeps_ids_by_overlap_and_drops_lost_tracks() -> None:
    tr = Tracker(max_missed=2)
    a, b = tr.update([_face(100, 100, 80), _face(400, 100, 60)], 0.0)
    again = tr.update([_face(104, 102, 80), _face(405, 98, 60)], 0.1)
    assert [t.id for t in again] == [a.id, b.id]
    for i in range(3):
        tr.update([_face(108, 104, 80)], 0.2 + i / 10)
    assert [t.id for t in tr.tracks] == [a.id]
    (c,) = tr.update([_face(400, 300, 80)], 1.0)  # far away: a new person
    assert c.id not in (a.id, b.id)


def test_zone_picks_the_big_central_face_and_flags_a_close_follower() -> None:
    tr = Tracker()
    shape = (480, 640, 3)
    near = _face(260, 180, 120)
    far_small = _face(20, 20, 40)
    subject, behind = pick_subject(tr.update([far_small, near], 0), shape)
    assert subject.face is near and behind is None
    tr2 = Tracker()
    follower = _face(420, 200, 100)
    subject, behind = pick_subject(tr2.update([near, follower], 0), shape)
    assert subject.face is near and behind.face is follower
