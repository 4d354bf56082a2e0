"""What a decision does, split by what may go wrong with it.

* The **opener** (``--on-grant``: the relay command) runs only for a grant, after the event
  is written; the door is open only if it succeeds. Its outcome is stored on the same
  event (``actuation``), so a failed relay never turns into a second, contrary event.
* **Notifiers** (``--webhook``, ``--on-deny``) report decisions that are already taken.
  They run from the :class:`Outbox` on a background thread, with timeouts and retries, so
  a slow or dead webhook never stalls the door; every attempt's outcome is stored on the
  event (``delivery``).
* The log line is written at once, in the loop.

The webhook body is signed (HMAC-SHA256 over ``timestamp.body`` with the site's secret) so
the receiving panel can tell a real decision from a forged or replayed one.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

log = logging.getLogger("faceid.door")

SIGNATURE_HEADER = "X-FaceID-Signature"
TIMESTAMP_HEADER = "X-FaceID-Timestamp"


@dataclass
class Decision:
    """One access decision as actuators and the audit trail see it. ``person_id`` and
    ``person_name`` are set only for the person who matched: an unknown face is never
    given an enrolled name; its nearest candidate stays in ``audit`` (event row only)."""

    decision: str  # "grant" | "deny"
    reason: str
    source: str
    time: str  # ISO 8601, UTC
    person_id: int | None = None
    person_name: str | None = None
    distance: float | None = None
    margin: float | None = None
    liveness: float | None = None
    tau: float | None = None
    model: str | None = None
    track: int | None = None
    prompts: list[str] | None = None
    details: str | None = None  # why, in words (liveness part, error text)
    event_id: int | None = None
    door: str | None = None
    actuation: str | None = None  # grants only: "opened" or "failed: why"
    audit: dict[str, Any] | None = field(default=None, repr=False)  # restricted: event row only

    def to_dict(self) -> dict[str, Any]:
        """What leaves the process (stdout, webhook, command environment): no audit field."""
        return {k: v for k, v in self.__dict__.items() if k != "audit"}

    @property
    def opened(self) -> bool:
        return self.decision == "grant" and self.actuation == "opened"


def log_decision(d: Decision) -> None:
    """The log line every decision gets, in the loop."""
    who = f" {d.person_name} (#{d.person_id})" if d.person_id else ""
    door = f" [{d.actuation}]" if d.actuation else ""
    log.info("%s %s%s reason=%s distance=%s liveness=%s%s", d.time, d.decision.upper(), who,
             d.reason, d.distance, d.liveness, door)


def run_command(cmd: str, d: Decision, timeout: float) -> None:
    """Run ``cmd`` through the shell with the decision in FACEID_* variables; a non-zero exit
    or a timeout raises."""
    env = {**os.environ, **{f"FACEID_{k.upper()}": "" if v is None else str(v)
                            for k, v in d.to_dict().items() if k != "prompts"}}
    env["FACEID_JSON"] = json.dumps(d.to_dict())
    try:
        p = subprocess.run(cmd, shell=True, env=env, timeout=timeout, capture_output=True,
                           text=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"command {cmd!r} took longer than {timeout:g} s") from None
    if p.returncode != 0:
        raise RuntimeError(f"command {cmd!r} exited {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[:200]}")


class Opener:
    """The relay: ``on_grant`` run for grants only, synchronously (the person waits for it)."""

    def __init__(self, on_grant: str, timeout: float = 10.0) -> None:
        self.command = on_grant
        self.timeout = timeout

    def open(self, d: Decision) -> None:
        run_command(self.command, d, self.timeout)


class Notifier(Protocol):
    name: str

    def send(self, d: Decision) -> None:
        """Deliver the decision; raise on failure (the outbox retries)."""


class DenyCommand:
    """``on_deny``: a command told about each deny (an alarm, a display)."""

    name = "on_deny"

    def __init__(self, command: str, timeout: float = 10.0) -> None:
        self.command = command
        self.timeout = timeout

    def send(self, d: Decision) -> None:
        if d.decision == "deny":
            run_command(self.command, d, self.timeout)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The webhook signature: ``sha256=`` + HMAC-SHA256 of ``timestamp.body``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    """POSTs each decision as JSON, signed; any status other than 2xx is a failure."""

    name = "webhook"

    def __init__(self, url: str, secret: bytes, timeout: float = 5.0) -> None:
        if not secret:
            raise ValueError("a webhook needs a non-empty signing secret")
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def send(self, d: Decision) -> None:
        body = json.dumps(d.to_dict(), sort_keys=True).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                   SIGNATURE_HEADER: sign(self.secret, stamp, body)}
        try:
            r = requests.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RuntimeError(f"webhook {self.url} unreachable: "
                               f"{type(exc).__name__}") from None
        if not 200 <= r.status_code < 300:
            raise RuntimeError(f"webhook {self.url} answered {r.status_code}")


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    decision: Decision = field(compare=False)
    notifier: Notifier = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Outbox:
    """Delivers decisions to notifiers on one background thread, retrying failures with
    capped exponential backoff, and reports each outcome through ``on_status(event_id,
    notifier name, status)``. Bounded: past ``capacity`` waiting jobs the oldest is dropped
    (and reported as dropped), so a long outage cannot grow memory without end."""

    def __init__(self, notifiers: Iterable[Notifier],
                 on_status: Callable[[int | None, str, dict[str, Any]], None], *,
                 attempts: int = 6, backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 capacity: int = 1000) -> None:
        self.notifiers = list(notifiers)
        self.on_status = on_status
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.capacity = capacity
        self._jobs: list[_Job] = []
        self._seq = 0
        self._cv = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None

    def put(self, d: Decision) -> None:
        """Queue ``d`` for every notifier; never blocks on delivery."""
        if not self.notifiers:
            return
        with self._cv:
            for n in self.notifiers:
                self._push(_Job(time.monotonic(), self._next(), d, n))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="faceid-outbox",
                                                daemon=True)
                self._thread.start()
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._jobs) + int(self._busy)

    def close(self, wait_s: float = 10.0) -> int:
        """Deliver what is due within ``wait_s``, then stop; returns the jobs left
        undelivered (each reported as such)."""
        deadline = time.monotonic() + wait_s
        with self._cv:
            while (self._jobs or self._busy) and time.monotonic() < deadline:
                self._cv.wait(0.05)
            self._closing = True
            left, self._jobs = self._jobs, []
            self._cv.notify_all()
        for job in left:
            self._report(job, "undelivered", "the door stopped before it was delivered")
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        return len(left)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _push(self, job: _Job) -> None:
        if len(self._jobs) >= self.capacity:
            oldest = min(self._jobs, key=lambda j: j.seq)
            self._jobs.remove(oldest)
            heapq.heapify(self._jobs)
            self._report(oldest, "dropped", f"outbox full ({self.capacity} waiting)")
        heapq.heappush(self._jobs, job)

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._closing and (not self._jobs
                                             or self._jobs[0].due > time.monotonic()):
                    self._cv.wait(None if not self._jobs
                                  else self._jobs[0].due - time.monotonic())
                if self._closing:
                    return
                job = heapq.heappop(self._jobs)
                self._busy = True
            try:
                job.notifier.send(job.decision)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then reported
                self._failed(job, str(exc))
            else:
                self._report(job, "delivered", None)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _failed(self, job: _Job, why: str) -> None:
        log.warning("%s failed for event %s (attempt %d): %s", job.notifier.name,
                    job.decision.event_id, job.attempt, why)
        if job.attempt >= self.attempts:
            self._report(job, "failed", why)
            return
        self._report(job, "retrying", why)
        wait = min(self.max_backoff_s, self.backoff_s * 2 ** (job.attempt - 1))
        with self._cv:
            self._push(_Job(time.monotonic() + wait, self._next(), job.decision, job.notifier,
                            job.attempt + 1))
            self._cv.notify()

    def _report(self, job: _Job, status: str, error: str | None) -> None:
        try:
            self.on_status(job.decision.event_id, job.notifier.name,
                           {"status": status, "attempts": job.attempt, "error": error})
        except Exception:  # noqa: BLE001 - a status that cannot be stored is only logged
            log.exception("could not record the %s delivery status of event %s",
                          job.notifier.name, job.decision.event_id)
