"""The impostor cohort: photos of people who are *not* enrolled, taken at the site (visitors,
staff of another building), encoded and stored so the operating point can measure how close
real strangers from this camera come to the gallery. Cohort encodings are never matched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from faceid.detection import Pick
from faceid.enrolment import source_hash
from faceid.errors import FileMissing, InputError, NotAFile
from faceid.gallery import Gallery
from faceid.decisions import expand


def add_cohort(gallery: Gallery, folder: Path, *,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Encode the largest face of every image under ``folder`` into the cohort; photos that
    fail are reported and skipped. Raises for a folder that cannot be read."""
    if not folder.exists():
        raise FileMissing(f"{folder}: cohort folder not found")
    if not folder.is_dir():
        raise NotAFile(f"{folder}: the cohort must be a folder of face photos")
    try:
        files = expand([folder])
    except OSError as exc:
        raise InputError(f"{folder}: cannot read the cohort folder ({exc.strerror})") from None
    if not files:
        raise InputError(f"{folder}: no image files in the cohort folder")
    results = gallery.fid.embed_images(files, Pick.largest, progress=progress)
    items, failures = [], []
    for f, r in zip(files, results):
        if r.error is not None:
            failures.append(r.error.message)
        else:
            items.append((r.embedding, str(f), source_hash(f)))
    added = gallery.store.add_cohort(gallery.model.id, items)
    gallery.refresh()
    return {"folder": str(folder), "images": len(files), "added": added,
            "already": len(items) - added, "failed": len(failures), "failures": failures}
