"""The data path up to the encoding: load -> detect -> pick one face -> quality gate ->
align -> encode. :class:`FaceID` is the object callers hold (models load lazily into it, never
at import), and every CLI verb that needs encodings goes through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from functools import partial

import cv2
import numpy as np

from faceid.align import align_face
from faceid.detection import Face, Pick, pick_faces
from faceid.detectors import Detector, make_detector
from faceid.encoder import Encoder, mirrored
from faceid.errors import FaceIDError, LowQuality
from faceid.imageio import ImageSource, load_image, source_name
from faceid.modelfile import ModelInfo, Views, load_model_info
from faceid.quality import Assessment, QualityGate

DEFAULT_MIN_FACE = 40  # px, shorter side of the detected box


@dataclass
class FaceResult:
    """The outcome for one image: an embedding and its face, or the error that stopped it."""

    source: str
    embedding: np.ndarray | None = None
    face: Face | None = None
    error: FaceIDError | None = None
    crop: np.ndarray | None = None  # a loose crop around the face, kept on request
    quality: Assessment | None = None  # the quality gate's verdict, when one ran
    # the mirrored views, when left for later (``mirror_later``): chips, and the sum of the
    # views encoded so far that their embeddings add to (:meth:`FaceID.add_mirror`)
    mirror: np.ndarray | None = None
    view_sum: np.ndarray | None = None


@dataclass
class Comparison:
    """1:1 result: Euclidean distance of unit embeddings (0..2), the decision at ``tau``, and
    the calibrated probability that both faces are the same person."""

    distance: float
    tau: float
    same: bool
    probability: float

    def to_dict(self) -> dict[str, object]:
        return {"distance": round(self.distance, 6), "tau": self.tau, "same": self.same,
                "probability": round(self.probability, 6)}


@dataclass
class StageTimes:
    """Seconds spent in each stage (accumulated), for benchmarks and ``--verbose`` output."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "detect", "align", "embed"), 0.0))

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now


class _InPlace:
    """``pool.map`` run in the calling thread (a one-photo call's stand-in for a pool)."""

    def __enter__(self) -> _InPlace:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def map(fn: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)


class FaceID:
    """A loaded face pipeline: detector + aligner + encoder described by one model file."""

    def __init__(self, model: str | None = None, *, views: str | None = None,
                 min_face: float = DEFAULT_MIN_FACE, device: str = "cpu", batch_size: int = 32,
                 detector: Detector | None = None, video: bool = False) -> None:
        self.info: ModelInfo = load_model_info(model)
        self.views_name = views or self.info.default_views
        self.views: Views = self.info.view_preset(self.views_name)
        self.min_face = min_face
        self.device = device
        self.batch_size = batch_size
        self.detector = detector or make_detector(video=video, device=device)
        self._encoder: Encoder | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder(self.info, device=self.device, batch_size=self.batch_size)
        return self._encoder

    @property
    def tau(self) -> float:
        return self.views.tau

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def chip(self, image: np.ndarray, face: Face, scale: float = 1.0) -> np.ndarray:
        """The aligned chip the encoder sees, (S, S, 3) uint8; ``scale`` shrinks (< 1) or
        grows the template about its centre, for the view presets."""
        t = self.info.template
        centre = t.mean(axis=0)
        return align_face(image, face.landmarks, centre + (t - centre) * scale,
                          self.info.chip_size)

    def view_chips(self, image: np.ndarray, face: Face) -> np.ndarray:
        """One chip per scale of the active view preset, (K, S, S, 3)."""
        return np.stack([self.chip(image, face, s) for s in self.views.scales])

    def embed_image(self, source: ImageSource, pick: Pick = Pick.one, *,
                    mirror_later: bool = False) -> FaceResult:
        """Embed the one face ``pick`` selects in ``source``; raises on any failure."""
        result = self.embed_images([source], pick, mirror_later=mirror_later)[0]
        if result.error is not None:
            raise result.error
        return result

    def embed_images(self, sources: Sequence[ImageSource], pick: Pick = Pick.one, *,
                     chunk: int = 64, progress: Callable[[int], None] | None = None,
                     times: StageTimes | None = None, keep_faces: bool = False,
                     gate: QualityGate | None = None,
                     mirror_later: bool = False) -> list[FaceResult]:
        """Embed one face per source. Failures are returned per item, never raised, so one bad
        file cannot stop a batch. Decoding runs in threads; detection and encoding in
        batches. ``keep_faces`` keeps each face's chip and a loose crop (stored face crops);
        ``gate`` checks each face before it is encoded (a refused face is a LowQuality
        error, never encoded)."""
        if pick is Pick.all:
            raise ValueError("embed_images gives one face per source; use embed_faces")
        return [r[0] for r in self.embed_faces(sources, pick, chunk=chunk, progress=progress,
                                               times=times, keep_faces=keep_faces,
                                               gate=gate, mirror_later=mirror_later)]

    def embed_faces(self, sources: Sequence[ImageSource], pick: Pick = Pick.all, *,
                    chunk: int = 64, progress: Callable[[int], None] | None = None,
                    times: StageTimes | None = None, keep_faces: bool = False,
                    gate: QualityGate | None = None,
                    mirror_later: bool = False) -> list[list[FaceResult]]:
        """Embed the faces ``pick`` selects in each source (every usable face by default):
        one list per source, holding one result per face, or a single result carrying the
        error that stopped that source. ``mirror_later``: where the view preset has a
        ``mirror_band``, the mirrored views are not encoded yet; each result's embedding is
        its first views' and :meth:`add_mirror` completes the faces a decision needs it
        for."""
        times = times or StageTimes()
        results: list[list[FaceResult]] = [[FaceResult(source_name(s))] for s in sources]
        # decoding overlaps on two threads for batches; one photo (a server request)
        # decodes in place rather than pay for starting and joining threads
        with (ThreadPoolExecutor(max_workers=2) if len(sources) > 1 else _InPlace()) as pool:
            for start in range(0, len(sources), chunk):
                part = range(start, min(start + chunk, len(sources)))
                self._embed_chunk(sources, results, part, pick, pool, times, keep_faces,
                                  gate, mirror_later)
                if progress:
                    progress(len(part))
        return results

    def _embed_chunk(self, sources: Sequence[ImageSource], results: list[list[FaceResult]],
                     part: range, pick: Pick, pool: ThreadPoolExecutor | _InPlace,
                     times: StageTimes, keep_faces: bool = False,
                     gate: QualityGate | None = None, mirror_later: bool = False) -> None:
        t = time.perf_counter()
        images: dict[int, np.ndarray] = {}
        for i, outcome in zip(part, pool.map(_try_load, (sources[i] for i in part))):
            if isinstance(outcome, FaceIDError):
                results[i][0].error = outcome
            else:
                images[i] = outcome
        t = times.add("decode", t)
        found = self.detector.detect_batch(list(images.values()))
        t = times.add("detect", t)
        chips, owners = [], []
        for (i, image), faces in zip(images.items(), found):
            name = results[i][0].source
            try:
                chosen = pick_faces(faces, image.shape, pick, min_size=self.min_face,
                                    name=name)
            except FaceIDError as exc:
                results[i][0].error = exc
                continue
            results[i] = [FaceResult(name, face=face) for face in chosen]
            for r in results[i]:
                if gate is not None:
                    r.quality = gate.assess(r.face, partial(self.chip, image, r.face))
                    if r.quality.reason is not None:
                        r.error = LowQuality(f"{name}: {r.quality.reason}")
                        continue
                chips.append(self.view_chips(image, r.face))
                if keep_faces:
                    r.crop = loose_crop(image, r.face)
                owners.append(r)
        t = times.add("align", t)
        if chips:
            views = np.stack(chips)
            later = mirror_later and self.views.flip and self.views.mirror_band is not None
            sums = self.encoder.view_sums(views, self.views.flip and not later)
            for r, total, own in zip(owners, sums, views):
                r.embedding = total / np.linalg.norm(total)
                if later:
                    r.view_sum, r.mirror = total, np.ascontiguousarray(mirrored(own))
        times.add("embed", t)

    def add_mirror(self, results: Sequence[FaceResult]) -> None:
        """Encode the mirrored views left for later in ``results`` (one batch) and make each
        embedding what both views give, as if they had been encoded together."""
        pending = [r for r in results if r.mirror is not None]
        if not pending:
            return
        sums = self.encoder.view_sums(np.stack([r.mirror for r in pending]))
        for r, later in zip(pending, sums):
            total = r.view_sum + later
            r.embedding = total / np.linalg.norm(total)
            r.mirror = r.view_sum = None

    def compare_embeddings(self, a: np.ndarray, b: np.ndarray) -> Comparison:
        d = float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
        return Comparison(d, self.tau, d <= self.tau, float(self.views.probability_same(d)))

    def compare(self, a: ImageSource, b: ImageSource, pick: Pick = Pick.one) -> Comparison:
        """1:1 verification of the faces in two images."""
        ra, rb = self.embed_images([a, b], pick)
        for r in (ra, rb):
            if r.error is not None:
                raise r.error
        return self.compare_embeddings(ra.embedding, rb.embedding)


def loose_crop(image: np.ndarray, face: Face, context: float = 2.0,
               max_side: int = 256) -> np.ndarray:
    """A square crop ``context`` times the face box, at most ``max_side`` px: enough context
    for the detector to find the face again when a gallery is re-embedded."""
    x0, y0, x1, y1 = face.box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * context / 2
    h, w = image.shape[:2]
    l, t = int(max(0, cx - half)), int(max(0, cy - half))
    r, b = int(min(w, cx + half)), int(min(h, cy + half))
    crop = image[t:b, l:r]
    scale = max_side / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)),
                                 max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def _try_load(source: ImageSource) -> np.ndarray | FaceIDError:
    try:
        return load_image(source)
    except FaceIDError as exc:
        return exc
