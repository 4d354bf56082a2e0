"""Following faces from frame to frame (ids by box overlap) and choosing the person in the
zone: the largest face near the centre, with anyone close behind flagged as tailgating.

Greedy IoU matching is enough here: a turnstile camera sees one to a few faces that move
little between frames; nothing heavier (Kalman, appearance) earns its cost on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from faceid.detection import Face


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


S = TypeVar("S")


@dataclass
class Track(Generic[S]):
    """One face followed over frames. ``state`` is what the loop keeps of this person (the
    door's :class:`faceid.door.turnstile.TrackState`), None until the loop first looks at it."""

    id: int
    face: Face
    first_t: float
    last_t: float
    hits: int = 1
    missed: int = 0
    state: S | None = None


class Tracker(Generic[S]):
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: list[Track[S]] = []
        self._next = 1

    def update(self, faces: list[Face], t: float) -> list[Track[S]]:
        """Match this frame's faces to live tracks (best overlap first), start tracks for
        the rest, and drop tracks unseen for more than ``max_missed`` frames. Returns the
        tracks seen in this frame."""
        pairs = sorted(((iou(tr.face.box, f.box), ti, fi) for ti, tr in enumerate(self.tracks)
                        for fi, f in enumerate(faces)), reverse=True)
        used_t: set[int] = set()
        used_f: set[int] = set()
        seen = []
        for overlap, ti, fi in pairs:
            if overlap < self.iou_threshold or ti in used_t or fi in used_f:
                continue
            tr = self.tracks[ti]
            tr.face, tr.last_t, tr.hits, tr.missed = faces[fi], t, tr.hits + 1, 0
            used_t.add(ti)
            used_f.add(fi)
            seen.append(tr)
        for ti, tr in enumerate(self.tracks):
            if ti not in used_t:
                tr.missed += 1
        self.tracks = [tr for tr in self.tracks if tr.missed <= self.max_missed]
        for fi, f in enumerate(faces):
            if fi not in used_f:
                tr: Track[S] = Track(self._next, f, t, t)
                self._next += 1
                self.tracks.append(tr)
                seen.append(tr)
        return seen


def zone_score(face: Face, shape: tuple[int, ...]) -> float:
    """Bigger and nearer the centre is more likely the person at the turnstile."""
    h, w = shape[:2]
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    off = np.hypot((cx - w / 2) / w, (cy - h / 2) / h)  # 0 at centre, ~0.7 at a corner
    return float(face.size * (1.0 - off))


def pick_subject(tracks: list[Track], shape: tuple[int, ...],
                 tailgate_ratio: float = 0.75) -> tuple[Track | None, Track | None]:
    """(the person in the zone, a tailgater or None): a second face at least
    ``tailgate_ratio`` of the subject's size is close enough behind to pass with them."""
    if not tracks:
        return None, None
    ranked = sorted(tracks, key=lambda tr: -zone_score(tr.face, shape))
    subject = ranked[0]
    behind = next((tr for tr in ranked[1:]
                   if tr.face.size >= tailgate_ratio * subject.face.size), None)
    return subject, behind
