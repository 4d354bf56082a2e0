"""A faster detector (issue 14): YuNet against MTCNN on what the product needs of a detector.

    FACEID_THREADS=1 .venv/bin/python -m bench.detectors --json reports/detectors.json

Variants, each run on the same images in one process with the same threads:
``mtcnn`` (the default: MTCNN, O-Net-refined points), ``yunet`` (YuNet's box, MTCNN's O-Net
points on it, :mod:`faceid.yunet`), ``yunet, own points`` (YuNet's five points as they are)
and, for speed, ``yunet at 320`` (frames shrunk to 320 px on the longer side, the door's
setting).

1. LFW View 2 (``pairs.txt``, 6,000 pairs): each variant detects every image, takes the face
   nearest the centre and encodes it with the default model and views; 10 folds, each fold's
   threshold from the other nine (``bench.lfw_dlib_reference.scores``). Also: images where
   no face was found, and each variant's points against MTCNN's refined points on the same
   image (mean of the five distances over the eye distance).
2. Faces cut by the frame: ``--frame`` LFW portraits cut at 15% and at 30% of the face box
   from its left and top edges (a face close to a door camera); found rate and point error
   against MTCNN's refined points on the uncut image (eye-distance units).
3. Milliseconds per 640x480 frame: the real ASL clips (640x480, one signer) and the head-pose
   clips letterboxed to 640x480 (two people), ``--frames`` frames of each; median and p95.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.lfw_dlib_reference import score_line, scores, write_json
from bench.watch import letterbox
from faceid.detection import Face, FaceDetector
from faceid.imageio import load_image
from faceid.pairs import lfw_image_dir, read_pairs
from faceid.pipeline import FaceID
from faceid.door.sources import FrameSource
from faceid.yunet import YuNetDetector


def variants() -> dict[str, object]:
    return {"mtcnn": FaceDetector(), "yunet": YuNetDetector(),
            "yunet, own points": YuNetDetector(refine=False),
            "yunet at 320": YuNetDetector(max_side=320)}


def central(faces: list[Face], shape: tuple[int, ...]) -> Face | None:
    if not faces:
        return None
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(faces, key=lambda f: ((f.box[0] + f.box[2]) / 2 - cx) ** 2
               + ((f.box[1] + f.box[3]) / 2 - cy) ** 2)


def point_error(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance of the five points to ``truth``, in units of truth's eye distance."""
    eyes = float(np.linalg.norm(truth[0] - truth[1]))
    return float(np.linalg.norm(points - truth, axis=1).mean() / max(eyes, 1e-6))


def lfw_view2(fid: FaceID, dets: dict[str, object], root: Path) -> dict:
    pairs = read_pairs(root / "pairs.txt", root)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    emb: dict[str, dict[Path, np.ndarray]] = {name: {} for name in dets}
    err: dict[str, list[float]] = {name: [] for name in dets}
    missed = {name: 0 for name in dets}
    for f in tqdm(files, desc="LFW View 2", file=sys.stderr, disable=None):
        img = load_image(f)
        found = {name: central(d.detect(img), img.shape) for name, d in dets.items()}
        truth = found["mtcnn"]
        chips, names = [], []
        for name, face in found.items():
            if face is None:
                missed[name] += 1
                continue
            if truth is not None:
                err[name].append(point_error(face.landmarks, truth.landmarks))
            chips.append(fid.view_chips(img, face))
            names.append(name)
        if chips:
            vecs = fid.encoder.embed_views(np.stack(chips), fid.views.flip)
            for name, v in zip(names, vecs):
                emb[name][f] = v
    out = {}
    for name in dets:
        out[name] = {**scores(pair_distances(emb[name], emb[name], pairs), pairs),
                     "images": len(files), "no_face": missed[name],
                     "point_error_mean": round(float(np.mean(err[name])), 4),
                     "point_error_p95": round(float(np.percentile(err[name], 95)), 4)}
        print(score_line(name, out[name]), f"no face {missed[name]}, point error "
              f"{out[name]['point_error_mean']:.4f} (p95 {out[name]['point_error_p95']:.4f})",
              flush=True)
    # a gallery enrolled through MTCNN, probes found by YuNet (a door on the fast detector)
    name = "enrolled mtcnn, probe yunet at 320"
    out[name] = scores(pair_distances(emb["mtcnn"], emb["yunet at 320"], pairs), pairs)
    print(score_line(name, out[name]), flush=True)
    return out


def pair_distances(first: dict[Path, np.ndarray], second: dict[Path, np.ndarray],
                   pairs: list) -> np.ndarray:
    """Per pair, the distance from the first image's vector in ``first`` to the second's in
    ``second`` (NaN where either image had no face)."""
    return np.array([float(np.linalg.norm(first[p.a] - second[p.b]))
                     if p.a in first and p.b in second else np.nan for p in pairs])


def frame_cut(dets: dict[str, object], root: Path, n: int) -> dict:
    files = sorted(lfw_image_dir(root).glob("*/*_0001.jpg"))[:n]
    out: dict = {}
    for cut in (0.15, 0.30):
        found = {name: 0 for name in dets}
        err: dict[str, list[float]] = {name: [] for name in dets}
        tried = 0
        for f in tqdm(files, desc=f"frame cut {cut:.0%}", file=sys.stderr, disable=None):
            img = load_image(f)
            ref = central(dets["mtcnn"].detect(img), img.shape)
            if ref is None:
                continue
            tried += 1
            x1, y1, x2, y2 = ref.box
            dx, dy = max(int(x1 + cut * (x2 - x1)), 0), max(int(y1 + cut * (y2 - y1)), 0)
            part = np.ascontiguousarray(img[dy:, dx:])
            for name, d in dets.items():
                faces = d.detect(part)
                if faces:
                    found[name] += 1
                    face = max(faces, key=lambda fc: fc.size)
                    err[name].append(point_error(face.landmarks + [dx, dy], ref.landmarks))
        out[f"{cut:.0%}"] = {name: {"found": found[name], "of": tried,
                                    "point_error_mean": round(float(np.mean(err[name])), 4)
                                    if err[name] else None} for name in dets}
        print(f"faces cut {cut:.0%} by the frame:", json.dumps(out[f"{cut:.0%}"]), flush=True)
    return out


def frame_times(dets: dict[str, object], videos: Path, n: int) -> dict:
    clips = [(p, False) for p in sorted((videos / "asl_gestures").glob("*.mkv"))[:2]]
    clips += [(p, True) for p in sorted((videos / "preview").glob("head-pose-*.gif"))[:1]]
    frames = []
    for clip, box in clips:
        for k, (_, _, frame) in enumerate(FrameSource(str(clip))):
            if k >= n:
                break
            frames.append(letterbox(frame) if box else frame)
    out = {}
    for name, d in dets.items():
        d.detect(frames[0])  # load the weights outside the timing
        ms, faces = [], 0
        for frame in frames:
            t = time.perf_counter()
            faces += len(d.detect(frame))
            ms.append(1000 * (time.perf_counter() - t))
        out[name] = {"frames": len(frames), "faces": faces,
                     "ms_median": round(float(np.median(ms)), 2),
                     "ms_p95": round(float(np.percentile(ms, 95)), 2)}
        print(f"{name:20s} 640x480: {out[name]['ms_median']:.1f} ms median, "
              f"{out[name]['ms_p95']:.1f} ms p95, {faces} faces in {len(frames)} frames",
              flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--frame", type=int, default=300, help="portraits for the frame-cut test")
    ap.add_argument("--frames", type=int, default=60, help="frames of each clip timed")
    ap.add_argument("--skip-lfw", action="store_true", help="only the frame tests")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    dets = variants()
    result: dict = {"frame_ms": frame_times(dets, args.datasets / "videos", args.frames)}
    result["frame_cut"] = frame_cut(dets, args.datasets / "lfw", args.frame)
    if not args.skip_lfw:
        result["lfw_view2"] = lfw_view2(FaceID(), dets, args.datasets / "lfw")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
