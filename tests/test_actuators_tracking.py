"""Actuators against a real local HTTP server and real shell commands; the tracker and the
zone rule on real detections."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from faceid.actuators import CommandActuator, Decision, WebhookActuator
from faceid.detect import Face
from faceid.tracking import Tracker, pick_subject


def decision(**kw) -> Decision:
    base = dict(decision="grant", reason="match", source="door-1",
                time="2026-11-23T08:00:00+00:00", person_id=7, person_name="Ada Lovelace",
                distance=0.31, liveness=0.93)
    return Decision(**{**base, **kw})


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def hook_url():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    _Hook.status = 200
    yield f"http://127.0.0.1:{server.server_port}/door"
    server.shutdown()


def test_webhook_posts_the_decision_as_json(hook_url: str) -> None:
    WebhookActuator(hook_url).act(decision())
    (got,) = _Hook.received
    assert got["decision"] == "grant" and got["person_name"] == "Ada Lovelace"
    assert got["distance"] == 0.31


def test_webhook_error_status_raises(hook_url: str) -> None:
    _Hook.status = 503
    with pytest.raises(RuntimeError, match="503"):
        WebhookActuator(hook_url).act(decision())


def test_webhook_unreachable_raises() -> None:
    with pytest.raises(Exception):
        WebhookActuator("http://127.0.0.1:9/nothing", timeout=1).act(decision())


def test_command_gets_the_decision_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    CommandActuator(on_grant=f'echo "$FACEID_DECISION $FACEID_PERSON_NAME $FACEID_PERSON_ID" > {out}'
                    ).act(decision())
    assert out.read_text().strip() == "grant Ada Lovelace 7"
    CommandActuator(on_grant=f"echo unused > {tmp_path / 'x'}").act(decision(decision="deny"))
    assert not (tmp_path / "x").exists()  # no on_deny command: nothing runs


def test_command_failure_raises() -> None:
    with pytest.raises(RuntimeError, match="exited 3"):
        CommandActuator(on_grant="exit 3").act(decision())


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
