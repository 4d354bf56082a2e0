"""How the view presets were chosen: LFW View 1 training pairs (pairsDevTrain.txt, 2,200
pairs; View 2 stays untouched for the report), MTCNN once per image, then every candidate
set of views (template scales about the centre, with or without mirror images) encoded,
averaged and scored by best-threshold and 10-fold accuracy.

    .venv/bin/python -m bench.views --lfw ../shared/datasets/lfw [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceid.detection import Pick, pick_face
from faceid.imageio import load_image
from faceid.metrics import best_threshold, kfold_accuracy
from faceid.pairs import read_pairs
from faceid.pipeline import FaceID

CANDIDATES: dict[str, tuple[tuple[float, ...], bool]] = {
    "1 view (fast)": ((1.0,), False),
    "mirror (standard)": ((1.0,), True),
    "scales 0.96/1.00/1.04": ((0.96, 1.0, 1.04), False),
    "scales 1.00/1.04 + mirror (accurate)": ((1.0, 1.04), True),
    "scales 0.96/1.04 + mirror": ((0.96, 1.04), True),
    "scales 0.96/1.00/1.04 + mirror": ((0.96, 1.0, 1.04), True),
    "scales 0.92..1.08 (5) + mirror": ((0.92, 0.96, 1.0, 1.04, 1.08), True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    pairs = read_pairs(args.lfw / "pairsDevTrain.txt", args.lfw)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    fid = FaceID()
    images, faces = {}, {}
    for i in tqdm(range(0, len(files), 64), desc="detect"):
        part = files[i:i + 64]
        imgs = [load_image(f) for f in part]
        for f, img, found in zip(part, imgs, fid.detector.detect_batch(imgs)):
            if found:
                images[f], faces[f] = img, pick_face(found, img.shape, Pick.center)
    keys = list(images)
    cache: dict[tuple[float, bool], np.ndarray] = {}

    def views(scale: float, mirror: bool) -> np.ndarray:
        if (scale, mirror) not in cache:
            chips = np.stack([fid.chip(images[k], faces[k], scale) for k in keys])
            cache[(scale, mirror)] = fid.encoder.embed(
                np.ascontiguousarray(chips[:, :, ::-1]) if mirror else chips)
        return cache[(scale, mirror)]

    results = {}
    for name, (scales, mirror) in CANDIDATES.items():
        e = sum(views(s, m) for s in scales for m in ((False, True) if mirror else (False,)))
        emb = dict(zip(keys, e / np.linalg.norm(e, axis=1, keepdims=True)))
        ok = [p for p in pairs if p.a in emb and p.b in emb]
        d = np.array([np.linalg.norm(emb[p.a] - emb[p.b]) for p in ok])
        y = np.array([p.label for p in ok])
        results[name] = {"passes": len(scales) * (2 if mirror else 1), "pairs": len(ok),
                         "best_accuracy": best_threshold(d, y)[1],
                         "cv10_accuracy": kfold_accuracy(d, y, np.arange(len(d)) % 10)["mean_accuracy"]}
        r = results[name]
        print(f"{name:40s} passes {r['passes']:2d}  best-threshold {100 * r['best_accuracy']:.2f}%  "
              f"10-fold {100 * r['cv10_accuracy']:.2f}%  ({r['pairs']} pairs)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
