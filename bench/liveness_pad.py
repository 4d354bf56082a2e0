"""MiniFASNet passive liveness (``faceid.antispoof.PassiveLiveness``) on the REAL attacks of
``pad-dev/``, and the MTCNN-box -> crop mapping (:class:`~faceid.antispoof.BoxMap`) chosen by
measurement on people kept apart from the ones reported. Development figures: 8 + 2 people,
one print type, two replays.

    .venv/bin/python -m bench.liveness_pad --json reports/liveness-pad.json \\
        [--pad ../shared/datasets/pad-dev] [--detector yunet]

Data
* Every manifest row. NUAA images (8 people, live + hand-held print) are read as they are;
  the four videos (two people, live + replay) every 3rd frame (``VIDEO_EVERY``) through
  OpenCV. faceid's MTCNN (``FaceDetector`` defaults) finds the faces, or with ``--detector
  yunet`` the door's YuNet (``make_detector("yunet", video=True)``); the largest is scored.
  The REPORT set is also measured at the shipped operating point
  (``faceid/models/minifasnet/operating_point.json``, chosen on MTCNN boxes), which is what
  a door on the other detector runs with.
  A frame without a face is counted and reported, never scored (it decides nothing either
  way: the door would not have seen anyone).
* Boxes are cached in ``reports/cache/pad-dev-boxes.json`` and scores per map in
  ``reports/cache/pad-dev-scores.json`` (dropped when the weights or ``antispoof.py`` change;
  delete the box cache after changing the detector).

Protocol (people-disjoint; ``CHOOSE_PEOPLE`` / ``REPORT_PEOPLE`` are fixed here, not drawn)
* CHOOSE set: NUAA 0001-0004 and the video person tranvanluyt2203 (replay on a laptop).
  REPORT set: NUAA 0005-0008 and lestari15 (replay on a phone). Each set has its own live,
  print and replay material; nothing of the REPORT set is used to choose anything.
* Each map of ``MAPS`` (identity, then wider / shorter / lowered boxes, simplest first) is run
  on the CHOOSE set. Its threshold is the highest at which per-frame BPCER <= 5% on the
  CHOOSE set's live frames (a face is live when P(live) >= threshold); the map chosen has
  the lowest per-frame APCER at that threshold, the worse of print and replay; a tie goes to
  the earlier (simpler) map in ``MAPS``. The operating threshold is the chosen map's. The
  table also gives each map's BPCER at APCER 0 (live frames at or below the highest attack
  score), for information only: it takes no part in the choice.
* The REPORT set (and, labelled as such, all data) is then measured at that map and
  threshold, ISO/IEC 30107-3 style: APCER per attack type (print, replay) and BPCER, per
  frame and per presentation (the manifest's ``presentation``; its score is the mean of its
  frame scores over the whole presentation, decided at the same threshold). Every rate comes
  with k/n and a one-sided 95% Clopper-Pearson upper bound (the rule of three's exact form).
* Time per face: median ms of ``PassiveLiveness.score`` (crop + both networks) with the
  chosen map, one thread, on ``TIMING_FACES`` NUAA faces, the first (which loads the
  weights) untimed.

Result (first run): at BPCER 5% every map but one has APCER 0/408 print and 0/211 replay on
the CHOOSE set, so the tie rule chose ``IDENTITY``, threshold 0.4564 (the maps differ in
margin, not in errors here; see the BPCER-at-APCER-0 column of the output).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.stats import beta
from tqdm import tqdm

from bench.lfw_dlib_reference import write_json
from faceid import antispoof
from faceid.antispoof import IDENTITY, BoxMap, PassiveLiveness
from faceid.detection import FaceDetector, Pick, pick_face
from faceid.detectors import Detector, make_detector
from faceid.door.liveness import PassiveCheck
from faceid.imageio import load_image
from faceid.door.sources import read_frames

VIDEO_EVERY = 3
TARGET_BPCER = 0.05
CONFIDENCE = 0.95
ATTACKS = ("print", "replay")
TIMING_FACES = 100
CHOOSE_PEOPLE = frozenset({"nuaa0001", "nuaa0002", "nuaa0003", "nuaa0004", "tranvanluyt2203"})
REPORT_PEOPLE = frozenset({"nuaa0005", "nuaa0006", "nuaa0007", "nuaa0008", "lestari15"})
CACHE = Path("reports/cache")

# Simplest first (ties go to the earlier map): the MTCNN box as it is; one change at a time
# (wider, shorter, lowered); then wider-and-shorter, as RetinaFace's boxes are, unshifted and
# moved down (MTCNN's box reaches higher up the forehead).
MAPS: tuple[BoxMap, ...] = (
    IDENTITY,
    BoxMap(width=1.1), BoxMap(width=1.2),
    BoxMap(height=0.9), BoxMap(height=0.85),
    BoxMap(shift_y=0.05), BoxMap(shift_y=0.1),
    *(BoxMap(w, h, s) for s in (0.0, 0.05, 0.1) for w in (1.1, 1.2) for h in (0.9, 0.85)),
)


@dataclass(frozen=True)
class Frame:
    """One read frame (an image, or one sampled video frame) and the face scored in it."""

    id: str
    person: str
    presentation: str
    label: str
    box: tuple[float, float, float, float] | None


def map_name(box_map: BoxMap) -> str:
    """A short, stable name for a map (the cache and the tables use it)."""
    if box_map == IDENTITY:
        return "identity"
    return f"w{box_map.width:g} h{box_map.height:g} dy{box_map.shift_y:+g}"


def read_manifest(pad: Path) -> list[dict[str, str]]:
    """The manifest's rows, every one of them (people outside both sets would be a bug in
    the split, so they are refused rather than silently dropped)."""
    with open(pad / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stray = {r["person"] for r in rows} - CHOOSE_PEOPLE - REPORT_PEOPLE
    if stray:
        raise SystemExit(f"people in neither the choose nor the report set: {sorted(stray)}")
    return rows


def frames_of(pad: Path, row: dict[str, str]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, RGB) of a manifest row: an image is frame 0; a video gives every
    VIDEO_EVERY-th frame (neighbouring frames are near copies and add little but time)."""
    path = pad / row["path"]
    if row["kind"] == "image":
        yield 0, load_image(path)
    else:
        yield from read_frames(str(path), every=VIDEO_EVERY)


def largest_box(detector: Detector, image: np.ndarray) -> list[float] | None:
    """The largest face's box, or None when MTCNN finds no face."""
    faces = detector.detect(image)
    return list(pick_face(faces, image.shape, Pick.largest).box) if faces else None


def score_cache_key() -> str:
    """What the cached scores depend on besides the boxes: the weights (through the model
    file, which records their hashes) and the crop code."""
    h = hashlib.sha256()
    for path in (antispoof.MODEL_DIR / antispoof.MODEL_FILE, Path(antispoof.__file__)):
        h.update(path.read_bytes())
    return f"{h.hexdigest()}/every{VIDEO_EVERY}"


def load_cache(path: Path, key: str) -> dict:
    """A cache's entries when it was written under ``key``, else empty (start over)."""
    if path.exists():
        doc = json.loads(path.read_text())
        if doc.get("key") == key:
            return doc["entries"]
    return {}


def collect(pad: Path, rows: list[dict[str, str]], detector_name: str = "mtcnn"
            ) -> tuple[list[Frame], dict[str, dict[str, float]]]:
    """Every frame (with its largest face's box, or None) and, per map, P(live) per frame
    id; only what the caches lack is decoded, detected and scored. Caches (one pair per
    detector) are saved even when interrupted, so a long run is never lost."""
    box_key, score_key = f"every{VIDEO_EVERY}", score_cache_key()
    suffix = "" if detector_name == "mtcnn" else f"-{detector_name}"
    box_cache = CACHE / f"pad-dev-boxes{suffix}.json"
    score_cache = CACHE / f"pad-dev-scores{suffix}.json"
    boxes: dict[str, dict[str, list[float] | None]] = load_cache(box_cache, box_key)
    scores: dict[str, dict[str, float]] = load_cache(score_cache, score_key)
    for m in MAPS:
        scores.setdefault(map_name(m), {})
    detector = (FaceDetector() if detector_name == "mtcnn"
                else make_detector(detector_name, video=True))
    models = {map_name(m): PassiveLiveness(box_map=m) for m in MAPS}
    try:
        for row in tqdm(rows, desc="pad-dev", unit="row"):
            row_boxes = boxes.get(row["path"])
            if row_boxes is not None and all(
                    f"{row['path']}#{i}" in scores[name]
                    for i, box in row_boxes.items() if box for name in models):
                continue
            row_boxes = dict(row_boxes or {})
            for index, image in frames_of(pad, row):
                fid = f"{row['path']}#{index}"
                if str(index) not in row_boxes:
                    row_boxes[str(index)] = largest_box(detector, image)
                box = row_boxes[str(index)]
                for name, model in models.items():
                    if box and fid not in scores[name]:
                        scores[name][fid] = model.score(image, box)
            boxes[row["path"]] = row_boxes  # only once the whole video has been read
    finally:
        write_json(box_cache, {"key": box_key, "entries": boxes})
        write_json(score_cache, {"key": score_key, "entries": scores})
    frames = [Frame(f"{r['path']}#{i}", r["person"], r["presentation"], r["label"],
                    tuple(box) if box else None)
              for r in rows for i, box in sorted(boxes[r["path"]].items(), key=lambda e: int(e[0]))]
    return frames, scores


def rate(k: int, n: int) -> dict[str, float | int | None]:
    """k errors in n trials: the rate and its one-sided 95% Clopper-Pearson upper bound."""
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "upper95": None}
    upper = 1.0 if k == n else float(beta.ppf(CONFIDENCE, k + 1, n - k))
    return {"k": k, "n": n, "rate": k / n, "upper95": upper}


def threshold_at_bpcer(live: np.ndarray, target: float = TARGET_BPCER) -> float:
    """The highest threshold refusing at most ``target`` of ``live`` (accept: score >= t).
    Taking the highest such threshold spends the whole BPCER budget on lowering APCER."""
    ordered = np.sort(live)
    return float(ordered[int(np.floor(target * len(ordered) + 1e-9))])


def measures(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, dict]:
    """APCER per attack type (attacks accepted) and BPCER (live refused) at ``threshold``."""
    out = {f"apcer_{a}": rate(int((scores[labels == a] >= threshold).sum()),
                              int((labels == a).sum())) for a in ATTACKS}
    out["bpcer"] = rate(int((scores[labels == "live"] < threshold).sum()),
                        int((labels == "live").sum()))
    return out


def presentation_scores(frames: list[Frame], scores: dict[str, float]) -> dict[str, dict]:
    """Per presentation: its label, person, number of scored frames and mean P(live)."""
    by: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, Frame] = {}
    for f in frames:
        if f.box:
            by[f.presentation].append(scores[f.id])
            meta[f.presentation] = f
    return {p: {"label": meta[p].label, "person": meta[p].person, "frames": len(v),
                "score": float(np.mean(v))} for p, v in sorted(by.items())}


def evaluate(frames: list[Frame], scores: dict[str, float], threshold: float) -> dict:
    """Per-frame and per-presentation measures of the scored frames at ``threshold``."""
    scored = [f for f in frames if f.box]
    pres = presentation_scores(frames, scores)
    return {
        "per_frame": measures(np.array([f.label for f in scored]),
                              np.array([scores[f.id] for f in scored]), threshold),
        "per_presentation": measures(np.array([p["label"] for p in pres.values()]),
                                     np.array([p["score"] for p in pres.values()]), threshold),
        "presentations": pres,
    }


def bpcer_at_zero_apcer(live: np.ndarray, attacks: np.ndarray) -> dict:
    """Live frames refused by the lowest threshold that accepts no attack frame: the margin
    between the classes, which still ranks maps when APCER at BPCER 5% is 0 for all."""
    return {"attack_max": float(attacks.max()), **rate(int((live <= attacks.max()).sum()),
                                                       len(live))}


def choose(frames: list[Frame], scores: dict[str, dict[str, float]]) -> tuple[list[dict], int]:
    """Every map's CHOOSE-set row (its BPCER-5% threshold and the measures there) and the
    index of the map chosen: lowest worst-attack per-frame APCER, ties to the simpler.
    Each row also has BPCER at APCER 0, for information (it does not take part)."""
    live = [f.id for f in frames if f.box and f.label == "live"]
    attacks = [f.id for f in frames if f.box and f.label in ATTACKS]
    table = []
    for m in MAPS:
        name = map_name(m)
        live_scores = np.array([scores[name][i] for i in live])
        t = threshold_at_bpcer(live_scores)
        row = {"map": name, "box_map": asdict(m), "threshold": t,
               **evaluate(frames, scores[name], t)}
        row["worst_apcer"] = max(row["per_frame"][f"apcer_{a}"]["rate"] for a in ATTACKS)
        row["bpcer_at_zero_apcer"] = bpcer_at_zero_apcer(
            live_scores, np.array([scores[name][i] for i in attacks]))
        table.append(row)
    best = min(range(len(table)), key=lambda i: (table[i]["worst_apcer"], i))
    return table, best


def face_ms(pad: Path, frames: list[Frame], box_map: BoxMap) -> dict[str, float | int]:
    """Median ms per face of ``PassiveLiveness.score`` (both crops and networks) on up to
    TIMING_FACES NUAA faces spread over the set, after one untimed call loads the weights."""
    faces = [f for f in frames if f.box and f.id.startswith("nuaa/")]
    faces = faces[::max(1, len(faces) // TIMING_FACES)][:TIMING_FACES]
    model = PassiveLiveness(box_map=box_map)
    times = []
    for i, f in enumerate(faces):
        image = load_image(pad / f.id.split("#")[0])
        start = time.perf_counter()
        model.score(image, f.box)
        if i:
            times.append(1000 * (time.perf_counter() - start))
    return {"median_ms": float(np.median(times)), "faces": len(times)}


def no_face_counts(frames: list[Frame]) -> dict[str, dict[str, int]]:
    """Per person and label: frames read and frames where no face was found."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"frames": 0, "no_face": 0})
    for f in frames:
        c = out[f"{f.person} {f.label}"]
        c["frames"] += 1
        c["no_face"] += f.box is None
    return dict(sorted(out.items()))


def person_errors(frames: list[Frame], scores: dict[str, float], threshold: float) -> dict:
    """Per person and label, the share of scored frames decided wrongly: shows whether one
    person or one presentation carries the error rates."""
    out: dict[str, dict] = {}
    for key in sorted({(f.person, f.label) for f in frames}):
        s = np.array([scores[f.id] for f in frames if f.box and (f.person, f.label) == key])
        wrong = int((s < threshold).sum() if key[1] == "live" else (s >= threshold).sum())
        out[" ".join(key)] = {**rate(wrong, len(s)),
                              "median_score": float(np.median(s)) if len(s) else None}
    return out


def fmt(r: dict) -> str:
    """A rate as 'k/n = r% (<= u%)'."""
    if r["n"] == 0:
        return "n/a"
    return f"{r['k']}/{r['n']} = {100 * r['rate']:.1f}% (<= {100 * r['upper95']:.1f}%)"


def print_measures(title: str, result: dict) -> None:
    """Per-frame and per-presentation APCER / BPCER lines of one evaluated set."""
    print(f"\n{title}")
    print(f"  {'':14s}{'per frame':34s}per presentation")
    for key, label in (("apcer_print", "APCER print"), ("apcer_replay", "APCER replay"),
                       ("bpcer", "BPCER")):
        print(f"  {label:14s}{fmt(result['per_frame'][key]):34s}"
              f"{fmt(result['per_presentation'][key])}")


def print_report(result: dict) -> None:
    """The human tables: the choice, the report set, all data, failures and timing."""
    print("pad-dev (REAL attacks; development figures). Rates: k/n = rate (one-sided 95% "
          "Clopper-Pearson upper bound)")
    print(f"video: 1 frame in {VIDEO_EVERY} read; frames with no face (not scored):")
    for key, c in result["no_face"].items():
        if c["no_face"]:
            print(f"  {key:24s}{c['no_face']}/{c['frames']}")
    total = sum(c["no_face"] for c in result["no_face"].values())
    print(f"  total {total}/{sum(c['frames'] for c in result['no_face'].values())}")
    print(f"\nCHOOSE set {sorted(CHOOSE_PEOPLE)}: per map, threshold at per-frame "
          f"BPCER <= {100 * TARGET_BPCER:g}%")
    print(f"  {'map':22s}{'thresh':>8s}  {'APCER print':30s}{'APCER replay':30s}"
          f"{'BPCER':30s}BPCER at APCER 0 (max attack score)")
    for i, row in enumerate(result["choose_table"]):
        pf = row["per_frame"]
        mark = "*" if i == result["chosen"]["index"] else " "
        zero = row["bpcer_at_zero_apcer"]
        print(f"{mark} {row['map']:22s}{row['threshold']:8.4f}  {fmt(pf['apcer_print']):30s}"
              f"{fmt(pf['apcer_replay']):30s}{fmt(pf['bpcer']):30s}"
              f"{fmt(zero)} ({zero['attack_max']:.4f})")
    chosen = result["chosen"]
    print(f"\nchosen map: {chosen['map']} {chosen['box_map']}, threshold {chosen['threshold']:.4f}")
    print_measures(f"REPORT set {sorted(REPORT_PEOPLE)} (map {chosen['map']}, "
                   f"threshold {chosen['threshold']:.4f})", result["report"])
    print_measures("ALL data (choose + report; the choice was made on part of it)",
                   result["all"])
    print("\nREPORT set per person (frames decided wrongly, median P(live)):")
    for key, r in result["report_person_errors"].items():
        median = "n/a" if r["median_score"] is None else f"{r['median_score']:.3f}"
        print(f"  {key:24s}{fmt(r):34s}median {median}")
    print("\nREPORT set presentations decided wrongly:")
    wrong = [(p, v) for p, v in result["report"]["presentations"].items()
             if (v["score"] < chosen["threshold"]) == (v["label"] == "live")]
    for p, v in wrong or [("none", None)]:
        print(f"  {p}" + (f" ({v['label']}, {v['frames']} frames, mean {v['score']:.3f})"
                          if v else ""))
    shipped = result["shipped"]
    print_measures(f"REPORT set at the SHIPPED operating point (map {shipped['map']}, "
                   f"threshold {shipped['threshold']:.4f}), boxes from "
                   f"{result.get('detector', 'mtcnn')}", shipped)
    ms = result["time_per_face"]
    print(f"\nMiniFASNet time per face (crop + V2 + V1SE, 1 thread, median of {ms['faces']} "
          f"NUAA faces): {ms['median_ms']:.1f} ms")


def shipped_point(frames: list[Frame], scores: dict[str, dict[str, float]]) -> dict:
    """The REPORT set at the operating point that ships (its map and threshold), whatever
    this run's detector would have chosen."""
    check = PassiveCheck.load(None)
    box_map = check.scorer.box_map
    name = map_name(next(m for m in MAPS if m == box_map))
    return {"map": name, "threshold": check.threshold,
            **evaluate(frames, scores[name], check.threshold)}


def pad_arguments(doc: str | None, detector: bool = False) -> argparse.Namespace:
    """``--pad`` and ``--json``, the arguments every pad-dev benchmark takes (and
    ``--detector`` where the benchmark offers it)."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pad", type=Path, default=Path("../shared/datasets/pad-dev"))
    ap.add_argument("--json", type=Path)
    if detector:
        ap.add_argument("--detector", choices=("mtcnn", "yunet"), default="mtcnn")
    return ap.parse_args()


def main() -> None:
    args = pad_arguments(__doc__, detector=True)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frames, scores = collect(args.pad, read_manifest(args.pad), args.detector)
    choose_frames = [f for f in frames if f.person in CHOOSE_PEOPLE]
    report_frames = [f for f in frames if f.person in REPORT_PEOPLE]
    table, best = choose(choose_frames, scores)
    name, t = table[best]["map"], table[best]["threshold"]
    result = {
        "data": str(args.pad), "video_every": VIDEO_EVERY, "target_bpcer": TARGET_BPCER,
        "choose_people": sorted(CHOOSE_PEOPLE), "report_people": sorted(REPORT_PEOPLE),
        "no_face": no_face_counts(frames),
        "choose_table": table,
        "chosen": {"index": best, "map": name, "box_map": asdict(MAPS[best]), "threshold": t},
        "report": evaluate(report_frames, scores[name], t),
        "all": evaluate(frames, scores[name], t),
        "report_person_errors": person_errors(report_frames, scores[name], t),
        "shipped": shipped_point(report_frames, scores),
        "time_per_face": face_ms(args.pad, frames, MAPS[best]),
    }
    result["detector"] = args.detector
    print_report(result)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
