"""Training data: a folder of one sub-folder per identity (LFW layout), faces detected and
aligned once and cached on disk, so that epochs never re-run MTCNN.

Two cache levels under ``cache_dir``: ``landmarks.json`` (per image: the chosen face's five
MTCNN points, or why it failed; filled incrementally, so an interrupted build loses at most
one chunk) and ``chips-<key>.npy`` (uint8 chips of one size and template, rebuilt from the
landmarks in seconds). Chip sizes can therefore change between runs without re-detecting.

Bad input is counted, not fatal: an identity with one image cannot form a positive pair and
is skipped with a note; an unreadable image or one with no usable face is skipped and
counted. Only a data set that leaves nothing to train on raises :class:`TrainingDataError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceid.atomic import replacing, write_text
from faceid.align import align_face
from faceid.detection import FaceDetector, Pick, pick_face
from faceid.errors import FaceError, FaceIDError, InputError, TrainingDataError
from faceid.imageio import load_image
from faceid.pairs import read_pairs
from faceid.pipeline import DEFAULT_MIN_FACE

Progress = Callable[[int], None] | None


@dataclass
class Identity:
    name: str
    images: list[Path]


@dataclass
class ChipSet:
    """Aligned chips with an identity label each. ``names[labels[i]]`` is chip i's person;
    ``report`` counts what was skipped on the way and why."""

    chips: np.ndarray          # (N, S, S, 3) uint8
    labels: np.ndarray         # (N,) int64, 0..len(names)-1
    names: list[str]
    report: dict = field(default_factory=dict)

    def subset(self, identities: Sequence[int]) -> ChipSet:
        """The chips of the given identity indices, relabelled 0..len(identities)-1."""
        keep = np.asarray(sorted(identities))
        remap = np.full(len(self.names), -1)
        remap[keep] = np.arange(len(keep))
        mask = remap[self.labels] >= 0
        return ChipSet(self.chips[mask], remap[self.labels[mask]], [self.names[i] for i in keep],
                       {"identities": len(keep), "images": int(mask.sum())})


@dataclass
class PairSet:
    """Chips of the distinct images of a labelled pair list; ``ok[i]`` is False where image i
    gave no usable face (its pairs count as wrong in every score, as in ``faceid eval``)."""

    chips: np.ndarray          # (M, S, S, 3) uint8 (zeros where not ok)
    ok: np.ndarray             # (M,) bool
    a: np.ndarray              # (P,) index into chips
    b: np.ndarray
    labels: np.ndarray         # (P,) 1 same, 0 different
    source: str = ""


def read_people(path: str | Path) -> list[str]:
    """Names from an LFW people file (``peopleDevTrain.txt``, ``people.txt`` with folds:
    count lines are skipped) or a plain list of one name per line."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise TrainingDataError(f"{path}: cannot read people list ({exc})") from None
    names = []
    for line in lines:
        tok = line.split()
        if tok and not (len(tok) == 1 and tok[0].isdigit()):
            names.append(tok[0])
    return names


def scan_identities(root: str | Path, people: Sequence[str] | None = None) -> list[Identity]:
    """Every sub-folder of ``root`` (optionally only those named in ``people``) with its files,
    sorted by name so that runs are repeatable. Raises TrainingDataError when nothing is
    there at all."""
    root = Path(root)
    if not root.is_dir():
        raise TrainingDataError(f"{root}: training data folder not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if people is not None:
        wanted = set(people)
        folders = [p for p in folders if p.name in wanted]
    identities = [Identity(p.name, sorted(f for f in p.iterdir()
                                          if f.is_file() and not f.name.startswith(".")))
                  for p in folders]
    identities = [i for i in identities if i.images]
    if not identities:
        which = " named in the people list" if people is not None else ""
        raise TrainingDataError(f"{root}: no identity folders with images{which} "
                                "(expected one sub-folder of photos per person)")
    return identities


class LandmarkCache:
    """Per-image MTCNN landmarks (or the failure) in ``<dir>/landmarks.json``, keyed by the
    image's resolved path."""

    def __init__(self, cache_dir: str | Path, detector: FaceDetector | None = None,
                 min_face: float = DEFAULT_MIN_FACE) -> None:
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / "landmarks.json"
        self.entries: dict[str, dict] = json.loads(self.file.read_text()) if self.file.is_file() else {}
        self._detector = detector
        self.min_face = min_face

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector

    def ensure(self, paths: Sequence[Path], progress: Progress = None, chunk: int = 64) -> None:
        """Detect faces in the images not yet cached, saving after every chunk."""
        todo = list(dict.fromkeys(str(Path(p).resolve()) for p in paths
                                  if str(Path(p).resolve()) not in self.entries))
        if progress:
            progress(len(set(map(str, paths))) - len(todo))
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            images = {}
            for p in part:
                try:
                    images[p] = load_image(p)
                except FaceIDError as exc:
                    self.entries[p] = _failure(exc)
            for (p, img), faces in zip(images.items(),
                                       self.detector.detect_batch(list(images.values()))):
                try:
                    face = pick_face(faces, img.shape, Pick.center, min_size=self.min_face, name=p)
                    self.entries[p] = {"landmarks": np.round(face.landmarks, 3).ravel().tolist()}
                except FaceIDError as exc:
                    self.entries[p] = _failure(exc)
            self._save()
            if progress:
                progress(len(part))

    def _save(self) -> None:
        write_text(self.file, json.dumps(self.entries))

    def get(self, path: Path) -> dict:
        return self.entries[str(Path(path).resolve())]

    def chips(self, paths: Sequence[Path], size: int, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chips (N, size, size, 3) uint8, ok (N,) bool) for ``paths``, cached per
        (paths, size, template). Call :meth:`ensure` first."""
        key = hashlib.sha1(json.dumps([size, np.round(template, 3).tolist(),
                                       [str(Path(p).resolve()) for p in paths]]).encode()).hexdigest()[:16]
        file = self.dir / f"chips-{size}-{key}.npz"
        if file.is_file():
            with np.load(file) as z:
                return z["chips"], z["ok"]
        chips = np.zeros((len(paths), size, size, 3), np.uint8)
        ok = np.zeros(len(paths), bool)
        for i, p in enumerate(paths):
            entry = self.get(p)
            if "landmarks" not in entry:
                continue
            img = load_image(p)
            chips[i] = align_face(img, np.reshape(entry["landmarks"], (5, 2)), template, size)
            ok[i] = True
        with replacing(file, "wb") as fh:
            np.savez(fh, chips=chips, ok=ok)
        return chips, ok


def _failure(exc: FaceIDError) -> dict:
    kind = "unreadable" if isinstance(exc, InputError) else (
        "no_face" if isinstance(exc, FaceError) else "error")
    return {"error": exc.message, "kind": kind}


def load_training_set(root: str | Path, cache: LandmarkCache, size: int, template: np.ndarray,
                      *, people: Sequence[str] | None = None, progress: Progress = None,
                      notes: list[str] | None = None,
                      max_identities: int | None = None) -> ChipSet:
    """Chips and labels of every identity in ``root`` with at least two usable faces.

    ``notes`` receives one line per skipped identity or image group (what the CLI prints);
    ``max_identities`` keeps the first N identities with two or more images (tiny runs)."""
    notes = notes if notes is not None else []
    identities = scan_identities(root, people)
    single = [i.name for i in identities if len(i.images) < 2]
    usable = [i for i in identities if len(i.images) >= 2][:max_identities]
    for name in single[:5]:
        notes.append(f"{name}: one image, cannot form a positive pair; skipped")
    if len(single) > 5:
        notes.append(f"... and {len(single) - 5} more identities with one image skipped")
    paths = [p for i in usable for p in i.images]
    cache.ensure(paths, progress)
    counts = {"unreadable": 0, "no_face": 0, "error": 0}
    kept: list[tuple[Identity, list[Path]]] = []
    for ident in usable:
        good = []
        for p in ident.images:
            entry = cache.get(p)
            if "landmarks" in entry:
                good.append(p)
            else:
                counts[entry["kind"]] += 1
        if len(good) >= 2:
            kept.append((ident, good))
        else:
            notes.append(f"{ident.name}: fewer than two usable faces; skipped")
    if counts["unreadable"]:
        notes.append(f"{counts['unreadable']} unreadable image(s) skipped")
    if counts["no_face"]:
        notes.append(f"{counts['no_face']} image(s) without a usable face skipped")
    if not kept:
        raise TrainingDataError(f"{root}: no identity has two usable face images; "
                                "nothing to train on")
    all_paths = [p for _, good in kept for p in good]
    chips, ok = cache.chips(all_paths, size, template)
    labels = np.concatenate([np.full(len(good), k) for k, (_, good) in enumerate(kept)])
    report = {"root": str(root), "identities": len(kept), "images": len(all_paths),
              "skipped_single_image_identities": len(single),
              "skipped_identities_after_detection": len(usable) - len(kept),
              "unreadable_images": counts["unreadable"], "no_face_images": counts["no_face"]}
    assert ok.all()
    return ChipSet(chips, labels.astype(np.int64), [i.name for i, _ in kept], report)


def load_pair_set(pairs_file: str | Path, root: str | Path | None, cache: LandmarkCache,
                  size: int, template: np.ndarray, progress: Progress = None) -> PairSet:
    """The labelled pair list's images as chips (a faceid pair list: CSV or LFW pairs)."""
    pairs = [p for p in read_pairs(pairs_file, root) if p.label is not None]
    if not pairs or len({p.label for p in pairs}) != 2:
        raise TrainingDataError(f"{pairs_file}: evaluation needs same and different pairs")
    images = list(dict.fromkeys(x for p in pairs for x in (p.a, p.b)))
    index = {p: i for i, p in enumerate(images)}
    missing = [p for p in images if not Path(p).is_file()]
    cache.ensure([p for p in images if p not in missing], progress)
    present = [p for p in images if p not in missing]
    chips_p, ok_p = cache.chips(present, size, template)
    chips = np.zeros((len(images), size, size, 3), np.uint8)
    ok = np.zeros(len(images), bool)
    where = np.array([index[p] for p in present], int)
    if len(where):
        chips[where], ok[where] = chips_p, ok_p
    return PairSet(chips, ok, np.array([index[p.a] for p in pairs]),
                   np.array([index[p.b] for p in pairs]),
                   np.array([p.label for p in pairs]), str(pairs_file))


def split_identities(n_identities: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """People-disjoint split: (train identities, held-out identities), ``fraction`` held out."""
    order = np.random.default_rng(seed).permutation(n_identities)
    n_val = int(round(n_identities * fraction))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def identity_pairs(labels: np.ndarray, max_positive: int, negatives: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled pairs among held-out chips: up to ``max_positive`` same-person pairs (all of
    them when fewer exist) and ``negatives`` random different-person pairs."""
    rng = np.random.default_rng(seed)
    pos = [(i, j) for lab in np.unique(labels) for k, i in enumerate(np.flatnonzero(labels == lab))
           for j in np.flatnonzero(labels == lab)[k + 1:]]
    if len(pos) > max_positive:
        pos = [pos[i] for i in rng.choice(len(pos), max_positive, replace=False)]
    a = rng.integers(0, len(labels), negatives * 3)
    b = rng.integers(0, len(labels), negatives * 3)
    keep = labels[a] != labels[b]
    neg = list(zip(a[keep][:negatives], b[keep][:negatives]))
    both = np.array(pos + neg, int).reshape(-1, 2)
    y = np.array([1] * len(pos) + [0] * len(neg))
    return both[:, 0], both[:, 1], y


def export_chips(path: str | Path, data: ChipSet, test: PairSet | None = None, *,
                 template: np.ndarray, quality: int = 92) -> Path:
    """Write a chip set (and optionally a test pair set) to one portable ``.npz``: each chip
    JPEG-encoded, so a training set travels to another machine (a GPU box without the raw
    dataset or MTCNN) at a few KB per face. ``template`` is recorded so a run can check the
    chips were aligned the way its model expects."""
    import cv2

    def encode(chips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blobs = [cv2.imencode(".jpg", c[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
                 for c in chips]
        return np.concatenate(blobs), np.cumsum([0] + [len(b) for b in blobs])

    arrays: dict[str, np.ndarray] = {}
    arrays["train_jpeg"], arrays["train_offsets"] = encode(data.chips)
    arrays["train_labels"] = data.labels
    arrays["names"] = np.array(data.names)
    arrays["template"] = np.asarray(template, np.float64)
    arrays["report"] = np.array(json.dumps(data.report))
    if test is not None:
        arrays["test_jpeg"], arrays["test_offsets"] = encode(test.chips)
        for k in ("ok", "a", "b", "labels"):
            arrays[f"test_{k}"] = getattr(test, k)
        arrays["test_source"] = np.array(test.source)
    path = Path(path)
    np.savez(path, **arrays)
    return path


def load_exported(path: str | Path, size: int, template: np.ndarray) -> tuple[ChipSet, PairSet | None]:
    """Read :func:`export_chips`' file; refuses chips of another size or alignment."""
    import cv2

    try:
        z = np.load(path)
    except (OSError, ValueError) as exc:
        raise TrainingDataError(f"{path}: not a readable chip file ({exc})") from None

    def decode(prefix: str) -> np.ndarray:
        blob, off = z[f"{prefix}_jpeg"], z[f"{prefix}_offsets"]
        chips = [cv2.imdecode(blob[off[i]:off[i + 1]], cv2.IMREAD_COLOR)[:, :, ::-1]
                 for i in range(len(off) - 1)]
        return np.ascontiguousarray(np.stack(chips)) if chips else np.zeros((0, size, size, 3), np.uint8)

    chips = decode("train")
    if chips.shape[1] != size or not np.allclose(z["template"], template, atol=1e-2):
        raise TrainingDataError(f"{path}: chips are {chips.shape[1]} px with another alignment "
                                f"than this model's {size} px template")
    data = ChipSet(chips, z["train_labels"].astype(np.int64), [str(n) for n in z["names"]],
                   json.loads(str(z["report"])))
    test = None
    if "test_jpeg" in z:
        test = PairSet(decode("test"), z["test_ok"], z["test_a"], z["test_b"], z["test_labels"],
                       str(z["test_source"]))
    return data, test
