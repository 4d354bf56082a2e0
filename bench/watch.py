"""The door loop, measured: frames per second and per-stage milliseconds at 640x480 with one
face, and the time from first sight of an enrolled live person to the grant (in video
seconds), on the real head-pose clips (each person enrolled from the clip's first frame,
which is then not fed; frames as recorded, 480x270, and again upscaled and letterboxed to
640x480) and on the 640x480 ASL clips (one
person, small faces, nobody enrolled: every pass ends in a deny). Each clip runs through the
shipped gate (passive MiniFASNet, motion as evidence) and through the motion-only gate
that shipped before it, for comparison.

    .venv/bin/python -m bench.watch --datasets ../shared/datasets [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from db.store import Store
from faceid.enroll import enroll_images
from faceid.gallery import Gallery
from faceid.liveness import LivenessGate, PassiveCheck
from faceid.pipeline import FaceID
from faceid.turnstile import Turnstile, WatchConfig
from faceid.video import FrameSource


def letterbox(frame: np.ndarray, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Scale to fit ``size`` (w, h) and pad with black: the frame size the target names."""
    h, w = frame.shape[:2]
    s = min(size[0] / w, size[1] / h)
    img = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((size[1], size[0], 3), np.uint8)
    y, x = (size[1] - img.shape[0]) // 2, (size[0] - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


def run_clip(fid: FaceID, clip: Path, enrol: bool, gate: LivenessGate,
             box: bool = False) -> dict:
    frames = [(i, t, letterbox(f) if box else f) for i, t, f in FrameSource(str(clip))]
    with tempfile.TemporaryDirectory() as tmp:
        g = Gallery(Store(f"sqlite:///{tmp}/b.db"), fid, Path(tmp))
        if enrol:
            enroll_images(g, clip.stem, [frames[0][2]])
            frames = frames[1:]
        door = Turnstile(g, WatchConfig(source=str(clip)), gate)
        stages: dict[str, float] = {}
        first_seen = None
        decided = None
        t0 = time.perf_counter()
        for _, t, frame in frames:
            report = door.process(frame, t)
            for k, v in report.seconds.items():
                stages[k] = stages.get(k, 0.0) + v
            if report.faces and first_seen is None:
                first_seen = t
            if report.decisions and decided is None:
                decided = (t, report.decisions[0])
        wall = time.perf_counter() - t0
    n = len(frames)
    out = {"clip": clip.name, "frames": n, "fps": round(n / wall, 2),
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
    a = ap.parse_args()
    fid = FaceID()
    fid.embed_images([np.zeros((64, 64, 3), np.uint8)])  # load the models before timing
    rows = []
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    gates = {"passive": lambda: LivenessGate(passive=PassiveCheck.load()),
             "motion_only": LivenessGate}
    clips = [(c, "female-and-male" not in c.name) for c in
             sorted((a.datasets / "videos" / "preview").glob("head-pose-*.gif"))]
    clips += [(c, False) for c in
              sorted((a.datasets / "videos" / "asl_gestures").glob("*.mkv"))[:5]]
    for clip, enrol in clips:
        for name, make in gates.items():
            rows.append({"gate": name, "frames_as": "native",
                         **run_clip(fid, clip, enrol, make())})
            print(json.dumps(rows[-1]), flush=True)
            if clip.suffix == ".gif":  # 480x270 clips also upscaled and letterboxed to 640x480
                rows.append({"gate": name, "frames_as": "letterboxed 640x480",
                             **run_clip(fid, clip, enrol, make(), box=True)})
                print(json.dumps(rows[-1]), flush=True)
    for name in gates:
        fps = [r["fps"] for r in rows if r["gate"] == name]
        print(f"{name}: median fps {np.median(fps):.1f} (min {min(fps):.1f}) over "
              f"{len(fps)} clips")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
