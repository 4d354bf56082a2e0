"""Listing people and events straight from an SQLite file with the standard library's
``sqlite3``, for the two commands people run to look (``faceid people list``, ``faceid
events``): SQLAlchemy alone costs about 0.3 s of CPU to import, more than the rest of such a
command, and issue 14 asks for these under 0.5 s.

Only a gallery this code fully understands is read this way: an existing SQLite file at
:data:`db.SCHEMA_HEAD`. Anything else (PostgreSQL, a missing file, an older or newer schema,
a ``--person`` filter, which needs the store's name resolution) goes through
:class:`db.store.Store`, which migrates, refuses or explains; the rows are the same (a test
holds the two paths equal on a real database). Nothing here writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from db import SCHEMA_HEAD

# what ``faceid events`` and the API show of an event (db.schema.Event.SHOWN, plus delivery)
EVENT_FIELDS = ("id", "time", "kind", "door", "actor", "source", "decision", "reason",
                "person_id", "person_name", "distance", "margin", "liveness", "model", "tau",
                "actuation")


@dataclass
class PersonRow:
    id: int
    name: str
    external_id: str | None
    active: bool
    templates: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "external_id": self.external_id,
                "active": self.active, "templates": self.templates,
                "created_at": self.created_at.isoformat()}


def sqlite_file(home: Path, db: str | None) -> Path | None:
    """The SQLite file ``--home`` / ``--db`` / ``FACEID_DB`` name, when they name one that
    exists (the rules of :func:`db.engine.resolve_url`); None for anything else."""
    db = db or os.environ.get("FACEID_DB")
    if not db:
        path = home / "faceid.db"
    elif "://" not in db:
        path = Path(db).expanduser()
    elif db.startswith("sqlite:///") and "?" not in db:
        path = Path(db[len("sqlite:///"):])
    else:
        return None
    return path if path.is_file() else None


def open_current(path: Path, timeout: float) -> sqlite3.Connection | None:
    """A connection to ``path`` when its schema is :data:`SCHEMA_HEAD`, else None."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    try:
        found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                             "name = 'alembic_version'").fetchone()
        if found and conn.execute("SELECT version_num FROM alembic_version").fetchone() == \
                (SCHEMA_HEAD,):
            return conn
    except sqlite3.Error:
        pass  # locked, damaged, not a database: the store says which, in its words
    conn.close()
    return None


def people(conn: sqlite3.Connection) -> list[PersonRow]:
    """Everyone enrolled with their template counts (all models), by id:
    :meth:`db.store.Store.people` without a model."""
    with closing(conn.execute(
            "SELECT p.id, p.name, p.external_id, p.active, COUNT(t.id), p.created_at "
            "FROM people p LEFT JOIN templates t ON t.person_id = p.id "
            "GROUP BY p.id ORDER BY p.id")) as rows:
        return [PersonRow(i, name, ext, bool(active), n, _time(created))
                for i, name, ext, active, n, created in rows]


def events(conn: sqlite3.Connection, since: datetime | None = None, limit: int = 100,
           kind: str | None = None) -> list[dict[str, Any]]:
    """Newest first, as :meth:`db.schema.Event.to_dict` shows them:
    :meth:`db.store.Store.events` without a person filter."""
    where, params = [], {"limit": limit}
    if kind is not None:
        where.append("kind = :kind")
        params["kind"] = kind
    if since is not None:
        where.append("time >= :since")
        params["since"] = _stored(since)
    sql = (f"SELECT {', '.join(EVENT_FIELDS)}, delivery FROM events "
           + (f"WHERE {' AND '.join(where)} " if where else "")
           + "ORDER BY time DESC, id DESC LIMIT :limit")
    out = []
    with closing(conn.execute(sql, params)) as rows:
        for row in rows:
            d = dict(zip(EVENT_FIELDS, row[:-1]))
            d["time"] = _time(d["time"])
            d["delivery"] = json.loads(row[-1]) if row[-1] else None
            out.append(d)
    return out


def _time(text: str) -> datetime:
    """A time as SQLAlchemy stores it in SQLite ("2026-12-06 10:57:38.123456", UTC) and
    hands it back: naive."""
    return datetime.fromisoformat(text)


def _stored(when: datetime) -> str:
    """``when`` as SQLAlchemy writes a time into SQLite, so string comparison orders it."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")
