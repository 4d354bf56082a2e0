"""Does the O-Net landmark refinement pay? Scores LFW pair lists with MTCNN's own landmarks
and with the refined ones (and, for the record, refined points averaged with those found on
the mirrored crop), one and two (mirror) encoder passes, and measures landmark error on faces
cut by the image frame.

    .venv/bin/python -m bench.landmarks --pairs ../shared/datasets/lfw/pairsDevTrain.txt \\
        ../shared/datasets/lfw/pairsDevTest.txt ../shared/datasets/lfw/pairs.txt --json reports/landmarks.json

Each image is detected once (the refinement changes points, never boxes or which face is
picked), so the variants differ only in where the chip's five points come from. Scoring as in
``bench.lfw_dlib_reference``: 10 folds, each fold's threshold from the other nine.

Frame test: ``--frame`` LFW portraits are cut at 15% of the face box from its left and top
edges, so the box leaves the image (a face close to a door camera); the error is the mean
distance of the five points to those found in the uncut image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.align_fusion import distances
from bench.lfw_dlib_reference import score_line, scores, write_json
from faceid.detection import Face, FaceDetector, Pick, pick_face
from faceid.errors import NoFace
from faceid.imageio import load_image
from faceid.pairs import lfw_image_dir, read_pairs
from faceid.pipeline import FaceID

MIRROR_ORDER = [1, 0, 2, 4, 3]  # a mirrored face's left eye is the original's right, etc.


def mirrored_refinement(detector: FaceDetector, img: np.ndarray, face: Face) -> np.ndarray:
    """The refined points found on the mirrored image, mapped back to the original."""
    w = img.shape[1]
    x1, y1, x2, y2 = face.box
    pts = detector.refine_landmarks(np.ascontiguousarray(img[:, ::-1]), np.array([[w - x2, y1, w - x1, y2]]))[0]
    pts[:, 0] = w - pts[:, 0]
    return pts[MIRROR_ORDER]


def landmark_variants(detector: FaceDetector, img: np.ndarray, face: Face) -> dict[str, np.ndarray]:
    refined = detector.refine_landmarks(img, np.array([face.box]))[0]
    return {"mtcnn": face.landmarks, "refined (default)": refined,
            "refined + mirrored crop": (refined + mirrored_refinement(detector, img, face)) / 2}


def pair_scores(fid: FaceID, raw: FaceDetector, pairs_file: Path, root: Path) -> dict:
    pairs = read_pairs(pairs_file, root)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    chips: dict[str, list[np.ndarray]] = {}
    keys = []
    for f in tqdm(files, desc=pairs_file.name, file=sys.stderr, disable=None):
        img = load_image(f)
        try:
            face = pick_face(raw.detect(img), img.shape, Pick.center)
        except NoFace:  # the pair is scored as failed
            continue
        keys.append(f)
        for name, pts in landmark_variants(raw, img, face).items():
            chips.setdefault(name, []).append(fid.chip(img, dataclasses.replace(face, landmarks=pts)))
    out: dict = {"pairs": len(pairs)}
    for name, stack in chips.items():
        stack = np.stack(stack)
        e = fid.encoder.embed(np.ascontiguousarray(np.concatenate([stack, stack[:, :, ::-1]])))
        for views, vec in (("1 view", e[:len(keys)]), ("mirror", e[:len(keys)] + e[len(keys):])):
            vec = vec / np.linalg.norm(vec, axis=1, keepdims=True)
            out[f"{name}, {views}"] = scores(distances(dict(zip(keys, vec)), pairs), pairs)
    return out


def frame_error(raw: FaceDetector, root: Path, n: int) -> dict:
    """Mean landmark error (px) on portraits cut by the frame, MTCNN points vs refined."""
    files = sorted(lfw_image_dir(root).glob("*/*_0001.jpg"))[:n]
    errors: dict[str, list[float]] = {"mtcnn": [], "refined (default)": []}
    missed = 0
    for f in tqdm(files, desc="frame", file=sys.stderr, disable=None):
        img = load_image(f)
        try:
            ref = pick_face(raw.detect(img), img.shape, Pick.center)
        except NoFace:
            continue
        truth = raw.refine_landmarks(img, np.array([ref.box]))[0]
        x1, y1, x2, y2 = ref.box
        dx, dy = int(x1 + 0.15 * (x2 - x1)), int(y1 + 0.15 * (y2 - y1))
        cut = np.ascontiguousarray(img[max(dy, 0):, max(dx, 0):])
        faces = raw.detect(cut)
        if not faces:
            missed += 1
            continue
        face = max(faces, key=lambda fc: fc.size)
        shift = np.array([max(dx, 0), max(dy, 0)])
        for name, pts in (("mtcnn", face.landmarks),
                          ("refined (default)", raw.refine_landmarks(cut, np.array([face.box]))[0])):
            errors[name].append(float(np.linalg.norm(pts + shift - truth, axis=1).mean()))
    return {"images": len(errors["mtcnn"]), "not_found_after_cut": missed,
            **{f"{k} mean px": round(float(np.mean(v)), 2) for k, v in errors.items()},
            **{f"{k} median px": round(float(np.median(v)), 2) for k, v in errors.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=Path, nargs="*", default=[Path("../shared/datasets/lfw/pairsDevTest.txt")])
    ap.add_argument("--root", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--frame", type=int, default=200, help="portraits for the frame-cut test (0: skip)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    fid = FaceID(views="standard")
    raw = FaceDetector(refine=False)  # MTCNN's own points; the variants are derived from them
    result: dict = {}
    if args.frame:
        result["frame_cut"] = frame_error(raw, args.root, args.frame)
        print("faces cut by the frame:", json.dumps(result["frame_cut"]))
    for pairs_file in args.pairs:
        result[pairs_file.name] = r = pair_scores(fid, raw, pairs_file, args.root)
        for name, s in r.items():
            if name != "pairs":
                print(pairs_file.name, score_line(name, s), flush=True)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
