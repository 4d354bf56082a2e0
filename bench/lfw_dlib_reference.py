"""The peer on the same pairs: dlib's own pipeline (HOG detector with one upsample,
5-point shape predictor, get_face_chip 150 px / padding 0.25, ResNet descriptor, as
face_recognition runs it) scored on an LFW pair list, beside faceid's result on the same
list, so an accuracy gap can be told apart from a hard dataset. Needs dlib-bin (test-only).

    .venv/bin/python bench/lfw_dlib_reference.py --pairs ../shared/datasets/lfw/pairsDevTrain.txt \\
        --root ../shared/datasets/lfw [--jitter 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceid import metrics
from faceid.imageio import load_image
from faceid.modelfile import load_model_info, weights_path
from faceid.pairs import read_pairs
from faceid.pipeline import FaceID
from faceid.verify_pairs import labelled_distances, verify_pairs


def dlib_embeddings(files: list[Path], jitter: int) -> dict[Path, np.ndarray]:
    import dlib

    models = weights_path(load_model_info()).parent
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    out = {}
    for f in tqdm(files, desc="dlib"):
        img = load_image(f)
        dets = hog(img, 1)
        if not dets:
            continue
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
        d = min(dets, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        chip = dlib.get_face_chip(img, sp(img, d), size=150, padding=0.25)
        e = np.array(rec.compute_face_descriptor(chip, jitter))
        out[f] = e / np.linalg.norm(e)
    return out


def scores(d: np.ndarray, y: np.ndarray, n_pairs: int) -> dict:
    folds = np.arange(len(d)) % 10
    s = metrics.summary(d, y)
    return {"scored_pairs": int(len(d)), "failed_pairs": int(n_pairs - len(d)),
            "cv10_accuracy": metrics.kfold_accuracy(d, y, folds)["mean_accuracy"],
            "best_accuracy": s["best_accuracy"], "tar_at_far_1e-3": s["tar_at_far"],
            "eer": s["eer"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=Path("../shared/datasets/lfw/pairsDevTrain.txt"))
    ap.add_argument("--root", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--jitter", type=int, default=0, help="dlib's num_jitters")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    pairs = read_pairs(args.pairs, args.root)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    emb = dlib_embeddings(files, args.jitter)
    ok = [p for p in pairs if p.a in emb and p.b in emb]
    d_ref = np.array([np.linalg.norm(emb[p.a] - emb[p.b]) for p in ok])
    y_ref = np.array([p.label for p in ok])
    d_our, y_our = labelled_distances(verify_pairs(FaceID(), pairs))
    result = {"pairs_file": str(args.pairs), "pairs": len(pairs),
              "dlib": scores(d_ref, y_ref, len(pairs)), "faceid": scores(d_our, y_our, len(pairs))}
    for name in ("dlib", "faceid"):
        r = result[name]
        print(f"{name:7s} 10-fold acc {100 * r['cv10_accuracy']:.2f}%  best-threshold acc "
              f"{100 * r['best_accuracy']:.2f}%  TAR@FAR=1e-3 {100 * r['tar_at_far_1e-3']:.2f}%  "
              f"EER {100 * r['eer']:.2f}%  failed pairs {r['failed_pairs']}")
    print("(10-fold here: pairs assigned to folds round-robin; failed pairs are left out)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
