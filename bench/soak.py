"""Soak: the door on a looping real clip for ``--minutes`` while a second process enrols and
removes people, a third locks the database for seconds at a time, and the webhook target is
stopped and started. Counts what a site would audit afterwards:

* decisions the door made, events written, and **lost** events (a decision with no row);
* **duplicates** (more than one event for one pass, i.e. one track) and **contradictions**
  (a grant and a deny for one pass);
* webhook deliveries (signature checked by the receiver) and what was left undelivered;
* the door's **longest stall** (wall time between two frames' answers) and the hash chain.

    .venv/bin/python -m bench.soak --minutes 10 [--json reports/soak.json]

The door runs in this process, its networks on one thread (``FACEID_THREADS``), and its
resident memory is read after every pass of the reel (a leak shows as growth); the churn
and lock processes are children (``--role``). The reel is the three head-pose previews
(real people: the man, enrolled from his clip's first frame; the woman, a stranger; both
together), each followed by empty frames so that every showing is a new pass; LFW people
are enrolled and removed by the churn process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DATASETS = Path(os.environ.get("FACEID_DATASETS", "../shared/datasets"))
CLIPS = [DATASETS / "videos" / "preview" / f"head-pose-face-detection-{who}.gif"
         for who in ("male", "female", "female-and-male")]
GAP_FRAMES = 15  # empty frames between passes: every track ends, the next pass is new
SECRET = b"soak-secret"
CHURN_PEOPLE = ["Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Serena_Williams",
                "Gerhard_Schroeder", "Jacques_Chirac", "Vladimir_Putin", "Junichiro_Koizumi"]


# -- the webhook target --------------------------------------------------------------------
class Receiver:
    """A webhook endpoint that checks each signature and can be stopped and started."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[dict] = []
        self.bad_signatures = 0
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        from faceid.door.actuators import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers[TIMESTAMP_HEADER]
                with receiver.lock:
                    if self.headers[SIGNATURE_HEADER] != sign(SECRET, stamp, body):
                        receiver.bad_signatures += 1
                    receiver.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.allow_reuse_address = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def flap(receiver: Receiver, stop: threading.Event, up_s: float, down_s: float,
         log: list) -> None:
    """Take the webhook target down for ``down_s`` every ``up_s + down_s`` seconds."""
    while not stop.wait(up_s):
        receiver.stop()
        log.append(("webhook_down", time.time()))
        stop.wait(down_s)
        receiver.start()
        log.append(("webhook_up", time.time()))


# -- the other processes -------------------------------------------------------------------
def churn(home: Path, stop_file: Path) -> None:
    """Enrol an LFW person, then remove them, over and over, until ``stop_file`` exists."""
    from db.engine import resolve_url
    from db.store import Store
    from faceid.enrolment import enroll_images
    from faceid.errors import FaceIDError
    from faceid.gallery import Gallery
    from faceid.pipeline import FaceID

    gallery = Gallery(Store(resolve_url(home)), FaceID(), home / "index")
    images = DATASETS / "lfw" / "lfw-deepfunneled"
    counts: Counter = Counter()
    k = 0
    while not stop_file.exists():
        person = CHURN_PEOPLE[k % len(CHURN_PEOPLE)]
        k += 1
        try:
            enroll_images(gallery, person.replace("_", " "),
                          [images / person / f"{person}_0001.jpg"])
            counts["enrolled"] += 1
            time.sleep(1.0)
            gallery.remove(person.replace("_", " "))
            counts["removed"] += 1
        except FaceIDError as exc:
            counts[type(exc).__name__] += 1
    print(json.dumps(dict(counts)), flush=True)


def locker(db_file: Path, stop_file: Path, seed: int) -> None:
    """Every 10-25 s, hold the database's write lock for 1-4 s (a backup, a long admin
    transaction, another door's burst)."""
    rng = random.Random(seed)
    held: list[float] = []
    while not stop_file.exists():
        time.sleep(rng.uniform(10, 25))
        conn = sqlite3.connect(db_file, timeout=30, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        hold = rng.uniform(1, 4)
        time.sleep(hold)
        conn.execute("COMMIT")
        conn.close()
        held.append(round(hold, 2))
    print(json.dumps({"locks": len(held), "held_s": held}), flush=True)


# -- the door ------------------------------------------------------------------------------
def rss_mib() -> float:
    """This process's resident memory now, in MiB (Linux's /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(minutes: float, seed: int, port: int) -> dict:
    from db.engine import resolve_url
    from db.store import Store
    from faceid.door.actuators import Webhook
    from faceid.enrolment import enroll_images
    from faceid.gallery import Gallery
    from faceid.door.liveness import LivenessGate, PassiveCheck
    from faceid.pipeline import FaceID
    from faceid.door.turnstile import Turnstile, WatchConfig
    from faceid.door.sources import FrameSource

    clips = [[f for _, _, f in FrameSource(str(c))] for c in CLIPS]
    enrol_frame = clips[0].pop(0)  # the man is enrolled from it, then never shown it
    empty = np.zeros_like(clips[0][0])
    reel = [f for frames in clips for f in frames + [empty] * GAP_FRAMES]
    step = 1 / 15  # seconds of video time per frame (the clips' rate)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        fid = FaceID()
        gallery = Gallery(Store(resolve_url(home), create=True), fid, home / "index")
        enroll_images(gallery, "Head Pose Man", [enrol_frame])
        stop_file = Path(tmp) / "stop"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "FACEID_DATASETS": str(DATASETS)}
        children = [subprocess.Popen([sys.executable, "-m", "bench.soak", "--role", role,
                                      "--home", str(home), "--stop-file", str(stop_file),
                                      "--seed", str(seed)], stdout=subprocess.PIPE,
                                     text=True, env=env)
                    for role in ("churn", "lock")]
        receiver = Receiver(port)
        receiver.start()
        stop, flaps = threading.Event(), []
        flapper = threading.Thread(target=flap, args=(receiver, stop, 45, 20, flaps))
        flapper.start()
        door = Turnstile(gallery, WatchConfig(source="soak-reel", door="soak"),
                         LivenessGate(passive=PassiveCheck.load()),
                         notifiers=[Webhook(f"http://127.0.0.1:{port}/hook", SECRET)])
        gaps: list[float] = []
        frames = 0
        end = time.monotonic() + minutes * 60
        last = time.monotonic()
        loop = 0
        rss: list[float] = []
        while time.monotonic() < end:
            for frame in reel:
                door.process(frame, frames * step)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                frames += 1
            loop += 1
            rss.append(rss_mib())
        stop.set()
        flapper.join()
        if receiver.server is None:
            receiver.start()
        undelivered = door.close(wait_s=120)
        stop_file.touch()
        reports = [json.loads(c.communicate(timeout=300)[0].strip().splitlines()[-1])
                   for c in children]
        store = Store(resolve_url(home), create=False)
        events = [e for e in store.events(kind="decision", limit=10**7) if e.door == "soak"]
        chain = store.verify_chain()
        receiver.stop()
    decisions = door.decisions
    rows_by_id = {e.id for e in events}
    lost = sum(1 for d in decisions if d.event_id is None or d.event_id not in rows_by_id)
    per_track: dict[int, list[str]] = defaultdict(list)
    for e in events:
        per_track[json.loads(e.details or "{}").get("track")].append(e.decision)
    duplicates = sum(len(v) - 1 for v in per_track.values())
    contradictions = sum(1 for v in per_track.values() if len(set(v)) > 1)
    delivered = {r.get("event_id") for r in receiver.received}
    gaps_ms = np.array(gaps) * 1000
    return {
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "minutes": minutes, "frames": frames, "clip_loops": loop,
        "fps": round(frames / (minutes * 60), 2),
        "decisions": len(decisions), "by_outcome": dict(Counter(
            f"{d.decision}:{d.reason}" for d in decisions)),
        "events": len(events), "lost_events": lost, "duplicates": duplicates,
        "contradictions": contradictions,
        "webhook_received": len(receiver.received),
        "webhook_distinct_events": len(delivered - {None}),
        "webhook_bad_signatures": receiver.bad_signatures,
        "webhook_outages": sum(1 for f in flaps if f[0] == "webhook_down"),
        "undelivered": undelivered,
        "longest_stall_ms": round(float(gaps_ms.max()), 1),
        "rss_mib": {"after_first_pass": round(rss[0]), "at_end": round(rss[-1]),
                    "largest": round(max(rss))},
        "p99_frame_ms": round(float(np.percentile(gaps_ms, 99)), 1),
        "median_frame_ms": round(float(np.median(gaps_ms)), 1),
        "health": door.health.to_dict(),
        "churn": reports[0], "locks": reports[1],
        "chain_ok": chain.ok, "chain_rows": chain.rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=18777)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--role", choices=["churn", "lock"], help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "churn":
        return churn(a.home, a.stop_file)
    if a.role == "lock":
        return locker(a.home / "faceid.db", a.stop_file, a.seed)
    os.environ.setdefault("FACEID_THREADS", "1")  # the door's networks: one thread each
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    result = soak(a.minutes, a.seed, a.port)
    print(json.dumps(result, indent=1))
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
