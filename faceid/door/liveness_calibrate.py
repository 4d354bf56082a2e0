"""A site's own passive-liveness threshold: ``faceid calibrate-liveness``.

The shipped threshold was chosen on a few people under a development set's webcams; a door's
camera, light and people move the live scores (dim, blurred or distant faces score lower).
So a site records its own people, live, at its own door once, and the threshold is set for a
target BPCER on that footage: the highest threshold that refuses at most ``bpcer`` of the
live frames. Recordings of attacks (prints, phone replays) are optional and only measured
(APCER at the chosen threshold), never used to move the threshold, so the rule stays one a
site can apply to its own data without tuning to pass its attacks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from faceid.atomic import write_text
from faceid.detectors import make_detector
from faceid.errors import InputError, LivenessDataError
from faceid.imageio import is_image_file, load_image
from faceid.door.liveness import PASSIVE_FORMAT, PassiveCheck
from faceid.door.sources import FrameSource


def frames(source: Path, stride: int) -> Iterator[np.ndarray]:
    """RGB frames of an image, a folder of images, or a video (every ``stride``-th frame)."""
    if source.is_file() and is_image_file(source):
        yield load_image(source)
        return
    for i, (_, _, frame) in enumerate(FrameSource(str(source))):
        if i % stride == 0:
            yield frame


def passive_scores(check: PassiveCheck, sources: Sequence[Path], stride: int,
                   progress: Callable[[int], None] | None = None) -> tuple[list[float], dict]:
    """P(live) of the largest usable face in every frame of ``sources``, and the counts of
    frames left out (no face, or not usable, by reason)."""
    detector = make_detector(video=True)  # the boxes the door's gate will see
    scores: list[float] = []
    skipped: dict[str, int] = {}
    for source in sources:
        if not source.exists():
            raise InputError(f"{source}: not found")
        for frame in frames(source, stride):
            faces = detector.detect(frame)
            why = "no_face" if not faces else None
            if faces:
                face = max(faces, key=lambda f: f.size)
                why = check.usable(frame, face)
                if why is None:
                    scores.append(check.scorer.score(frame, face.box))
            if why is not None:
                skipped[why] = skipped.get(why, 0) + 1
            if progress:
                progress(1)
    return scores, skipped


def calibrate_passive(live: Sequence[Path], spoof: Sequence[Path] = (), *,
                      bpcer: float = 0.05, stride: int = 3,
                      progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The calibration document for this site's footage (see the module docstring)."""
    if not (0.0 < bpcer < 1.0):
        raise ValueError(f"BPCER must be a rate strictly between 0 and 1, got {bpcer:g}")
    check = PassiveCheck.load()
    live_scores, live_skipped = passive_scores(check, live, stride, progress)
    if len(live_scores) < 20:
        raise LivenessDataError(f"only {len(live_scores)} usable live frames in "
                                f"{', '.join(map(str, live))}; record at least 20 (a few "
                                "seconds of each person at the door)")
    s = np.sort(np.asarray(live_scores))
    threshold = float(s[int(np.floor(bpcer * len(s)))])  # refuses < bpcer of live frames
    doc: dict[str, Any] = {
        "format": PASSIVE_FORMAT, "model": "minifasnet-v2-v1se",
        "threshold": round(threshold, 6),
        "box_map": {"width": check.scorer.box_map.width, "height": check.scorer.box_map.height,
                    "shift_y": check.scorer.box_map.shift_y},
        "rule": f"the highest threshold refusing at most {bpcer:g} of live frames",
        "bpcer_target": bpcer, "created_at": datetime.now(timezone.utc).isoformat(),
        "live": {"sources": [str(p) for p in live], "frames": len(live_scores),
                 "skipped": live_skipped,
                 "bpcer": float(np.mean(s < threshold))}}
    if spoof:
        spoof_scores, spoof_skipped = passive_scores(check, spoof, stride, progress)
        a = np.asarray(spoof_scores)
        doc["spoof"] = {"sources": [str(p) for p in spoof], "frames": len(a),
                        "skipped": spoof_skipped,
                        "apcer": float(np.mean(a >= threshold)) if len(a) else None}
    return doc


def write_calibration(doc: dict[str, Any], path: Path) -> None:
    """Write the calibration file atomically (a door reading it never sees half of it)."""
    write_text(path, json.dumps(doc, indent=2) + "\n")
