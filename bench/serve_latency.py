"""``faceid serve`` under load: verify and identify latency through the real server over
loopback (issue 15's target: p99 under 150 ms at concurrency 4 with 1,000 people enrolled).

    .venv/bin/python -m bench.serve_latency [--people 1000] [--requests 200] [--concurrency 4]
        [--detector mtcnn --detector yunet] [--views standard] [--json out.json]

A gallery of ``--people`` LFW people (each from their first photo, the face nearest
the centre, enrolled with ``faceid enroll-dir`` before the server starts) is served by ``faceid serve`` in its own
process; ``--concurrency`` client threads send ``--requests`` requests of each kind (the
probes: the second photo of enrolled people, alternating with people never enrolled),
with a read key, over HTTP on 127.0.0.1. Latency is each request's wall time at the client.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, key: str, fields: dict[str, str], path: Path) -> tuple[int, float, int, float]:
    """One multipart POST; (status, seconds, faces in the answer: identify's rows, the
    server's own seconds from its Server-Timing header)."""
    boundary = "faceidbench"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                 f'filename="{path.name}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                 + path.read_bytes() + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
            seconds = time.perf_counter() - start
            return (r.status, seconds, len(json.loads(body).get("faces", [None])),
                    server_seconds(r.headers))
    except urllib.error.HTTPError as exc:  # an answer too (a photo without a face: 422)
        body = exc.read()
        if exc.code not in (422,):
            print(f"{path.name}: {exc.code} {body[:200]!r}", file=sys.stderr)
        return exc.code, time.perf_counter() - start, 0, server_seconds(exc.headers)


def server_seconds(headers) -> float:  # noqa: ANN001 - http.client.HTTPMessage
    """The server's share of a request (``Server-Timing: app;dur=MS``), in seconds."""
    timing = headers.get("Server-Timing") or "dur=nan"
    return float(timing.split("dur=")[1]) / 1000


def serve_and_drive(cli: list[str], home: Path, env: dict[str, str], key: str,
                    probes: list[Path], claims: list[str], concurrency: int,
                    views: str = "standard") -> dict:
    """Start ``faceid serve`` on ``home``, send the verify and identify requests, stop it:
    each kind's statuses and latency percentiles."""
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--home", str(home),
                               "--views", views],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    out: dict = {"load_average": os.getloadavg()[0]}
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        post(f"{base}/v1/identify", key, {}, probes[0])  # first request warms up
        for kind in ("verify", "identify"):
            jobs = [(f"{base}/v1/{kind}", {"claim": c} if kind == "verify" else {}, p)
                    for p, c in zip(probes, claims)]
            t = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                results = list(pool.map(lambda j: post(j[0], key, j[1], j[2]), jobs))
            wall = time.perf_counter() - t
            ms = np.array([1000 * s for _, s, _, _ in results])
            one = np.array([1000 * s for c, s, n, _ in results if c == 200 and n == 1])
            inside = np.array([1000 * s for *_, s in results])
            codes = sorted({c for c, *_ in results})
            out[kind] = {"requests": len(ms), "ok": sum(c == 200 for c, *_ in results),
                         "statuses": {str(c): sum(x == c for x, *_ in results) for c in codes},
                         "server_p99_ms": round(float(np.percentile(inside, 99)), 1),
                         "one_face_requests": len(one),
                         "one_face_p99_ms": round(float(np.percentile(one, 99)), 1)
                         if len(one) else None,
                         "p50_ms": round(float(np.percentile(ms, 50)), 1),
                         "p95_ms": round(float(np.percentile(ms, 95)), 1),
                         "p99_ms": round(float(np.percentile(ms, 99)), 1),
                         "mean_ms": round(statistics.mean(ms), 1),
                         "per_second": round(len(ms) / wall, 1)}
            print(kind, json.dumps(out[kind]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw/lfw-deepfunneled"))
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--detector", action="append", choices=["mtcnn", "yunet"],
                    help="the server's face detector (FACEID_DETECTOR; the gallery is always "
                         "enrolled through MTCNN, as a site enrols photos); give two to run "
                         "one server after the other on the same gallery (default: yunet, "
                         "the server's own default)")
    ap.add_argument("--views", default="standard", choices=["fast", "standard", "accurate"],
                    help="the view preset the gallery is enrolled and served with (a site "
                         "choosing `fast` trades accuracy for half the encoder's work)")
    a = ap.parse_args()
    folders = sorted(p for p in a.lfw.iterdir() if (p / f"{p.name}_0002.jpg").is_file())
    enrolled, strangers = folders[:a.people], folders[a.people:]
    env = {**os.environ, "FACEID_THREADS": "1", "FACEID_DETECTOR": "mtcnn"}
    cli = [sys.executable, str(ROOT / "cli.py")]
    with tempfile.TemporaryDirectory() as tmp:
        home, photos = Path(tmp) / "home", Path(tmp) / "photos"
        for person in enrolled:
            (photos / person.name).mkdir(parents=True)
            (photos / person.name / "1.jpg").symlink_to((person / f"{person.name}_0001.jpg").resolve())
        t = time.perf_counter()
        done = json.loads(subprocess.run(
            [*cli, "enroll-dir", str(photos), "--home", str(home), "--allow-duplicate",
             "--pick", "center", "--views", a.views, "--json"], check=True, env=env, capture_output=True,
            text=True).stdout)
        enrol_s = time.perf_counter() - t
        key = json.loads(subprocess.run([*cli, "keys", "add", "bench", "--home", str(home),
                                         "--json"], check=True, env=env, capture_output=True,
                                        text=True).stdout)["key"]
        probes = [p / f"{p.name}_0002.jpg" for p in enrolled[:a.requests // 2]]
        probes += [p / f"{p.name}_0001.jpg" for p in strangers[:a.requests - len(probes)]]
        claims = [p.parent.name.replace("_", " ") if p.name.endswith("_0002.jpg")
                  else enrolled[i % len(enrolled)].name.replace("_", " ")
                  for i, p in enumerate(probes)]
        out = {"people": done["people_added"], "enrol_s": round(enrol_s, 1), "views": a.views,
               "concurrency": a.concurrency, "cores": os.cpu_count()}
        for detector in a.detector or ["yunet"]:
            print("# server detector:", detector, flush=True)
            out[detector] = serve_and_drive(cli, home, {**env, "FACEID_DETECTOR": detector},
                                            key, probes, claims, a.concurrency, a.views)
    print(json.dumps(out))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
