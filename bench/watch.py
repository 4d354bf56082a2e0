"""The door loop, measured: frames per second, CPU ms and per-stage milliseconds per frame
at 640x480, and the time from first sight of an enrolled live person to the grant (in video
seconds), on the real head-pose clips (each person enrolled from the clip's first frame
through MTCNN, as a site enrols from a photo; that frame is then not fed; frames as
recorded, 480x270, and again upscaled and letterboxed to 640x480) and on the 640x480 ASL
clips (one person, small faces, nobody enrolled: every pass ends in a deny). Each clip runs
through a door on each ``--detectors`` (MTCNN before, YuNet at 320 px after: issue 14) with
the shipped gate (passive MiniFASNet, motion as evidence); ``--gates motion_only`` adds the
motion-only gate that shipped before it. ``--busy`` keeps one core busy with another
process for the whole run (the loaded-machine figure).

    FACEID_THREADS=2 .venv/bin/python -m bench.watch --datasets ../shared/datasets [--json out.json]
    FACEID_THREADS=1 .venv/bin/python -m bench.watch --busy --detectors yunet
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from db.store import Store
from faceid.detectors import make_detector
from faceid.enrolment import enroll_images
from faceid.gallery import Gallery
from faceid.door.liveness import LivenessGate, PassiveCheck
from faceid.pipeline import FaceID
from faceid.door.turnstile import Turnstile, WatchConfig
from faceid.door.sources import FrameSource


def letterbox(frame: np.ndarray, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Scale to fit ``size`` (w, h) and pad with black: the frame size the target names."""
    h, w = frame.shape[:2]
    s = min(size[0] / w, size[1] / h)
    img = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((size[1], size[0], 3), np.uint8)
    y, x = (size[1] - img.shape[0]) // 2, (size[0] - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


def run_clip(photo: FaceID, fid: FaceID, clip: Path, enrol: bool, gate: LivenessGate,
             box: bool = False) -> dict:
    """One clip through a door running ``fid``, the person enrolled (when ``enrol``) from
    the first frame through ``photo``, as a site enrols from a photo."""
    frames = [(i, t, letterbox(f) if box else f) for i, t, f in FrameSource(str(clip))]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/b.db"
        if enrol:
            enroll_images(Gallery(Store(url), photo, Path(tmp)), clip.stem, [frames[0][2]])
            frames = frames[1:]
        g = Gallery(Store(url), fid, Path(tmp))
        door = Turnstile(g, WatchConfig(source=str(clip)), gate)
        stages: dict[str, float] = {}
        first_seen = None
        decided = None
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for _, t, frame in frames:
            report = door.process(frame, t)
            for k, v in report.seconds.items():
                stages[k] = stages.get(k, 0.0) + v
            if report.faces and first_seen is None:
                first_seen = t
            if report.decisions and decided is None:
                decided = (t, report.decisions[0])
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    n = len(frames)
    out = {"clip": clip.name, "frames": n, "fps": round(n / wall, 2),
           "cpu_ms_per_frame": round(1000 * cpu / n, 2),
           "ms_per_frame": {k: round(1000 * v / n, 2) for k, v in stages.items()},
           "decision": decided[1].decision if decided else None,
           "reason": decided[1].reason if decided else None}
    if decided and first_seen is not None:
        out["seconds_to_decision"] = round(decided[0] - first_seen, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--detectors", nargs="+", default=["mtcnn", "yunet"],
                    choices=["mtcnn", "yunet"], help="door detectors to compare")
    ap.add_argument("--gates", nargs="+", default=["passive"],
                    choices=["passive", "motion_only"])
    ap.add_argument("--busy", action="store_true",
                    help="keep one core busy with another process during the run")
    a = ap.parse_args()
    photo = FaceID(detector=make_detector("mtcnn"))
    doors = {name: FaceID(detector=make_detector(name, video=True)) for name in a.detectors}
    for fid in (photo, *doors.values()):  # load every model before timing
        fid.embed_images([np.zeros((64, 64, 3), np.uint8)])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if a.busy else None
    rows = []
    try:
        print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, threads "
              f"{torch.get_num_threads()}, busy core: {a.busy}")
        gates = {"passive": lambda: LivenessGate(passive=PassiveCheck.load()),
                 "motion_only": LivenessGate}
        clips = [(c, "female-and-male" not in c.name) for c in
                 sorted((a.datasets / "videos" / "preview").glob("head-pose-*.gif"))]
        clips += [(c, False) for c in
                  sorted((a.datasets / "videos" / "asl_gestures").glob("*.mkv"))[:5]]
        for clip, enrol in clips:
            for det, fid in doors.items():
                for name in a.gates:
                    for box in (False, True) if clip.suffix == ".gif" else (False,):
                        # the 480x270 clips are also upscaled and letterboxed to 640x480
                        rows.append({"detector": det, "gate": name, "frames_as":
                                     "letterboxed 640x480" if box else "native",
                                     **run_clip(photo, fid, clip, enrol, gates[name](), box)})
                        print(json.dumps(rows[-1]), flush=True)
    finally:
        if busy is not None:
            busy.kill()
    for det in doors:
        for name in a.gates:
            mine = [r for r in rows if r["detector"] == det and r["gate"] == name]
            at640 = [r for r in mine if r["frames_as"] != "native" or r["clip"].endswith(".mkv")]
            print(f"{det} / {name}: median fps {np.median([r['fps'] for r in mine]):.1f} "
                  f"(min {min(r['fps'] for r in mine):.1f}) over {len(mine)} runs; at 640x480: "
                  f"median {np.median([r['fps'] for r in at640]):.1f} fps, "
                  f"{np.median([r['cpu_ms_per_frame'] for r in at640]):.1f} CPU ms per frame")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
