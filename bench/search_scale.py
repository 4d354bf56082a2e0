"""Gallery search at scale: the index faceid builds (db.index.build_index: exact below the
ANN threshold, IVF-Flat above) over 10k, 100k and 1M templates, on this machine.

Templates are real LFW encodings (all but the held-out probes) filled up with random unit
vectors; queries are held-out LFW images whose person is in the gallery. Reported per size:
build time, memory per template (serialised index size / N), single-query latency p50/p99
(one query at a time, as a door asks), and recall@1 of the approximate index against exact
search (same top-1 template). At 1M, several nprobe values are measured to show the trade.

    .venv/bin/python -m bench.search_scale --lfw ../shared/datasets/lfw [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import faiss
import numpy as np

from bench.lfw_embeddings import lfw_embeddings
from db.index import build_index, default_ann_threshold, index_kind, unit


def gallery_and_queries(emb: np.ndarray, names: np.ndarray, n: int, n_queries: int,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(gallery vectors, query vectors): queries are images of people with another image
    left in the gallery; the gallery is the rest of LFW plus random unit fill up to n."""
    rng = np.random.default_rng(seed)
    ok = np.flatnonzero(~np.isnan(emb[:, 0]))
    counts: dict[str, int] = {}
    for i in ok:
        counts[str(names[i])] = counts.get(str(names[i]), 0) + 1
    candidates = [i for i in ok if counts[str(names[i])] >= 2]
    queries = rng.choice(candidates, n_queries, replace=False)
    rest = np.setdiff1d(ok, queries)
    real = emb[rest][: n]
    fill = rng.standard_normal((max(0, n - len(real)), emb.shape[1])).astype(np.float32)
    return unit(np.vstack([real, fill])), unit(emb[queries])


def latencies(index: faiss.Index, queries: np.ndarray) -> np.ndarray:
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t = time.perf_counter()
        index.search(q[None], 1)
        out[i] = time.perf_counter() - t
    return out * 1000


def measure(vectors: np.ndarray, queries: np.ndarray, nprobes: list[int]) -> list[dict]:
    n = len(vectors)
    ids = np.arange(n, dtype=np.int64)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 1)
    t = time.perf_counter()
    index = build_index(vectors, ids, vectors.shape[1])
    build = time.perf_counter() - t
    size = len(faiss.serialize_index(index))
    rows = []
    ivf = faiss.try_extract_index_ivf(index)
    for nprobe in (nprobes if ivf is not None else [None]):
        if ivf is not None:
            ivf.nprobe = nprobe
        lat = latencies(index, queries)
        _, got = index.search(queries, 1)
        rows.append({"n": n, "kind": index_kind(index), "nprobe": nprobe,
                     "build_s": round(build, 2), "bytes_per_template": round(size / n, 1),
                     "p50_ms": round(float(np.percentile(lat, 50)), 3),
                     "p99_ms": round(float(np.percentile(lat, 99)), 3),
                     "recall_at_1": float(np.mean(got[:, 0] == truth[:, 0]))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--nprobe", default="16,32,48,64")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    data = lfw_embeddings(a.lfw)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, "
          f"ANN threshold {default_ann_threshold()}")
    rows = []
    for n in map(int, a.sizes.split(",")):
        vectors, queries = gallery_and_queries(data["embeddings"], data["names"], n,
                                               a.queries)
        for row in measure(vectors, queries, [int(x) for x in a.nprobe.split(",")]):
            rows.append(row)
            print(json.dumps(row), flush=True)
        del vectors
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
