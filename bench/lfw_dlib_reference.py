"""The peer on the same pairs: dlib's own pipeline (HOG detector with one upsample,
5-point shape predictor, get_face_chip 150 px / padding 0.25, ResNet descriptor, as
face_recognition runs it) scored on an LFW pair list, beside faceid's presets on the same
list, so an accuracy gap can be told apart from a hard dataset. Needs dlib-bin (test-only).

Both are scored the same way: 10 folds (View 2's own folds; for View 1 files, pairs dealt
round-robin), each fold's threshold the best on the other nine, and a pair whose image yields
no face counts as a wrong decision (dlib's HOG detector misses some LFW faces).

    .venv/bin/python -m bench.lfw_dlib_reference --pairs ../shared/datasets/lfw/pairs.txt \\
        --root ../shared/datasets/lfw [--jitter 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.dlib_peer import DlibPeer
from faceid import metrics
from faceid.imageio import load_image
from faceid.pairs import read_pairs
from faceid.pipeline import FaceID
from faceid.verify_pairs import verify_pairs


def dlib_embeddings(files: list[Path], jitter: int) -> dict[Path, np.ndarray]:
    peer = DlibPeer()
    out = {}
    for f in tqdm(files, desc="dlib"):
        img = load_image(f)
        rect = peer.detect(img)
        if rect is not None:
            e = peer.descriptor(peer.chip(img, rect), jitter)
            out[f] = e / np.linalg.norm(e)
    return out


def scores(d: np.ndarray, pairs: list) -> dict:
    """``d``: one distance per pair, NaN where an image failed."""
    y = np.array([p.label for p in pairs])
    folds = np.array([p.fold if p.fold is not None and len(pairs) == 6000 else i % 10
                      for i, p in enumerate(pairs)])
    ok = ~np.isnan(d)
    k = metrics.kfold_accuracy(d, y, folds)
    s = metrics.summary(d[ok], y[ok])
    return {"failed_pairs": int((~ok).sum()), "accuracy": k["mean_accuracy"],
            "std": k["std_accuracy"], "tar_at_far_1e-3": s["tar_at_far"], "eer": s["eer"]}


def score_line(name: str, r: dict) -> str:
    """One human-readable row of :func:`scores`."""
    return (f"{name:36s} {100 * r['accuracy']:.2f}% +- {100 * r['std']:.2f}  "
            f"TAR@FAR=1e-3 {100 * r['tar_at_far_1e-3']:.2f}%  EER {100 * r['eer']:.2f}%  "
            f"failed pairs {r['failed_pairs']} (counted wrong)")


def write_json(path: Path | None, result: dict) -> None:
    """Save a benchmark's result dict, when ``--json`` asked for it."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=Path("../shared/datasets/lfw/pairs.txt"))
    ap.add_argument("--root", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--jitter", type=int, default=0, help="dlib's num_jitters")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    pairs = read_pairs(args.pairs, args.root)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    emb = dlib_embeddings(files, args.jitter)
    nan = float("nan")
    result = {"pairs_file": str(args.pairs), "pairs": len(pairs), "dlib": scores(np.array(
        [np.linalg.norm(emb[p.a] - emb[p.b]) if p.a in emb and p.b in emb else nan
         for p in pairs]), pairs)}
    for views in ("fast", "accurate"):
        res = verify_pairs(FaceID(views=views), pairs)
        result[f"faceid {views}"] = scores(np.array(
            [r.distance if r.distance is not None else nan for r in res]), pairs)
    for name, r in result.items():
        if isinstance(r, dict):
            print(score_line(name, r))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
