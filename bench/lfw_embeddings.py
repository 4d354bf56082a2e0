"""Encode every LFW image once (the centre face, as LFW is labelled) and cache the result,
for the identification and search-scale benchmarks. Rerunning with the cache in place
loads it.

    .venv/bin/python -m bench.lfw_embeddings --lfw ../shared/datasets/lfw [--views standard]
    .venv/bin/python -m bench.lfw_embeddings --dlib     (face_recognition's pipeline, dlib-bin)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceid.detection import Pick
from faceid.pairs import lfw_image_dir
from faceid.pipeline import FaceID

CACHE = Path("reports/cache")


def lfw_embeddings(lfw: Path, views: str | None = None, model: str | None = None,
                   cache: Path = CACHE) -> dict[str, np.ndarray]:
    """{'names': person per image, 'files': relative paths, 'embeddings': (N, 128) with
    NaN rows for images whose face was not found}."""
    fid = FaceID(model, views=views)
    landmarks = "refined" if fid.detector.refine else "mtcnn"  # a cache per landmark source
    path = cache / f"lfw-{fid.info.name}-{fid.views_name}-{landmarks}.npz"
    if path.exists():
        return dict(np.load(path))
    root = lfw_image_dir(lfw)
    files = sorted(root.glob("*/*.jpg"))
    emb = np.full((len(files), fid.info.embedding_size), np.nan, np.float32)
    t = time.perf_counter()
    with tqdm(total=len(files), desc="LFW", unit="img", file=sys.stderr, disable=None) as bar:
        results = fid.embed_images(files, Pick.center, progress=bar.update)
    for i, r in enumerate(results):
        if r.embedding is not None:
            emb[i] = r.embedding
    seconds = time.perf_counter() - t
    data = {"names": np.array([f.parent.name for f in files]),
            "files": np.array([str(f.relative_to(root)) for f in files]),
            "embeddings": emb, "seconds": np.array(seconds)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


def lfw_dlib_embeddings(lfw: Path, cache: Path = CACHE) -> dict[str, np.ndarray]:
    """The same images through face_recognition's own pipeline (dlib-bin, test-only): HOG
    with one upsample, the face nearest the centre, 5-point chip, ResNet descriptor, *raw*
    (face_recognition compares unnormalised descriptors at tolerance 0.6). Same keys as
    :func:`lfw_embeddings`, in the same image order."""
    from bench.dlib_peer import DlibPeer
    from faceid.imageio import load_image

    path = cache / "lfw-dlib-face_recognition.npz"
    if path.exists():
        return dict(np.load(path))
    root = lfw_image_dir(lfw)
    files = sorted(root.glob("*/*.jpg"))
    peer = DlibPeer()
    emb = np.full((len(files), 128), np.nan, np.float32)
    t = time.perf_counter()
    for i, f in enumerate(tqdm(files, desc="LFW (dlib)", unit="img", file=sys.stderr,
                               disable=None)):
        img = load_image(f)
        rect = peer.detect(img)
        if rect is not None:
            emb[i] = peer.descriptor(peer.chip(img, rect))
    data = {"names": np.array([f.parent.name for f in files]),
            "files": np.array([str(f.relative_to(root)) for f in files]),
            "embeddings": emb, "seconds": np.array(time.perf_counter() - t)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--views", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--dlib", action="store_true",
                    help="encode with face_recognition's own dlib pipeline instead")
    a = ap.parse_args()
    d = lfw_dlib_embeddings(a.lfw) if a.dlib else lfw_embeddings(a.lfw, a.views, a.model)
    ok = ~np.isnan(d["embeddings"][:, 0])
    print(f"{len(ok)} images, {int(ok.sum())} encoded, {float(d['seconds']):.0f} s")


if __name__ == "__main__":
    main()
