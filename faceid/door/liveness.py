"""Liveness (presentation-attack detection) for one tracked face, in three layers that the
camera loop can enable separately and a gate that fuses them (fail closed: only
``live is True`` may open a door).

* :class:`MotionLiveness` -- passive. A print or a screen is a plane, and every view of a
  plane is related to every other by a homography; a real head that turns or nods is not
  planar (the nose moves against the cheeks). Points inside the face box are tracked with
  pyramidal Lucas-Kanade optical flow (forward-backward checked) from a reference frame, and
  two models are fitted to the point motion: a similarity (what any rigid in-plane motion
  gives) and a homography (what any plane gives). ``motion`` = how much the similarity fails
  (the out-of-plane part of the motion), ``residual`` = how much the homography fails; both
  in face-size units. Planarity is judged only once the motion is large enough to judge it
  (else ``insufficient_motion``); the motion-weighted ratio ``residual / motion`` is the
  statistic, and a track whose points or landmarks jump between frames (a cut between photos,
  a swapped print) is an attack, never live.
* :class:`ChallengeLiveness` -- active. A random sequence of prompts (turn left, turn right,
  nod), each checked against the landmark head pose (:func:`faceid.quality.head_pose`) within
  a timeout.
* :class:`PassiveCheck` -- passive texture: MiniFASNet V2 + V1SE (``faceid/antispoof.py``) on
  every usable frame of the track, averaged; its threshold comes from the shipped model file
  (chosen on pad-dev, people-disjoint) or from a site's own ``faceid calibrate-liveness``
  file. With it, motion is evidence, not a requirement: a track that jumps (a slideshow)
  is refused, a still head is not.

Every part reports a score in 0..1 mapped so that 0.5 is its own decision threshold; the gate
fuses by the minimum (the weakest part decides) and applies its own threshold. How the
default thresholds were chosen, and what they achieve: docs/DESIGN-NOTES.md and
docs/BENCHMARKS.md (``python -m bench.liveness``).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceid.detection import Face
from faceid.errors import LivenessModelError
from faceid.modelfile import read_json_document
from faceid.quality import head_pose

# How these were chosen, and what they achieve: docs/DESIGN-NOTES.md, docs/BENCHMARKS.md.
MOTION_THRESHOLD = 0.5    # residual / motion: the homography leaves under half unexplained = planar
MIN_MOTION = 0.02         # out-of-plane motion (face-size units) needed before judging
GATE_THRESHOLD = 0.5      # on the fused score (0.5 = every enabled part at its own threshold)
POSE_SMOOTH = 5           # challenge: frames whose median pose is judged
PROMPTS = ("turn_left", "turn_right", "nod")


@dataclass
class LivenessResult:
    """A liveness decision: ``score`` 0..1 (higher = more live), ``live`` True / False / None
    (None: undecided yet), ``reason`` one word for logs and events, ``details`` per-part
    figures (JSON-serialisable)."""

    score: float
    live: bool | None
    reason: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(float(self.score), 4), "live": self.live, "reason": self.reason,
                "details": self.details}


def ratio_score(value: float, threshold: float) -> float:
    """Map a non-negative statistic to 0..1 so that ``value == threshold`` gives 0.5
    (``value / (value + threshold)``, the logistic of the log-ratio)."""
    value = max(0.0, float(value))
    return value / (value + threshold) if value + threshold > 0 else 0.0


# ---------------------------------------------------------------- passive motion check

def _fit_residuals(src: np.ndarray, dst: np.ndarray) -> tuple[float, float] | None:
    """(motion, residual) in pixels for point correspondences: the median distance left
    unexplained by the best similarity (LMedS) and by the best homography (LMedS).
    LMedS, because a few mistracked points must not make a print look 3-D."""
    sim, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    hom, _ = cv2.findHomography(src, dst, cv2.LMEDS)
    if sim is None or hom is None:
        return None
    by_sim = src @ sim[:, :2].T + sim[:, 2]
    by_hom = cv2.perspectiveTransform(src.reshape(-1, 1, 2), hom).reshape(-1, 2)
    return (float(np.median(np.linalg.norm(by_sim - dst, axis=1))),
            float(np.median(np.linalg.norm(by_hom - dst, axis=1))))


class MotionLiveness:
    """Passive 3-D motion check for ONE tracked face.

    Call :meth:`update` with every frame the track's face is seen in (``t`` in seconds of
    video time), then :meth:`result`. Until ``min_samples`` frames have shown at least
    ``min_motion`` of out-of-plane motion the answer is ``live=None``
    (``insufficient_motion``): a face held still cannot be told from a print held still, so the
    caller keeps waiting (or prompts a challenge).
    """

    def __init__(self, threshold: float = MOTION_THRESHOLD, min_frames: int = 5,
                 min_motion: float = MIN_MOTION, *, min_samples: int = 3,
                 max_points: int = 120, min_points: int = 12, window_s: float = 2.0,
                 max_gap_s: float = 0.5, min_survival: float = 0.35,
                 max_jump: float = 0.2) -> None:
        self.threshold = threshold
        self.min_frames = min_frames
        self.min_motion = min_motion
        self.min_samples = min_samples
        self.max_points = max_points
        self.min_points = min_points
        self.window_s = window_s
        self.max_gap_s = max_gap_s
        self.min_survival = min_survival
        self.max_jump = max_jump
        self.frames = 0
        self.jumps = 0
        self.samples: list[tuple[float, float]] = []   # (motion, residual), face-size units
        self._grey: np.ndarray | None = None
        self._pts: np.ndarray | None = None
        self._ref: np.ndarray | None = None
        self._ref_t = 0.0
        self._last_t = 0.0
        self._face: Face | None = None

    def update(self, frame_rgb: np.ndarray, face: Face, t: float) -> None:
        """Track the face's points into this frame and add one motion sample."""
        grey = cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2GRAY)
        self.frames += 1
        size = max(float(face.size), 1.0)
        if (self._grey is None or self._pts is None or len(self._pts) < self.min_points
                or t - self._last_t > self.max_gap_s or t - self._ref_t > self.window_s):
            self._seed(grey, face, t)
            return
        win = int(np.clip(size / 6, 9, 31)) | 1
        lk = {"winSize": (win, win), "maxLevel": 3,
              "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)}
        nxt, ok1, _ = cv2.calcOpticalFlowPyrLK(self._grey, grey, self._pts, None, **lk)
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(grey, self._grey, nxt, None, **lk)
        fb = np.linalg.norm((back - self._pts).reshape(-1, 2), axis=1)
        good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (fb < max(0.5, 0.01 * size))
        good &= _inside(nxt.reshape(-1, 2), face.box, 0.15)
        survival = float(good.mean()) if len(good) else 0.0
        if survival < self.min_survival or self._landmark_jump(face, self._pts[good], nxt[good]):
            # a cut: the points did not follow, or the landmarks moved unlike the points
            self.jumps += 1
            self._seed(grey, face, t)
            return
        self._pts, self._ref = nxt[good], self._ref[good]
        self._grey, self._face, self._last_t = grey, face, t
        if len(self._pts) >= self.min_points:
            fit = _fit_residuals(self._ref.reshape(-1, 2), self._pts.reshape(-1, 2))
            if fit is not None:
                self.samples.append((fit[0] / size, fit[1] / size))

    def _seed(self, grey: np.ndarray, face: Face, t: float) -> None:
        """Start a new reference: corners inside the inner face box (not the hair or the
        background at its edges, which would add parallax that is not the face's)."""
        x1, y1, x2, y2 = face.box
        w, h = x2 - x1, y2 - y1
        mask = np.zeros_like(grey)
        r = (int(max(0, x1 + 0.12 * w)), int(max(0, y1 + 0.08 * h)),
             int(min(grey.shape[1], x2 - 0.12 * w)), int(min(grey.shape[0], y2 - 0.04 * h)))
        mask[r[1]:r[3], r[0]:r[2]] = 255
        pts = cv2.goodFeaturesToTrack(grey, self.max_points, 0.005, max(2.0, face.size / 20),
                                      mask=mask, blockSize=3)
        self._pts = pts.astype(np.float32) if pts is not None else None
        self._ref = None if pts is None else self._pts.copy()
        self._grey, self._face, self._ref_t, self._last_t = grey, face, t, t

    def _landmark_jump(self, face: Face, src: np.ndarray, dst: np.ndarray) -> bool:
        """True when the detected landmarks moved far from where the tracked points say the
        face went (different photo, different geometry): the median error of the previous
        landmarks carried by the points' similarity motion, in face-size units."""
        if self._face is None or len(src) < 3:
            return True
        sim, _ = cv2.estimateAffinePartial2D(src.reshape(-1, 2), dst.reshape(-1, 2),
                                             method=cv2.LMEDS)
        if sim is None:
            return True
        moved = self._face.landmarks @ sim[:, :2].T + sim[:, 2]
        err = np.median(np.linalg.norm(moved - face.landmarks, axis=1))
        return bool(err / max(face.size, 1.0) > self.max_jump)

    def statistic(self) -> tuple[float, float, int]:
        """(residual/motion ratio, total motion, samples used): the ratio is motion-weighted
        (sum of residuals over sum of motions, over samples with enough motion)."""
        use = [(m, r) for m, r in self.samples if m >= self.min_motion]
        if not use:
            return 0.0, 0.0, 0
        motion = sum(m for m, _ in use)
        return sum(r for _, r in use) / motion, motion, len(use)

    def result(self) -> LivenessResult:
        ratio, motion, used = self.statistic()
        details = {"frames": self.frames, "jumps": self.jumps, "samples": used,
                   "ratio": round(ratio, 4), "motion": round(motion, 4),
                   "threshold": self.threshold}
        if self.jumps:
            return LivenessResult(0.0, False, "track_jump", details)
        if self.frames < self.min_frames:
            return LivenessResult(0.0, None, "pending", details)
        if used < self.min_samples:
            return LivenessResult(0.0, None, "insufficient_motion", details)
        score = ratio_score(ratio, self.threshold)
        live = ratio >= self.threshold
        return LivenessResult(score, live, "live" if live else "planar_motion", details)


def _inside(pts: np.ndarray, box: tuple[float, ...], margin: float) -> np.ndarray:
    """Which points lie inside ``box`` grown by ``margin`` of its size on each side."""
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    return ((pts[:, 0] >= x1 - mx) & (pts[:, 0] <= x2 + mx)
            & (pts[:, 1] >= y1 - my) & (pts[:, 1] <= y2 + my))


# ---------------------------------------------------------------- active challenge

class ChallengeLiveness:
    """Active challenge: a random sequence of ``n`` prompts from ("turn_left", "turn_right",
    "nod"), no prompt twice in a row, each to be done within ``timeout_s`` seconds of being
    shown, checked against the landmark head pose.

    Directions are the subject's own, for a camera image that is NOT mirrored: turning to
    one's left moves the nose to the image's right (``Pose.yaw`` rises). A turn passes when
    the yaw moves ``yaw_delta`` (inter-ocular units) the asked way from the farthest it went
    the other way since the prompt was shown (a head still swinging on from the previous turn
    is not penalised); turning ``wrong_turn`` the wrong way beyond where the head was
    ``settle_s`` after the prompt appeared fails the challenge (a replayed clip that turns
    on its own schedule is caught this way; the timeout catches one that does nothing). A nod passes when the pitch moves
    ``pitch_delta`` (eye-to-mouth units) from the start pose and comes back within half of it.

    The pose is the median over the last ``smooth`` frames: a head turns through many frames,
    while the detector's landmark noise on a tilted print or a screen is frame to frame, and
    single-frame spikes were what let a few planar attacks pass. The default sizes (the nose
    moving 0.3 inter-ocular distances for a turn, 0.2 eye-to-mouth heights for a nod) clear
    the largest smoothed pose change that any development print or screen attack showed
    (``challenge_dev_pose_change`` in ``python -m bench.liveness``).
    """

    def __init__(self, prompts: list[str] | None = None, n: int = 2, timeout_s: float = 6.0,
                 rng: random.Random | None = None, *, yaw_delta: float = 0.3,
                 pitch_delta: float = 0.2, smooth: int = POSE_SMOOTH, wrong_turn: float = 0.5,
                 settle_s: float = 1.0, mirrored: bool = False) -> None:
        pool = list(prompts) if prompts else list(PROMPTS)
        unknown = set(pool) - set(PROMPTS)
        if unknown:
            raise ValueError(f"unknown challenge prompts {sorted(unknown)} (known: {PROMPTS})")
        rng = rng or random.SystemRandom()
        seq: list[str] = []
        for _ in range(max(1, n)):
            choices = [p for p in pool if not seq or p != seq[-1]] or pool
            seq.append(rng.choice(choices))
        self._sequence = seq
        self.timeout_s = timeout_s
        self.yaw_delta = yaw_delta
        self.pitch_delta = pitch_delta
        self.wrong_turn = wrong_turn
        self.settle_s = settle_s
        self._recent: deque[tuple[float, float]] = deque(maxlen=max(1, smooth))
        self.sign = -1.0 if mirrored else 1.0
        self._step = 0
        self._start: tuple[float, float, float] | None = None  # (t, yaw, pitch) at prompt start
        self._peak = 0.0           # turn: farthest the wrong way; nod: largest excursion
        self._settled = 0.0        # turn: farthest the wrong way within settle_s of the prompt
        self._outcome: str | None = None
        self._log: list[dict] = []

    @property
    def prompt(self) -> str | None:
        """The prompt to show now (None once the challenge passed or failed)."""
        if self._outcome is not None or self._step >= len(self._sequence):
            return None
        return self._sequence[self._step]

    @property
    def sequence(self) -> list[str]:
        return list(self._sequence)

    def update(self, face: Face, t: float) -> None:
        """Check the face's pose at time ``t`` (seconds) against the current prompt."""
        prompt = self.prompt
        if prompt is None:
            return
        pose = head_pose(face.landmarks)
        self._recent.append((self.sign * pose.yaw, pose.pitch))
        yaw, pitch = (float(v) for v in np.median(np.array(self._recent), axis=0))
        if self._start is None:
            self._start, self._peak, self._settled = (t, yaw, pitch), 0.0, 0.0
            return
        t0, yaw0, pitch0 = self._start
        if t - t0 > self.timeout_s:
            self._finish("challenge_timeout", prompt, t)
            return
        dyaw, dpitch = yaw - yaw0, pitch - pitch0
        done = False
        if prompt in ("turn_left", "turn_right"):
            want = 1.0 if prompt == "turn_left" else -1.0
            # measured from the farthest the head went the other way since the prompt: a head
            # still swinging on from the previous turn is not a wrong turn
            w = dyaw * want  # > 0: the asked way
            self._peak = min(self._peak, w)
            if t - t0 <= self.settle_s:
                self._settled = self._peak
            if w - self._peak >= self.yaw_delta:
                done = True
            elif w <= self._settled - self.wrong_turn:
                self._finish("challenge_failed", prompt, t)
                return
        else:  # nod: out and back
            if abs(dpitch) > abs(self._peak):
                self._peak = dpitch
            done = abs(self._peak) >= self.pitch_delta and abs(dpitch) <= self.pitch_delta / 2
        if done:
            self._log.append({"prompt": prompt, "seconds": round(t - t0, 2)})
            self._step += 1
            self._start = None
            if self._step >= len(self._sequence):
                self._outcome = "live"

    def _finish(self, outcome: str, prompt: str, t: float) -> None:
        self._outcome = outcome
        self._log.append({"prompt": prompt, "outcome": outcome,
                          "seconds": round(t - (self._start or (t,))[0], 2)})

    def result(self) -> LivenessResult:
        details = {"sequence": self.sequence, "done": self._step, "steps": list(self._log),
                   "prompt": self.prompt}
        if self._outcome == "live":
            return LivenessResult(1.0, True, "live", details)
        if self._outcome is not None:
            return LivenessResult(0.0, False, self._outcome, details)
        return LivenessResult(0.5 * self._step / len(self._sequence), None, "pending", details)


PASSIVE_FORMAT = "faceid-passive-liveness/1"
PASSIVE_MIN_FRAMES = 3   # frames averaged before the passive check decides
PASSIVE_EVERY = 2        # score every 2nd frame of a track: half the cost, and still 3 scores
                         # within 0.4 s at 15 fps (both networks cost 9-10 ms per face)
PASSIVE_MIN_FACE = 60    # px: below this the texture is too coarse to judge
PASSIVE_BRIGHTNESS = (40, 220)  # mean grey level of the face box a frame must lie within
SHIPPED_POINT = "operating_point.json"  # beside the MiniFASNet weights: bench.liveness_pad


class PassiveCheck:
    """The passive part of the gate: P(live) of each usable frame, averaged over the track,
    against a threshold. A frame whose face is too small, too dark or overexposed is not
    scored, and the reason is kept, so a door can say ``low_quality`` (with why) instead of
    a silent ``not_live``."""

    def __init__(self, threshold: float, box_map: Any = None, *,
                 min_frames: int = PASSIVE_MIN_FRAMES, source: str = "",
                 model_dir: str | Path | None = None) -> None:
        from faceid.antispoof import IDENTITY, PassiveLiveness

        self.threshold = float(threshold)
        self.scorer = PassiveLiveness(model_dir, box_map=box_map or IDENTITY)
        self.min_frames = min_frames
        self.source = source

    @classmethod
    def load(cls, calibration: str | Path | None = None) -> PassiveCheck:
        """The shipped operating point, or a site's calibration file (``faceid
        calibrate-liveness``). The weights are loaded (and checked) now, so a door with a
        missing or damaged model refuses to start instead of running without liveness."""
        from faceid.antispoof import MODEL_DIR, BoxMap

        source = Path(calibration) if calibration is not None else MODEL_DIR / SHIPPED_POINT
        point = read_json_document(source, PASSIVE_FORMAT, LivenessModelError,
                                   "liveness calibration")
        try:
            check = cls(float(point["threshold"]), BoxMap(**point["box_map"]),
                        source=str(source))
        except (KeyError, TypeError, ValueError) as exc:
            raise LivenessModelError(f"{source}: no usable liveness threshold ({exc})") from None
        _ = check.scorer.networks  # load and verify now
        return check

    def usable(self, frame_rgb: np.ndarray, face: Face) -> str | None:
        """None when the frame can be judged, else why not (``small_face``, ``dark_face``,
        ``overexposed_face``)."""
        if face.size < PASSIVE_MIN_FACE:
            return "small_face"
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        h, w = frame_rgb.shape[:2]
        patch = frame_rgb[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
        level = float(patch.mean()) if patch.size else 0.0
        if level < PASSIVE_BRIGHTNESS[0]:
            return "dark_face"
        if level > PASSIVE_BRIGHTNESS[1]:
            return "overexposed_face"
        return None

    def result(self, scores: list[float], unusable: str | None) -> LivenessResult:
        n = len(scores)
        mean = float(np.mean(scores)) if n else 0.0
        details = {"frames": n, "p_live": round(mean, 4), "threshold": self.threshold}
        if n < self.min_frames:
            reason = f"quality:{unusable}" if unusable else "pending"
            return LivenessResult(0.0, None, reason, details)
        live = mean >= self.threshold
        odds = mean / max(1e-9, 1 - mean)
        thr_odds = self.threshold / max(1e-9, 1 - self.threshold)
        # below the threshold stays undecided: the running mean may still rise with better
        # frames, and the door denies at its own timeout (fail closed) if it never does
        return LivenessResult(ratio_score(odds, thr_odds), True if live else None,
                              "live" if live else "passive_low", details)

    def judge_still(self, image_rgb: np.ndarray, face: Face) -> LivenessResult:
        """A still photo (``verify`` / ``identify --liveness``): one frame decides, and
        there is no later frame to wait for, so anything but live is final: ``live`` is
        True or False, ``reason`` "live", "not_live" or "low_quality:<why>"."""
        why = self.usable(image_rgb, face)
        scores = [] if why else [self.scorer.score(image_rgb, face.box)]
        mean = float(scores[0]) if scores else 0.0
        details = {"frames": len(scores), "p_live": round(mean, 4), "threshold": self.threshold}
        if why:
            return LivenessResult(0.0, False, f"low_quality:{why}", details)
        live = mean >= self.threshold
        return LivenessResult(mean, live, "live" if live else "not_live", details)


# ---------------------------------------------------------------- the gate

class LivenessGate:
    """Fuses whatever is enabled into one score with its own threshold. Fail closed.

    Each part's score is 0.5 at that part's own threshold; the fused score is the minimum
    (any part that says "attack" vetoes), and ``live`` is True only when every enabled part
    decided live and the fused score reaches ``threshold``. Undecided parts keep the result
    undecided. Holds the shared, read-only pieces (the passive networks); :meth:`new_track`
    gives each tracked person fresh state.
    """

    def __init__(self, *, motion: bool = True, challenge: bool = False,
                 threshold: float = GATE_THRESHOLD,
                 challenge_prompts: list[str] | None = None, challenge_timeout_s: float = 6.0,
                 rng: random.Random | None = None, challenge_n: int = 2,
                 passive: PassiveCheck | None = None) -> None:
        if not (motion or challenge or passive):
            raise ValueError("a liveness gate needs at least one part "
                             "(passive, motion, challenge)")
        self.passive = passive
        self.motion = motion
        self.challenge = challenge
        self.threshold = threshold
        self.challenge_prompts = challenge_prompts
        self.challenge_timeout_s = challenge_timeout_s
        self.challenge_n = challenge_n
        self.rng = rng or random.SystemRandom()

    @property
    def parts(self) -> str:
        """The parts in force, e.g. ``"passive+motion"`` (what a door reports of itself)."""
        on = (("passive", self.passive is not None), ("motion", self.motion),
              ("challenge", self.challenge))
        return "+".join(name for name, enabled in on if enabled)

    def new_track(self) -> TrackLiveness:
        """Fresh liveness state for one tracked person."""
        return TrackLiveness(self)


class TrackLiveness:
    """Liveness state of one tracked person under a :class:`LivenessGate`."""

    def __init__(self, gate: LivenessGate) -> None:
        self.gate = gate
        self.motion = MotionLiveness() if gate.motion else None
        self.challenge = (ChallengeLiveness(gate.challenge_prompts, gate.challenge_n,
                                            gate.challenge_timeout_s, gate.rng)
                          if gate.challenge else None)
        self.passive_scores: list[float] = []
        self.passive_unusable: str | None = None
        self.passive_seen = 0

    def update(self, frame_rgb: np.ndarray, face: Face, t: float) -> None:
        """Feed one frame in which this person's face was seen (t in seconds)."""
        passive = self.gate.passive
        if passive is not None and self._passive_wanted():
            self.passive_unusable = passive.usable(frame_rgb, face)
            if self.passive_unusable is None:
                self.passive_scores.append(passive.scorer.score(frame_rgb, face.box))
        if self.motion is not None:
            self.motion.update(frame_rgb, face, t)
        if self.challenge is not None:
            self.challenge.update(face, t)

    def _passive_wanted(self) -> bool:
        """Score this frame? Every PASSIVE_EVERY-th frame, and no more once the running mean
        has decided live (nothing later can change a grant)."""
        self.passive_seen += 1
        passive = self.gate.passive
        assert passive is not None
        decided = (len(self.passive_scores) >= passive.min_frames
                   and float(np.mean(self.passive_scores)) >= passive.threshold)
        return not decided and (self.passive_seen - 1) % PASSIVE_EVERY == 0

    @property
    def prompt(self) -> str | None:
        """The challenge prompt to show now (None without a challenge or once it is over)."""
        return self.challenge.prompt if self.challenge is not None else None

    @property
    def sequence(self) -> list[str] | None:
        """The whole challenge sequence, for the event row (None without a challenge)."""
        return self.challenge.sequence if self.challenge is not None else None

    def result(self) -> LivenessResult:
        parts: dict[str, LivenessResult] = {}
        if self.gate.passive is not None:
            parts["passive"] = self.gate.passive.result(self.passive_scores,
                                                        self.passive_unusable)
        if self.motion is not None:
            motion = self.motion.result()
            if self.gate.passive is not None and motion.reason != "track_jump":
                # evidence, not a requirement: only a jumping track (a slideshow) vetoes
                motion = LivenessResult(1.0, True, "evidence", motion.details)
            parts["motion"] = motion
        if self.challenge is not None:
            parts["challenge"] = self.challenge.result()
        score = min(p.score for p in parts.values())
        details = {name: p.to_dict() for name, p in parts.items()}
        details["threshold"] = self.gate.threshold
        failed = [p for p in parts.values() if p.live is False]
        if failed:
            return LivenessResult(score, False, failed[0].reason, details)
        waiting = [p for p in parts.values() if p.live is None]
        if waiting:
            return LivenessResult(score, None, waiting[0].reason, details)
        if score < self.gate.threshold:
            return LivenessResult(score, False, "low_score", details)
        return LivenessResult(score, True, "live", details)
