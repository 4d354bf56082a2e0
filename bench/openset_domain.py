"""Small galleries in another domain: LFW turned grey-scale (a stand-in for the grey-scale,
evenly lit face sets a site may enrol from, where strangers' faces sit closer together than
on colour LFW), 7 to 20 people enrolled from one photo each, as a new site would.

For each gallery size, 20 random galleries (people with 2+ images; the first photo enrolled,
the second as the mated probe) against 1,000 strangers (one-photo people, never enrolled),
all encoded from grey-scale copies. Reports, through the product's own gallery: the share of
strangers accepted with the model's 1:1 tau fixed as the site threshold (what every gallery
did before the operating point) and at the shipped defaults (the operating point estimated
from the gallery), with the FNIR of each.

    .venv/bin/python -m bench.openset_domain --lfw ../shared/datasets/lfw [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.lfw_dlib_reference import write_json
from bench.openset_lfw import people_split
from db.store import NewTemplate, Store
from faceid.detection import Pick
from faceid.gallery import Gallery
from faceid.imageio import load_image
from faceid.pairs import lfw_image_dir
from faceid.pipeline import FaceID

SIZES = (7, 10, 15, 20)


def grey(path: Path) -> np.ndarray:
    """The photo as grey-scale in three equal channels (ITU-R 601 luma)."""
    rgb = load_image(path).astype(np.float32)
    y = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(y[..., None], 3, axis=2).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--people", type=int, default=300, help="people with 2+ images to draw from")
    ap.add_argument("--strangers", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    root = lfw_image_dir(a.lfw)
    files = sorted(root.glob("*/*.jpg"))
    names = np.array([f.parent.name for f in files])
    rows, multi, single = people_split(names, np.ones(len(files), bool))
    rng = np.random.default_rng(a.seed)
    people = sorted(rng.choice(multi, a.people, replace=False).tolist())
    strangers = sorted(rng.choice(single, a.strangers, replace=False).tolist())
    wanted = [rows[p][0] for p in people] + [rows[p][1] for p in people] + \
        [rows[p][0] for p in strangers]
    fid = FaceID(views=None)
    print(f"encoding {len(wanted)} grey-scale photos", file=sys.stderr, flush=True)
    results = fid.embed_images([grey(files[i]) for i in wanted], Pick.center)
    emb = {i: r.embedding for i, r in zip(wanted, results) if r.embedding is not None}
    people = [p for p in people if rows[p][0] in emb and rows[p][1] in emb]
    stranger_vecs = np.stack([emb[rows[p][0]] for p in strangers if rows[p][0] in emb])
    report = {"domain": "LFW grey-scale", "people_pool": len(people),
              "strangers": len(stranger_vecs), "model_tau": fid.tau, "sizes": {}}
    for size in SIZES:
        acc = {"model_tau": [], "defaults": []}
        miss = {"model_tau": [], "defaults": []}
        taus = []
        for _ in range(20):
            chosen = rng.choice(len(people), size, replace=False)
            with tempfile.TemporaryDirectory() as tmp:
                store = Store(f"sqlite:///{tmp}/g.db")
                gallery = Gallery(store, fid, Path(tmp))
                for k in chosen:
                    p = people[k]
                    gallery.enroll(p, [NewTemplate(emb[rows[p][0]], p, p, 1.0, 0, 0)])
                fixed = Gallery(store, fid, Path(tmp), tau=fid.tau)
                taus.append(gallery.tau)
                for label, g in (("model_tau", fixed), ("defaults", gallery)):
                    acc[label].append(np.mean([g.identify(v, 2).decision == "match"
                                               for v in stranger_vecs]))
                    found = [g.identify(emb[rows[people[k]][1]], 2) for k in chosen]
                    miss[label].append(1 - np.mean([r.person is not None and
                                                    r.person.name == people[k]
                                                    for r, k in zip(found, chosen)]))
        report["sizes"][str(size)] = {
            "galleries": 20, "default_tau_range": [round(min(taus), 4), round(max(taus), 4)],
            **{f"{label}_fpir_mean": float(np.mean(v)) for label, v in acc.items()},
            **{f"{label}_fpir_max": float(np.max(v)) for label, v in acc.items()},
            **{f"{label}_fnir_mean": float(np.mean(v)) for label, v in miss.items()}}
        print(json.dumps({size: report["sizes"][str(size)]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    write_json(a.json, report)


if __name__ == "__main__":
    main()
