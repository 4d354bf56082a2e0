"""The enrolment store: people, their templates, the models that made them, and the audit
trail of access events, behind a small API that keeps every change in one transaction.

Every change to a model's templates bumps that model's ``revision`` in the same transaction,
so a FAISS index (``db.index``) can tell from one integer whether it is in step.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import Sealer, load_key
from db.audit import GENESIS, ChainReport, check_row, link, record_of
from db.listing import PersonRow
from db.engine import (DEFAULT_TIMEOUT, WRITE_OPTION, create_engine, lock_for_writing, migrate,
                       require_existing, safe_url, translate_errors)
from db.schema import (CohortTemplate, DoorRecord, Event, ModelRecord, OperatingPointRecord, Person,
                       Template)
from faceid.errors import AmbiguousPerson, DuplicatePerson, UnknownPerson
from faceid.terminal import check_label

if TYPE_CHECKING:  # numpy is imported where vectors are handled: listing people needs none
    import numpy as np

BADGE_PREFIX = "badge:"  # an external id, and only that
MAX_NAME = 128  # characters in a person's name
MAX_EXTERNAL_ID = 64  # characters in an external id (badge number)


def _os_user() -> str:
    """Who runs this process, for the audit trail's ``actor``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@dataclass
class NewTemplate:
    """An encoding ready to store, with where it came from and how good the face was."""

    vector: np.ndarray
    source: str
    source_hash: str
    quality: float
    face_size: float
    sharpness: float
    face_jpeg: bytes | None = None


@dataclass
class Enrolment:
    """What one enrol call changed: the person, the templates added (id, vector), and how
    many were skipped because the same image was already enrolled for them."""

    person_id: int
    label: str
    created: bool
    added: list[tuple[int, np.ndarray]] = field(default_factory=list)
    added_sources: list[str] = field(default_factory=list)
    already: int = 0


class Store:
    """The database behind faceid. Open one per process; it is safe to share one database
    between several processes (SQLite WAL or PostgreSQL)."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 create: bool = True, actor: str | None = None,
                 key: bytes | None | bool = True) -> None:
        """Open (and migrate) the database at ``url``; with ``create=False`` a database
        that does not exist yet is an error (:class:`GalleryMissing`), not a new one.
        ``key``: the site key that seals biometric data (see ``db/crypto.py``); True
        reads it from ``FACEID_KEY`` / ``FACEID_KEY_FILE``, None stores in clear."""
        self.sealer = Sealer(load_key() if key is True else key or None)
        if not create:
            require_existing(url, timeout)
        self.actor = actor or _os_user()
        self.url = url
        self.timeout = timeout
        self.engine = create_engine(url, timeout)
        self.schema_revision = migrate(self.engine, url, timeout)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(self.engine.execution_options(**{WRITE_OPTION: True}),
                                     expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)})"

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error. A
        ``write`` transaction holds the database's write lock from its first statement, so
        what it reads to decide (is this name taken? where does the chain end?) cannot
        change under it before it commits."""
        makers = self._writers if write else self._sessions
        with translate_errors(self.url, self.timeout), makers.begin() as s:
            if write:
                lock_for_writing(s.connection())
            yield s

    # -- models -------------------------------------------------------------------------
    def model_record(self, name: str, weights_sha256: str, views: str, embedding_size: int,
                     tau: float) -> ModelRecord:
        """The row for this encoder configuration, created on first use."""
        with self.session(write=True) as s:
            rec = s.scalar(sa.select(ModelRecord).filter_by(
                name=name, weights_sha256=weights_sha256, views=views))
            if rec is None:
                rec = ModelRecord(name=name, weights_sha256=weights_sha256, views=views,
                                  embedding_size=embedding_size, tau=tau, revision=0)
                s.add(rec)
                s.flush()
            return rec

    def models_in_use(self) -> list[tuple[ModelRecord, int]]:
        """Every model that has templates, with its template count."""
        with self.session() as s:
            rows = s.execute(sa.select(ModelRecord, sa.func.count(Template.id))
                             .join(Template, Template.model_id == ModelRecord.id)
                             .group_by(ModelRecord.id)).all()
            return [(m, n) for m, n in rows]

    def people_without_model(self, model_id: int) -> tuple[int, list[str]]:
        """How many people have templates from other models but none from this one, and
        the keys of those other models."""
        with self.session() as s:
            mine = sa.select(Template.person_id).filter_by(model_id=model_id)
            rows = s.execute(sa.select(Template.person_id, ModelRecord)
                             .join(ModelRecord, Template.model_id == ModelRecord.id)
                             .where(Template.model_id != model_id)
                             .where(Template.person_id.not_in(mine))).all()
            return len({p for p, _ in rows}), sorted({m.key for _, m in rows})

    def revision(self, model_id: int) -> int:
        with self.session() as s:
            return s.scalar(sa.select(ModelRecord.revision).filter_by(id=model_id)) or 0

    @staticmethod
    def _bump(s: Session, model_ids: set[int]) -> None:
        if model_ids:
            s.execute(sa.update(ModelRecord).where(ModelRecord.id.in_(model_ids))
                      .values(revision=ModelRecord.revision + 1))

    # -- people -------------------------------------------------------------------------
    def resolve(self, ref: str | int, s: Session | None = None) -> Person:
        """A person from a reference that cannot be confused: ``#12`` is internal id 12 only,
        ``badge:1042`` is external id 1042 only, anything else is tried as an internal id,
        an external id and a name (case-insensitively), and refused as ambiguous when it
        names more than one person -- so a badge number can never reach whoever happens to
        hold the same internal id."""
        if s is None:
            with self.session() as s2:
                return self.resolve(ref, s2)
        text = f"#{ref}" if isinstance(ref, int) else ref.strip()
        if text.startswith("#"):
            p = s.get(Person, int(text[1:])) if text[1:].isdigit() else None
            if p is None:
                raise UnknownPerson(f"no enrolled person has the id {text}")
            return p
        if text.lower().startswith(BADGE_PREFIX):
            badge = text[len(BADGE_PREFIX):].strip()
            p = s.scalar(sa.select(Person).filter_by(external_id=badge))
            if p is None:
                raise UnknownPerson(f"no enrolled person has the external id {badge!r}")
            return p
        found: dict[int, tuple[str, Person]] = {}
        if text.isdigit() and (p := s.get(Person, int(text))):
            found[p.id] = (f"#{p.id}", p)
        if p := s.scalar(sa.select(Person).filter_by(external_id=text)):
            found.setdefault(p.id, (f"{BADGE_PREFIX}{text}", p))
        for p in s.scalars(sa.select(Person).where(sa.func.lower(Person.name) == text.lower())
                           .order_by(Person.id)):
            found.setdefault(p.id, (f"#{p.id}", p))
        if len(found) > 1:
            raise AmbiguousPerson(
                f"{text!r} names {len(found)} people: "
                f"{', '.join(f'{p.label} (write {form})' for form, p in found.values())}")
        if not found:
            raise UnknownPerson(f"no enrolled person matches {text!r}{self._did_you_mean(s, text)} "
                                "(give #id, badge:EXTERNAL-ID or the name)")
        return next(iter(found.values()))[1]

    @staticmethod
    def _did_you_mean(s: Session, text: str) -> str:
        names = s.scalars(sa.select(Person.name).distinct()).all()
        close = difflib.get_close_matches(text.lower(), [n.lower() for n in names], n=1)
        if not close:
            return ""
        return f"; did you mean {next(n for n in names if n.lower() == close[0])!r}?"

    def _person_for_enrol(self, s: Session, name: str, external_id: str | None,
                          new: bool) -> tuple[Person, bool]:
        """Find the person an enrolment adds to, or create them. Names may repeat only when
        every person sharing the name has a distinct external id."""
        if external_id:
            p = s.scalar(sa.select(Person).filter_by(external_id=external_id))
            if p is not None:
                if p.name != name:
                    raise DuplicatePerson(f"external id {external_id!r} already belongs to "
                                          f"{p.label}")
                return p, False
            bare = s.scalar(sa.select(Person).filter_by(name=name, external_id=None))
            if bare is not None:
                raise DuplicatePerson(
                    f"{bare.label} has the same name and no external id; give them one first "
                    f"(faceid people rename {bare.id} {name!r} --external-id ...)")
        else:
            same = s.scalars(sa.select(Person).filter_by(name=name)).all()
            if len(same) > 1:
                raise AmbiguousPerson(f"{len(same)} people are named {name!r}: "
                                      f"{', '.join(p.label for p in same)}; "
                                      "enrol with --external-id to say which")
            if same and new:
                raise DuplicatePerson(f"{same[0].label} is already enrolled; a second person "
                                      "with this name needs --external-id (a badge number)")
            if same:
                return same[0], False
        p = Person(name=name, external_id=external_id, active=True)
        s.add(p)
        s.flush()
        return p, True

    def enroll(self, name: str, templates: list[NewTemplate], model_id: int, *,
               external_id: str | None = None, new: bool = False,
               person_id: int | None = None) -> Enrolment:
        """Add a person (or add to one: ``person_id``, else found by name / external id)
        with their templates, all or nothing. An image already enrolled for this person
        (same content hash) is skipped, so reruns are idempotent."""
        import numpy as np

        with self.session(write=True) as s:
            if person_id is not None:
                person, created = self.resolve(person_id, s), False
            else:
                name = check_label("name", name, MAX_NAME)
                if external_id:
                    external_id = check_label("external id", external_id, MAX_EXTERNAL_ID)
                person, created = self._person_for_enrol(s, name, external_id, new)
            have = set(s.scalars(sa.select(Template.source_hash).filter_by(
                person_id=person.id, model_id=model_id)))
            result = Enrolment(person.id, person.label, created)
            rows = []
            for t in templates:
                if t.source_hash in have:
                    result.already += 1
                    continue
                have.add(t.source_hash)
                rows.append((Template(
                    person_id=person.id, model_id=model_id,
                    vector=self.sealer.seal(np.asarray(t.vector, np.float32).tobytes(),
                                            "vector"),
                    source=t.source, source_hash=t.source_hash, quality=t.quality,
                    face_size=t.face_size, sharpness=t.sharpness,
                    face_jpeg=self.sealer.seal(t.face_jpeg, "face_jpeg")), t.vector))
            s.add_all(r for r, _ in rows)
            s.flush()
            result.added = [(r.id, np.asarray(v, np.float32)) for r, v in rows]
            result.added_sources = [r.source for r, _ in rows]
            if rows:
                self._bump(s, {model_id})
            if rows or created:
                self.admin_event(s, "enrol" if created else "add_templates", person,
                            templates=len(rows), model_id=model_id)
            return result

    def people(self, model_id: int | None = None) -> list[PersonRow]:
        """Everyone enrolled, with template counts (of ``model_id`` only, when given)."""
        join = Template.person_id == Person.id
        if model_id is not None:
            join = sa.and_(join, Template.model_id == model_id)
        with self.session() as s:
            rows = s.execute(sa.select(Person, sa.func.count(Template.id))
                             .outerjoin(Template, join).group_by(Person.id)
                             .order_by(Person.id)).all()
            return [PersonRow(p.id, p.name, p.external_id, p.active, n, p.created_at)
                    for p, n in rows]

    def person_details(self, ref: str | int) -> dict[str, Any]:
        """One person and their templates (without the vectors), for ``people show``."""
        with self.session() as s:
            p = self.resolve(ref, s)
            return {"id": p.id, "name": p.name, "external_id": p.external_id,
                    "active": p.active, "created_at": p.created_at.isoformat(),
                    "templates": [{"id": t.id, "model": t.model.key, "source": t.source,
                                   "quality": round(t.quality, 3),
                                   "face_size": round(t.face_size, 1),
                                   "sharpness": round(t.sharpness, 1),
                                   "created_at": t.created_at.isoformat()}
                                  for t in sorted(p.templates, key=lambda t: t.id)]}

    def update_person(self, ref: str | int, *, name: str | None = None,
                      external_id: str | None = None, active: bool | None = None) -> str:
        """Rename, set the external id, or (de)activate; returns the new label."""
        if name is not None:
            name = check_label("name", name, MAX_NAME)
        if external_id:
            external_id = check_label("external id", external_id, MAX_EXTERNAL_ID)
        with self.session(write=True) as s:
            p = self.resolve(ref, s)
            before = p.label
            if external_id is not None:
                other = s.scalar(sa.select(Person).filter_by(external_id=external_id))
                if other is not None and other.id != p.id:
                    raise DuplicatePerson(f"external id {external_id!r} already belongs to "
                                          f"{other.label}")
                p.external_id = external_id or None
            if name is not None:
                p.name = name
            if external_id is not None or name is not None:
                self.admin_event(s, "rename", p, before=before, after=p.label)
            if active is not None and active != p.active:
                p.active = active
                self.admin_event(s, "enable" if active else "disable", p)
            s.flush()
            return p.label

    def remove_person(self, ref: str | int,
                      erase: bool = False) -> tuple[str, dict[int, list[int]]]:
        """Delete a person and all their templates (vectors and face crops); their events
        stay, with the name kept (and ``person_id`` nulled). With ``erase``, the face
        snapshots of their events go too, and an SQLite database is checkpointed so no
        copy of the deleted pages stays in its write-ahead log (deleted pages are zeroed:
        ``secure_delete``). Returns the label and the removed template ids per model."""
        with self.session(write=True) as s:
            p = self.resolve(ref, s)
            removed: dict[int, list[int]] = {}
            for t in p.templates:
                removed.setdefault(t.model_id, []).append(t.id)
            label = p.label
            details: dict[str, Any] = {"templates": sum(map(len, removed.values()))}
            if erase:
                details["snapshots"] = s.execute(
                    sa.update(Event).where(Event.person_id == p.id)
                    .where(Event.snapshot_jpeg.is_not(None))
                    .values(snapshot_jpeg=None)).rowcount
            self.admin_event(s, "erase" if erase else "remove", p, **details)
            s.delete(p)
            self._bump(s, set(removed))
        if erase and self.engine.dialect.name == "sqlite":
            with translate_errors(self.url, self.timeout), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return label, removed

    # -- templates ----------------------------------------------------------------------
    def template_count(self, model_id: int) -> int:
        with self.session() as s:
            return s.scalar(sa.select(sa.func.count(Template.id))
                            .filter_by(model_id=model_id)) or 0

    def template_count_other(self, model_id: int) -> int:
        """Templates made by models other than ``model_id`` (what re-embedding reads)."""
        with self.session() as s:
            return s.scalar(sa.select(sa.func.count(Template.id))
                            .where(Template.model_id != model_id)) or 0

    def gallery(self, model_id: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """(revision, template ids, person ids, vectors) of one model, read in one
        transaction so the revision describes exactly these rows."""
        import numpy as np

        with self.session() as s:
            rev = s.scalar(sa.select(ModelRecord.revision).filter_by(id=model_id)) or 0
            rows = s.execute(sa.select(Template.id, Template.person_id, Template.vector)
                             .filter_by(model_id=model_id).order_by(Template.id)).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        owners = np.array([r[1] for r in rows], dtype=np.int64)
        vecs = (np.frombuffer(b"".join(self.sealer.open(r[2], "vector") for r in rows),
                              np.float32).reshape(len(rows), -1)
                if rows else np.zeros((0, 0), np.float32))
        return rev, ids, owners, vecs

    def template_quality(self, model_id: int) -> dict[int, float]:
        """Template id -> face quality (the weight of the template in its person's score)."""
        with self.session() as s:
            return dict(s.execute(sa.select(Template.id, Template.quality)
                                  .filter_by(model_id=model_id)).all())

    # -- operating points and the impostor cohort ---------------------------------------
    def save_operating_point(self, model_id: int, **fields: Any) -> OperatingPointRecord:
        """Store a newly estimated operating point; it is in force from now on."""
        with self.session(write=True) as s:
            rec = OperatingPointRecord(model_id=model_id, **fields)
            s.add(rec)
            s.flush()
            self.admin_event(s, "thresholds", None, model_id=model_id, **{
                k: fields[k] for k in ("method", "fpir", "far", "tau_identify", "tau_verify",
                                       "people") if k in fields})
            return rec

    def operating_point(self, model_id: int) -> OperatingPointRecord | None:
        """The operating point in force for this model (the newest), or None."""
        with self.session() as s:
            return s.scalar(sa.select(OperatingPointRecord).filter_by(model_id=model_id)
                            .order_by(OperatingPointRecord.id.desc()).limit(1))

    def add_cohort(self, model_id: int, items: list[tuple[np.ndarray, str, str]]) -> int:
        """Add impostor-cohort encodings (vector, source, content hash); an image already
        in the cohort is skipped. Returns how many were added. Bumps the model's revision,
        so operating points estimated before are recomputed."""
        import numpy as np

        with self.session(write=True) as s:
            have = set(s.scalars(sa.select(CohortTemplate.source_hash)
                                 .filter_by(model_id=model_id)))
            rows = []
            for vector, source, source_hash in items:
                if source_hash not in have:
                    have.add(source_hash)
                    rows.append(CohortTemplate(
                        model_id=model_id,
                        vector=self.sealer.seal(np.asarray(vector, np.float32).tobytes(),
                                                "vector"),
                        source=source, source_hash=source_hash))
            s.add_all(rows)
            if rows:
                self._bump(s, {model_id})
                self.admin_event(s, "cohort_add", None, model_id=model_id, added=len(rows))
            return len(rows)

    def cohort_vectors(self, model_id: int) -> np.ndarray:
        import numpy as np

        with self.session() as s:
            blobs = s.scalars(sa.select(CohortTemplate.vector).filter_by(model_id=model_id)
                              .order_by(CohortTemplate.id)).all()
        return (np.stack([self._vector(b) for b in blobs]) if blobs
                else np.zeros((0, 0), np.float32))

    def _vector(self, blob: bytes) -> np.ndarray:
        import numpy as np

        return np.frombuffer(self.sealer.open(blob, "vector"), np.float32)

    def clear_cohort(self, model_id: int) -> int:
        with self.session(write=True) as s:
            n = s.execute(sa.delete(CohortTemplate).filter_by(model_id=model_id)).rowcount
            if n:
                self._bump(s, {model_id})
                self.admin_event(s, "cohort_clear", None, model_id=model_id, removed=n)
            return n or 0

    def enrolled_hashes(self, name: str, model_id: int) -> set[str]:
        """Content hashes of images already enrolled (for this model) under ``name``."""
        with self.session() as s:
            return set(s.scalars(sa.select(Template.source_hash)
                                 .join(Person, Template.person_id == Person.id)
                                 .where(Person.name == name, Template.model_id == model_id)))

    def person_vectors(self, person_id: int, model_id: int) -> np.ndarray:
        return self.person_templates(person_id, model_id)[0]

    def person_templates(self, person_id: int, model_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, face quality) of one person's templates of one model."""
        import numpy as np

        with self.session() as s:
            rows = s.execute(sa.select(Template.vector, Template.quality).filter_by(
                person_id=person_id, model_id=model_id).order_by(Template.id)).all()
        if not rows:
            return np.zeros((0, 0), np.float32), np.zeros(0)
        return (np.stack([self._vector(b) for b, _ in rows]),
                np.array([q for _, q in rows], float))

    def active_labels(self, ids: list[int]) -> dict[int, tuple[str, str | None]]:
        """Name and external id of those of ``ids`` who are active, read now (a person
        disabled a moment ago is left out of the next decision). Plain rows, not ORM
        objects: every 1:K decision asks this of its nearest candidates."""
        with self.session() as s:
            rows = s.execute(sa.select(Person.id, Person.name, Person.external_id)
                             .where(Person.id.in_(ids), Person.active.is_(True)))
            return {i: (name, ext) for i, name, ext in rows}

    def face_crops(self, model_id: int) -> Iterator[tuple[int, str, str, bytes | None]]:
        """(person id, source, source hash, face crop) of every template of a model, for
        re-embedding a gallery with another model."""
        with self.session() as s:
            rows = s.execute(sa.select(Template.person_id, Template.source,
                                       Template.source_hash, Template.face_jpeg)
                             .filter_by(model_id=model_id).order_by(Template.id)).all()
        for person_id, source, digest, jpeg in rows:
            yield person_id, source, digest, self.sealer.open(jpeg, "face_jpeg")

    # -- doors --------------------------------------------------------------------------
    def door_heartbeat(self, name: str, **fields: Any) -> None:
        """Create or rewrite door ``name``'s status row (``DoorRecord`` fields)."""
        with self.session(write=True) as s:
            row = s.get(DoorRecord, name)
            if row is None:
                row = DoorRecord(name=name)
                s.add(row)
            for key, value in fields.items():
                setattr(row, key, value)

    def doors(self) -> list[DoorRecord]:
        with self.session() as s:
            return list(s.scalars(sa.select(DoorRecord).order_by(DoorRecord.name)))

    # -- events -------------------------------------------------------------------------
    def add_event(self, **fields: Any) -> int:
        """Record one decision; returns its id. Committed before returning, so a crash
        right after a grant still leaves its audit row."""
        return self.add_events([fields])[0]

    def add_events(self, rows: list[dict[str, Any]]) -> list[int]:
        """Record the decisions of one photo (its faces) in one transaction: one wait for
        the write lock, one commit; all of them or none."""
        with self.session(write=True) as s:
            return [self._append(s, **fields).id for fields in rows]

    def record_admin(self, action: str, ref: str | int | None = None, **details: Any) -> int:
        """An admin action that changes no person row (a threshold, a cohort, a re-embed)."""
        with self.session(write=True) as s:
            person = self.resolve(ref, s) if ref is not None else None
            return self.admin_event(s, action, person, **details).id

    def admin_event(self, s: Session, action: str, person: Person | None, **details: Any) -> Event:
        """The audit row of an admin action, in the same transaction as the action itself:
        no enrolment or removal without its trace. Never holds biometric data."""
        return self._append(s, kind="admin", source="admin", decision=action, reason=action,
                            person_id=person.id if person is not None else None,
                            person_name=person.name if person is not None else None,
                            details=json.dumps(details, sort_keys=True) if details else None)

    def _append(self, s: Session, **fields: Any) -> Event:
        """Insert one event at the end of the hash chain. ``s`` is a write session (it
        holds the write lock), so concurrent writers (several doors, a CLI) append one
        after another and never fork the chain."""
        fields.setdefault("actor", self.actor)
        fields.setdefault("time", datetime.now(timezone.utc))
        for key in ("distance", "margin", "liveness", "tau"):
            if fields.get(key) is not None:
                fields[key] = float(fields[key])  # numpy scalars: one JSON spelling
        jpeg = fields.get("snapshot_jpeg")
        fields["snapshot_sha256"] = hashlib.sha256(jpeg).hexdigest() if jpeg else None
        fields["snapshot_jpeg"] = self.sealer.seal(jpeg, "snapshot_jpeg")
        e = Event(kind=fields.pop("kind", "decision"), **fields)
        s.add(e)
        s.flush()
        prev = s.scalar(sa.select(Event.hash).where(Event.id < e.id)
                        .order_by(Event.id.desc()).limit(1)) or GENESIS
        e.record = record_of(e)
        e.prev_hash = prev
        e.hash = link(prev, e.record)
        s.flush()
        return e

    def set_actuation(self, event_id: int, outcome: str) -> None:
        """The relay's outcome for a grant, on the grant's own row."""
        with self.session(write=True) as s:
            s.execute(sa.update(Event).where(Event.id == event_id).values(actuation=outcome))

    def set_delivery(self, event_id: int, notifier: str, status: dict[str, Any]) -> None:
        """One notifier's latest delivery status, merged into the event's ``delivery``."""
        with self.session(write=True) as s:
            e = s.get(Event, event_id)
            if e is None:
                return
            delivery = json.loads(e.delivery) if e.delivery else {}
            delivery[notifier] = status
            e.delivery = json.dumps(delivery, sort_keys=True)

    def chain_holds(self, head_hash: str) -> bool:
        """Whether a head recorded earlier is still a row of the trail (the chain verified
        from the start up to now implies it is intact up to that row)."""
        with self.session() as s:
            return s.scalar(sa.select(sa.func.count(Event.id))
                            .where(Event.hash == head_hash)) == 1

    def verify_chain(self, batch: int = 5000) -> ChainReport:
        """Walk the audit trail in id order and report the first row that breaks it."""
        prev, rows, head_id = GENESIS, 0, None
        last = 0
        with self.session() as s:
            while True:
                page = s.scalars(sa.select(Event).where(Event.id > last)
                                 .order_by(Event.id).limit(batch)).all()
                if not page:
                    return ChainReport(rows, head_id, prev)
                for e in page:
                    problem = check_row(e, prev, lambda b: self.sealer.open(b, "snapshot_jpeg"))
                    if problem is not None:
                        return ChainReport(rows, head_id, prev, e.id, problem)
                    prev, head_id, rows = e.hash, e.id, rows + 1
                last = page[-1].id
                s.expunge_all()

    def prune_snapshots(self, before: datetime) -> int:
        """Drop face snapshots of events older than ``before`` (the rows stay)."""
        with self.session(write=True) as s:
            r = s.execute(sa.update(Event).where(Event.time < before)
                          .where(Event.snapshot_jpeg.is_not(None)).values(snapshot_jpeg=None))
            return r.rowcount or 0

    def events(self, since: datetime | None = None, person: str | None = None,
               limit: int = 100, kind: str | None = None, *, door: str | None = None,
               decision: str | None = None, before: int | None = None) -> list[Event]:
        """Newest first; ``kind`` "decision" or "admin", ``door`` and ``decision`` ("grant",
        "deny", ...) keep only those; ``before`` (an event id) gives the page after one
        that ended with that event."""
        with self.session() as s:
            q = sa.select(Event).order_by(Event.time.desc(), Event.id.desc()).limit(limit)
            for column, value in ((Event.kind, kind), (Event.door, door),
                                  (Event.decision, decision)):
                if value is not None:
                    q = q.where(column == value)
            if since is not None:
                q = q.where(Event.time >= since)
            if before is not None:
                q = q.where(Event.id < before)
            if person is not None:
                q = q.where(Event.person_id == self.resolve(person, s).id)
            return list(s.scalars(q))

    def event_snapshot(self, event_id: int) -> bytes | None:
        """The face snapshot recorded with an event (JPEG), or None (none kept, pruned,
        erased, or no such event)."""
        with self.session() as s:
            blob = s.scalar(sa.select(Event.snapshot_jpeg).where(Event.id == event_id))
        return self.sealer.open(blob, "snapshot_jpeg") if blob else None

    def template_face(self, template_id: int) -> bytes | None:
        """The face crop a template was encoded from (JPEG), or None."""
        with self.session() as s:
            blob = s.scalar(sa.select(Template.face_jpeg).where(Template.id == template_id))
        return self.sealer.open(blob, "face_jpeg") if blob else None
