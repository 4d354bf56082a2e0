"""Enrolment: images (or the best frames of a clip) -> quality-gated templates -> the
gallery, with a warning when a new face already matches someone else.

``enroll_images`` is all or nothing: every image must hold one usable face. ``enroll_dir``
walks one folder per person (the LFW layout), skips bad files with a report, commits each
person in one transaction, and skips images already enrolled, so an interrupted run is
finished by running it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from db.store import MAX_NAME, NewTemplate
from faceid.config import env_float
from faceid.detection import Pick
from faceid.errors import (DatasetError, DuplicateFace, FaceIDError, InputError, NoFace)
from faceid.files import open_regular
from faceid.gallery import Gallery
from faceid.imageio import ImageSource, image_files
from faceid.pipeline import FaceID, FaceResult
from faceid.quality import QualityGate
from faceid.terminal import check_label

# A new face this close to someone else's template is flagged. Stricter than the 1:1 tau:
# against a large gallery almost everyone has a stranger within tau (bench.openset_lfw:
# FPIR 96% at tau 0.41 against 1,680 LFW people; 0.30 gives about 1%).
def duplicate_tau() -> float:
    """The duplicate-warning distance (``FACEID_DUPLICATE_TAU``, default 0.30)."""
    return env_float("FACEID_DUPLICATE_TAU", 0.30, low=0.0, high=2.0, low_open=True)


def source_hash(source: ImageSource) -> str:
    """Content hash of an image (file, bytes, array or PIL image), so the same photo is
    never enrolled twice for one person whatever its path. Only a regular file is read (a
    FIFO would never end); what cannot be read is hashed by name, and loading it reports
    the real problem."""
    h = hashlib.sha256()
    if isinstance(source, np.ndarray):
        h.update(np.ascontiguousarray(source).tobytes())
    elif isinstance(source, (bytes, bytearray, memoryview)):
        h.update(source)
    elif isinstance(source, (str, Path)):
        try:
            with open_regular(source) as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except (InputError, OSError):
            h.update(str(source).encode())
    elif hasattr(source, "read"):  # a file object (an upload): its whole content, position kept
        try:
            where = source.tell()
            source.seek(0)
            for block in iter(lambda: source.read(1 << 20), b""):
                h.update(block)
            source.seek(where)
        except (OSError, ValueError, AttributeError):  # not seekable: it is read once
            h.update(f"{type(source).__name__}:{id(source)}".encode())
    else:
        try:
            h.update(source.tobytes())  # a PIL image
        except (AttributeError, ValueError, OSError):
            h.update(f"{type(source).__name__}:{id(source)}".encode())
    return h.hexdigest()


def to_template(result: FaceResult, digest: str) -> NewTemplate:
    """Package one embedded face, which passed the quality gate (``embed_images(...,
    gate=...)``: :func:`enrolment_gate`), for the store; raises the face's error."""
    if result.error is not None:
        raise result.error
    assert result.face is not None and result.crop is not None and result.quality is not None
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(result.crop, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
    return NewTemplate(vector=result.embedding, source=result.source, source_hash=digest,
                       quality=result.quality.quality, face_size=result.face.size,
                       sharpness=result.quality.sharpness,
                       face_jpeg=jpeg.tobytes() if ok else None)


def enrolment_gate(fid: FaceID) -> QualityGate:
    """What a face must be to become a template: the pipeline's minimum size, sharp."""
    return QualityGate(min_face=fid.min_face)


def duplicate_warnings(gallery: Gallery, name: str, person_id: int | None,
                       faces: Sequence[tuple[str, np.ndarray]], tau: float) -> list[str]:
    """One line per (source, encoding) that already matches a *different* enrolled person
    within ``tau`` (:func:`duplicate_tau`): a mislabelled photo, or the same person
    enrolled twice. "Different": another id than ``person_id`` when it is known, else
    another name than ``name`` (adding photos to someone is not a duplicate)."""
    def same(c: Any) -> bool:
        return c.person_id == person_id if person_id is not None else \
            c.name.casefold() == name.strip().casefold()

    lines = []
    for source, vector in faces:
        found = gallery.rank(vector, top=3)
        other = next((c for c in found if not same(c)), None)
        if other is not None and other.distance <= tau:
            lines.append(f"{source}: also matches {other.name} (#{other.person_id}) at "
                         f"distance {other.distance:.3f} <= {tau:.3f}")
    return lines


@dataclass
class EnrolReport:
    person_id: int
    label: str
    created: bool
    added: int
    already: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_name(name: str) -> str:
    """The name as it will be stored, or :class:`InvalidName` before any work is done."""
    return check_label("name", name, MAX_NAME)


def enroll_templates(gallery: Gallery, name: str, templates: list[NewTemplate], *,
                     allow_duplicate: bool = False, **kw: Any) -> EnrolReport:
    """Store templates for one person. A photo that already matches someone else is
    refused (:class:`DuplicateFace`, nothing stored) unless ``allow_duplicate``, when it is
    stored with a warning. The caller saves the index (once per command, not per person)."""
    name = check_name(name)
    lines = duplicate_warnings(gallery, name, kw.get("person_id"),
                               [(t.source, t.vector) for t in templates], duplicate_tau())
    if lines and not allow_duplicate:
        raise DuplicateFace(f"{lines[0]}: the same person enrolled twice, or a mislabelled "
                            "photo; nothing stored (--allow-duplicate enrols it anyway)")
    result = gallery.enroll(name, templates, **kw)
    return EnrolReport(result.person_id, result.label, result.created, len(result.added),
                       result.already, lines)


def enroll_images(gallery: Gallery, name: str, sources: Sequence[ImageSource],
                  pick: Pick = Pick.one, **kw: Any) -> EnrolReport:
    """Enrol one person from photos. All or nothing: the first unusable image (no face,
    several faces, too small, too blurred, unreadable) raises and nothing is stored."""
    name = check_name(name)
    fid = gallery.fid
    results = fid.embed_images(list(sources), pick, keep_faces=True, gate=enrolment_gate(fid))
    templates = [to_template(r, source_hash(s)) for r, s in zip(results, sources)]
    report = enroll_templates(gallery, name, templates, **kw)
    gallery.flush()
    return report


@dataclass
class DirReport:
    people_added: int = 0
    people_updated: int = 0
    people_unchanged: int = 0
    people_skipped: int = 0  # no usable image
    templates_added: int = 0
    images_failed: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def person_folders(root: Path, max_per_person: int | None = None,
                   min_images: int = 1) -> list[tuple[str, list[Path]]]:
    """(folder name, its image files) for each sub-folder of ``root``, sorted."""
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (expected one sub-folder per person)")
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = image_files(d)
        if len(files) >= min_images:
            out.append((d.name, files[:max_per_person] if max_per_person else files))
    if not out:
        raise DatasetError(f"{root}: no person folders with images found")
    return out


def display_name(folder: str) -> str:
    """Folder name to person name: LFW's ``George_W_Bush`` becomes ``George W Bush``."""
    return folder.replace("_", " ").strip()


def enroll_dir(gallery: Gallery, root: Path, *, max_per_person: int | None = None,
               min_images: int = 1, chunk: int = 64, pick: Pick = Pick.one,
               progress: Callable[[int], None] | None = None,
               allow_duplicate: bool = False) -> DirReport:
    """Enrol every person folder under ``root``. Resumable: images already enrolled for a
    person are recognised by content hash and skipped without re-encoding. A person whose
    photos match someone already enrolled is skipped and reported, unless
    ``allow_duplicate``."""
    report = DirReport()
    folders = person_folders(root, max_per_person, min_images)
    try:
        for group in _groups(folders, chunk):
            _enroll_group(gallery, group, report, pick, progress, allow_duplicate)
    finally:
        gallery.flush()
    return report


def _groups(folders: list[tuple[str, list[Path]]],
            chunk: int) -> Iterable[list[tuple[str, list[Path]]]]:
    """Consecutive folders in groups of about ``chunk`` images, so encoding is batched
    across small folders while each person still commits on their own."""
    group: list[tuple[str, list[Path]]] = []
    size = 0
    for item in folders:
        group.append(item)
        size += len(item[1])
        if size >= chunk:
            yield group
            group, size = [], 0
    if group:
        yield group


def _enroll_group(gallery: Gallery, group: list[tuple[str, list[Path]]], report: DirReport,
                  pick: Pick, progress: Callable[[int], None] | None,
                  allow_duplicate: bool) -> None:
    fid = gallery.fid
    todo: list[tuple[str, Path, str]] = []
    for folder, files in group:
        have = gallery.store.enrolled_hashes(display_name(folder), gallery.model.id)
        fresh = [(folder, f, h) for f in files if (h := source_hash(f)) not in have]
        report.people_unchanged += not fresh
        todo.extend(fresh)
    results = fid.embed_images([f for _, f, _ in todo], pick, keep_faces=True,
                               gate=enrolment_gate(fid))
    by_person: dict[str, list[NewTemplate]] = {}
    for (folder, _, digest), result in zip(todo, results):
        by_person.setdefault(folder, [])
        try:
            by_person[folder].append(to_template(result, digest))
        except FaceIDError as exc:
            report.images_failed += 1
            report.failures.append(exc.message)
    where = {folder: files[0].parent for folder, files in group}
    for folder, templates in by_person.items():
        if not templates:
            report.people_skipped += 1
            continue
        try:
            rep = enroll_templates(gallery, display_name(folder), templates,
                                   allow_duplicate=allow_duplicate)
        except FaceIDError as exc:  # a name that cannot be stored, names two people, or
            # a face that is already someone else's
            report.people_skipped += 1
            report.failures.append(f"{where[folder]}: {exc.message}")
            continue
        report.people_added += rep.created
        report.people_updated += not rep.created
        report.templates_added += rep.added
        report.warnings.extend(rep.warnings)
    if progress:
        progress(sum(len(files) for _, files in group))


def enroll_video(gallery: Gallery, name: str, frames: Iterable[tuple[int, np.ndarray]],
                 source: str, *, keep: int = 3, **kw: Any) -> EnrolReport:
    """Enrol from a camera or clip: rank frames that hold exactly one usable face by
    quality (size x sharpness x frontalness) and store the best ``keep``, spread in time."""
    name = check_name(name)
    fid = gallery.fid
    scored: list[tuple[float, int, NewTemplate]] = []
    for index, frame in frames:
        result = fid.embed_images([frame], keep_faces=True, gate=enrolment_gate(fid))[0]
        result.source = f"{source}#frame={index}"
        try:
            t = to_template(result, source_hash(frame))
        except FaceIDError:
            continue
        scored.append((t.quality, index, t))
    if not scored:
        raise NoFace(f"{source}: no frame shows exactly one sharp, large enough face")
    chosen: list[tuple[float, int, NewTemplate]] = []
    gap = max(1, (max(i for _, i, _ in scored) - min(i for _, i, _ in scored)) // (keep * 2))
    for item in sorted(scored, key=lambda x: -x[0]):
        if all(abs(item[1] - c[1]) >= gap for c in chosen):
            chosen.append(item)
        if len(chosen) == keep:
            break
    report = enroll_templates(gallery, name, [t for _, _, t in chosen], **kw)
    gallery.flush()
    return report
