"""The web admin page (``/admin``) through FastAPI's test client, on a real SQLite gallery
and real LFW photos: sign-in with admin keys only, sessions that expire or end with their
key, enrolment by upload, thumbnails, identify and its event, filters, the doors' status,
removal only after confirmation, and names shown escaped. The same flows in a real browser
are in tests/test_admin_browser.py."""

from __future__ import annotations

import html
import io
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from db.keys import add_key, revoke_key
from db.store import Store
from faceid.gallery import Gallery
from faceid.service.app import Service, create_app
from tests.conftest import lfw


@pytest.fixture(scope="module")
def page(tmp_path_factory, fid):
    home = tmp_path_factory.mktemp("admin")
    store = Store(f"sqlite:///{home}/faceid.db", create=True, timeout=5)
    service = Service(Gallery(store, fid, home / "index"), max_upload=2_000_000)
    admin = add_key(store, "front desk", "admin")[1]
    reader = add_key(store, "kiosk", "read")[1]
    return service, admin, reader


def signed_in(service: Service, key: str) -> TestClient:
    client = TestClient(create_app(service))
    r = client.post("/admin/login", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/people")
    return client


def photo(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def test_sign_in_takes_admin_keys_only(page):
    service, admin, reader = page
    client = TestClient(create_app(service))
    r = client.get("/admin/people", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert client.get("/", follow_redirects=True).url.path == "/admin/login"
    r = client.post("/admin/login", data={"key": "fid_" + "x" * 43})
    assert "unknown or revoked API key" in r.text and "Sign in" in r.text
    r = client.post("/admin/login", data={"key": reader})
    assert "read-only" in r.text and client.cookies.get("faceid_session") is None
    r = client.post("/admin/login", data={"key": admin}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    assert admin not in cookie  # the cookie is a session token, never the key
    people = client.get(r.headers["location"])
    assert people.status_code == 200 and "signed in as front desk" in people.text
    client.post("/admin/logout")
    r = client.get("/admin/people", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")


def test_enrol_see_identify_and_the_event(page, lfw_images):
    service, admin, _ = page
    client = signed_in(service, admin)
    r = client.post("/admin/people", data={"name": "Aaron Peirsol", "external_id": "AP1"},
                    files=[("photos", photo(lfw(lfw_images, "Aaron_Peirsol", 1))),
                           ("photos", photo(lfw(lfw_images, "Aaron_Peirsol", 3)))])
    assert r.status_code == 200 and "enrolled Aaron Peirsol" in r.text
    assert r.url.path.startswith("/admin/people/")
    thumbs = [part.split('"')[0] for part in r.text.split('src="/admin/templates/')[1:]]
    assert len(thumbs) == 2
    face = Image.open(io.BytesIO(client.get(f"/admin/templates/{thumbs[0]}").content))
    assert face.format == "JPEG" and min(face.size) >= 32  # the aligned face crop
    client.post("/admin/people", data={"name": "Serena Williams"},
                files=[("photos", photo(lfw(lfw_images, "Serena_Williams", 1)))])
    listed = client.get("/admin/people", params={"q": "peirsol"}).text
    assert "Aaron Peirsol" in listed and "AP1" in listed and "Serena Williams" not in listed

    probe = lfw(lfw_images, "Aaron_Peirsol", 2)
    r = client.post("/admin/identify", files={"photo": photo(probe)})
    assert r.status_code == 200
    row = r.text.split('<tbody>')[1].split("</tr>")[0]
    assert "match" in row and "Aaron Peirsol" in row
    r = client.post("/admin/identify",
                    files={"photo": photo(lfw(lfw_images, "George_W_Bush", 1))})
    assert "unknown" in r.text.split('<tbody>')[1] and "Aaron Peirsol" not in r.text
    events = client.get("/admin/events", params={"decision": "match"}).text
    assert f"web:front desk:{probe.name}" in events and "George_W_Bush" not in events
    assert "George_W_Bush_0001.jpg" in client.get("/admin/events",
                                                  params={"decision": "unknown"}).text


def test_refused_inputs_come_back_as_one_line(page, lfw_images):
    service, admin, _ = page
    client = signed_in(service, admin)
    r = client.post("/admin/people", data={"name": "Notes"},
                    files=[("photos", ("notes.jpg", b"not a photo at all", "image/jpeg"))])
    assert 'id="error"' in r.text and "notes.jpg" in r.text and "Traceback" not in r.text
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank, "JPEG")
    r = client.post("/admin/people", data={"name": "Wall"},
                    files=[("photos", ("wall.jpg", blank.getvalue(), "image/jpeg"))])
    assert "no face" in r.text.lower()
    r = client.post("/admin/people", data={"name": "Nobody"},
                    files=[("photos", ("", b"", "application/octet-stream"))])
    assert "choose a photo" in r.text
    assert "Notes" not in client.get("/admin/people").text.split("<tbody>")[1]
    r = client.post("/admin/identify", files={"photo": ("big.jpg", b"\xff" * 2_000_001,
                                                        "image/jpeg")})
    assert "upload limit" in r.text
    r = client.get("/admin/events", params={"since": "yesterday"})
    assert "is not a date" in r.text


def test_removal_needs_confirmation_and_names_are_escaped(page, lfw_images):
    service, admin, _ = page
    client = signed_in(service, admin)
    r = client.post("/admin/people", data={"name": "<script>alert(1)</script>"},
                    files=[("photos", photo(lfw(lfw_images, "Hugo_Chavez", 1)))])
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    pid = r.url.path.rsplit("/", 1)[1]
    r = client.post(f"/admin/people/{pid}/active", data={"active": "false"})
    assert 'id="person-status">disabled' in r.text
    assert client.post(f"/admin/people/{pid}/active",
                       data={"active": "true"}).text.count("disabled") == 0
    r = client.post(f"/admin/people/{pid}/remove", data={"confirm": "yes"})
    assert "type 'remove' to confirm" in html.unescape(r.text)
    assert service.gallery.store.person_details(int(pid))["templates"]
    r = client.post(f"/admin/people/{pid}/remove", data={"confirm": "remove"})
    assert "removed" in r.text
    assert client.get(f"/admin/people/{pid}").url.path == "/admin/people"


def test_events_show_snapshots_and_doors_their_status(page, lfw_images):
    service, admin, _ = page
    store = service.gallery.store
    jpeg = io.BytesIO()
    Image.open(lfw(lfw_images, "Tony_Blair", 1)).crop((70, 70, 180, 180)).save(jpeg, "JPEG")
    event = store.add_event(source="door:lobby", door="lobby", decision="deny",
                            reason="not_live", liveness=0.21, snapshot_jpeg=jpeg.getvalue())
    now = datetime.now(timezone.utc)
    store.door_heartbeat("lobby", host="cam-1", started_at=now, last_seen=now, running=True,
                         state="ok", frames=1800, fps=29.7, last_decision="deny:not_live",
                         last_decision_at=now, liveness="passive+motion", last_liveness=0.21)
    client = signed_in(service, admin)
    events = client.get("/admin/events", params={"door": "lobby"}).text
    assert f'src="/admin/events/{event}.jpg"' in events and "not_live" in events
    assert client.get(f"/admin/events/{event}.jpg").content == jpeg.getvalue()
    doors = client.get("/admin/doors").text
    row = doors.split("<tbody>")[1]
    assert all(s in row for s in ("lobby", "cam-1", "29.7", "deny:not_live",
                                  "passive+motion", "0.21"))
    anonymous = TestClient(create_app(service))
    r = anonymous.get(f"/admin/events/{event}.jpg", follow_redirects=False)
    assert r.status_code == 303  # no snapshot without a session


def test_sessions_expire_and_end_with_their_key(page, tmp_path, fid):
    service, _, _ = page
    store = service.gallery.store
    short = Service(service.gallery, session_ttl_s=0.5)
    _, token = add_key(store, "temp desk", "admin")
    client = signed_in(short, token)
    assert client.get("/admin/people").status_code == 200
    time.sleep(0.3)
    assert client.get("/admin/people").url.path == "/admin/people"  # used: the clock restarts
    time.sleep(0.7)
    r = client.get("/admin/people")
    assert r.url.path == "/admin/login" and "session expired" in r.text
    client = signed_in(short, token)
    revoke_key(store, "temp desk")
    r = client.get("/admin/doors")
    assert r.url.path == "/admin/login" and "was revoked" in r.text
