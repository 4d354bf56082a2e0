"""Opening the database: URL resolution (``--db`` / ``FACEID_DB``, else an SQLite file in
the data directory), SQLite in WAL mode with a busy timeout, Alembic migrations applied on
open, and refusal of a schema newer than this code knows.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db import DEFAULT_TIMEOUT, SCHEMA_HEAD
from faceid.errors import DatabaseLocked, GalleryMissing, SchemaTooNew, StoreError, UsageError

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_OPTION = "faceid_write"  # execution option: this transaction decides and writes
WRITE_LOCK = 0x46494457  # PostgreSQL advisory lock key serialising faceid's writers


def resolve_url(home: Path, db: str | None = None) -> str:
    """The SQLAlchemy URL to use: ``db`` (a URL or a file path), ``FACEID_DB``, or
    ``<home>/faceid.db``. ``postgresql://`` URLs get the psycopg 3 driver."""
    db = db or os.environ.get("FACEID_DB")
    if not db:
        return f"sqlite:///{home / 'faceid.db'}"
    if "://" not in db:
        return f"sqlite:///{Path(db).expanduser().resolve()}"
    if db.startswith(("postgresql://", "postgres://")):
        db = "postgresql+psycopg://" + db.split("://", 1)[1]
    scheme = db.split("://", 1)[0]
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        raise UsageError(f"--db / FACEID_DB {scheme}://...: faceid stores in SQLite (a file "
                         "path or sqlite:///FILE) or PostgreSQL (postgresql://...)")
    try:
        sa.engine.make_url(db)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(f"--db / FACEID_DB {scheme}://...: not a valid database URL") from None
    return db


def create_engine(url: str, timeout: float) -> Engine:
    """An engine whose connections wait up to ``timeout`` s for locks held by others."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # biometric data: a new database file (and so its -wal / -shm files, which
            # SQLite creates with the same mode) is readable by its owner only. An existing
            # file is never opened here: closing any descriptor of a database file drops
            # every POSIX lock this process holds on it, behind SQLite's back, which lets
            # another process corrupt it (sqlite.org/howtocorrupt.html, 2.2); bench.kills
            # found a malformed database that way
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                pass
        engine = sa.create_engine(url, connect_args={"timeout": timeout})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            # faceid issues BEGIN itself (below): the sqlite3 module's own transaction
            # handling leaves DDL outside any transaction, so a kill during the first
            # open left half a schema that no later open could repair
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            _set_wal(cur, timeout)
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA secure_delete = ON")  # deleted templates are overwritten
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # a writer takes the write lock at BEGIN, before it reads what it decides on
            # (does this name exist? which revision?), so two processes cannot both decide
            # on the same state; readers stay deferred and never wait on a writer (WAL)
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        ms = int(timeout * 1000)
        return sa.create_engine(url, pool_pre_ping=True, connect_args={
            "connect_timeout": max(1, int(timeout)),
            "options": f"-c lock_timeout={ms}"})
    return sa.create_engine(url)


def _set_wal(cur: sqlite3.Cursor, timeout: float) -> None:
    """Switch to WAL, waiting for other processes: the switch needs an exclusive lock,
    and SQLite answers "locked" at once instead of calling the busy handler (one open in
    300 failed when three processes opened a new home together)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def require_existing(url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Refuse to open a gallery that was never created (a mistyped ``--home`` or ``--db``)
    for commands that only read one; enrolment creates it instead."""
    hint = "enrol someone first (faceid enroll) or check --home / --db / FACEID_HOME"
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            if not Path(path).is_file():
                raise GalleryMissing(f"no gallery at {path}: {hint}")
            if Path(path).stat().st_size == 0:
                raise GalleryMissing(f"{path} is an empty file (0 bytes), not a gallery: "
                                     "restore it from a backup, or remove it and enrol")
        return
    engine = create_engine(url, timeout)
    try:
        with translate_errors(url, timeout), engine.connect() as conn:
            if recorded_revision(conn) is None:
                raise GalleryMissing(f"no gallery in {safe_url(url)}: {hint}")
    finally:
        engine.dispose()




def recorded_revision(conn: sa.Connection) -> str | None:
    """The schema revision alembic recorded in the database (None: no schema yet), read
    with plain SQL so that opening an up-to-date gallery never imports alembic (0.2 s of
    every command's start)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(connection: sa.Connection):  # noqa: ANN201 - alembic.config.Config
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def writing(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction that holds the database's write lock from its start (SQLite: BEGIN
    IMMEDIATE; PostgreSQL: an advisory lock) until it commits or rolls back."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        lock_for_writing(conn)
        yield conn


def lock_for_writing(conn: sa.Connection) -> None:
    """PostgreSQL: take faceid's writer lock for the rest of this transaction (SQLite took
    its lock at BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})


def migrate(engine: Engine, url: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Bring the schema to this code's head revision; refuse a revision we do not know (a
    newer faceid wrote it). Returns the revision now in the database.

    A database already at :data:`SCHEMA_HEAD` is only read. Anything else is one
    transaction under the write lock: processes that open a new home at once create the
    schema one after another (the later ones find it made), and a process killed half-way
    leaves no half-made schema behind."""
    with translate_errors(url, timeout), engine.connect() as conn:
        if recorded_revision(conn) == SCHEMA_HEAD:
            return SCHEMA_HEAD
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    with translate_errors(url, timeout), writing(engine) as conn:
        cfg = alembic_config(conn)
        script = ScriptDirectory.from_config(cfg)
        current = recorded_revision(conn)
        head = script.get_current_head()
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError:
                raise SchemaTooNew(
                    f"{safe_url(url)}: database schema {current!r} is newer than this faceid "
                    f"knows (head {head!r}); upgrade faceid to use it") from None
        if current != head:
            command.upgrade(cfg, "head")
        return head or ""


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@contextmanager
def translate_errors(url: str, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Turn driver failures into one-line faceid errors (locked, unreachable, corrupt)."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if "locked" in text or "lock timeout" in text:
            raise DatabaseLocked(f"{safe_url(url)}: database is locked by another process "
                                 f"(waited {timeout:g} s; FACEID_DB_TIMEOUT "
                                 "sets the wait)") from None
        raise StoreError(f"{safe_url(url)}: {text.strip().splitlines()[0]}") from None
    except sa.exc.DatabaseError as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        raise StoreError(f"{safe_url(url)}: {text.strip().splitlines()[0]}") from None
