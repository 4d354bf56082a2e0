"""Open-set 1:K identification on LFW, through the product's own gallery (SQLite store +
FAISS index + the identify rule).

Protocol: gallery = the first image (name order) of every person with 2+ images; mated
probes = those people's other images; non-mated probes = everyone with a single image.
Reports the rank-1 identification rate (closed-set, among mated probes), FNIR at
FPIR = 1e-2 and 1e-3 with the tau each needs (a mated probe counts as found only when its
top-1 is right and within tau), the outcome at the model's tau with and without the margin
rule, and a DET plot (FNIR vs FPIR).

    .venv/bin/python -m bench.openset_lfw --lfw ../shared/datasets/lfw [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.lfw_embeddings import lfw_embeddings
from db.store import NewTemplate, Store
from faceid.gallery import Gallery
from faceid.pipeline import FaceID


def split(names: np.ndarray, ok: np.ndarray) -> tuple[list[int], list[int], list[int]]:
    """(gallery, mated probe, non-mated probe) row indices of the LFW image list."""
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, n in enumerate(names):
        by_person[str(n)].append(i)
    gallery, mated, non_mated = [], [], []
    for rows in by_person.values():
        if len(rows) >= 2:
            gallery.append(rows[0])
            mated.extend(rows[1:])
        else:
            non_mated.extend(rows)
    keep = lambda rows: [i for i in rows if ok[i]]  # noqa: E731
    return keep(gallery), keep(mated), keep(non_mated)


def fnir_at_fpir(mated_d: np.ndarray, mated_hit: np.ndarray, non_d: np.ndarray,
                 fpir: float) -> tuple[float, float]:
    """(FNIR, tau): the largest tau whose FPIR (non-mated best distance <= tau) is at most
    ``fpir``, and the share of mated probes not found at it."""
    s = np.sort(non_d)
    k = int(np.floor(fpir * len(s)))  # this many false positives are allowed
    tau = float(np.nextafter(s[k], -np.inf)) if k < len(s) else float(s[-1])
    return float(1.0 - np.mean(mated_hit & (mated_d <= tau))), tau


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--views", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=Path("reports/openset-lfw-det.png"))
    a = ap.parse_args()

    data = lfw_embeddings(a.lfw, a.views, a.model)
    names, emb = data["names"], data["embeddings"]
    ok = ~np.isnan(emb[:, 0])
    g_rows, mated, non_mated = split(names, ok)
    fid = FaceID(a.model, views=a.views)
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Gallery(Store(f"sqlite:///{tmp}/openset.db"), fid, Path(tmp))
        t = time.perf_counter()
        for i in tqdm(g_rows, desc="gallery", file=sys.stderr, disable=None):
            gallery.enroll(str(names[i]), [NewTemplate(emb[i], str(data["files"][i]),
                                                       str(data["files"][i]), 1.0, 0, 0)])
        gallery.flush()
        build = time.perf_counter() - t
        outcomes = {}
        t = time.perf_counter()
        for label, rows in (("mated", mated), ("non_mated", non_mated)):
            res = [gallery.identify(emb[i], top=2)
                   for i in tqdm(rows, desc=label, file=sys.stderr, disable=None)]
            outcomes[label] = (rows, res)
        per_query_ms = 1000 * (time.perf_counter() - t) / (len(mated) + len(non_mated))
    m_rows, m_res = outcomes["mated"]
    n_rows, n_res = outcomes["non_mated"]
    m_d = np.array([r.candidates[0].distance for r in m_res])
    m_hit = np.array([r.candidates[0].name == names[i] for i, r in zip(m_rows, m_res)])
    n_d = np.array([r.candidates[0].distance for r in n_res])
    report = {
        "protocol": "LFW open-set: gallery = 1st image of each person with 2+ images; "
                    "mated = their other images; non-mated = single-image people",
        "model": fid.info.name, "views": fid.views_name,
        "gallery_people": len(g_rows), "mated_probes": len(m_rows),
        "non_mated_probes": len(n_rows), "images_without_face": int((~ok).sum()),
        "rank1": float(m_hit.mean()),
        "gallery_build_s": round(build, 2), "identify_ms_per_query": round(per_query_ms, 3)}
    for fpir in (1e-2, 1e-3):
        fnir, tau = fnir_at_fpir(m_d, m_hit, n_d, fpir)
        report[f"fnir_at_fpir_{fpir:g}"] = fnir
        report[f"tau_at_fpir_{fpir:g}"] = tau
    tau = fid.tau
    report["at_model_tau"] = {
        "tau": tau, "margin": gallery.margin,
        "fpir_no_margin": float(np.mean(n_d <= tau)),
        "fnir_no_margin": float(1 - np.mean(m_hit & (m_d <= tau))),
        "fpir": float(np.mean([r.decision == "match" for r in n_res])),
        "fnir": float(1 - np.mean([r.decision == "match" and h for r, h in zip(m_res, m_hit)]))}
    grid = np.sort(np.concatenate([n_d, m_d]))
    fpirs = np.searchsorted(np.sort(n_d), grid, side="right") / len(n_d)
    fnirs = np.array([1 - np.mean(m_hit & (m_d <= t)) for t in grid])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    keep = fpirs > 0
    ax.loglog(fpirs[keep], np.maximum(fnirs[keep], 1e-4))
    ax.set_xlabel("FPIR (non-mated probes accepted)")
    ax.set_ylabel("FNIR (mated probes missed)")
    ax.set_title(f"LFW open-set 1:{len(g_rows)}, {fid.info.name}/{fid.views_name}")
    ax.grid(True, which="both", alpha=.3)
    a.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.plot, dpi=120, bbox_inches="tight")
    report["plot"] = str(a.plot)
    text = json.dumps(report, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text)


if __name__ == "__main__":
    main()
