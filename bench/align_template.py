"""Derive and choose the MTCNN landmark template for the dlib ResNet chip, by measurement.

1. Reproduce dlib's own alignment (HOG detector, 5-point shape predictor, get_face_chip with
   padding 0.25 at 150 px, as face_recognition does) on N LFW View 1 training images; run
   MTCNN on each dlib chip and average the five landmarks: that is where dlib's pipeline
   puts MTCNN's points, i.e. the chip the network was trained on.
2. Score that template and scaled variants (and the ArcFace 112-px template scaled to 150 px)
   by verification accuracy on LFW View 1 pairsDevTrain (2,200 pairs; View 2 is kept for
   the final report), using MTCNN + the candidate template + our encoder.

Needs dlib-bin (a test-only dependency). Usage:
    .venv/bin/python -m bench.align_template --lfw ../shared/datasets/lfw [--n 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.dlib_peer import DlibPeer
from faceid.align import align_face
from faceid.detection import FaceDetector, Pick, pick_face
from faceid.encoder import Encoder
from faceid.imageio import load_image
from faceid.metrics import best_threshold, kfold_accuracy
from faceid.modelfile import load_model_info
from faceid.pairs import read_pairs

ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])


def dlib_chip_landmarks(files: list[Path], detector: FaceDetector) -> np.ndarray:
    peer = DlibPeer()
    pad = 50
    points = []
    for f in tqdm(files, desc="dlib chips"):
        img = load_image(f)
        rect = peer.detect(img)
        if rect is None:
            continue
        chip = peer.chip(img, rect)
        framed = np.pad(chip, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        faces = detector.detect(framed)
        if len(faces) >= 1:
            face = pick_face(faces, framed.shape, Pick.center)
            points.append(face.landmarks - pad)
    return np.array(points)


def score(template: np.ndarray, weights: np.ndarray | None, images: dict[Path, np.ndarray],
          faces: dict, pairs, encoder: Encoder) -> dict:
    keys = [k for k in images if k in faces]
    chips = np.stack([align_face(images[k], faces[k].landmarks, template, 150, weights)
                      for k in keys])
    emb = dict(zip(keys, encoder.embed(chips)))
    ok = [p for p in pairs if p.a in emb and p.b in emb]
    d = np.array([np.linalg.norm(emb[p.a] - emb[p.b]) for p in ok])
    y = np.array([p.label for p in ok])
    folds = np.arange(len(ok)) % 10
    thr, acc = best_threshold(d, y)
    return {"pairs": len(ok), "best_accuracy": acc, "threshold": thr,
            "cv10_accuracy": kfold_accuracy(d, y, folds)["mean_accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default="../shared/datasets/lfw")
    ap.add_argument("--n", type=int, default=400, help="images used to derive the template")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    t0 = time.time()
    pairs = read_pairs(Path(args.lfw) / "pairsDevTrain.txt", args.lfw)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    detector = FaceDetector()
    rng = np.random.default_rng(0)
    sample = [files[i] for i in rng.choice(len(files), args.n, replace=False)]
    pts = dlib_chip_landmarks(sample, detector)
    mean = pts.mean(0)
    spread = pts.std(0).mean(1)
    print(f"template from {len(pts)} dlib chips (std px per point: "
          f"{np.round(spread, 2).tolist()}):\n{np.round(mean, 3).tolist()}")

    images, faces = {}, {}
    for f in tqdm(files, desc="detect"):
        images[f] = load_image(f)
    keys = list(images)
    for i in tqdm(range(0, len(keys), 64), desc="mtcnn"):
        part = keys[i:i + 64]
        for k, fs in zip(part, detector.detect_batch([images[k] for k in part])):
            if fs:
                faces[k] = pick_face(fs, images[k].shape, Pick.center)
    encoder = Encoder(load_model_info())
    centre = mean.mean(0)
    inverse_var = 1 / spread ** 2
    candidates = {"dlib-chip mean": (mean, None),
                  "arcface-112 scaled to 150": (ARCFACE_112 * 150 / 112, None),
                  "dlib-chip mean, weights 1/var": (mean, inverse_var / inverse_var.max()),
                  "dlib-chip mean, eyes 1 nose+mouth 0.3": (mean, np.array([1, 1, .3, .3, .3])),
                  "dlib-chip mean, eyes+nose only": (mean, np.array([1, 1, 1, 0, 0]))}
    for s in (0.94, 0.97, 1.03, 1.06):
        candidates[f"dlib-chip mean x{s}"] = (centre + (mean - centre) * s, None)
    results = {}
    for name, (tpl, w) in candidates.items():
        results[name] = {"template": np.round(tpl, 3).tolist(),
                         "weights": None if w is None else np.round(w, 4).tolist(),
                         **score(tpl, w, images, faces, pairs, encoder)}
        r = results[name]
        print(f"{name:28s} best-acc {r['best_accuracy']:.4f}  cv10 {r['cv10_accuracy']:.4f}  "
              f"thr {r['threshold']:.3f}  pairs {r['pairs']}")
    best = max(results, key=lambda k: (results[k]["cv10_accuracy"], results[k]["best_accuracy"]))
    print(f"chosen: {best}  ({time.time() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"derived_from": len(pts), "results": results,
                                         "chosen": best}, indent=2))


if __name__ == "__main__":
    main()
