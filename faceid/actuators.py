"""What a decision does: log it (always), run a command, post a webhook. The door opens only
if every grant actuator succeeds; a failing one turns the grant into a deny (fail closed).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol

import requests

log = logging.getLogger("faceid.door")


@dataclass
class Decision:
    """One access decision as actuators and the audit trail see it."""

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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Actuator(Protocol):
    def act(self, d: Decision) -> None:
        """Carry the decision out; raise on failure."""


class LogActuator:
    def act(self, d: Decision) -> None:
        who = f" {d.person_name} (#{d.person_id})" if d.person_id else ""
        log.info("%s %s%s reason=%s distance=%s liveness=%s", d.time, d.decision.upper(),
                 who, d.reason, d.distance, d.liveness)


class CommandActuator:
    """Runs ``on_grant`` / ``on_deny`` through the shell with the decision in FACEID_*
    environment variables; a non-zero exit or a timeout is a failure."""

    def __init__(self, on_grant: str | None = None, on_deny: str | None = None,
                 timeout: float = 10.0) -> None:
        self.commands = {"grant": on_grant, "deny": on_deny}
        self.timeout = timeout

    def act(self, d: Decision) -> None:
        cmd = self.commands.get(d.decision)
        if not cmd:
            return
        env = {**os.environ, **{f"FACEID_{k.upper()}": "" if v is None else str(v)
                                for k, v in d.to_dict().items() if k != "prompts"}}
        env["FACEID_JSON"] = json.dumps(d.to_dict())
        p = subprocess.run(cmd, shell=True, env=env, timeout=self.timeout,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"command {cmd!r} exited {p.returncode}: "
                               f"{(p.stderr or p.stdout).strip()[:200]}")


class WebhookActuator:
    """POSTs the decision as JSON; any status other than 2xx is a failure."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    def act(self, d: Decision) -> None:
        r = requests.post(self.url, json=d.to_dict(), timeout=self.timeout)
        if not 200 <= r.status_code < 300:
            raise RuntimeError(f"webhook {self.url} answered {r.status_code}")
