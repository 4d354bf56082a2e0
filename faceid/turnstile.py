"""The camera loop at a door: frames -> faces -> the person in the zone -> several good
frames encoded and averaged -> 1:K (or 1:1 with ``claim``) -> liveness gate -> grant or deny
-> actuators -> an event row for every decision.

States: idle (nobody) -> tracking (a face, gathering frames) -> checking (matched, waiting
for liveness) -> granted / denied -> cooldown (the decided person is still in view, or was
just granted: one grant per pass). Any error while deciding denies (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import cv2
import numpy as np

from faceid.actuators import Actuator, Decision, LogActuator
from faceid.detect import Face
from faceid.gallery import Gallery
from faceid.liveness import LivenessGate
from faceid.quality import MIN_SHARPNESS, head_pose, sharpness
from faceid.tracking import Track, Tracker, pick_subject

log = logging.getLogger("faceid.door")


@dataclass
class WatchConfig:
    """Knobs of the loop; the defaults suit a turnstile camera at 640x480."""

    source: str = "camera"
    claim: str | None = None  # 1:1 mode: who the badge says is at the door
    min_face: float = 40.0
    max_yaw: float = 0.35  # quality gate on pose (inter-ocular units)
    frames_to_decide: int = 3  # good frames whose encodings are averaged
    timeout_s: float = 3.0  # first sight to a forced decision; a running challenge has its own
    cooldown_s: float = 3.0  # per-person debounce after a grant
    snapshots: bool = False  # keep a face crop with each event
    snapshot_days: float | None = None  # retention for those crops
    refresh_s: float = 2.0  # how often to look for enrolments by other processes


@dataclass
class FrameReport:
    """What happened in one frame, for the on-screen overlay and the benchmarks."""

    t: float
    state: str
    faces: list[Face] = field(default_factory=list)
    subject: int | None = None
    label: str | None = None
    prompt: str | None = None
    liveness: float | None = None
    decisions: list[Decision] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class Turnstile:
    """One door. Feed it frames with :meth:`process` (or a whole source with :meth:`run`)."""

    def __init__(self, gallery: Gallery, config: WatchConfig, gate: LivenessGate,
                 actuators: Iterable[Actuator] = ()) -> None:
        self.gallery = gallery
        self.fid = gallery.fid
        self.config = config
        self.gate = gate
        self.actuators = [LogActuator(), *actuators]
        self.tracker = Tracker()
        self.recent_grants: dict[int, float] = {}
        self.decisions: list[Decision] = []
        self._last_refresh = -1e9
        self.started = datetime.now(timezone.utc)
        if config.claim is not None:
            self.claimed = gallery.store.resolve(config.claim)  # unknown claim: fail early
        else:
            gallery.require_same_model()
        if config.snapshot_days is not None:
            self.prune_snapshots()

    # -- one frame ----------------------------------------------------------------------
    def process(self, frame: np.ndarray, t: float) -> FrameReport:
        """Run one frame through the loop; returns what it saw and decided."""
        report = FrameReport(t, "idle")
        tick = time.perf_counter()
        if t - self._last_refresh >= self.config.refresh_s:
            self.gallery.refresh()
            self._last_refresh = t
        faces = self.fid.detect(frame)
        tick = _lap(report, "detect", tick)
        report.faces = faces
        seen = self.tracker.update(faces, t)
        subject, tailgater = pick_subject(seen, frame.shape)
        if subject is None:
            return report
        report.subject = subject.id
        data = subject.data
        if "live" not in data:
            data.update(live=self.gate.new_track(), encodings=[], first_t=t,
                        tailgated=False)
        if data.get("decision") is not None:
            report.state = "cooldown"
            report.label = data["decision"].person_name
            return report
        try:
            data["live"].update(frame, subject.face, t)
            tick = _lap(report, "liveness", tick)
            data["tailgated"] = tailgater is not None
            self._gather(frame, subject, report)
            tick = _lap(report, "encode", tick)
            decision = self._decide(subject, t, report)
        except Exception as exc:  # noqa: BLE001 - fail closed, whatever went wrong
            log.exception("error while deciding; denying")
            decision = self._decision(subject, t, "deny", "error", details=str(exc))
        if decision is not None:
            data["decision"] = decision
            report.state = "granted" if decision.decision == "grant" else "denied"
            report.decisions.append(self._act(decision, frame, subject.face))
            _lap(report, "act", tick)
        return report

    def _gather(self, frame: np.ndarray, track: Track, report: FrameReport) -> None:
        """Encode the subject's face if this frame passes the quality gate."""
        face = track.face
        report.state = "tracking"
        encodings = track.data["encodings"]
        track.data["seen"] = track.data.get("seen", 0) + 1
        if len(encodings) >= self.config.frames_to_decide and track.data["seen"] % 3:
            return  # window full, decision waiting on liveness: refresh it every 3rd frame
        if face.size < self.config.min_face:
            return
        if abs(head_pose(face.landmarks).yaw) > self.config.max_yaw:
            return
        chips = self.fid.view_chips(frame, face)
        if sharpness(chips[0], face.size) < MIN_SHARPNESS:
            return
        emb = self.fid.encoder.embed_views(chips[None], self.fid.views.flip)[0]
        encodings.append(emb)
        del encodings[: -self.config.frames_to_decide]

    def _decide(self, track: Track, t: float, report: FrameReport) -> Decision | None:
        data = track.data
        live = data["live"].result()
        report.liveness = live.score
        report.prompt = data["live"].prompt
        expired = t - data["first_t"] >= self.config.timeout_s
        # a person acting out challenge prompts needs longer than the door's timeout, and
        # turns away from the camera while doing it: the challenge's own per-prompt timeout
        # bounds the wait instead (strangers are still denied at the door's timeout)
        challenge_running = live.live is None and report.prompt is not None
        if live.live is False:
            return self._decision(track, t, "deny", "not_live", liveness=live.score,
                                  details=live.reason)
        if len(data["encodings"]) < self.config.frames_to_decide:
            return self._decision(track, t, "deny", "low_quality", liveness=live.score
                                  ) if expired and not challenge_running else None
        mean = np.mean(data["encodings"], axis=0)
        mean /= np.linalg.norm(mean)
        match = self._match(mean)
        report.label = match.get("person_name")
        report.state = "checking"
        if match["person_id"] is None:
            return self._decision(track, t, "deny", "unknown", liveness=live.score,
                                  **_fields(match)) if expired else None
        if data["tailgated"]:
            return self._decision(track, t, "deny", "tailgating", liveness=live.score,
                                  **_fields(match)) if expired else None
        if challenge_running:
            return None
        if live.live is not True:
            # a face the passive check could not judge (too small, too dark) is a quality
            # problem the person can fix, not an attack
            why = "low_quality" if live.reason.startswith("quality:") else "not_live"
            return self._decision(track, t, "deny", why, liveness=live.score,
                                  details=live.reason, **_fields(match)) if expired else None
        last = self.recent_grants.get(match["person_id"])
        if last is not None and t - last < self.config.cooldown_s:
            data["decision"] = Decision("grant", "debounced", self.config.source, self._iso(t))
            report.state = "cooldown"
            return None
        self.recent_grants[match["person_id"]] = t
        return self._decision(track, t, "grant", "match", liveness=live.score, **_fields(match))

    def _match(self, embedding: np.ndarray) -> dict[str, Any]:
        """1:1 against the claim, or 1:K; person_id None when nobody matches."""
        if self.config.claim is not None:
            v = self.gallery.verify(embedding, self.claimed.id)
            return {"person_id": v.person_id if v.same else None, "person_name": v.name,
                    "distance": v.distance, "margin": None}
        r = self.gallery.identify(embedding, top=2)
        best = r.candidates[0] if r.candidates else None
        return {"person_id": r.person.person_id if r.person else None,
                "person_name": best.name if best else None,
                "distance": best.distance if best else None, "margin": r.margin}

    def _decision(self, track: Track, t: float, verdict: str, reason: str,
                  **kw: Any) -> Decision:
        return Decision(verdict, reason, self.config.source, self._iso(t), track=track.id,
                        tau=(self.gallery.tau_verify if self.config.claim is not None
                             else self.gallery.tau), model=self.gallery.model.key,
                        prompts=track.data["live"].sequence if "live" in track.data else None,
                        **kw)

    def _act(self, d: Decision, frame: np.ndarray, face: Face) -> Decision:
        """Record, then actuate; a failed grant actuator turns into a recorded deny."""
        snapshot = _snapshot(frame, face) if self.config.snapshots else None
        d.event_id = self._record(d, snapshot)
        for actuator in self.actuators:
            try:
                actuator.act(d)
            except Exception as exc:  # noqa: BLE001 - fail closed
                log.error("actuator failed: %s", exc)
                if d.decision == "grant":
                    denied = Decision(**{**d.to_dict(), "decision": "deny",
                                         "reason": "actuator_error", "details": str(exc),
                                         "event_id": None})
                    denied.event_id = self._record(denied, None)
                    self.decisions.append(d)
                    d = denied
                    break
        self.decisions.append(d)
        return d

    def _record(self, d: Decision, snapshot: bytes | None) -> int:
        import json

        details = {"track": d.track, "prompts": d.prompts, "note": d.details}
        return self.gallery.store.add_event(
            time=datetime.fromisoformat(d.time), source=d.source, decision=d.decision,
            person_id=d.person_id, person_name=d.person_name, distance=d.distance,
            margin=d.margin, liveness=d.liveness, model=d.model, tau=d.tau,
            reason=d.reason, details=json.dumps(details), snapshot_jpeg=snapshot)

    def prune_snapshots(self) -> int:
        days = self.config.snapshot_days or 0
        return self.gallery.store.prune_snapshots(
            datetime.now(timezone.utc) - timedelta(days=days))

    def _iso(self, t: float) -> str:
        """Event time: the loop's clock (video seconds, or wall seconds since start) added
        to the moment the loop started, in UTC."""
        return (self.started + timedelta(seconds=t)).isoformat()

    # -- a whole source -----------------------------------------------------------------
    def run(self, frames: Iterable[tuple[int, float, np.ndarray]],
            on_frame: Any = None) -> list[Decision]:
        for _index, t, frame in frames:
            report = self.process(frame, t)
            if on_frame is not None:
                on_frame(frame, report)
        return self.decisions


def _fields(match: dict[str, Any]) -> dict[str, Any]:
    return {k: match[k] for k in ("person_id", "person_name", "distance", "margin")}


def _lap(report: FrameReport, stage: str, since: float) -> float:
    now = time.perf_counter()
    report.seconds[stage] = report.seconds.get(stage, 0.0) + now - since
    return now


def _snapshot(frame: np.ndarray, face: Face) -> bytes | None:
    from faceid.pipeline import loose_crop

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(loose_crop(frame, face, 1.6, 160),
                                                 cv2.COLOR_RGB2BGR))
    return jpeg.tobytes() if ok else None
