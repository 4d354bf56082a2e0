"""The quick read path for ``faceid people list`` and ``faceid events`` (db/listing.py):
the same rows as the store on a real SQLite gallery, the store whenever the file is not one
this code fully understands, and no SQLAlchemy import on the quick path (what keeps these
commands under issue 14's 0.5 s of CPU; the time itself is measured by bench.startup)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from db import SCHEMA_HEAD, listing
from db.store import Store
from faceid.enrolment import enroll_images
from faceid.gallery import Gallery
from tests.conftest import ROOT, lfw


@pytest.fixture(scope="module")
def home(tmp_path_factory, fid, lfw_images) -> Path:
    home = tmp_path_factory.mktemp("listing")
    store = Store(f"sqlite:///{home}/faceid.db", create=True, timeout=5)
    gallery = Gallery(store, fid, home / "index")
    enroll_images(gallery, "Aaron Peirsol", [lfw(lfw_images, "Aaron_Peirsol", 1)],
                  external_id="AP-1")
    enroll_images(gallery, "Serena Williams", [lfw(lfw_images, "Serena_Williams", n)
                                               for n in (1, 2)])
    store.update_person("Serena Williams", active=False)
    event = store.add_event(source="door:front", door="front", decision="grant",
                            reason="match", person_id=1, person_name="Aaron Peirsol",
                            distance=0.31, margin=0.12, liveness=0.87, tau=0.42,
                            model="m", snapshot_jpeg=b"\xff\xd8 not shown")
    store.set_actuation(event, "ok")
    store.set_delivery(event, "webhook", {"status": "delivered", "tries": 1})
    store.add_event(source="cli:probe.jpg", decision="unknown", reason="above_tau",
                    distance=0.61, tau=0.42)
    store.close()
    return home


def test_rows_equal_the_stores(home):
    store = Store(f"sqlite:///{home}/faceid.db")
    conn = listing.open_current(listing.sqlite_file(home, None), 5)
    assert conn is not None
    assert listing.people(conn) == store.people()
    assert [p.to_dict() for p in listing.people(conn)][1]["active"] is False
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    for since, limit, kind in ((None, 100, None), (None, 2, None), (None, 100, "decision"),
                               (None, 100, "admin"), (later, 100, None),
                               (datetime.now(timezone.utc) - timedelta(hours=1), 3, None)):
        quick = listing.events(conn, since, limit, kind)
        assert quick == [e.to_dict() for e in store.events(since, None, limit, kind)]
    grant = next(e for e in listing.events(conn) if e["decision"] == "grant")
    assert grant["delivery"]["webhook"]["status"] == "delivered" and grant["actuation"] == "ok"


def test_anything_else_goes_through_the_store(home, tmp_path):
    assert listing.sqlite_file(tmp_path, None) is None  # no gallery there
    assert listing.sqlite_file(home, "postgresql://faceid@db/faceid") is None
    assert listing.sqlite_file(tmp_path, f"sqlite:///{home}/faceid.db") == home / "faceid.db"
    assert listing.sqlite_file(tmp_path, str(home / "faceid.db")) == home / "faceid.db"
    old = tmp_path / "old.db"
    old.write_bytes((home / "faceid.db").read_bytes())
    with sqlite3.connect(old) as c:
        c.execute("UPDATE alembic_version SET version_num = '0005'")
    assert listing.open_current(old, 5) is None  # the store migrates it first
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    assert listing.open_current(junk, 5) is None  # the store explains it
    assert SCHEMA_HEAD == Store(f"sqlite:///{home}/faceid.db").schema_revision


def test_the_commands_read_without_sqlalchemy(home):
    code = ("import sys, runpy; sys.argv = ['faceid'] + %r + ['--home', %r, '--json']\n"
            "try:\n    runpy.run_path(%r, run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('SQLALCHEMY' if 'sqlalchemy' in sys.modules else 'QUICK')")
    for command in (["people", "list"], ["events", "--limit", "3"]):
        args = (command, str(home), str(ROOT / "cli.py"))
        p = subprocess.run([sys.executable, "-c", code % args], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
        out, verdict = p.stdout.rsplit("\n", 2)[0], p.stdout.split()[-1]
        assert verdict == "QUICK", p.stderr
        data = json.loads(out)
        assert data.get("people") or len(data["events"]) == 3
    p = subprocess.run([sys.executable, str(ROOT / "cli.py"), "events", "--home", str(home),
                        "--person", "Aaron Peirsol", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and {e["person_name"] for e in json.loads(p.stdout)["events"]} \
        == {"Aaron Peirsol"}
