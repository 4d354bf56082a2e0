"""How close to a threshold a decision must be before the mirrored view is worth computing:
the band a view preset's ``mirror_band`` holds (``faceid/decisions.py`` computes a photo's
mirrored view only for faces whose one-view distance lies within it of tau or of the 1:K
margin).

    .venv/bin/python -m bench.mirror_band --lfw ../shared/datasets/lfw [--json out.json]

The rule, which a site can apply to its own pairs (``--dev PAIRS``): on development pairs,
each pair's probe is encoded from one view and from both (the template is always the
two-view one, as enrolment stores it), and the band is the 99.9th percentile of
|d(both views) - d(one view)|, rounded up to 0.01. It is chosen on LFW View 1
(``pairsDevTrain.txt``) and checked on View 2 (``pairs.txt``, people not chosen on):
how many decisions at the preset's tau and at a 1:K tau differ from computing both views
always, and how many mirrored views are skipped. MTCNN, the centre face, one encoder pass
per view; each image's two view embeddings are kept in ``reports/cache``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

os.environ.setdefault("FACEID_THREADS", "1")

CACHE = Path("reports/cache")


def view_embeddings(files: list[Path], root: Path) -> dict[Path, np.ndarray]:
    """{file: (2, D) unit embeddings of its centre face: the view, then its mirror}."""
    from faceid.detection import Pick, pick_face
    from faceid.encoder import mirrored
    from faceid.imageio import load_image
    from faceid.pipeline import FaceID

    fid = FaceID()
    landmarks = "refined" if fid.detector.refine else "mtcnn"  # as bench.lfw_embeddings
    path = CACHE / f"mirror-views-{fid.info.name}-{landmarks}.npz"
    known = dict(np.load(path)) if path.exists() else {}
    todo = [f for f in files if str(f.relative_to(root)) not in known]
    for i in tqdm(range(0, len(todo), 32), desc="encode", unit="batch", disable=None):
        part = todo[i:i + 32]
        images = [load_image(f) for f in part]
        for f, img, found in zip(part, images, fid.detector.detect_batch(images)):
            if not found:
                continue
            chip = fid.chip(img, pick_face(found, img.shape, Pick.center))
            known[str(f.relative_to(root))] = fid.encoder.embed(
                np.stack([chip, np.ascontiguousarray(mirrored(chip))]))
    if todo:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, **known)
    return {f: known[str(f.relative_to(root))] for f in files
            if str(f.relative_to(root)) in known}


def pair_distances(pairs: list, views: dict[Path, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(one-view distance, two-view distance, label) per pair and direction: each image of a
    pair is the probe once, against the other's two-view template."""
    def both(v: np.ndarray) -> np.ndarray:
        s = v.sum(axis=0)
        return s / np.linalg.norm(s)

    one, two, label = [], [], []
    for p in pairs:
        if p.a not in views or p.b not in views:
            continue
        for probe, template in ((p.a, p.b), (p.b, p.a)):
            t = both(views[template])
            one.append(np.linalg.norm(views[probe][0] - t))
            two.append(np.linalg.norm(both(views[probe]) - t))
            label.append(p.label)
    return np.array(one), np.array(two), np.array(label)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--dev", type=Path, help="pairs the band is chosen on "
                    "(default: LFW View 1's pairsDevTrain.txt)")
    ap.add_argument("--test", type=Path, help="pairs it is checked on (default: LFW View 2)")
    ap.add_argument("--tau-1k", type=float, default=0.26,
                    help="a 1:K threshold to check at too (1,000 people enrolled: about 0.26)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    from faceid.modelfile import load_model_info
    from faceid.pairs import lfw_image_dir, read_pairs

    root = lfw_image_dir(a.lfw)
    dev = read_pairs(a.dev or a.lfw / "pairsDevTrain.txt", a.lfw)
    test = read_pairs(a.test or a.lfw / "pairs.txt", a.lfw)
    files = sorted({p.a for p in dev + test} | {p.b for p in dev + test})
    views = view_embeddings(files, root)
    one, two, _ = pair_distances(dev, views)
    change = np.abs(two - one)
    band = math.ceil(float(np.percentile(change, 99.9)) * 100) / 100
    out = {"dev_pairs": len(dev), "dev_probes": len(one), "band": band,
           "dev_change": {f"p{q}": round(float(np.percentile(change, q)), 4)
                          for q in (50, 90, 99, 99.9, 100)}}
    print(f"dev: {len(one)} probes; |d(both) - d(one)| median {out['dev_change']['p50']}, "
          f"p99 {out['dev_change']['p99']}, p99.9 {out['dev_change']['p99.9']}, "
          f"max {out['dev_change']['p100']} -> band {band}")
    one, two, label = pair_distances(test, views)
    tau = load_model_info().view_preset("standard").tau
    for name, t in (("standard tau", tau), ("1:K tau", a.tau_1k)):
        settled = np.abs(one - t) >= band  # decided on one view: the mirror is skipped
        differ = settled & ((one <= t) != (two <= t))
        row = {"tau": round(t, 4), "probes": len(one), "mirror_skipped": round(float(settled.mean()), 4),
               "decisions_differ": int(differ.sum()),
               "false_accepts_added": int((differ & (one <= t) & (label == 0)).sum()),
               "false_rejects_added": int((differ & (one > t) & (label == 1)).sum())}
        out[name.replace(" ", "_").replace(":", "")] = row
        print(f"test, {name} {t:.4f}: mirror skipped for {100 * row['mirror_skipped']:.1f}% of "
              f"{len(one)} probes; decisions that differ from both views always: "
              f"{row['decisions_differ']} ({row['false_accepts_added']} false accepts, "
              f"{row['false_rejects_added']} false rejects added)")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
