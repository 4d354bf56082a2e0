"""Speed, side by side: faceid's pipeline and dlib's (as face_recognition runs it: HOG
detector with one upsample, 5-point shape predictor, 150-px chip, ResNet descriptor) on the
same LFW images in one run, with per-stage milliseconds per image and the ratios.

Both read the images with the same decoder (faceid.imageio), so 'decode' is shared work.
faceid runs with each view preset of the default model ('fast': one network pass per face;
'standard', the default: the chip and its mirror image, two passes; 'accurate': two template
scales and their mirror images, four passes). dlib's descriptor is
timed both per face (what face_recognition.face_encodings does) and batched (dlib's
list-of-chips call), so the embedding ratio is measured against dlib's best.

Threads are set equally for both (``--threads``, default 1: FACEID_THREADS for faceid's
networks and OpenCV, OMP/OpenBLAS/MKL for dlib's; the benchmark re-executes itself so the
libraries read them at load). ``standard + yunet`` is the default views with the door's
detector (YuNet on the image as it is; LFW's 250-px images are not shrunk).

    .venv/bin/python -m bench.speed --lfw ../shared/datasets/lfw --n 300 [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.dlib_peer import DlibPeer
from faceid.detection import Pick
from faceid.detectors import make_detector
from faceid.imageio import load_image
from faceid.pairs import lfw_image_dir
from faceid.pipeline import FaceID, StageTimes

THREAD_VARS = ("FACEID_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def sample_images(lfw: Path, n: int, seed: int = 0) -> list[Path]:
    files = sorted(lfw_image_dir(lfw).glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]


def run_faceid(files: list[Path], views: str, detector: str = "mtcnn") -> tuple[dict, dict]:
    fid = FaceID(views=views, detector=make_detector(detector))
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
    peer = DlibPeer()
    peer.descriptor(np.zeros((150, 150, 3), np.uint8))  # warm up
    sec = dict.fromkeys(("decode", "detect", "align", "embed"), 0.0)
    chips, names = [], []
    t0 = time.perf_counter()
    for f in files:
        t = time.perf_counter()
        img = load_image(f)
        t1 = time.perf_counter()
        rect = peer.detect(img)
        t2 = time.perf_counter()
        sec["decode"] += t1 - t
        sec["detect"] += t2 - t1
        if rect is None:
            continue
        chip = peer.chip(img, rect)
        t3 = time.perf_counter()
        sec["align"] += t3 - t2
        emb = peer.descriptor(chip)
        sec["embed"] += time.perf_counter() - t3
        chips.append(chip)
        names.append((str(f), emb))
    total = time.perf_counter() - t0
    t = time.perf_counter()
    peer.descriptors(chips)
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
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    want = str(args.threads)
    if any(os.environ.get(v) != want for v in THREAD_VARS):  # let every library read them
        os.environ.update({v: want for v in THREAD_VARS})
        os.execv(sys.executable, [sys.executable, "-m", "bench.speed", *sys.argv[1:]])
    files = sample_images(args.lfw, args.n)
    presets = ("fast", "standard", "accurate", "standard + yunet")
    ours = {}
    for name in presets:
        views, _, detector = name.partition(" + ")
        ours[name], emb = run_faceid(files, views, detector or "mtcnn")
        if name == "accurate":
            our_emb = emb
    ref, ref_emb = run_dlib(files)
    common = [k for k in our_emb if k in ref_emb]
    cos = [float(our_emb[k] @ ref_emb[k] / np.linalg.norm(ref_emb[k])) for k in common]
    threads = {v: os.environ.get(v) for v in THREAD_VARS}
    d = ref["ms_per_image"]
    print(f"{args.n} LFW images, {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads; {threads}), "
          f"{platform.processor() or platform.machine()}")
    head = "".join(f"{'faceid ' + v:>24s}{'ratio':>7s}" for v in presets)
    print(f"{'stage (ms per image)':30s}{'dlib':>9s}{head}")

    def row(label: str, ref_ms: float, key: str) -> None:
        cells = "".join(f"{ours[v]['ms_per_image'][key]:24.2f}"
                        f"{ref_ms / ours[v]['ms_per_image'][key]:7.1f}" for v in presets)
        print(f"{label:30s}{ref_ms:9.2f}{cells}")

    for k in ("decode", "detect", "align", "embed", "total"):
        row(k, d[k], k)
    row("embed per face, dlib batched", d["embed_per_face_batched"], "embed_per_face")
    row("embed per face, dlib 1-by-1", d["embed_per_face"], "embed_per_face")
    found = ", ".join(f"faceid {v} {ours[v]['faces']}" for v in presets)
    print(f"faces found: {found}, "
          f"dlib {ref['faces']}; cosine(faceid accurate, dlib) over {len(common)} images "
          f"(different detectors and alignment): median {np.median(cos):.4f}")
    if args.json:
        args.json.write_text(json.dumps({"faceid": ours, "dlib": ref, "n": args.n,
                                         "threads": threads,
                                         "median_cosine": float(np.median(cos))}, indent=2))


if __name__ == "__main__":
    main()
