"""The gallery: the enrolment store and its FAISS index for the loaded model, and the two
questions asked of it, 1:1 (is this the person they claim to be?) and 1:K (who is this?).

This is the object the camera loop holds. The CLI's enrol / verify / identify commands are
thin wrappers around it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from db.index import ANN_THRESHOLD, GalleryIndex
from db.schema import ModelRecord
from db.store import Enrolment, NewTemplate, Store
from faceid.errors import ModelMismatch
from faceid.modelfile import weights_path
from faceid.pipeline import FaceID

DEFAULT_MARGIN = float(os.environ.get("FACEID_MARGIN", 0.02))


@dataclass
class Candidate:
    """One enrolled person as a 1:K answer: their closest template's distance."""

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
    views = f"{fid.views_name}-refined" if fid.detector.refine else fid.views_name
    return info.name, sha, views, info.embedding_size, fid.tau


class Gallery:
    """Store + index for the model ``fid`` runs. Opening checks the index against the
    database and rebuilds it when out of step; ``messages`` says what was done."""

    def __init__(self, store: Store, fid: FaceID, index_dir: Path, *,
                 ann_threshold: int = ANN_THRESHOLD, margin: float = DEFAULT_MARGIN,
                 tau: float | None = None) -> None:
        self.store = store
        self.fid = fid
        self.margin = margin
        self._tau = tau
        self.model: ModelRecord = store.model_record(*model_identity(fid))
        self.index = GalleryIndex(index_dir, self.model.key, self.model.embedding_size,
                                  ann_threshold=ann_threshold)
        self.messages: list[str] = []
        self.dirty = False
        self.sync()

    @property
    def tau(self) -> float:
        """The decision threshold: the model preset's calibrated 1:1 tau unless the site set
        its own (a large open gallery needs a stricter one, see bench.openset_lfw)."""
        return self._tau if self._tau is not None else self.fid.tau

    def sync(self) -> None:
        """Make the index reflect the database: load the file if it matches, else rebuild."""
        revision, owners = self.store.owners(self.model.id)
        reason = self.index.check(revision, owners)
        if reason == "missing" and not owners:
            self.rebuild()  # a new, empty gallery: nothing to say
        elif reason is not None:
            self.rebuild(f"{self.index.path.name}: {reason}; rebuilt from the database")

    def rebuild(self, message: str | None = None) -> None:
        self.index.rebuild(*self.store.gallery(self.model.id))
        self.dirty = False
        if message:
            self.messages.append(message)

    def refresh(self) -> bool:
        """Cheap check for changes by other processes (one query); resyncs when the
        database moved on. Returns True when it reloaded."""
        if self.store.revision(self.model.id) == self.index.revision:
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
        return result

    def remove(self, ref: str | int) -> str:
        label, removed = self.store.remove_person(ref)
        before = self.index.revision
        mine = removed.get(self.model.id, [])
        if mine:
            self._apply(before, lambda: self.index.remove(mine))
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
        """Who is this? Nearest people (by their closest template), best first."""
        result = Identification("unknown", "empty_gallery", self.tau, self.margin)
        n = len(self.index)
        if n == 0:
            return result
        best: dict[int, float] = {}
        k = min(n, max(64, top * 16))
        while True:
            dist, ids = self.index.search(embedding, k)
            best.clear()
            for d, t in zip(dist[0], ids[0]):
                if t >= 0 and (p := self.index.owners.get(int(t))) is not None:
                    best.setdefault(p, float(d))
            if len(best) >= min(top, 2) or k >= n:
                break
            k = min(n, k * 4)
        people = self.store.people_by_id(list(best))
        ranked = sorted((d, p) for p, d in best.items() if p in people and people[p].active)
        result.candidates = [Candidate(p, people[p].name, people[p].external_id, d)
                             for d, p in ranked[:max(top, 2)]]
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

    def verify(self, embedding: np.ndarray, ref: str | int) -> Verification:
        """Is this the claimed person? Distance to their closest template at tau."""
        person = self.store.resolve(ref)
        vectors = self.store.person_vectors(person.id, self.model.id)
        if len(vectors) == 0:
            others = self.store.people_without_model(self.model.id)[1]
            raise ModelMismatch(
                f"{person.label} has no templates from the loaded model {self.model.key}"
                + (f" (only from {', '.join(others)}); run `faceid reembed`" if others else ""))
        d = float(np.min(np.linalg.norm(vectors - np.asarray(embedding)[None], axis=1)))
        same = d <= self.tau and person.active
        reason = "match" if same else ("inactive" if not person.active else "above_tau")
        return Verification(person.id, person.name, person.label, d, self.tau, same,
                            float(self.fid.views.probability_same(d)), reason)

    def status(self) -> dict[str, Any]:
        return {"model": self.model.key, "templates": len(self.index),
                "people": len(set(self.index.owners.values())), "kind": self.index.kind,
                "revision": self.index.revision, "path": str(self.index.path),
                "in_step": self.store.revision(self.model.id) == self.index.revision}
