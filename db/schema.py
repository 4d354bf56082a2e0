"""The database schema (SQLAlchemy 2 ORM). The database is the source of truth for who is
enrolled; the FAISS index beside it is a cache (see :mod:`db.index`).

Changing a table here means a new Alembic revision in ``db/migrations/versions``: the schema is
never created with ``create_all`` outside tests of the migration itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import (Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

if TYPE_CHECKING:
    import numpy as np


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Person(Base):
    """Someone who may be let through. ``id`` never changes and is never reused (SQLite
    AUTOINCREMENT, PostgreSQL identity). Display names may repeat only between people who
    each carry a distinct ``external_id`` (a badge number, say)."""

    __tablename__ = "people"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
    templates: Mapped[list[Template]] = relationship(back_populates="person",
                                                     cascade="all, delete-orphan",
                                                     passive_deletes=True)

    @property
    def label(self) -> str:
        """How people are named in messages: ``Name (#id, badge)``."""
        extra = f", {self.external_id}" if self.external_id else ""
        return f"{self.name} (#{self.id}{extra})"


class ModelRecord(Base):
    """An encoder configuration that made templates: model name + weights hash + view
    preset. Templates of different records are never compared with each other."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "weights_sha256", "views"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    views: Mapped[str] = mapped_column(String(50))
    embedding_size: Mapped[int] = mapped_column(Integer)
    tau: Mapped[float] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def key(self) -> str:
        """File-name-safe identity, used to name the FAISS index of this model's gallery."""
        return f"{self.name}-{self.views}-{self.weights_sha256[:12]}"


class Template(Base):
    """One precomputed encoding of one enrolment image. ``face_jpeg`` keeps a loose crop of
    the face so a gallery can be re-embedded for a new model without the original photos."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("person_id", "model_id", "source_hash"),
                      Index("ix_templates_model", "model_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    quality: Mapped[float] = mapped_column(Float)
    face_size: Mapped[float] = mapped_column(Float)
    sharpness: Mapped[float] = mapped_column(Float)
    face_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    person: Mapped[Person] = relationship(back_populates="templates")
    model: Mapped[ModelRecord] = relationship()

    @property
    def embedding(self) -> np.ndarray:
        import numpy as np  # only where vectors are read: listing people needs none

        return np.frombuffer(self.vector, dtype=np.float32)


class Event(Base):
    """One row of the audit trail: an access decision (``kind`` "decision": the door, or a
    CLI verify/identify) or an admin action (``kind`` "admin": enrol, rename, remove...,
    with ``decision`` naming the action). Rows outlive the people they name (``person_id``
    is nulled, ``person_name`` keeps the name) and are hash-chained (:mod:`db.audit`)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                           index=True)
    source: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True)
    person_name: Mapped[str | None] = mapped_column(String(200))
    distance: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    liveness: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(300))
    tau: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(50))
    details: Mapped[str | None] = mapped_column(Text)
    snapshot_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary)
    kind: Mapped[str] = mapped_column(String(20), default="decision")
    door: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str | None] = mapped_column(String(200))
    actuation: Mapped[str | None] = mapped_column(Text)  # the relay's outcome (not chained)
    delivery: Mapped[str | None] = mapped_column(Text)  # notifiers' outcomes, JSON (not chained)
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    record: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    SHOWN = ("id", "time", "kind", "door", "actor", "source", "decision", "reason", "person_id",
             "person_name", "distance", "margin", "liveness", "model", "tau", "actuation")

    def to_dict(self) -> dict[str, object]:
        """What ``faceid events`` and the API show of a row: no details (they may name the
        nearest candidate of an unknown face), no snapshot."""
        return {**{k: getattr(self, k) for k in self.SHOWN},
                "delivery": json.loads(self.delivery) if self.delivery else None}


class OperatingPointRecord(Base):
    """The thresholds one model's gallery decided with from ``created_at`` on, and what they
    were estimated from (``faceid.operating_point``). Rows are kept as history; the newest
    one per model is in force."""

    __tablename__ = "operating_points"
    __table_args__ = (Index("ix_operating_points_model", "model_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    gallery_revision: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(50))
    fpir: Mapped[float] = mapped_column(Float)
    far: Mapped[float] = mapped_column(Float)
    tau_identify: Mapped[float] = mapped_column(Float)
    tau_verify: Mapped[float] = mapped_column(Float)
    people: Mapped[int] = mapped_column(Integer)
    templates: Mapped[int] = mapped_column(Integer)
    cohort: Mapped[int] = mapped_column(Integer)
    pairs: Mapped[int] = mapped_column(Integer)
    thin: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[str | None] = mapped_column(Text)


class CohortTemplate(Base):
    """An encoding of someone who is *not* enrolled (a site's impostor cohort): used only to
    estimate how close strangers come to the gallery, never matched."""

    __tablename__ = "cohort"
    __table_args__ = (UniqueConstraint("model_id", "source_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """A key for ``faceid serve``. The key itself is shown once, when made; the database
    keeps its first characters (to find the row) and the SHA-256 of the whole (keys are
    256-bit random tokens, so a fast hash is enough: there is nothing to guess)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # "read" | "admin"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DoorRecord(Base):
    """A door's last heartbeat (``faceid watch`` writes it every few seconds): what the
    server shows of each door of a site. Status only, not audit: rewritten in place."""

    __tablename__ = "doors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    running: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(20))  # "ok" | "degraded"
    frames: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    last_decision: Mapped[str | None] = mapped_column(String(50))
    last_decision_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    liveness: Mapped[str | None] = mapped_column(String(40))  # parts in force, "passive+motion"
    last_liveness: Mapped[float | None] = mapped_column(Float)  # the last decision's score

    def to_dict(self) -> dict[str, object]:
        return {c: getattr(self, c) for c in (
            "name", "host", "started_at", "last_seen", "running", "state", "frames", "fps",
            "last_decision", "last_decision_at", "liveness", "last_liveness")}
