"""Speed, side by side: faceid's pipeline and dlib's (as face_recognition runs it: HOG
detector with one upsample, 5-point shape predictor, 150-px chip, ResNet descriptor) on the
same LFW images in one run, with per-stage milliseconds per image and the ratios.

Both read the images with the same decoder (faceid.imageio), so 'decode' is shared work.
dlib's descriptor is timed both per face (what face_recognition.face_encodings does) and
batched (dlib's list-of-chips call), so the embedding ratio is measured against dlib's best.

    .venv/bin/python bench/speed.py --lfw ../shared/datasets/lfw --n 300 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from faceid.detect import Pick
from faceid.imageio import load_image
from faceid.modelfile import weights_path
from faceid.pairs import lfw_image_dir
from faceid.pipeline import FaceID, StageTimes


def sample_images(lfw: Path, n: int, seed: int = 0) -> list[Path]:
    files = sorted(lfw_image_dir(lfw).glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]


def run_faceid(files: list[Path]) -> tuple[dict, dict]:
    fid = FaceID()
    t = time.perf_counter()
    fid.embed_images(files[:4], Pick.center)  # load models, warm up kernels
    load_s = time.perf_counter() - t
    times = StageTimes()
    t = time.perf_counter()
    results = fid.embed_images(files, Pick.center, times=times)
    total = time.perf_counter() - t
    emb = {r.source: r.embedding for r in results if r.embedding is not None}
    ms = {k: 1000 * v / len(files) for k, v in times.seconds.items()}
    ms["total"] = 1000 * total / len(files)
    n_faces = len(emb)
    ms["embed_per_face"] = 1000 * times.seconds["embed"] / max(1, n_faces)
    return {"ms_per_image": ms, "faces": n_faces, "warmup_s": load_s}, emb


def run_dlib(files: list[Path]) -> tuple[dict, dict]:
    import dlib

    models = weights_path(FaceID().info).parent
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    rec.compute_face_descriptor(np.zeros((150, 150, 3), np.uint8))  # warm up
    sec = dict.fromkeys(("decode", "detect", "align", "embed"), 0.0)
    chips, names = [], []
    t0 = time.perf_counter()
    for f in files:
        t = time.perf_counter()
        img = load_image(f)
        t1 = time.perf_counter()
        dets = hog(img, 1)
        t2 = time.perf_counter()
        sec["decode"] += t1 - t
        sec["detect"] += t2 - t1
        if not dets:
            continue
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
        d = min(dets, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        chip = dlib.get_face_chip(img, sp(img, d), size=150, padding=0.25)
        t3 = time.perf_counter()
        sec["align"] += t3 - t2
        emb = np.array(rec.compute_face_descriptor(chip))
        sec["embed"] += time.perf_counter() - t3
        chips.append(chip)
        names.append((str(f), emb))
    total = time.perf_counter() - t0
    t = time.perf_counter()
    rec.compute_face_descriptor(chips)  # dlib's batched call on the same chips
    batched = time.perf_counter() - t
    ms = {k: 1000 * v / len(files) for k, v in sec.items()}
    ms["total"] = 1000 * total / len(files)
    ms["embed_per_face"] = 1000 * sec["embed"] / max(1, len(chips))
    ms["embed_per_face_batched"] = 1000 * batched / max(1, len(chips))
    return {"ms_per_image": ms, "faces": len(chips)}, dict(names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = sample_images(args.lfw, args.n)
    ours, our_emb = run_faceid(files)
    ref, ref_emb = run_dlib(files)
    common = [k for k in our_emb if k in ref_emb]
    cos = [float(our_emb[k] @ ref_emb[k] / np.linalg.norm(ref_emb[k])) for k in common]
    o, d = ours["ms_per_image"], ref["ms_per_image"]
    print(f"{args.n} LFW images, {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {platform.processor() or platform.machine()}")
    print(f"{'stage (ms per image)':28s}{'faceid':>10s}{'dlib':>10s}{'dlib/faceid':>13s}")
    for k in ("decode", "detect", "align", "embed", "total"):
        print(f"{k:28s}{o[k]:10.2f}{d[k]:10.2f}{d[k] / o[k]:13.2f}")
    print(f"{'embed per face (batched)':28s}{o['embed_per_face']:10.2f}"
          f"{d['embed_per_face_batched']:10.2f}{d['embed_per_face_batched'] / o['embed_per_face']:13.2f}")
    print(f"{'embed per face (dlib 1-by-1)':28s}{o['embed_per_face']:10.2f}"
          f"{d['embed_per_face']:10.2f}{d['embed_per_face'] / o['embed_per_face']:13.2f}")
    print(f"faces found: faceid {ours['faces']}, dlib {ref['faces']}; cosine(faceid, dlib) "
          f"over {len(common)} images (different detectors and alignment): median "
          f"{np.median(cos):.4f}")
    if args.json:
        args.json.write_text(json.dumps({"faceid": ours, "dlib": ref, "n": args.n,
                                         "median_cosine": float(np.median(cos))}, indent=2))


if __name__ == "__main__":
    main()
