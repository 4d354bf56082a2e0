"""``kill -9`` at random moments: ``faceid watch`` (on a real clip reel) and ``faceid
enroll-dir`` (over LFW people) are killed in turn; after each kill the database must open,
pass SQLite's integrity check, hold nobody without templates, have an index that agrees
with it (vectors included) once the gallery reopens, and an audit chain that verifies.

    .venv/bin/python -m bench.kills --kills 30 [--json reports/kills.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

DATASETS = Path(os.environ.get("FACEID_DATASETS", "../shared/datasets"))
ROOT = Path(__file__).resolve().parents[1]


def make_reel(path: Path, repeats: int = 4) -> Path:
    """The three head-pose previews, repeated, as one video file for ``watch``."""
    from faceid.door.sources import FrameSource

    clips = sorted((DATASETS / "videos" / "preview").glob("head-pose-*.gif"))
    frames = [f for c in clips for _, _, f in FrameSource(str(c))] * repeats
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (w, h))
    for f in frames:
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()
    return path


def lfw_folder(path: Path, people: int, per_person: int = 3) -> Path:
    """``people`` LFW people (links to at most ``per_person`` photos each) for enroll-dir."""
    images = DATASETS / "lfw" / "lfw-deepfunneled"
    for d in sorted(p for p in images.iterdir() if p.is_dir())[:people]:
        (path / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir())[:per_person]:
            (path / d.name / f.name).symlink_to(f.resolve())
    return path


def check(home: Path, fid: object) -> dict:
    """What a restart must find after a kill."""
    from db.engine import resolve_url
    from db.index import GalleryIndex
    from db.store import Store
    from faceid.gallery import Gallery

    db_file = home / "faceid.db"
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    store = Store(resolve_url(home), create=False)
    chain = store.verify_chain()
    gallery = Gallery(store, fid, home / "index")
    rebuilt = any("rebuilt" in m for m in gallery.messages)
    revision, ids, owners, vectors = store.gallery(gallery.model.id)
    on_disk = GalleryIndex(home / "index", gallery.model.key, gallery.model.embedding_size)
    reason = on_disk.check(revision, dict(zip(ids.tolist(), owners.tolist())), vectors)
    people = store.people(gallery.model.id)
    store.close()
    return {"integrity_ok": integrity == "ok", "chain_ok": chain.ok,
            "index_rebuilt_on_restart": rebuilt, "index_in_step_after_restart": reason is None,
            "people_without_templates": sum(1 for p in people if p.templates == 0),
            "people": len(people), "templates": len(ids), "events": chain.rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--people", type=int, default=600,
                    help="LFW people in the enroll-dir folder (enough that it never finishes)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    import torch

    from faceid.pipeline import FaceID

    torch.set_num_threads(1)
    rng = random.Random(a.seed)
    fid = FaceID()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        home = tmp_path / "home"
        reel = make_reel(tmp_path / "reel.avi")
        people = lfw_folder(tmp_path / "people", a.people)
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "enroll", "Aaron Peirsol",
                        str(DATASETS / "lfw" / "lfw-deepfunneled" / "Aaron_Peirsol" /
                            "Aaron_Peirsol_0001.jpg"), "--home", str(home)],
                       check=True, capture_output=True, env=env)
        commands = {
            "watch": ["watch", "--source", str(reel), "--door", "kill-bench", "--json"],
            "enroll-dir": ["enroll-dir", str(people), "--json"],
        }
        for k in range(a.kills):
            what = "watch" if k % 2 == 0 else "enroll-dir"
            after = rng.uniform(4.0, 14.0)  # the CLI needs about 4 s to load torch
            proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *commands[what],
                                     "--home", str(home)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=env)
            time.sleep(after)
            finished = proc.poll() is not None
            if not finished:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            row = {"run": k, "command": what, "killed_after_s": round(after, 1),
                   "finished_before_kill": finished, **check(home, fid)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    killed = [r for r in rows if not r["finished_before_kill"]]
    summary = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores)", "runs": len(rows),
        "killed": len(killed), "by_command": dict(Counter(r["command"] for r in killed)),
        "integrity_ok": sum(r["integrity_ok"] for r in rows),
        "chain_ok": sum(r["chain_ok"] for r in rows),
        "index_in_step_after_restart": sum(r["index_in_step_after_restart"] for r in rows),
        "index_rebuilt_on_restart": sum(r["index_rebuilt_on_restart"] for r in rows),
        "people_without_templates": sum(r["people_without_templates"] for r in rows),
        "final_people": rows[-1]["people"], "final_templates": rows[-1]["templates"],
        "final_events": rows[-1]["events"],
    }
    print(json.dumps(summary, indent=1))
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
