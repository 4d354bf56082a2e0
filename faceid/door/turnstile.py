"""The camera loop at a door: frames -> faces -> the person in the zone -> several good
frames encoded and averaged -> 1:K (or 1:1 with ``claim``) -> liveness gate -> grant or deny
-> actuators -> an event row for every decision.

States: idle (nobody) -> tracking (a face, gathering frames) -> checking (matched, waiting
for liveness) -> granted / denied -> cooldown (the decided person is still in view, or was
just granted: one grant per pass).

Fail closed, keep running: an error in any stage (refresh, detect, liveness, encode, match,
record, open) never opens the door and never ends the loop; the frame is dropped or the
track denied, the fault is counted in :class:`Health`, and the next frame tries again. A
decision is written to the audit trail before anything acts on it; if it cannot be written
(the database is down) the door does not open and the decision waits in memory until the
database is back.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import cv2
import numpy as np

from faceid.door.actuators import Decision, Notifier, Opener, Outbox, log_decision
from faceid.detection import Face
from faceid.detectors import Detector
from faceid.gallery import Gallery
from faceid.door.liveness import LivenessGate, TrackLiveness
from faceid.quality import QualityGate
from faceid.recorder import record_decision
from faceid.door.tracking import Track, Tracker, pick_subject

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
    door: str | None = None  # the door's name in the audit trail
    unwritten_max: int = 10_000  # decisions held while the database is down
    heartbeat_s: float = 5.0  # how often the door's status row is rewritten (wall seconds)


@dataclass
class Health:
    """Whether the door is working as configured, for ``--health-file`` and the benchmarks:
    ``degraded`` while any stage keeps failing, with the last fault of each stage."""

    frames: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)  # stage -> last error, until it recovers
    unwritten: int = 0

    def fault(self, stage: str, exc: BaseException) -> None:
        self.faults[stage] = self.faults.get(stage, 0) + 1
        self.failing[stage] = f"{type(exc).__name__}: {exc}"[:300]

    def ok(self, stage: str) -> None:
        self.failing.pop(stage, None)

    @property
    def degraded(self) -> bool:
        return bool(self.failing) or self.unwritten > 0

    def to_dict(self) -> dict[str, Any]:
        return {"status": "degraded" if self.degraded else "ok", "frames": self.frames,
                "faults": dict(self.faults), "failing": dict(self.failing),
                "unwritten_events": self.unwritten}


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


@dataclass
class TrackState:
    """What the door keeps of one tracked person, from first sight to its decision."""

    live: TrackLiveness        # the liveness gate's state for this person
    first_t: float             # seconds: when the door first looked at them (timeouts)
    encodings: list[np.ndarray] = field(default_factory=list)  # the last good frames'
    tailgated: bool = False    # someone close behind in the latest frame
    decision: Decision | None = None  # once decided, the track only cools down
    seen: int = 0              # frames looked at (the full window re-encodes every 3rd)


class Turnstile:
    """One door. Feed it frames with :meth:`process` (or a whole source with :meth:`run`)."""

    def __init__(self, gallery: Gallery, config: WatchConfig, gate: LivenessGate,
                 opener: Opener | None = None, notifiers: Iterable[Notifier] = (), *,
                 detector: Detector | None = None) -> None:
        self.gallery = gallery
        self.fid = gallery.fid
        self.detector = detector or gallery.fid.detector  # a door passes the video one
        self.quality = QualityGate(min_face=config.min_face, max_yaw=config.max_yaw)
        self.config = config
        self.gate = gate
        self.opener = opener
        self.outbox = Outbox(notifiers, self._delivered)
        self.tracker: Tracker[TrackState] = Tracker()
        self.recent_grants: dict[int, float] = {}
        self.decisions: list[Decision] = []
        self.health = Health()
        self._unwritten: deque[tuple[Decision, bytes | None]] = deque(
            maxlen=config.unwritten_max)
        self._last_refresh = -1e9
        self._retry_at = -1e9
        self._beat_at = -1e9
        self._beat_frames = 0
        self.started = datetime.now(timezone.utc)
        if config.claim is not None:
            self.claimed = gallery.store.resolve(config.claim)  # unknown claim: fail early
        else:
            gallery.require_same_model()
        gallery.operating_point()  # thresholds known (and stored) before the first face
        if config.snapshot_days is not None:
            self.prune_snapshots()

    # -- one frame ----------------------------------------------------------------------
    def process(self, frame: np.ndarray, t: float) -> FrameReport:
        """Run one frame through the loop; returns what it saw and decided. Never raises
        for a fault of its own stages: the frame is dropped (nothing opens) and the fault
        is counted in ``health``."""
        report = FrameReport(t, "idle")
        self.health.frames += 1
        self._refresh(t)
        self._heartbeat()
        self._flush_unwritten(t)
        start = time.perf_counter()
        try:
            faces = self.detector.detect(frame)
            self.health.ok("detect")
        except Exception as exc:  # noqa: BLE001 - a bad frame or a detector fault: skip it
            log.exception("detection failed; frame dropped")
            self.health.fault("detect", exc)
            report.state = "error"
            return report
        tick = _lap(report, "detect", start)
        report.faces = faces
        seen = self.tracker.update(faces, t)
        subject, tailgater = pick_subject(seen, frame.shape)
        if subject is None:
            return report
        report.subject = subject.id
        if subject.state is None:
            subject.state = TrackState(self.gate.new_track(), first_t=t)
        state = subject.state
        if state.decision is not None:
            report.state = "cooldown"
            report.label = state.decision.person_name
            return report
        try:
            state.live.update(frame, subject.face, t)
            tick = _lap(report, "liveness", tick)
            state.tailgated = tailgater is not None
            self._gather(frame, subject, report)
            tick = _lap(report, "encode", tick)
            decision = self._decide(subject, t, report)
            self.health.ok("decide")
        except Exception as exc:  # noqa: BLE001 - fail closed, whatever went wrong
            log.exception("error while deciding; denying")
            self.health.fault("decide", exc)
            decision = self._decision(subject, t, "deny", "error", details=str(exc))
        if decision is not None:
            state.decision = decision
            report.state = "granted" if decision.decision == "grant" else "denied"
            report.decisions.append(self._act(decision, frame, subject.face))
            _lap(report, "act", tick)
        return report

    def _refresh(self, t: float) -> None:
        """Pick up enrolments by other processes; on a database fault keep deciding with
        the gallery already loaded (removals still take effect when it is back)."""
        if t - self._last_refresh < self.config.refresh_s:
            return
        self._last_refresh = t
        try:
            self.gallery.refresh()
            self.health.ok("refresh")
        except Exception as exc:  # noqa: BLE001 - the database may come back
            log.warning("gallery refresh failed: %s", exc)
            self.health.fault("refresh", exc)

    def _heartbeat(self, running: bool = True) -> None:
        """Every ``heartbeat_s`` of wall time (and when stopping), rewrite this door's status
        row, which the server shows: state, frames, fps, last decision. A door without a
        name writes none; a failed write is counted in ``health.faults`` and never stops or
        degrades the door, and none is tried while recording is failing."""
        now = time.monotonic()
        if self.config.door is None or (running and now - self._beat_at < self.config.heartbeat_s):
            return
        if running and ({"record", "refresh"} & set(self.health.failing)):
            return  # the database is known to be failing: do not wait on it for status
        elapsed = now - self._beat_at
        fps = (self.health.frames - self._beat_frames) / elapsed if elapsed < 1e6 else None
        self._beat_at, self._beat_frames = now, self.health.frames
        last = self.decisions[-1] if self.decisions else None
        try:
            self.gallery.store.door_heartbeat(
                self.config.door, host=socket.gethostname(), started_at=self.started,
                last_seen=datetime.now(timezone.utc), running=running,
                state="degraded" if self.health.degraded else "ok",
                frames=self.health.frames, fps=None if fps is None else round(fps, 2),
                last_decision=last and f"{last.decision}:{last.reason}",
                last_decision_at=last and datetime.fromisoformat(last.time),
                liveness=self.gate.parts, last_liveness=last and last.liveness)
        except Exception as exc:  # noqa: BLE001 - status only: the door goes on deciding
            # counted, but not a reason to call the door degraded: deciding and recording
            # are what health watches, and their own faults say when the database is down
            log.warning("door status not written: %s", exc)
            self.health.faults["heartbeat"] = self.health.faults.get("heartbeat", 0) + 1

    def _gather(self, frame: np.ndarray, track: Track[TrackState], report: FrameReport) -> None:
        """Encode the subject's face if this frame passes the quality gate."""
        face, state = track.face, track.state
        report.state = "tracking"
        encodings = state.encodings
        state.seen += 1
        if len(encodings) >= self.config.frames_to_decide and state.seen % 3:
            return  # window full, decision waiting on liveness: refresh it every 3rd frame
        chips: list[np.ndarray] = []

        def chip() -> np.ndarray:  # the views' chips, made once, only if size and pose pass
            chips.extend(self.fid.view_chips(frame, face))
            return chips[0] if self.fid.views.scales[0] == 1.0 else self.fid.chip(frame, face)

        if self.quality.assess(face, chip).reason is not None:
            return
        emb = self.fid.encoder.embed_views(np.stack(chips)[None], self.fid.views.flip)[0]
        encodings.append(emb)
        del encodings[: -self.config.frames_to_decide]

    def _decide(self, track: Track[TrackState], t: float,
                report: FrameReport) -> Decision | None:
        state = track.state
        live = state.live.result()
        report.liveness = live.score
        report.prompt = state.live.prompt
        expired = t - state.first_t >= self.config.timeout_s
        # a person acting out challenge prompts needs longer than the door's timeout, and
        # turns away from the camera while doing it: the challenge's own per-prompt timeout
        # bounds the wait instead (strangers are still denied at the door's timeout)
        challenge_running = live.live is None and report.prompt is not None
        if live.live is False:
            return self._decision(track, t, "deny", "not_live", liveness=live.score,
                                  details=live.reason)
        if len(state.encodings) < self.config.frames_to_decide:
            return self._decision(track, t, "deny", "low_quality", liveness=live.score
                                  ) if expired and not challenge_running else None
        mean = np.mean(state.encodings, axis=0)
        mean /= np.linalg.norm(mean)
        match = self._match(mean)
        report.label = match["person_name"]  # None for an unknown face
        report.state = "checking"
        if match["person_id"] is None:
            return self._decision(track, t, "deny", "unknown", liveness=live.score,
                                  **_fields(match)) if expired else None
        if state.tailgated:
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
            state.decision = Decision("grant", "debounced", self.config.source, self._iso(t))
            report.state = "cooldown"
            return None
        self.recent_grants[match["person_id"]] = t
        return self._decision(track, t, "grant", "match", liveness=live.score, **_fields(match))

    def _match(self, embedding: np.ndarray) -> dict[str, Any]:
        """1:1 against the claim, or 1:K; person_id and person_name are None when nobody
        matches (the nearest candidate goes only to the event row's restricted ``audit``)."""
        if self.config.claim is not None:
            v = self.gallery.verify(embedding, self.claimed.id)
            same = v.same
            found = {"person_id": v.person_id, "person_name": v.name, "distance": v.distance,
                     "margin": None}
        else:
            r = self.gallery.identify(embedding, top=2)
            best = r.candidates[0] if r.candidates else None
            same = r.person is not None
            found = {"person_id": best.person_id if best else None,
                     "person_name": best.name if best else None,
                     "distance": best.distance if best else None, "margin": r.margin}
        if same:
            return found
        nearest = ({"person_id": found["person_id"], "distance": found["distance"]}
                   if found["person_id"] is not None else None)
        if self.config.claim is not None:
            nearest = {"claim": self.config.claim, "claimed_id": self.claimed.id}
        return {"person_id": None, "person_name": None, "distance": found["distance"],
                "margin": found["margin"], "audit": {"nearest": nearest}}

    def _decision(self, track: Track[TrackState], t: float, verdict: str, reason: str,
                  **kw: Any) -> Decision:
        return Decision(verdict, reason, self.config.source, self._iso(t), track=track.id,
                        tau=(self.gallery.tau_verify if self.config.claim is not None
                             else self.gallery.tau), model=self.gallery.model.key,
                        prompts=track.state.live.sequence,
                        door=self.config.door, **kw)

    def _act(self, d: Decision, frame: np.ndarray, face: Face) -> Decision:
        """Write the event, then open (grants only, and only once it is written), then hand
        the decision to the notifiers. One event per decision: the relay's outcome and the
        notifiers' delivery status are stored on it, never as a second event."""
        snapshot = _snapshot(frame, face) if self.config.snapshots else None
        try:
            d.event_id = self._record(d, snapshot)
            self.health.ok("record")
        except Exception as exc:  # noqa: BLE001 - unrecorded: nothing may open
            log.error("could not record the decision (%s); the door stays closed", exc)
            self.health.fault("record", exc)
            if d.decision == "grant":
                d.actuation = "not_opened: decision not recorded"
            self._unwritten.append((d, snapshot))
            self.health.unwritten = len(self._unwritten)
        else:
            if d.decision == "grant":
                self._open(d)
        log_decision(d)
        self.outbox.put(d)
        self.decisions.append(d)
        return d

    def _open(self, d: Decision) -> None:
        if self.opener is None:
            d.actuation = "opened"  # no relay configured: the grant is the outcome
        else:
            try:
                self.opener.open(d)
                d.actuation = "opened"
                self.health.ok("open")
            except Exception as exc:  # noqa: BLE001 - the door stays shut
                log.error("the door did not open: %s", exc)
                self.health.fault("open", exc)
                d.actuation = f"failed: {exc}"[:500]
        try:
            self.gallery.store.set_actuation(d.event_id, d.actuation)
        except Exception as exc:  # noqa: BLE001 - the event row exists; the outcome is logged
            log.error("could not store the door's outcome on event %s: %s", d.event_id, exc)

    def _flush_unwritten(self, t: float) -> None:
        """Write decisions held while the database was down, oldest first (their own
        times), until one fails again; retried every ``refresh_s`` so a locked database
        does not cost its busy timeout on every frame."""
        if not self._unwritten or t < self._retry_at:
            return
        while self._unwritten:
            d, snapshot = self._unwritten[0]
            try:
                d.event_id = self._record(d, snapshot)
            except Exception:  # noqa: BLE001 - still down; try again later
                self._retry_at = t + self.config.refresh_s
                return
            self._unwritten.popleft()
            self.health.unwritten = len(self._unwritten)
            if d.actuation:
                self.gallery.store.set_actuation(d.event_id, d.actuation)
        self.health.ok("record")

    def _delivered(self, event_id: int | None, notifier: str, status: dict[str, Any]) -> None:
        if event_id is not None:
            self.gallery.store.set_delivery(event_id, notifier, status)

    def _record(self, d: Decision, snapshot: bytes | None) -> int:
        details = {"track": d.track, "prompts": d.prompts, "note": d.details,
                   **(d.audit or {})}
        return record_decision(
            self.gallery, time=datetime.fromisoformat(d.time), source=d.source,
            decision=d.decision, person_id=d.person_id, person_name=d.person_name,
            distance=d.distance, margin=d.margin, liveness=d.liveness, model=d.model,
            tau=d.tau, door=d.door, reason=d.reason, details=details, snapshot=snapshot)

    def close(self, wait_s: float = 10.0) -> int:
        """Stop: one last try to write the decisions held while the database was down,
        then deliver what the notifiers still owe (up to ``wait_s``); returns how many
        deliveries were left undelivered."""
        self._retry_at = -1e9
        self._flush_unwritten(0.0)
        self._heartbeat(running=False)
        return self.outbox.close(wait_s)

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
    return {k: match[k] for k in ("person_id", "person_name", "distance", "margin", "audit")
            if k in match}


def _lap(report: FrameReport, stage: str, since: float) -> float:
    now = time.perf_counter()
    report.seconds[stage] = report.seconds.get(stage, 0.0) + now - since
    return now


def _snapshot(frame: np.ndarray, face: Face) -> bytes | None:
    from faceid.pipeline import loose_crop

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(loose_crop(frame, face, 1.6, 160),
                                                 cv2.COLOR_RGB2BGR))
    return jpeg.tobytes() if ok else None
