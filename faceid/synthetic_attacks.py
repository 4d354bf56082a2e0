"""Synthetic presentation attacks and real live windows for measuring liveness: what
``bench.liveness``, ``bench.challenge_attacks`` and the liveness tests are built on (a
library module, so tests need not import the unpackaged ``bench/``). Sets are built from
../shared/datasets (no liveness data set of
real size exists there, so the attack sets are SYNTHETIC; the live sets are real clips).

* live (real, bona fide): the head-pose and walking GIFs in ``videos/preview`` and the ASL
  clips in ``videos/asl_gestures``, each face track cut into windows of ``window_s`` seconds;
  plus the live still ``antispoof_samples/image_T1.jpg`` (CNN only: a still has no motion).
* print (synthetic): an LFW still pasted on a 640x480 background and moved by a smooth random
  homography (a hand-held print being tilted, turned and moved), each sequence with one
  variant: ``plain``, ``blur`` (defocus + motion blur), ``glare`` (a moving specular blob,
  which does not move with the print) or ``moire`` (a screen's interference pattern).
* replay (synthetic): a "video of a still" -- the still shown on a screen (gamma, backlight
  bleed, moire, bezel) that is moved by a random homography, re-captured with sensor noise and
  JPEG compression; and the real replay-attack photo ``antispoof_samples/image_F2.jpg``
  moved the same way (its face is the attack, photographed from a real screen).
* slideshow (synthetic): several LFW photos of one person cut one after another, each held
  for a few frames with a small planar jitter (not a moving head).

Live clips go through the real detector (MTCNN) on every frame. Attack frames carry the
still's detection through the known warp (with Gaussian jitter), or, through
:func:`with_real_detections`, the real detector's own detection of every frame. Detections
are cached under ``reports/liveness/``.
"""

from __future__ import annotations

import hashlib
import random
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from faceid.detection import Face, FaceDetector
from faceid.imageio import load_image
from faceid.door.liveness import ChallengeLiveness
from faceid.door.tracking import iou
from faceid.door.sources import read_frames

FRAME_SIZE = (640, 480)  # (w, h) of synthetic frames, like the webcam-sized sample images


@dataclass
class Sequence:
    """One presentation: frames, the tracked face in each (None where it was not found), the
    frame times in seconds, and what it is (``kind`` live/print/replay/slideshow)."""

    name: str
    kind: str
    variant: str
    frames: list[np.ndarray]
    faces: list[Face | None]
    times: list[float]
    meta: dict = field(default_factory=dict)

    def seen(self) -> Iterator[tuple[np.ndarray, Face, float]]:
        """(frame, face, t) for the frames where the track's face was found."""
        for fr, face, t in zip(self.frames, self.faces, self.times):
            if face is not None:
                yield fr, face, t


# ---------------------------------------------------------------- detection and tracking

def _face_to_json(f: Face) -> dict:
    return {"box": list(f.box), "landmarks": f.landmarks.tolist(), "score": f.score}


def _face_from_json(d: dict) -> Face:
    return Face(tuple(d["box"]), np.asarray(d["landmarks"], np.float64), float(d["score"]))


def detect_frames(frames: list[np.ndarray], detector: FaceDetector, cache: Path | None) -> list[list[Face]]:
    """Every face in every frame, cached by the frames' content hash (MTCNN is the slow part)."""
    digest = hashlib.sha1()
    for fr in frames:
        digest.update(fr[::7, ::7].tobytes())
    path = cache / f"det-{digest.hexdigest()[:16]}.json" if cache else None
    if path is not None and path.is_file():
        return [[_face_from_json(d) for d in row] for row in json.loads(path.read_text())]
    found = [detector.detect(fr) for fr in frames]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([[_face_to_json(f) for f in row] for row in found]))
    return found


def link_tracks(detections: list[list[Face]], *, min_iou: float = 0.3, max_gap: int = 3,
                min_size: float = 0.0) -> list[list[Face | None]]:
    """Greedy IoU linking of per-frame detections into tracks (one list per track, one entry
    per frame, None where unseen). Only what the benchmark needs; the camera loop has its own
    tracker."""
    tracks: list[list[Face | None]] = []
    last: list[tuple[int, Face]] = []  # (frame of last sighting, face) per track
    for i, faces in enumerate(detections):
        free = [f for f in faces if f.size >= min_size]
        for ti, (seen_at, prev) in enumerate(last):
            if i - seen_at > max_gap or not free:
                continue
            best = max(free, key=lambda f: iou(f.box, prev.box))
            if iou(best.box, prev.box) >= min_iou:
                tracks[ti].append(best)
                last[ti] = (i, best)
                free.remove(best)
        for f in free:
            tracks.append([None] * i + [f])
            last.append((i, f))
        for tr in tracks:
            if len(tr) < i + 1:
                tr.append(None)
    return tracks


# ---------------------------------------------------------------- live clips

def clip_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """All frames of a clip and its frame rate (GIFs: OpenCV reports 12.5 for these)."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    return [fr for _, fr in read_frames(str(path))], float(fps)


def live_sequences(datasets: Path, detector: FaceDetector, cache: Path, *, window_s: float = 2.0,
                   min_face: float = 30.0, min_seen: int = 8,
                   target_fps: float = 15.0) -> list[Sequence]:
    """Real clips cut into tracks and windows of ``window_s`` s (each window one bona fide
    presentation). Tracks of faces smaller than ``min_face`` px are left out. Clips faster
    than ``target_fps`` are thinned to about it (MTCNN on every frame of a 30 fps clip costs
    more than this shared machine has; the GIFs are 12.5 fps)."""
    clips = sorted((datasets / "videos" / "preview").glob("*.gif")) + \
        sorted((datasets / "videos" / "asl_gestures").glob("*.mkv"))
    out: list[Sequence] = []
    for clip in clips:
        frames, fps = clip_frames(clip)
        step = max(1, round(fps / target_fps))   # 30 fps clips: every 2nd frame (15 fps)
        frames, fps = frames[::step], fps / step
        dets = detect_frames(frames, detector, cache)
        per = max(min_seen, round(window_s * fps))
        for ti, track in enumerate(link_tracks(dets, min_size=min_face)):
            for w0 in range(0, len(frames), per):
                faces = track[w0:w0 + per]
                if sum(f is not None for f in faces) < min_seen:
                    continue
                out.append(Sequence(f"{clip.stem}/t{ti}/w{w0}", "live", clip.parent.name,
                                    frames[w0:w0 + per], faces,
                                    [(w0 + k) / fps for k in range(len(faces))],
                                    {"clip": clip.name, "fps": fps}))
    return out


# ---------------------------------------------------------------- synthetic attacks

def plane_homographies(rng: np.random.Generator, n: int, src_size: tuple[int, int], *,
                       scale: float, max_tilt: float = 30.0, max_roll: float = 10.0,
                       fps: float = 15.0, frame: tuple[int, int] = FRAME_SIZE) -> list[np.ndarray]:
    """Homographies that put a flat picture of ``src_size`` (w, h) into the frame as a
    hand-held plane would appear, at about ``scale`` frame pixels per picture pixel: a pinhole
    camera (focal 600 px) looking at the plane, which
    tilts (about x and y, up to ``max_tilt`` degrees), rolls, drifts and nears, each angle a
    smooth random sum of two sinusoids (periods 1.5-5 s)."""
    w, h = src_size
    focal = 600.0
    depth0 = focal / scale
    t = np.arange(n) / fps

    def wave(amp: float) -> np.ndarray:
        out = np.zeros(n)
        for _ in range(2):
            period = rng.uniform(1.5, 5.0)
            out += rng.uniform(0.3, 1.0) * amp / 2 * np.sin(2 * np.pi * t / period
                                                            + rng.uniform(0, 2 * np.pi))
        return out

    rx, ry, rz = (np.radians(wave(a) + rng.uniform(-a, a) / 3)
                  for a in (max_tilt, max_tilt, max_roll))
    tx, ty = wave(0.25 * depth0 * frame[0] / focal / 2), wave(0.15 * depth0 * frame[1] / focal / 2)
    tz = depth0 * (1 + wave(0.3))
    kmat = np.array([[focal, 0, frame[0] / 2], [0, focal, frame[1] / 2], [0, 0, 1]])
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    out = []
    for i in range(n):
        rot, _ = cv2.Rodrigues(np.array([rx[i], ry[i], rz[i]]))
        ext = np.column_stack([rot[:, 0], rot[:, 1], [tx[i], ty[i], tz[i]]])
        out.append(kmat @ ext @ centre)
    return out


def background_frame(rng: np.random.Generator, texture: np.ndarray) -> np.ndarray:
    """A static, face-free room-like background: a blurred, enlarged, shuffled-tile copy of a
    photo (real image statistics without a detectable face) under a light gradient."""
    tiles = texture.reshape(5, 50, 5, 50, 3).transpose(0, 2, 1, 3, 4).reshape(25, 50, 50, 3)
    tiles = tiles[rng.permutation(25)].reshape(5, 5, 50, 50, 3).transpose(0, 2, 1, 3, 4)
    bg = cv2.resize(tiles.reshape(250, 250, 3), FRAME_SIZE, interpolation=cv2.INTER_LINEAR)
    bg = cv2.GaussianBlur(bg, (0, 0), 9).astype(np.float32)
    grad = np.linspace(0.7, 1.1, FRAME_SIZE[0], dtype=np.float32)[None, :, None]
    return np.clip(bg * grad, 0, 255)


def _screen(photo: np.ndarray, rng: np.random.Generator,
            pitch: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The photo as a display shows it: upsampled onto an RGB sub-pixel grid (which beats
    against the camera's sampling into moire when the screen is re-captured), with the
    backlight lifting the blacks and a black bezel round it."""
    big = cv2.resize(photo, (photo.shape[1] * pitch, photo.shape[0] * pitch),
                     interpolation=cv2.INTER_NEAREST).astype(np.float32)
    mask = np.zeros((pitch, pitch, 3), np.float32)
    for c in range(3):
        mask[:, c * pitch // 3:(c + 1) * pitch // 3 or pitch, c] = 1.0
    mask[-1, :, :] *= 0.4                                 # dark rows between pixel lines
    grid = np.tile(mask, (photo.shape[0], photo.shape[1], 1))
    lit = 255 * (big / 255) ** rng.uniform(0.8, 1.1) * 0.85 + rng.uniform(15, 35)
    img = np.clip(lit * (0.65 + 1.1 * grid), 0, 255)
    bezel = pitch * 12
    to_picture = np.array([[pitch, 0, bezel + (pitch - 1) / 2],
                           [0, pitch, bezel + (pitch - 1) / 2], [0, 0, 1]], np.float64)
    return cv2.copyMakeBorder(img, bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT,
                              value=(12, 12, 14)), to_picture


def _print(photo: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The photo as printed: a little less contrast and saturation, a white paper margin."""
    img = photo.astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + rng.uniform(0.7, 0.95) * (img - grey)
    img = 255 * (img / 255) ** rng.uniform(0.9, 1.2) * rng.uniform(0.85, 1.0) + 10
    margin = int(photo.shape[0] * rng.uniform(0.03, 0.12))
    to_picture = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1]], np.float64)
    return cv2.copyMakeBorder(np.clip(img, 0, 255), margin, margin, margin, margin,
                              cv2.BORDER_CONSTANT, value=(235, 235, 228)), to_picture


def _moire(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A multiplicative interference pattern of two slightly rotated fine gratings."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    f = rng.uniform(0.12, 0.35)
    out = np.ones(shape, np.float32)
    for _ in range(2):
        a = rng.uniform(0, np.pi)
        out *= 1 + 0.5 * np.sin(f * (xx * np.cos(a) + yy * np.sin(a)))
    return (0.7 + 0.3 * out / out.max())[..., None]


def render(picture: np.ndarray, homographies: list[np.ndarray], rng: np.random.Generator, *,
           background: np.ndarray, variant: str = "plain") -> list[np.ndarray]:
    """Frames of ``picture`` (float RGB, a print or a screen) moved by ``homographies`` over
    a static background, then through a camera: the ``variant``'s effect, sensor noise and
    JPEG compression (quality 70-90)."""
    frames = []
    h, w = picture.shape[:2]
    ones = np.ones((h, w), np.float32)
    blob = (rng.uniform(0.2, 0.8, 2), rng.uniform(-0.3, 0.3, 2), rng.uniform(0.08, 0.2))
    moire = _moire((FRAME_SIZE[1], FRAME_SIZE[0]), rng) if variant == "moire" else None
    quality = int(rng.integers(70, 91))
    for i, hom in enumerate(homographies):
        warped = cv2.warpPerspective(picture, hom, FRAME_SIZE, flags=cv2.INTER_LINEAR)
        cover = cv2.warpPerspective(ones, hom, FRAME_SIZE, flags=cv2.INTER_LINEAR)[..., None]
        img = warped + (1 - cover) * background
        if variant == "blur":
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 2.2))
            k = np.zeros((9, 9), np.float32)
            k[4, :] = 1 / 9
            rot = cv2.getRotationMatrix2D((4, 4), float(rng.uniform(0, 180)), 1.0)
            img = cv2.filter2D(img, -1, cv2.warpAffine(k, rot, (9, 9)))
        elif variant == "glare":
            # a specular highlight: it drifts on its own path, not with the picture
            pos = (blob[0] + blob[1] * i / max(1, len(homographies))) * FRAME_SIZE
            yy, xx = np.mgrid[0:FRAME_SIZE[1], 0:FRAME_SIZE[0]].astype(np.float32)
            r2 = ((xx - pos[0]) ** 2 + (yy - pos[1]) ** 2) / (blob[2] * FRAME_SIZE[0]) ** 2
            img = img + cover * rng.uniform(150, 260) * np.exp(-r2)[..., None]
        elif variant == "moire" and moire is not None:
            img = img * (1 - cover * (1 - moire))
        img = img + rng.normal(0, 2.5, img.shape)
        _, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8)[..., ::-1],
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        frames.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy())
    return frames


def carry_face(face: Face, hom: np.ndarray, rng: np.random.Generator, jitter: float) -> Face:
    """The still's detection carried into a synthetic frame by the known warp ``hom``, with
    Gaussian jitter (``jitter`` x face size) standing in for a detector's frame-to-frame noise."""
    x1, y1, x2, y2 = face.box
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)
    c = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), hom).reshape(-1, 2)
    lm = cv2.perspectiveTransform(face.landmarks.reshape(-1, 1, 2), hom).reshape(-1, 2)
    size = min(np.ptp(c[:, 0]), np.ptp(c[:, 1]))
    lm = lm + rng.normal(0, jitter * size, lm.shape)
    box = np.r_[c.min(axis=0), c.max(axis=0)] + rng.normal(0, 1.5 * jitter * size, 4)
    return Face(tuple(float(v) for v in box), lm, face.score)


@dataclass
class Still:
    """A source photo for attacks, with its detected face."""

    path: Path
    image: np.ndarray
    face: Face


def load_stills(paths: list[Path], detector: FaceDetector, cache: Path) -> list[Still]:
    """Load photos and detect their largest face (photos without one are skipped)."""
    out = []
    for p in paths:
        img = load_image(p)
        faces = detect_frames([img], detector, cache)[0]
        if faces:
            out.append(Still(p, img, max(faces, key=lambda f: f.size)))
    return out


def attack_sequence(still: Still, kind: str, variant: str, rng: np.random.Generator,
                    background: np.ndarray, *, n_frames: int = 30, fps: float = 15.0,
                    jitter: float = 0.01) -> Sequence:
    """One synthetic print or replay presentation of ``still``: ``kind`` "print" (paper) or
    "replay" (a screen showing the still); ``variant`` plain / blur / glare / moire, or
    "capture" for a photo that already is a captured attack (moved as it is)."""
    if kind == "replay" and variant != "capture":
        picture, to_pic = _screen(still.image, rng)
    elif variant == "capture":
        picture, to_pic = still.image.astype(np.float32), np.eye(3)
    else:
        picture, to_pic = _print(still.image, rng)
    size = (picture.shape[1], picture.shape[0])
    face_in_pic = still.face.size * to_pic[0, 0]
    homs = plane_homographies(rng, n_frames, size, fps=fps,
                              scale=float(rng.uniform(90, 170)) / face_in_pic)
    frames = render(picture, homs, rng, background=background,
                    variant="plain" if variant == "capture" else variant)
    faces: list[Face | None] = [carry_face(still.face, h @ to_pic, rng, jitter) for h in homs]
    return Sequence(f"{kind}/{variant}/{still.path.stem}", kind, variant, frames, faces,
                    [i / fps for i in range(n_frames)], {"source": str(still.path)})


def slideshow_sequence(stills: list[Still], rng: np.random.Generator, background: np.ndarray,
                       *, n_frames: int = 30, fps: float = 15.0, jitter: float = 0.01,
                       hold: tuple[int, int] = (4, 8)) -> Sequence:
    """Different photos of one person cut one after another on a screen held nearly still
    (tilts of a few degrees), each photo for ``hold`` frames: jumpy, not a moving head."""
    frames: list[np.ndarray] = []
    faces: list[Face | None] = []
    k = 0
    while len(frames) < n_frames:
        still = stills[k % len(stills)]
        k += 1
        n = min(int(rng.integers(*hold)), n_frames - len(frames))
        picture, to_pic = _screen(still.image, rng)
        size = (picture.shape[1], picture.shape[0])
        homs = plane_homographies(rng, n, size, fps=fps, max_tilt=4.0, max_roll=2.0,
                                  scale=130 / (still.face.size * to_pic[0, 0]))
        frames += render(picture, homs, rng, background=background)
        faces += [carry_face(still.face, h @ to_pic, rng, jitter) for h in homs]
    name = stills[0].path.parent.name
    return Sequence(f"slideshow/{name}", "slideshow", "cuts", frames, faces,
                    [i / fps for i in range(n_frames)], {"photos": k})


def with_real_detections(seq: Sequence, detector: FaceDetector, cache: Path | None) -> Sequence:
    """The presentation with each frame's face taken from the real detector (the detection
    overlapping the carried face, IoU >= 0.3; None where MTCNN missed it), so landmark-based
    checks (the challenge) see the detector's own noise on prints and screens, not the
    Gaussian stand-in of :func:`carry_face`. Live clips already carry real detections."""
    if seq.kind == "live":
        return seq
    found = detect_frames(seq.frames, detector, cache)
    faces: list[Face | None] = []
    for carried, dets in zip(seq.faces, found):
        best = max(dets, key=lambda f: iou(f.box, carried.box), default=None) if carried else None
        faces.append(best if best is not None and iou(best.box, carried.box) >= 0.3 else None)
    return replace(seq, faces=faces)


def challenge_passes(seq: Sequence, rng: random.Random, n: int = 2, timeout_s: float = 6.0,
                     **sizes: float) -> bool:
    """Whether a random ``n``-prompt challenge passes on this presentation, played forwards
    and backwards (ping-pong, no cut) until every prompt's time could have run out.
    ``sizes``: ChallengeLiveness settings other than its defaults (yaw_delta, ...)."""
    seen = list(seq.seen())
    if len(seen) < 2:
        return False
    ch = ChallengeLiveness(n=n, timeout_s=timeout_s, rng=rng, **sizes)
    dt = (seen[-1][2] - seen[0][2]) / (len(seen) - 1) or 1 / 15
    order = seen + seen[-2:0:-1]
    k = 0
    while ch.prompt is not None and k * dt <= n * timeout_s + 1:
        ch.update(order[k % len(order)][1], k * dt)
        k += 1
    return ch.result().live is True
