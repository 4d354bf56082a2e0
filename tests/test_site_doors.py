"""Two doors and the server on one real PostgreSQL database (issue 15): each door process
keeps its own index in step with the shared gallery, records its decisions under its own
name, and writes the status the server shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from db.keys import add_key
from db.store import Store
from faceid.door.sources import FrameSource
from faceid.enrolment import enroll_images
from faceid.gallery import Gallery
from faceid.service.app import Service, create_app
from tests.conftest import DATASETS, ROOT

CLIP = DATASETS / "videos" / "preview" / "head-pose-face-detection-male.gif"


def test_two_doors_and_the_server_share_one_postgresql(postgres, fid, tmp_path: Path):
    url = postgres.new_database()
    store = Store(url, create=True, timeout=10)
    gallery = Gallery(store, fid, tmp_path / "enrol-index")
    first = next(iter(FrameSource(str(CLIP))))[2]
    enroll_images(gallery, "head-pose man", [first])
    env = {**os.environ, "FACEID_THREADS": "1"}
    doors = {name: subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "watch", "--source", str(CLIP), "--door", name,
         "--db", url, "--home", str(tmp_path / name), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name in ("front", "back")}
    summaries = {}
    for name, proc in doors.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        summaries[name] = json.loads(out)
    for name, summary in summaries.items():
        assert [(d["decision"], d["person_name"]) for d in summary["decisions"]][:1] == \
            [("grant", "head-pose man")], (name, summary["decisions"])
        assert (tmp_path / name / "index").is_dir()  # each door its own index
    grants = [e for e in store.events(kind="decision") if e.decision == "grant"]
    assert sorted(e.door for e in grants) == ["back", "front"]
    key = add_key(store, "guard", "read")[1]
    client = TestClient(create_app(Service(Gallery(store, fid, tmp_path / "server-index"))))
    shown = client.get("/v1/doors", headers={"X-API-Key": key}).json()["doors"]
    assert [d["name"] for d in shown] == ["back", "front"]
    for d in shown:
        assert d["running"] is False and d["frames"] > 0 and d["state"] == "ok"
        assert d["last_decision"] == "grant:match"
