"""The gallery: the enrolment store and its FAISS index for the loaded model, and the two
questions asked of it, 1:1 (is this the person they claim to be?) and 1:K (who is this?).

This is the object the camera loop holds. The CLI's enrol / verify / identify commands are
thin wrappers around it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from db.index import GalleryIndex
from db.schema import ModelRecord
from db.engine import safe_url
from db.store import Enrolment, NewTemplate, Store
from faceid import operating_point as opt
from faceid.config import env_float
from faceid.errors import DatabaseReset, ModelError, ModelMismatch, StoreError
from faceid.modelfile import weights_path
from faceid.pipeline import FaceID

log = logging.getLogger("faceid.gallery")

def default_margin() -> float:
    """The lead the best person needs over the runner-up (``FACEID_MARGIN``, 0.02)."""
    return env_float("FACEID_MARGIN", 0.02, low=0.0, high=1.0)
RECALIBRATE_SHARE = 0.05  # re-estimate the operating point when people change by 5%
PERSON_SCAN = 50_000  # up to this many people every fused template is scored (exact)


@dataclass
class Candidate:
    """One enrolled person as a 1:K answer: the distance to their fused template (all their
    templates averaged, weighted by face quality)."""

    person_id: int
    name: str
    external_id: str | None
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "distance": round(self.distance, 6)}


@dataclass
class Identification:
    """1:K outcome. ``person`` is set only for a match: the best candidate is within tau
    and ahead of the runner-up (a different person) by at least ``margin``."""

    decision: str  # "match" | "unknown"
    reason: str  # "match" | "above_tau" | "ambiguous" | "empty_gallery"
    tau: float
    margin_required: float
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def person(self) -> Candidate | None:
        return self.candidates[0] if self.decision == "match" else None

    @property
    def margin(self) -> float | None:
        """Runner-up distance minus best distance (None with fewer than two people)."""
        if len(self.candidates) < 2:
            return None
        return self.candidates[1].distance - self.candidates[0].distance

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "tau": self.tau,
                "margin": None if self.margin is None else round(self.margin, 6),
                "margin_required": self.margin_required,
                "person": self.person.to_dict() if self.person else None,
                "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class Verification:
    """1:1 outcome against a claimed person: distance to their closest template."""

    person_id: int
    name: str
    label: str
    distance: float
    tau: float
    same: bool
    probability: float
    reason: str  # "match" | "above_tau" | "inactive"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["distance"] = round(self.distance, 6)
        d["probability"] = round(self.probability, 6)
        return d


def model_identity(fid: FaceID) -> tuple[str, str, str, int, float]:
    """(name, weights sha256, views, embedding size, tau): what makes templates
    comparable. The weights hash is the recorded one, falling back to hashing the file. The
    views entry also names the landmark source ("-refined"): refined landmarks move the chip,
    so templates made before the refinement belong to another configuration (``faceid
    reembed`` brings them over)."""
    info = fid.info
    sha = info.weights.get("sha256")
    if not sha:
        sha = hashlib.sha256(weights_path(info).read_bytes()).hexdigest()
    if fid.detector.refine:  # O-Net's points, whichever detector found the box
        views = f"{fid.views_name}-refined"
    else:  # the detector's own points
        views = fid.views_name if fid.detector.name == "mtcnn" else f"{fid.views_name}-{fid.detector.name}"
    return info.name, sha, views, info.embedding_size, fid.tau


class Gallery:
    """Store + index for the model ``fid`` runs. Opening checks the index against the
    database and rebuilds it when out of step; ``messages`` says what was done."""

    def __init__(self, store: Store, fid: FaceID, index_dir: Path, *,
                 ann_threshold: int | None = None, margin: float | None = None,
                 tau: float | None = None, fpir: float | None = None,
                 far: float | None = None) -> None:
        self.store = store
        self.fid = fid
        self.margin = default_margin() if margin is None else margin
        self._tau = None if tau is None else opt.validate_tau(tau)
        self._fpir = None if fpir is None else opt.validate_rate("FPIR", fpir)
        self._far = None if far is None else opt.validate_rate("FAR", far)
        self.model: ModelRecord = store.model_record(*model_identity(fid))
        self.index = GalleryIndex(index_dir, self.model.key, self.model.embedding_size,
                                  ann_threshold=ann_threshold, sealer=store.sealer)
        self.messages: list[str] = []
        self.dirty = False
        self._point: opt.OperatingPoint | None = None
        self._fused: tuple[np.ndarray, np.ndarray] | None = None
        self.sync()

    # -- thresholds -----------------------------------------------------------------------
    @property
    def tau_override(self) -> float | None:
        """The site's fixed ``--tau``, when one replaces the operating point."""
        return self._tau

    @property
    def tau(self) -> float:
        """The 1:K threshold: the site's ``--tau`` if given, else the operating point's tau
        for the target FPIR at this gallery's size (see :mod:`faceid.operating_point`)."""
        return self._tau if self._tau is not None else self.operating_point().tau_identify

    @property
    def tau_verify(self) -> float:
        """The 1:1 threshold (a claimed identity): ``--tau``, else the operating point's tau
        for the target FAR."""
        return self._tau if self._tau is not None else self.operating_point().tau_verify

    def reference(self) -> opt.ReferenceImpostors:
        """The model preset's impostor fit from its calibration pairs: the strict fallback
        for galleries too small to measure."""
        cal = self.fid.views.calibration
        if "impostor_mean" not in cal:
            raise ModelError(
                f"model {self.fid.info.name} ({self.fid.views_name}) has no impostor fit to "
                "set thresholds from; run `faceid calibrate PAIRS --write MODEL.json`")
        return opt.ReferenceImpostors(cal["impostor_mean"], cal["impostor_sd"],
                                      cal["impostor_pairs"], cal.get("data", ""))

    @property
    def point_known(self) -> bool:
        """Whether :meth:`operating_point` would answer without reading or estimating."""
        return self._point is not None

    def operating_point(self) -> opt.OperatingPoint:
        """The operating point in force: the stored one while it still describes this
        gallery (same method and targets, people within 5%), else a new estimate, stored
        (or, with ``--fpir``/``--far`` overrides, used for this process only)."""
        if self._point is not None:
            return self._point
        stored = self.store.operating_point(self.model.id)
        fpir = self._fpir or (stored.fpir if stored else opt.DEFAULT_FPIR)
        far = self._far or (stored.far if stored else opt.DEFAULT_FAR)
        people = len(self.fused()[0])
        if stored is not None and self._current(stored, fpir, far, people):
            self._point = _from_record(stored)
            return self._point
        if self._fpir is None and self._far is None:
            try:
                return self.recalibrate(fpir, far)
            except StoreError as exc:  # decide with it now; stored when the database is back
                log.warning("operating point estimated but not stored: %s", exc)
        self._point = self.estimate_operating_point(fpir, far)
        return self._point

    def recalibrate(self, fpir: float = opt.DEFAULT_FPIR,
                    far: float = opt.DEFAULT_FAR) -> opt.OperatingPoint:
        """Estimate the operating point for these targets and store it: in force from now
        on, for every process that shares this database."""
        point = self.estimate_operating_point(fpir, far)
        self.store.save_operating_point(
            self.model.id, gallery_revision=self.index.revision, method=point.method,
            fpir=point.fpir, far=point.far, tau_identify=point.tau_identify,
            tau_verify=point.tau_verify, people=point.people, templates=point.templates,
            cohort=point.cohort, pairs=point.pairs, thin=point.thin,
            details=json.dumps({"mean": point.mean, "sd": point.sd, "notes": point.notes}))
        self._point = point
        return point

    def _current(self, stored: Any, fpir: float, far: float, people: int) -> bool:
        if stored.method != opt.METHOD or stored.fpir != fpir or stored.far != far:
            return False
        if stored.gallery_revision == self.index.revision:
            return True
        if stored.thin != (people < opt.MIN_PEOPLE):
            return False
        return abs(people - stored.people) <= RECALIBRATE_SHARE * max(stored.people, 1)

    def estimate_operating_point(self, fpir: float, far: float) -> opt.OperatingPoint:
        """Estimate thresholds from this gallery's templates and the stored cohort."""
        _, ids, owners, vectors = self.store.gallery(self.model.id)
        cohort = self.store.cohort_vectors(self.model.id)
        return opt.estimate(vectors, owners, quality=self._quality(ids),
                            cohort=cohort if len(cohort) else None, fpir=fpir, far=far,
                            reference=self.reference(), revision=self.index.revision)

    def _quality(self, ids: np.ndarray) -> np.ndarray:
        quality = self.store.template_quality(self.model.id)
        return np.array([quality.get(int(i), 1.0) for i in ids])

    # -- keeping the index in step ----------------------------------------------------------
    def sync(self) -> None:
        """Make the index reflect the database: load the file if it matches, else rebuild.
        The people's fused templates are always recomputed from the database (the source
        of truth), so a forged index file can at most change who is considered, never a
        distance."""
        revision, ids, owners, vectors = self.store.gallery(self.model.id)
        if revision == 0 and (held := self.index.held()) and held[0] > 0 and held[1] > 0:
            raise DatabaseReset(
                f"{safe_url(self.store.url)} holds no templates, but the index "
                f"{self.index.path} was written at revision {held[0]} with {held[1]} "
                "templates: the database was deleted, emptied or replaced. Restore it from "
                "a backup, or move the index folder away to start an empty gallery")
        reason = self.index.check(revision, dict(zip(ids.tolist(), owners.tolist())), vectors)
        if reason == "missing" and not len(ids):
            self.rebuild(read=(revision, ids, owners, vectors))  # new and empty: say nothing
        elif reason is not None:
            self.rebuild(f"{self.index.path.name}: {reason}; rebuilt from the database",
                         read=(revision, ids, owners, vectors))
        self._stale()
        # the vectors were just read to check the index: fuse them now, not re-read later
        self._fused = opt.person_centroids(vectors, owners, self._quality(ids))

    def rebuild(self, message: str | None = None,
                read: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """Rebuild the index from the database (``read``: what was just read from it)."""
        self.index.rebuild(*(read or self.store.gallery(self.model.id)))
        self.dirty = False
        self._stale()
        if message:
            self.messages.append(message)

    def _stale(self) -> None:
        """The gallery changed: fused templates and the operating point are recomputed on
        next use (lazily, so a batch enrolment does not redo them per person)."""
        self._fused = None
        self._point = None

    def _refuse(self, person_id: int) -> None:
        """Re-fuse one person's templates after their enrolment or removal (cheaper than
        re-reading the gallery per person of a batch enrolment)."""
        if self._fused is None:
            return
        ids, centroids = self._fused
        keep = ids != person_id
        ids, centroids = ids[keep], centroids[keep]
        vectors, quality = self.store.person_templates(person_id, self.model.id)
        if len(vectors):
            _, c = opt.person_centroids(vectors, np.full(len(vectors), person_id), quality)
            ids = np.append(ids, person_id)
            centroids = np.concatenate([centroids, c]) if len(centroids) else c
        self._fused = (ids, centroids)
        self._point = None

    def fused(self) -> tuple[np.ndarray, np.ndarray]:
        """(person ids, fused unit templates), read from the database on first use."""
        if self._fused is None:
            _, ids, owners, vectors = self.store.gallery(self.model.id)
            self._fused = opt.person_centroids(vectors, owners, self._quality(ids))
        return self._fused

    def behind(self) -> bool:
        """Whether other processes changed the gallery since this index was built (one
        query)."""
        return self.store.revision(self.model.id) != self.index.revision

    def refresh(self) -> bool:
        """Resync when the database moved on (:meth:`behind`). Returns True when it
        reloaded."""
        if not self.behind():
            return False
        self.sync()
        return True

    def flush(self) -> None:
        """Write in-memory index changes to disk (enrolment batches call this once)."""
        if self.dirty:
            self.index.save()
            self.dirty = False

    def require_same_model(self) -> None:
        """Refuse to match when enrolled people have templates only from other models:
        they would silently never match. Re-embedding is the way out."""
        missing, others = self.store.people_without_model(self.model.id)
        if missing:
            raise ModelMismatch(
                f"{missing} enrolled people have templates only from model "
                f"{', '.join(others)}, not from the loaded {self.model.key}; run "
                f"`faceid reembed` with this model, or load the model they were made with")

    # -- changes --------------------------------------------------------------------------
    def enroll(self, name: str, templates: list[NewTemplate], **kw: Any) -> Enrolment:
        """Store templates (one transaction), then mirror them into the index."""
        before = self.index.revision
        result = self.store.enroll(name, templates, self.model.id, **kw)
        if result.added:
            self._apply(before, lambda: self.index.add(
                [i for i, _ in result.added], np.stack([v for _, v in result.added]),
                result.person_id))
            self._refuse(result.person_id)
        return result

    def remove(self, ref: str | int, erase: bool = False) -> str:
        """Remove (or ``erase``: see :meth:`Store.remove_person`) a person, database and
        index."""
        removed_id = self.store.resolve(ref).id
        label, removed = self.store.remove_person(removed_id, erase)
        before = self.index.revision
        mine = removed.get(self.model.id, [])
        if mine:
            self._apply(before, lambda: self.index.remove(mine))
            self._refuse(removed_id)
        self.flush()
        return label

    def _apply(self, before: int, change: Any) -> None:
        """Apply one committed change to the index if nobody else wrote in between (the
        revision moved by exactly one); otherwise resync from the database."""
        now = self.store.revision(self.model.id)
        if now == before + 1:
            change()
            self.index.revision = now
            self.dirty = True
        else:
            self.sync()

    # -- questions ------------------------------------------------------------------------
    def identify(self, embedding: np.ndarray, top: int = 5) -> Identification:
        """Who is this? People ranked by the distance to their fused template, best first.
        A match needs the best within tau and ahead of the runner-up by ``margin``."""
        if top < 1:
            raise ValueError("top must be at least 1")
        result = Identification("unknown", "empty_gallery", self.tau, self.margin)
        result.candidates = self.rank(embedding, max(top, 2))
        if not result.candidates:
            return result
        if result.candidates[0].distance > self.tau:
            result.reason = "above_tau"
        elif result.margin is not None and result.margin < self.margin:
            result.reason = "ambiguous"
        else:
            result.decision = result.reason = "match"
        result.candidates = result.candidates[:top]
        return result

    def rank(self, embedding: np.ndarray, top: int) -> list[Candidate]:
        """The ``top`` nearest active people by the distance to their fused template, with
        no decision (enrolment's duplicate check uses this: it needs no threshold)."""
        people_ids, centroids = self.fused()
        if len(people_ids) == 0:
            return []
        q = np.asarray(embedding, np.float32).reshape(1, -1)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        rows = self._candidate_rows(q, top, people_ids)
        d = opt.distances(q, centroids[rows])[0]
        order = np.argsort(d, kind="stable")[:max(64, top * 4)]  # room for disabled people
        ranked = [(float(d[i]), int(people_ids[rows[i]])) for i in order]
        active = self.store.active_labels([p for _, p in ranked])
        return [Candidate(p, *active[p], dist) for dist, p in ranked if p in active][:top]

    def _candidate_rows(self, q: np.ndarray, top: int, people_ids: np.ndarray) -> np.ndarray:
        """Rows of the fused templates to score: all of them up to ``PERSON_SCAN`` people
        (exact and cheap), else the owners of the index's nearest templates."""
        if len(people_ids) <= PERSON_SCAN:
            return np.arange(len(people_ids))
        k = min(len(self.index), max(256, top * 32))
        _, ids = self.index.search(q, k)
        owners = {self.index.owners.get(int(t)) for t in ids[0] if t >= 0}
        return np.flatnonzero(np.isin(people_ids, [o for o in owners if o is not None]))

    def verify(self, embedding: np.ndarray, ref: str | int) -> Verification:
        """Is this the claimed person? Distance to their fused template at the 1:1 tau."""
        person = self.store.resolve(ref)
        vectors = self.store.person_vectors(person.id, self.model.id)
        if len(vectors) == 0:
            others = self.store.people_without_model(self.model.id)[1]
            raise ModelMismatch(
                f"{person.label} has no templates from the loaded model {self.model.key}"
                + (f" (only from {', '.join(others)}); run `faceid reembed`" if others else ""))
        people_ids, centroids = self.fused()
        rows = np.flatnonzero(people_ids == person.id)
        fused = (centroids[rows] if len(rows) else
                 opt.person_centroids(vectors, np.zeros(len(vectors), np.int64))[1])
        q = np.asarray(embedding, np.float32).reshape(1, -1)
        d = float(opt.distances(q / max(float(np.linalg.norm(q)), 1e-12), fused)[0, 0])
        tau = self.tau_verify
        same = d <= tau and person.active
        reason = "match" if same else ("inactive" if not person.active else "above_tau")
        return Verification(person.id, person.name, person.label, d, tau, same,
                            float(self.fid.views.probability_same(d)), reason)

    def status(self) -> dict[str, Any]:
        """The index and the operating point in force, for ``gallery status``."""
        point = self.operating_point()
        return {"model": self.model.key, "templates": len(self.index),
                "operating_point": {**point.to_dict(),
                                    "tau_override": self._tau,
                                    "fpir_override": self._fpir, "far_override": self._far},
                "people": len(set(self.index.owners.values())), "kind": self.index.kind,
                "revision": self.index.revision, "path": str(self.index.path),
                "in_step": self.store.revision(self.model.id) == self.index.revision}


def _from_record(rec: Any) -> opt.OperatingPoint:
    details = json.loads(rec.details or "{}")
    return opt.OperatingPoint(
        tau_identify=rec.tau_identify, tau_verify=rec.tau_verify, fpir=rec.fpir, far=rec.far,
        people=rec.people, templates=rec.templates, cohort=rec.cohort, pairs=rec.pairs,
        mean=details.get("mean"), sd=details.get("sd"), thin=rec.thin, method=rec.method,
        revision=rec.gallery_revision, notes=details.get("notes", []))
