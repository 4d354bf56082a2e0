"""``faceid serve``'s API through FastAPI's test client, on a real SQLite gallery and real
LFW photos: keys and scopes, enrolment by upload, 1:1 and 1:K, bad uploads with the CLI's
codes, the audit trail, a database that stops answering."""

from __future__ import annotations

import io
import threading
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
def site(tmp_path_factory, fid):
    home = tmp_path_factory.mktemp("site")
    store = Store(f"sqlite:///{home}/faceid.db", create=True, timeout=5)
    service = Service(Gallery(store, fid, home / "index"), max_upload=2_000_000)
    admin = add_key(store, "admin console", "admin")[1]
    reader = add_key(store, "front kiosk", "read")[1]
    return TestClient(create_app(service)), service, admin, reader


def photo(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_ready_and_metrics_need_no_key(site):
    client, *_ = site
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    text = client.get("/metrics").text
    assert "faceid_requests_total" in text and 'route="/health"' in text


def test_keys_and_scopes(site, lfw_images):
    client, service, admin, reader = site
    r = client.get("/v1/people")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/people", headers=auth("fid_" + "x" * 43)).status_code == 401
    assert client.get("/v1/people", headers={"X-API-Key": reader}).status_code == 200
    files = [("photos", photo(lfw(lfw_images, "Laura_Bush", 1)))]
    r = client.post("/v1/people", data={"name": "Laura Bush"}, files=files, headers=auth(reader))
    assert r.status_code == 403 and "read-only" in r.json()["error"]["message"]
    _, token = add_key(service.gallery.store, "temp", "read")
    assert client.get("/v1/people", headers=auth(token)).status_code == 200
    revoke_key(service.gallery.store, "temp")
    assert client.get("/v1/people", headers=auth(token)).status_code == 401


def test_enrol_identify_verify_and_the_audit_trail(site, lfw_images):
    client, _, admin, reader = site
    for name in ("Aaron_Peirsol", "Colin_Powell", "Serena_Williams"):
        r = client.post("/v1/people", headers=auth(admin),
                        data={"name": name.replace("_", " "), "external_id": name[:3]},
                        files=[("photos", photo(lfw(lfw_images, name, 1)))])
        assert r.status_code == 201, r.text
    people = client.get("/v1/people", params={"q": "powell"}, headers=auth(reader)).json()
    assert [p["name"] for p in people["people"]] == ["Colin Powell"]
    probe = lfw(lfw_images, "Aaron_Peirsol", 2)
    r = client.post("/v1/identify", files={"image": photo(probe)}, headers=auth(reader))
    face = r.json()["faces"][0]
    assert face["decision"] == "match" and face["name"] == "Aaron Peirsol"
    stranger = lfw(lfw_images, "George_W_Bush", 1)
    r = client.post("/v1/identify", files={"image": photo(stranger)}, headers=auth(reader))
    face = r.json()["faces"][0]
    assert face["decision"] == "unknown" and face["name"] is None and face["candidates"] == []
    r = client.post("/v1/verify", data={"claim": "badge:Aar"}, files={"image": photo(probe)},
                    headers=auth(reader))
    assert r.status_code == 200 and r.json()["same"] is True
    r = client.post("/v1/verify", data={"claim": "badge:Aar"},
                    files={"image": photo(stranger)}, headers=auth(reader))
    assert r.json()["same"] is False
    events = client.get("/v1/events", params={"kind": "decision"}, headers=auth(reader)).json()
    sources = [e["source"] for e in events["events"]]
    assert f"api:front kiosk:{probe.name}" in sources
    assert f"api:front kiosk:{stranger.name}" in sources
    admin_events = client.get("/v1/events", params={"kind": "admin"}, headers=auth(reader))
    assert {"enrol", "key_add", "key_revoke"} <= {e["decision"]
                                                 for e in admin_events.json()["events"]}
    assert 'decision="match"' in client.get("/metrics").text


def test_compare_needs_no_gallery_entry(site, lfw_images):
    client, _, _, reader = site
    r = client.post("/v1/compare", headers=auth(reader),
                    files={"a": photo(lfw(lfw_images, "Tony_Blair", 1)),
                           "b": photo(lfw(lfw_images, "Tony_Blair", 2))})
    assert r.status_code == 200 and r.json()["same"] is True


def bad(r, status: int, code: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code and body["message"] and "Traceback" not in body["message"]


def test_bad_uploads_are_refused_with_the_clis_codes(site, tmp_path):
    client, _, _, reader = site
    bad(client.post("/v1/identify", headers=auth(reader),
                    files={"image": ("notes.jpg", b"hello, not a photo", "image/jpeg")}), 415, 13)
    bad(client.post("/v1/identify", headers=auth(reader),
                    files={"image": ("big.jpg", b"\xff" * 2_000_001, "image/jpeg")}), 413, 16)
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # a small file that declares 400 MP
    bad(client.post("/v1/identify", headers=auth(reader),
                    files={"image": ("bomb.png", bomb.getvalue(), "image/png")}), 413, 15)
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank, "JPEG")
    bad(client.post("/v1/identify", headers=auth(reader),
                    files={"image": ("wall.jpg", blank.getvalue(), "image/jpeg")}), 422, 21)
    bad(client.post("/v1/identify", headers=auth(reader)), 400, 2)  # no image at all


def test_people_changes_and_bad_requests(site, lfw_images):
    client, _, admin, reader = site
    client.post("/v1/people", headers=auth(admin), data={"name": "Hugo Chavez"},
                files=[("photos", photo(lfw(lfw_images, "Hugo_Chavez", 1)))])
    r = client.patch("/v1/people/Hugo Chavez", headers=auth(admin), json={"name": "H. Chavez"})
    assert r.status_code == 200 and "H. Chavez" in r.json()["person"]
    bad(client.patch("/v1/people/H. Chavez", headers={**auth(admin),
                                                        "Content-Type": "application/json"},
                     content=b"{not json"), 400, 2)
    bad(client.get("/v1/people/Nobody Here", headers=auth(reader)), 404, 53)
    assert client.delete("/v1/people/H. Chavez", headers=auth(admin)).status_code == 200
    bad(client.get("/v1/people/H. Chavez", headers=auth(reader)), 404, 53)


def test_two_admins_enrolling_the_same_person_at_once_make_one(site, lfw_images):
    client, service, admin, _ = site
    files = [lfw(lfw_images, "Jennifer_Aniston", n) for n in (1, 2)]
    codes = []

    def enrol() -> None:
        r = client.post("/v1/people", headers=auth(admin), data={"name": "Jennifer Aniston"},
                        files=[("photos", photo(f)) for f in files])
        codes.append(r.status_code)

    threads = [threading.Thread(target=enrol) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201, 201]
    people = [p for p in service.gallery.store.people() if p.name == "Jennifer Aniston"]
    assert len(people) == 1 and people[0].templates == 2


def test_a_database_that_stops_answering_gives_503_and_recovery(tmp_path, fid, lfw_images):
    """The database file replaced by garbage (a disk fault): requests are 503 with a JSON
    body, not a crash; when the file is back the same server answers again."""
    db = tmp_path / "faceid.db"
    store = Store(f"sqlite:///{db}", create=True, timeout=1)
    service = Service(Gallery(store, fid, tmp_path / "index"))
    key = add_key(store, "k", "read")[1]
    client = TestClient(create_app(service))
    assert client.get("/ready").status_code == 200
    store.engine.dispose()
    good = db.read_bytes()
    db.write_bytes(b"not a database" * 1000)
    r = client.get("/ready")
    assert r.status_code == 503 and r.json()["error"]["code"] >= 50
    assert client.get("/v1/people", headers=auth(key)).status_code in (401, 503)
    store.engine.dispose()
    db.write_bytes(good)
    assert client.get("/ready").status_code == 200
    assert client.get("/v1/people", headers=auth(key)).status_code == 200


def test_faceid_serve_answers_over_loopback_and_keys_come_from_the_cli(tmp_path, lfw_images):
    """The real thing: `faceid keys add` makes a key, `faceid serve` loads the models once
    and answers HTTP on 127.0.0.1; `faceid keys revoke` shuts the key out."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.conftest import ROOT

    cli = [sys.executable, str(ROOT / "cli.py")]
    home = str(tmp_path / "home")
    env = {**os.environ, "FACEID_THREADS": "1"}
    made = subprocess.run([*cli, "keys", "add", "kiosk", "--home", home, "--json"],
                          capture_output=True, text=True, env=env, check=True)
    key = json.loads(made.stdout)["key"]
    listed = subprocess.run([*cli, "keys", "list", "--home", home, "--json"],
                            capture_output=True, text=True, env=env, check=True)
    assert key not in listed.stdout and json.loads(listed.stdout)["keys"][0]["scope"] == "read"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--home", home], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    def get(path: str, token: str | None = None) -> int:
        req = urllib.request.Request(base + path, headers={"X-API-Key": token} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if get("/ready") == 200:
                    break
            except OSError:
                time.sleep(0.3)
        assert get("/health") == 200
        assert get("/v1/people", key) == 200
        assert get("/v1/people") == 401
        subprocess.run([*cli, "keys", "revoke", "kiosk", "--home", home], env=env, check=True,
                       capture_output=True)
        assert get("/v1/people", key) == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_port_in_use_is_one_clear_line(tmp_path):
    import socket

    from tests.test_cli import assert_one_line_error, run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = run("serve", "--port", port, "--home", tmp_path)
    assert_one_line_error(p, 2, f"--port {port}")
