"""How the enrolment blur threshold (faceid.quality.MIN_SHARPNESS) was chosen: sharpness of
random LFW faces, of the same faces blurred (Gaussian sigma 2 in face pixels), and of the
head-pose clips' frames; percentiles 1/5/50/95/99.

    .venv/bin/python -m bench.sharpness --lfw ../shared/datasets/lfw --datasets ../shared/datasets
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from faceid.pairs import lfw_image_dir
from faceid.pipeline import FaceID
from faceid.quality import MIN_SHARPNESS, sharpness
from faceid.door.sources import read_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--n", type=int, default=150)
    a = ap.parse_args()
    files = random.Random(0).sample(sorted(lfw_image_dir(a.lfw).glob("*/*.jpg")), a.n)
    fid = FaceID(views="fast")
    sharp, blurred, clips = [], [], []
    for r in fid.embed_images(files, keep_faces=True):
        if r.chip is not None:
            sharp.append(sharpness(r.chip, r.face.size))
            sigma = 2.0 * r.chip.shape[0] / r.face.size
            blurred.append(sharpness(cv2.GaussianBlur(r.chip, (0, 0), sigma), r.face.size))
    for gif in sorted((a.datasets / "videos" / "preview").glob("head-pose*.gif")):
        for _, frame in list(read_frames(str(gif)))[::6]:
            r = fid.embed_images([frame], keep_faces=True)[0]
            if r.chip is not None:
                clips.append(sharpness(r.chip, r.face.size))
    print(f"threshold in use: {MIN_SHARPNESS}")
    for name, values in (("lfw", sharp), ("lfw blurred sigma 2", blurred),
                         ("head-pose clip frames", clips)):
        print(f"{name:24s} n={len(values):4d} p1/p5/p50/p95/p99 =",
              np.percentile(values, [1, 5, 50, 95, 99]).round(1).tolist())


if __name__ == "__main__":
    main()
