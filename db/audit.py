"""The audit trail's hash chain: every event row stores a canonical JSON ``record`` of what
it says, the hash of the row before it (``prev_hash``) and its own hash over both, so an
edited, inserted or deleted row breaks the chain at that point and ``faceid audit verify``
names the first broken link.

What the chain covers, and what it does not:
* Covered: everything a decision or an admin action says (time, door, actor, kind, who,
  distances, reason, details) and the SHA-256 of the face snapshot, so pruning snapshots
  (retention) keeps the chain valid while a swapped snapshot does not.
* Allowed to change: ``person_id`` may become NULL (the person was removed or erased; the
  record keeps the id and name); ``actuation`` and ``delivery`` are outcome fields written
  after the decision (the relay's result, the notifiers' delivery status) and are not
  chained.
* Not detectable from the table alone: cutting rows off the end. ``audit verify`` prints
  the head (last id and hash); a site that keeps the head elsewhere (a log, a ticket) can
  pass it back with ``--expect-head`` to detect truncation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GENESIS = "0" * 64
CHAINED = ("id", "time", "kind", "door", "actor", "source", "decision", "reason",
           "person_id", "person_name", "distance", "margin", "liveness", "model", "tau",
           "details", "snapshot_sha256")


def utc_text(t: datetime) -> str:
    """One spelling of an instant whatever the database hands back (SQLite drops the zone;
    PostgreSQL returns it in the session's zone)."""
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t.isoformat(timespec="microseconds")


def record_of(row: Any, **override: Any) -> str:
    """The canonical JSON of a row's chained fields."""
    data = {k: override.get(k, getattr(row, k)) for k in CHAINED}
    data["time"] = utc_text(data["time"])
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def link(prev_hash: str, record: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{record}".encode()).hexdigest()


@dataclass
class ChainReport:
    """What ``audit verify`` found: rows checked, the head, and the first broken link."""

    rows: int
    head_id: int | None
    head_hash: str
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head_id": self.head_id,
                "head_hash": self.head_hash, "broken_at": self.broken_at,
                "problem": self.problem}


def check_row(row: Any, prev_hash: str,
              snapshot: Callable[[bytes], bytes] = lambda b: b) -> str | None:
    """Why ``row`` breaks the chain after ``prev_hash``, or None when it holds.
    ``snapshot`` opens a sealed snapshot (see ``db/crypto.py``) before it is hashed."""
    if row.record is None or row.hash is None:
        return "row has no chain record (inserted around the trail)"
    if row.prev_hash != prev_hash:
        return "the row before it was changed, inserted or deleted"
    if row.hash != link(prev_hash, row.record):
        return "record and hash disagree"
    stored = json.loads(row.record)
    allowed = {"person_id": stored["person_id"]} if row.person_id is None else {}
    if record_of(row, **allowed) != row.record:
        return "the row's fields differ from its chained record"
    if row.snapshot_jpeg is not None and (
            hashlib.sha256(snapshot(row.snapshot_jpeg)).hexdigest() != row.snapshot_sha256):
        return "the snapshot differs from the one recorded"
    return None
