"""The one place a decision becomes an audit event. The command line, the Python API
(:mod:`faceid.decisions`) and the door (:mod:`faceid.door.turnstile`) all record through
:func:`record_decision`, so an event has the same fields whoever decided it, and the store
(``db.store.Store.add_event``) chains and commits it before the caller acts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceid.gallery import Gallery


def record_decision(gallery: Gallery, **decision: Any) -> int:
    """Write one decision event (``decision``: match / no_match / unknown / grant / deny /
    not_live / low_quality / error; the fields of :func:`event_fields`) and return its id;
    committed when this returns."""
    return record_decisions(gallery, [decision])[0]


def record_decisions(gallery: Gallery, decisions: list[dict[str, Any]]) -> list[int]:
    """Write the decisions of one photo (each the keywords of :func:`event_fields`) in one
    transaction; their ids, committed when this returns."""
    return gallery.store.add_events([event_fields(gallery, **d) for d in decisions])


def event_fields(gallery: Gallery, *, source: str, decision: str, reason: str,
                 tau: float | None, person_id: int | None = None,
                 person_name: str | None = None, distance: float | None = None,
                 margin: float | None = None, liveness: float | None = None,
                 door: str | None = None, model: str | None = None,
                 details: dict[str, Any] | None = None, snapshot: bytes | None = None,
                 time: datetime | None = None) -> dict[str, Any]:
    """The event row of one decision, the same whoever decided it."""
    fields: dict[str, Any] = {
        "source": source, "decision": decision, "reason": reason, "person_id": person_id,
        "person_name": person_name, "distance": distance, "margin": margin,
        "model": model or gallery.model.key, "tau": tau,
        "details": json.dumps(details, default=str) if details else None}
    optional = {"liveness": liveness, "door": door, "snapshot_jpeg": snapshot, "time": time}
    fields.update({k: v for k, v in optional.items() if v is not None})
    return fields
