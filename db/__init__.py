"""Persistence: the SQLAlchemy schema and store (``db.store``), the engine and its Alembic
migrations (``db.engine``), the FAISS index beside it (``db.index``), API keys, the audit
chain, encryption at rest, and a standard-library read path for listings (``db.listing``).

Depends on nothing in faceid but its base modules (errors, config): tests/test_layout.py."""

from __future__ import annotations

import os
from pathlib import Path

from faceid.config import env_float

DEFAULT_TIMEOUT = 10.0  # seconds a writer waits for another process's lock
SCHEMA_HEAD = "0006"  # the newest revision in db/migrations/versions (a test holds them equal)


def default_home() -> Path:
    """The data directory: ``FACEID_HOME``, else ``$XDG_DATA_HOME/faceid``."""
    if os.environ.get("FACEID_HOME"):
        return Path(os.environ["FACEID_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(xdg) / "faceid"


def timeout_from_env() -> float:
    """Seconds to wait for another process's lock: ``FACEID_DB_TIMEOUT`` (0 to a day)."""
    return env_float("FACEID_DB_TIMEOUT", DEFAULT_TIMEOUT, low=0.0, high=86400.0)
