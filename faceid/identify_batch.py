"""Batch identification: every face in many photos (files or folders) against the gallery,
one row per face, the way face_recognition's command line is mostly used. The model loads
once; a photo that fails (unreadable, no face) gets its own row with the error, and the run
goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceid.detect import Pick
from faceid.gallery import Gallery
from faceid.imageio import image_files, load_image
from faceid.liveness import PassiveCheck

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


def identify_files(gallery: Gallery, files: Sequence[Path], *, top: int = 1,
                   progress: Callable[[int], None] | None = None,
                   liveness: PassiveCheck | None = None) -> list[FaceRow]:
    """Identify every usable face in each file; rows in file order, faces left to right.
    With ``liveness``, a face the passive check does not find live is never matched: its
    row's decision is "not_live" (or "low_quality") with the reason."""
    rows: list[FaceRow] = []
    results = gallery.fid.embed_faces(list(files), Pick.all, progress=progress)
    for path, faces in zip(files, results):
        if faces[0].error is not None:
            rows.append(FaceRow(str(path), error=faces[0].error.message,
                                error_code=faces[0].error.exit_code))
            continue
        faces = sorted(faces, key=lambda r: r.face.box[0])
        image = load_image(path) if liveness is not None else None
        for k, r in enumerate(faces, 1):
            box = [round(v, 1) for v in r.face.box]
            if liveness is not None:
                live = liveness.judge_still(image, r.face)
                if not live.live:
                    decision, _, why = live.reason.partition(":")
                    rows.append(FaceRow(str(path), k, box, decision, why or decision,
                                        tau=round(gallery.tau, 6)))
                    continue
            ident = gallery.identify(r.embedding, top=max(top, 2))
            best = ident.candidates[0] if ident.candidates else None
            who = ident.person  # an unknown face is never labelled with an enrolled name
            rows.append(FaceRow(
                str(path), k, box, ident.decision,
                ident.reason, who and who.person_id, who and who.name,
                who and who.external_id, best and round(best.distance, 6),
                None if ident.margin is None else round(ident.margin, 6),
                round(ident.tau, 6)))
    return rows
