"""Re-embedding a gallery for a new model: each template's stored face crop is run through
the loaded model's detector and encoder and stored as a template of that model, so a site can
change encoders without asking everyone to enrol again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from db.store import NewTemplate
from faceid.detection import Pick
from faceid.enrolment import to_template
from faceid.quality import QualityGate
from faceid.errors import FaceIDError
from faceid.gallery import Gallery


def reembed(gallery: Gallery, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Add, for every person, templates of the loaded model made from the face crops stored
    by every other model. Idempotent (same source hash = skipped)."""
    fid = gallery.fid
    report: dict[str, Any] = {"model": gallery.model.key, "added": 0, "already": 0,
                              "failed": 0, "failures": []}
    for record, _ in gallery.store.models_in_use():
        if record.id == gallery.model.id:
            continue
        by_person: dict[int, list[NewTemplate]] = {}
        for person_id, source, digest, jpeg in gallery.store.face_crops(record.id):
            try:
                by_person.setdefault(person_id, []).append(
                    _template(fid, source, digest, jpeg))
            except FaceIDError as exc:
                report["failed"] += 1
                report["failures"].append(exc.message)
            if progress:
                progress(1)
        for person_id, templates in by_person.items():
            if templates:
                result = gallery.enroll("", templates, person_id=person_id)
                report["added"] += len(result.added)
                report["already"] += result.already
    gallery.flush()
    return report


def _template(fid: Any, source: str, digest: str, jpeg: bytes | None) -> NewTemplate:
    """The stored crop through the loaded model. No blur gate: the face was accepted at
    enrolment, and refusing it now would drop the person from the new model's gallery."""
    if not jpeg:
        raise FaceIDError(f"{source}: no stored face crop to re-embed from")
    crop = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)
    no_blur_gate = QualityGate(min_face=fid.min_face, min_sharpness=None)
    result = fid.embed_images([crop], Pick.center, keep_faces=True, gate=no_blur_gate)[0]
    result.source = source
    if result.error is not None:
        raise type(result.error)(f"{source}: {result.error.message}")
    template = to_template(result, digest)
    template.face_jpeg = jpeg  # keep the original crop, not a re-compressed copy
    return template
