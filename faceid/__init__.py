"""faceid: face recognition for access control.

The public API is the verbs below; everything else in the package is how they are done.
Images are paths, encoded bytes, binary files, PIL images or arrays; arrays are
(H, W, 3) uint8 RGB (grey and RGBA are converted). Boxes and landmarks are in pixels of the
image as given; distances are Euclidean between 128-d unit vectors (0 = identical, 2 =
opposite; the default model's 1:1 tau is about 0.42).

    import faceid

    image = faceid.load("door.jpg")                 # (H, W, 3) uint8 RGB, EXIF-rotated
    faces = faceid.detect(image)                    # [Face]: box (x1, y1, x2, y2), landmarks (5, 2), score
    vector = faceid.embed("ada.jpg")                # (128,) float32 unit vector of the photo's one face
    c = faceid.compare("a.jpg", "b.jpg")            # Comparison: distance, tau, same, probability

    gallery = faceid.open_gallery("site/")          # SQLite in site/ (or db="postgresql://...")
    faceid.enroll(gallery, "Ada Lovelace", ["ada1.jpg", "ada2.jpg"], external_id="B-7")
    rows = faceid.identify(gallery, "door.jpg")     # [FaceRow] per face: name or unknown, distance, margin
    v = faceid.verify(gallery, "door.jpg", "badge:B-7")   # Verification: same, distance, tau, reason
    for report in faceid.watch(gallery, 0):         # the door on camera 0, one FrameReport per frame
        ...

Every failure is a :class:`faceid.errors.FaceIDError` subclass with a one-line message and an
exit code. Nothing heavy is imported until a verb needs it (``import faceid`` does not load
torch), and the models load once per process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from faceid.decisions import FaceRow
    from faceid.detection import Face
    from faceid.door.turnstile import FrameReport
    from faceid.enrolment import EnrolReport
    from faceid.gallery import Gallery, Verification
    from faceid.imageio import ImageSource
    from faceid.pipeline import Comparison, FaceID

__all__ = ["load", "detect", "embed", "compare", "open_gallery", "enroll", "identify",
           "verify", "watch", "default_pipeline"]

_PIPELINE: FaceID | None = None


def default_pipeline() -> FaceID:
    """The process's default pipeline (detector, aligner, encoder of the bundled model),
    loaded on first use and shared by the verbs that take no gallery."""
    global _PIPELINE
    if _PIPELINE is None:
        from faceid.pipeline import FaceID

        _PIPELINE = FaceID()
    return _PIPELINE


def load(image: ImageSource) -> np.ndarray:
    """An image as a C-contiguous (H, W, 3) uint8 RGB array (EXIF orientation applied;
    grey, palette, RGBA, 16-bit and CMYK converted); larger than ``FACEID_MAX_PIXELS``
    (50 MP) is refused before decoding."""
    from faceid.imageio import load_image

    return load_image(image)


def detect(image: ImageSource) -> list[Face]:
    """Every face in ``image``, best score first: ``box`` (x1, y1, x2, y2) and
    ``landmarks`` (5, 2: the image-left eye, the other eye, nose, mouth corners) in pixels,
    ``score`` in [0, 1]. The detector is ``FACEID_DETECTOR`` (default MTCNN)."""
    from faceid.imageio import load_image

    return default_pipeline().detect(load_image(image))


def embed(image: ImageSource, *, pick: str = "one") -> np.ndarray:
    """The (128,) float32 unit vector of one face: the only face (``pick="one"``, the
    default: a photo with several is refused), the ``"largest"`` or the ``"center"`` one."""
    from faceid.pick import Pick

    return default_pipeline().embed_image(image, Pick(pick)).embedding


def compare(a: ImageSource, b: ImageSource) -> Comparison:
    """1:1 on two photos of one face each: ``distance``, the model's ``tau``, ``same``
    (distance <= tau) and ``probability`` (P(same person | distance), calibrated on LFW)."""
    return default_pipeline().compare(a, b)


def open_gallery(home: str | Path | None = None, *, db: str | None = None,
                 create: bool = True) -> Gallery:
    """The enrolment gallery in ``home`` (default ``FACEID_HOME``, else
    ``~/.local/share/faceid``): its database (``<home>/faceid.db``, or the SQLAlchemy URL /
    SQLite file ``db``) and the FAISS index beside it, checked and rebuilt if out of step.
    With ``create=False`` a missing gallery is :class:`~faceid.errors.GalleryMissing`."""
    from db import default_home, timeout_from_env
    from db.engine import resolve_url
    from db.store import Store
    from faceid.gallery import Gallery

    root = Path(home) if home is not None else default_home()
    store = Store(resolve_url(root, db), timeout=timeout_from_env(), create=create)
    return Gallery(store, default_pipeline(), root / "index")


def enroll(gallery: Gallery, name: str, photos: Sequence[ImageSource], *,
           external_id: str | None = None, allow_duplicate: bool = False) -> EnrolReport:
    """Enrol ``name`` (a new person, or more photos of the one person of that name) from
    photos of one face each. All or nothing: an unusable photo raises and nothing is stored.
    A face that already matches someone else is refused unless ``allow_duplicate``. The
    enrolment is an audit event (admin, with the OS user)."""
    from faceid.enrolment import enroll_images

    return enroll_images(gallery, name, photos, external_id=external_id,
                         allow_duplicate=allow_duplicate)


def identify(gallery: Gallery, photos: ImageSource | Sequence[ImageSource], *,
             top: int = 1, liveness: bool = False, record: bool = False) -> list[FaceRow]:
    """1:K for every face in one photo or many: one row per face (faces left to right), or
    per photo that failed (``error``, ``error_code``). A face is named only when its best
    person is within the gallery's tau (set for its FPIR target at its size) and ahead of the
    runner-up; otherwise ``decision`` is "unknown" and no name is given. ``liveness``: a face
    the passive check does not find live is refused ("not_live" / "low_quality").
    ``record``: each row is an audit event (source ``api:<photo>``), as the CLI's are."""
    from faceid.decisions import identify_photos

    many = isinstance(photos, Sequence) and not isinstance(photos, (str, bytes, bytearray))
    return identify_photos(
        gallery, list(photos) if many else [photos], top=top,
        liveness=_passive() if liveness else None, record="api:" if record else None)


def verify(gallery: Gallery, photo: ImageSource, claim: str | int, *,
           liveness: bool = False, record: bool = False) -> Verification:
    """1:1 against a claimed person (``"#12"``, ``"badge:B-7"``, a name, or an int id) at the
    gallery's 1:1 tau (set for its FAR target): ``same``, ``distance``, ``tau``, ``reason``.
    ``liveness`` and ``record`` as for :func:`identify`."""
    from faceid.decisions import verify_photo

    return verify_photo(gallery, photo, claim,
                                     liveness=_passive() if liveness else None,
                                     record="api:" if record else None)


def watch(gallery: Gallery, source: int | str, *, claim: str | None = None,
          door: str | None = None, **config: Any) -> Iterator[FrameReport]:
    """The door on a camera index, clip, stream URL or folder of frames: tracks faces, runs
    the passive liveness gate, matches, decides, and records every decision (written before
    anything opens). Yields one FrameReport per frame (``faces``, ``state``, ``label``,
    ``decisions``, per-stage ``seconds``). ``config``: any
    :class:`~faceid.door.turnstile.WatchConfig` field (``timeout_s``, ``min_face``, ...).
    Runs until the source ends; a camera reconnects forever."""
    from faceid.detectors import make_detector
    from faceid.door.liveness import LivenessGate, PassiveCheck
    from faceid.door.sources import FrameSource, redact
    from faceid.door.turnstile import Turnstile, WatchConfig

    gate = LivenessGate(passive=PassiveCheck.load(None))
    door_config = WatchConfig(source=redact(str(source)), claim=claim, door=door, **config)
    turnstile = Turnstile(gallery, door_config, gate, detector=make_detector(video=True))
    try:
        for _, t, frame in FrameSource(str(source)):
            yield turnstile.process(frame, t)
    finally:
        turnstile.close()


def _passive():  # noqa: ANN202 - a PassiveCheck
    from faceid.door.liveness import PassiveCheck

    return PassiveCheck.load(None)
