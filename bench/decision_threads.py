"""Do 1:K decisions use both cores? Identify throughput in one process, with one and with
two threads deciding at once, with and without recording each decision (what ``faceid
serve`` does per request, without HTTP), and the encoder alone for comparison.

    .venv/bin/python -m bench.decision_threads [--seconds 8] [--json out.json]

A small gallery (four LFW people) is enough: ranking is not the cost. Each thread runs the
same one-face photo (Colin_Powell_0002) over and over; torch, OpenCV and FAISS are held to
one thread each (FACEID_THREADS=1), as ``faceid serve`` runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACEID_THREADS", "1")

LFW = Path(os.environ.get("FACEID_LFW", "../shared/datasets/lfw")) / "lfw-deepfunneled"


def rate(work: object, threads: int, seconds: float) -> float:
    """Calls per second of ``work()`` summed over ``threads`` threads."""
    counts = [0] * threads

    def loop(k: int) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            work()  # type: ignore[operator]
            counts[k] += 1

    pool = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    from db.store import Store
    from faceid.decisions import identify_photos
    from faceid.detectors import default_detector, make_detector
    from faceid.enrolment import enroll_images
    from faceid.gallery import Gallery
    from faceid.pipeline import FaceID

    home = Path(tempfile.mkdtemp(prefix="faceid-threads-"))
    fid = FaceID(detector=make_detector(default_detector(server=True)))
    gallery = Gallery(Store(f"sqlite:///{home}/faceid.db", create=True), fid, home / "index")
    for name in ("Aaron_Peirsol", "Colin_Powell", "Serena_Williams", "Hugo_Chavez"):
        enroll_images(gallery, name.replace("_", " "), [LFW / name / f"{name}_0001.jpg"])
    gallery.operating_point()
    probe = LFW / "Colin_Powell" / "Colin_Powell_0002.jpg"
    chips = np.random.default_rng(0).integers(0, 255, (2, 150, 150, 3), np.uint8)
    work = {
        "encoder (2 views of one face)": lambda: fid.encoder.embed(chips),
        "identify": lambda: identify_photos(gallery, [probe]),
        "identify + record": lambda: identify_photos(gallery, [probe], record="bench:"),
    }
    out: dict[str, object] = {"cores": os.cpu_count(), "load_average": os.getloadavg()[0]}
    for name, fn in work.items():
        fn()  # warm
        one, two = rate(fn, 1, a.seconds), rate(fn, 2, a.seconds)
        out[name] = {"1_thread_per_s": round(one, 1), "2_threads_per_s": round(two, 1),
                     "scaling": round(two / one, 2)}
        print(name, json.dumps(out[name]), flush=True)
    print(json.dumps(out))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
