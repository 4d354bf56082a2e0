"""Decisions on photos, for the command line and the Python API alike.

* :func:`identify_photos`: every face in many photos (files or folders) against the
  gallery, one row per face, the way face_recognition's command line is mostly used. The
  model loads once; a photo that fails (unreadable, no face) gets its own row with the
  error, and the run goes on.
* :func:`verify_photo`: one face against a claimed person (1:1).

With a passive liveness check, a face not found live is refused and never matched. With
``record``, each decision is an audit event (:mod:`faceid.recorder`, as the door's are).

A face's mirrored view (half the encoder's work with the ``standard`` preset) is computed
only when its one-view decision lies within the preset's ``mirror_band`` of a threshold
(tau, or the 1:K margin): farther away, both views decide as one does (``python -m
bench.mirror_band``: the band is the 99.9th percentile of the change the mirror makes to a
distance on LFW View 1). Such a decision reports its one-view distances, and its audit
event says ``"mirror": "skipped"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceid.detection import Pick
from faceid.errors import FaceIDError
from faceid.gallery import Gallery, Identification, Verification
from faceid.imageio import ImageSource, image_files, load_image, source_name
from faceid.pipeline import FaceResult
from faceid.door.liveness import PassiveCheck
from faceid.recorder import record_decision, record_decisions

FIELDS = ("path", "face", "box", "decision", "reason", "person_id", "name", "external_id",
          "distance", "margin", "tau", "error", "error_code")


@dataclass
class FaceRow:
    """One face of one photo, or one photo's error (``face`` is None then)."""

    path: str
    face: int | None = None
    box: list[float] | None = None
    decision: str | None = None  # "match" | "unknown" | "not_live" | "low_quality"; None: error
    reason: str | None = None
    person_id: int | None = None
    name: str | None = None
    external_id: str | None = None
    distance: float | None = None  # to the best candidate (also when unknown)
    margin: float | None = None
    tau: float | None = None
    error: str | None = None
    error_code: int | None = None
    identification: Identification | None = None  # the 1:K outcome, candidates up to top
    liveness: dict[str, Any] | None = None  # the passive check's result, when one ran
    failure: FaceIDError | None = None  # the photo's error itself (to raise, or its code)
    mirror_skipped: bool = False  # decided on one view (the module's docstring)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELDS}

    def csv_row(self) -> dict[str, Any]:
        """The row as CSV cells: the box as "x1 y1 x2 y2"."""
        d = self.to_dict()
        d["box"] = " ".join(f"{v:.1f}" for v in self.box) if self.box else ""
        return d


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders replaced by the image files inside them (recursively, in
    name order). A missing or unusable path stays in the list, so its row reports it."""
    out: list[Path] = []
    for p in paths:
        try:
            folder = p.is_dir()
        except OSError:  # a name too long, say: loading it says so
            folder = False
        if folder:
            out.extend(image_files(p, recursive=True))
        else:
            out.append(p)
    return out


def identify_photos(gallery: Gallery, files: Sequence[ImageSource], *, top: int = 1,
                    progress: Callable[[int], None] | None = None,
                    liveness: PassiveCheck | None = None,
                    record: str | None = None) -> list[FaceRow]:
    """Identify every usable face in each file; rows in file order, faces left to right.
    With ``liveness``, a face the passive check does not find live is never matched: its
    row's decision is "not_live" (or "low_quality") with the reason. With ``record`` (a
    source prefix such as ``"cli:"``), each row is an audit event, source ``record + path``."""
    rows: list[FaceRow] = []
    results = gallery.fid.embed_faces(list(files), Pick.all, progress=progress,
                                      mirror_later=True)
    for path, faces in zip(files, results):
        name = source_name(path)
        if faces[0].error is not None:
            rows.append(FaceRow(name, error=faces[0].error.message,
                                error_code=faces[0].error.exit_code, failure=faces[0].error))
            continue
        faces = sorted(faces, key=lambda r: r.face.box[0])
        image = load_image(path) if liveness is not None else None
        lives = [liveness.judge_still(image, r.face) if liveness is not None else None
                 for r in faces]
        idents = _identify(gallery, [r for r, live in zip(faces, lives)
                                     if live is None or live.live], max(top, 2))  # 2: margin
        for k, (r, live) in enumerate(zip(faces, lives), 1):
            box = [round(v, 1) for v in r.face.box]
            if live is not None and not live.live:
                decision, _, why = live.reason.partition(":")
                rows.append(FaceRow(name, k, box, decision, why or decision,
                                    tau=round(gallery.tau, 6), liveness=live.to_dict()))
                continue
            ident = idents.pop(0)
            best = ident.candidates[0] if ident.candidates else None
            who = ident.person  # an unknown face is never labelled with an enrolled name
            rows.append(FaceRow(
                name, k, box, ident.decision,
                ident.reason, who and who.person_id, who and who.name,
                who and who.external_id, best and round(best.distance, 6),
                None if ident.margin is None else round(ident.margin, 6),
                round(ident.tau, 6), identification=ident, mirror_skipped=r.mirror is not None))
    if record is not None:  # one transaction per photo: its faces together
        for _, photo in groupby(rows, key=lambda row: row.path):
            record_decisions(gallery, [_decision(gallery, row, record) for row in photo])
    return rows


def _identify(gallery: Gallery, faces: list[FaceResult], top: int) -> list[Identification]:
    """1:K for each face, its mirrored view computed only where the one-view decision is
    within the band of tau or of the margin (the module's docstring says why)."""
    idents = [gallery.identify(r.embedding, top=top) for r in faces]
    band = gallery.fid.views.mirror_band
    unsure = [i for i, (r, ident) in enumerate(zip(faces, idents))
              if r.mirror is not None and not _settled(ident, band)]
    gallery.fid.add_mirror([faces[i] for i in unsure])
    for i in unsure:
        idents[i] = gallery.identify(faces[i].embedding, top=top)
    return idents


def _settled(ident: Identification, band: float | None) -> bool:
    """Whether moving every distance by less than ``band`` leaves the 1:K decision as it
    is: the best beyond tau by the band, or within it by the band and ahead of the
    runner-up by the required margin give or take twice the band (both may move)."""
    if band is None or not ident.candidates:
        return True
    best = ident.candidates[0].distance
    if best > ident.tau + band:
        return True
    if best >= ident.tau - band:
        return False
    margin = ident.margin
    return margin is None or abs(margin - ident.margin_required) >= 2 * band


def _decision(gallery: Gallery, row: FaceRow, prefix: str) -> dict[str, Any]:
    """The event fields of one row (:func:`faceid.recorder.event_fields`)."""
    ident = row.identification
    best = ident.candidates[0] if ident is not None and ident.candidates else None
    details = {"face": row.face, "box": row.box, "error": row.error,
               "liveness": row.liveness, "mirror": "skipped" if row.mirror_skipped else None,
               # who was nearest to an unknown face: for the audit's restricted view only
               "nearest": best and {"person_id": best.person_id, "distance": best.distance}}
    return {"source": f"{prefix}{row.path}", "decision": row.decision or "error",
            "reason": row.reason or "error", "tau": row.tau or gallery.tau,
            "person_id": row.person_id, "person_name": row.name, "distance": row.distance,
            "margin": row.margin, "details": {k: v for k, v in details.items() if v is not None}}


def verify_photo(gallery: Gallery, image: ImageSource, claim: str | int, *,
                 pick: Pick = Pick.one, liveness: PassiveCheck | None = None,
                 record: str | None = None) -> Verification:
    """1:1: is the face ``pick`` chooses in ``image`` the claimed person (``#id``,
    ``badge:id``, a name, or an int id)? With ``liveness``, a face not found live is a
    no-match with the check's reason. With ``record`` (a source prefix), an audit event."""
    res = gallery.fid.embed_image(image, pick, mirror_later=True)
    v = gallery.verify(res.embedding, claim)
    band = gallery.fid.views.mirror_band
    if res.mirror is not None and band is not None and abs(v.distance - v.tau) < band:
        gallery.fid.add_mirror([res])  # near tau: both views decide
        v = gallery.verify(res.embedding, claim)
    if liveness is not None:
        live = liveness.judge_still(load_image(image), res.face)
        if not live.live:
            v.same, v.reason = False, live.reason
    if record is not None:
        record_decision(gallery, source=f"{record}{source_name(image)}",
                        decision="match" if v.same else "no_match", reason=v.reason,
                        tau=v.tau, person_id=v.person_id, person_name=v.name,
                        distance=v.distance, details={"claim": claim, **(
                            {"mirror": "skipped"} if res.mirror is not None else {})})
    return v
