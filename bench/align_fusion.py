"""Would dlib's own landmarks align better than our MTCNN template? Scores an LFW pair list
three ways with the same encoder: faceid's chip (MTCNN points onto the measured template,
plus its mirror = the ``standard`` preset), dlib's chip (dlib's 5-point shape predictor
started from dlib's HOG box where HOG finds the same face, else -- or always, with ``--box
mtcnn`` -- a box placed by the MTCNN points; then ``get_face_chip(150, 0.25)``; plus its
mirror), and the mean of all four embeddings. Needs dlib-bin (test-only); an experiment for issue 2's accuracy target, not a
pipeline faceid runs.

    .venv/bin/python -m bench.align_fusion --pairs ../shared/datasets/lfw/pairsDevTest.txt

The box placement (centre and size relative to the eye-to-mouth vector) is the median over
``--fit`` images of LFW View 1 *training* pairs where HOG finds a face, so no scored pair
informs it. Scoring as in ``bench.lfw_dlib_reference``: 10 folds, each fold's threshold from the other nine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.dlib_peer import DlibPeer
from bench.lfw_dlib_reference import score_line, scores, write_json
from faceid.detection import Face, Pick, pick_face
from faceid.errors import NoFace
from faceid.imageio import load_image
from faceid.pairs import Pair, read_pairs
from faceid.pipeline import FaceID


def eye_mouth_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(eye midpoint, unit vector eyes->mouth, its perpendicular, eye-to-mouth length)."""
    le, re, _, ml, mr = np.asarray(landmarks, np.float64)
    eye, mouth = (le + re) / 2, (ml + mr) / 2
    length = float(np.linalg.norm(mouth - eye)) or 1.0
    down = (mouth - eye) / length
    return eye, down, np.array([-down[1], down[0]]), length


class DlibChips:
    """dlib 5-point chips for faces found by MTCNN."""

    def __init__(self, fit_files: list[Path], fid: FaceID, use_hog: bool = True) -> None:
        self.peer = DlibPeer()
        self.fid = fid
        self.use_hog = use_hog
        rows = []
        for f in tqdm(fit_files, desc="fit box placement", leave=False):
            img = load_image(f)
            face, rect = self.face(img), self.peer.detect(img)
            if face is None or rect is None:
                continue
            eye, down, side, length = eye_mouth_frame(face.landmarks)
            c = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2]) - eye
            rows.append([c @ side / length, c @ down / length, (rect.right() - rect.left()) / length])
        self.placement = np.median(np.array(rows), axis=0)
        self.fitted_on = len(rows)

    def face(self, img: np.ndarray) -> Face | None:
        try:
            return pick_face(self.fid.detect(img), img.shape, Pick.center)
        except NoFace:  # the pair is scored as failed
            return None

    def chip(self, img: np.ndarray, face: Face) -> np.ndarray:
        """dlib's chip, from HOG's box when HOG finds this face (and ``use_hog``), else the
        box placed by the MTCNN points."""
        dlib = self.peer.dlib
        eye, down, side, length = eye_mouth_frame(face.landmarks)
        a, b, k = self.placement
        c = eye + a * length * side + b * length * down
        half = k * length / 2
        rect = dlib.rectangle(*(int(np.rint(v)) for v in (c[0] - half, c[1] - half, c[0] + half, c[1] + half)))
        hog = self.peer.detect(img) if self.use_hog else None
        if hog is not None and abs(hog.center().x - c[0]) < half / 1.5 and abs(hog.center().y - c[1]) < half / 1.5:
            rect = hog
        return dlib.get_face_chip(img, self.peer.sp(img, rect), size=150, padding=0.25)


def distances(emb: dict[Path, np.ndarray], pairs: list[Pair]) -> np.ndarray:
    """One distance per pair, NaN where an image had no face."""
    return np.array([np.linalg.norm(emb[p.a] - emb[p.b]) if p.a in emb and p.b in emb else np.nan
                     for p in pairs])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=Path, default=Path("../shared/datasets/lfw/pairsDevTest.txt"))
    ap.add_argument("--root", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--fit", type=int, default=400, help="View 1 training images for the box placement")
    ap.add_argument("--box", choices=("hog", "mtcnn"), default="hog",
                    help="hog: dlib's HOG box where it finds the face, else the placed box; "
                         "mtcnn: always the box placed by the MTCNN points (no HOG detector)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    fid = FaceID(views="standard")
    train = read_pairs(args.root / "pairsDevTrain.txt", args.root)
    dlib_chips = DlibChips(sorted({p.a for p in train} | {p.b for p in train})[:args.fit], fid,
                           use_hog=args.box == "hog")
    pairs = read_pairs(args.pairs, args.root)
    keys, ours, theirs = [], [], []
    for f in tqdm(sorted({p.a for p in pairs} | {p.b for p in pairs}), desc="chips"):
        img = load_image(f)
        face = dlib_chips.face(img)
        if face is None:
            continue
        keys.append(f)
        ours.append(fid.chip(img, face))
        theirs.append(dlib_chips.chip(img, face))
    views = {}
    for name, chips in (("faceid", np.stack(ours)), ("dlib", np.stack(theirs))):
        e = fid.encoder.embed(np.ascontiguousarray(np.concatenate([chips, chips[:, :, ::-1]])))
        views[name] = e[:len(keys)] + e[len(keys):]
    result = {"pairs_file": str(args.pairs), "pairs": len(pairs), "box": args.box,
              "box_placement": dlib_chips.placement.round(4).tolist(), "fitted_on": dlib_chips.fitted_on}
    for name, vec in (("faceid template + mirror (standard)", views["faceid"]),
                      ("dlib landmarks + mirror", views["dlib"]),
                      ("mean of all four", views["faceid"] + views["dlib"])):
        vec = vec / np.linalg.norm(vec, axis=1, keepdims=True)
        r = scores(distances(dict(zip(keys, vec)), pairs), pairs)
        result[name] = r
        print(score_line(name, r))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
