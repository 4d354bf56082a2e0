"""Reliability benchmark: many seeded bad inputs through the Python API and the CLI's batch
commands, counted by outcome. The same generators as the CI suite (tests/test_fuzz.py), at
a size CI does not run.

A failure is anything but a documented answer: another exception than faceid's own, an
exit code outside the documented ones (70 is "internal error"), a message that does not
name the file, a case slower than the deadline (a hang), or a batch that lost a row.

    .venv/bin/python -m bench.fuzz --files 2000 --objects 1000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from faceid.errors import FaceIDError  # noqa: E402
from tests.fuzz_cases import (FACE_CODES, FILE_CODES, deadline, file_cases,  # noqa: E402
                              object_cases, run_cli)

LFW = Path(os.environ.get("FACEID_LFW", "../shared/datasets/lfw"))


def api_run(cases: list, failures: list[str]) -> Counter:
    """load_image on every case: a loaded image or a documented error naming it."""
    from faceid.imageio import load_image

    outcomes: Counter = Counter()
    for case in cases:
        try:
            with deadline():
                load_image(case.source)
            outcomes["loaded"] += 1
        except FaceIDError as exc:
            ok = exc.exit_code in FILE_CODES and case.name in exc.message
            outcomes[type(exc).__name__ if ok else "FAILURE"] += 1
            if not ok:
                failures.append(f"load {case.kind}: {exc}")
        except Exception as exc:  # noqa: BLE001 - what the benchmark counts
            outcomes["FAILURE"] += 1
            failures.append(f"load {case.kind}: {type(exc).__name__}: {exc}")
    return outcomes


def cli_run(cases: list, good: Path, work: Path, failures: list[str]) -> dict[str, int]:
    """enroll-dir and verify-pairs over every file case: exit 0, every item reported."""
    files = [c for c in cases if c.kind != "long_path"]
    root = work / "people"
    (root / "Bad_Files").mkdir(parents=True)
    for c in files:
        (root / "Bad_Files" / c.source.name).symlink_to(c.source)
    code, out, err = run_cli("enroll-dir", root, "--home", work / "home", "--json",
                             timeout=3600)
    report = json.loads(out) if code == 0 else {}
    if code != 0 or "Traceback" in err:
        failures.append(f"enroll-dir exit {code}: {err.strip()[:200]}")
    pairs = work / "pairs.csv"
    with open(pairs, "w", newline="") as fh:
        csv.writer(fh).writerows([(str(c.source), str(good)) for c in files])
    code, _, err = run_cli("verify-pairs", pairs, "--out", work / "rows.csv", "--json",
                           timeout=3600)
    rows = list(csv.DictReader(open(work / "rows.csv"))) if code == 0 else []
    if code != 0 or len(rows) != len(files):
        failures.append(f"verify-pairs exit {code}, {len(rows)} of {len(files)} rows")
    unnamed = [r for r, c in zip(rows, files)
               if r["error"] and c.source.name not in r["error"]]
    bad_codes = [r for r in rows if r["error_code"]
                 and int(r["error_code"]) not in FILE_CODES | FACE_CODES]
    failures += [f"verify-pairs row {r['line']}: {r['error']}" for r in unnamed + bad_codes]
    return {"enroll_dir_failed_images": report.get("images_failed", -1),
            "verify_pairs_rows": len(rows), "verify_pairs_errors": sum(bool(r["error"])
                                                                      for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000, help="bad image files to generate")
    ap.add_argument("--objects", type=int, default=1000, help="odd arrays and objects")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    good = (LFW / "lfw-deepfunneled" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg").resolve()
    started = time.perf_counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = file_cases(work / "bad", good, args.files, seed=args.seed)
        objects = object_cases(args.objects, seed=args.seed)
        outcomes = api_run(files + objects, failures)
        batch = cli_run(files, good, work, failures)
    result = {"machine": f"{platform.node()} ({os.cpu_count()} cores)",
              "seed": args.seed, "inputs": len(files) + len(objects),
              "files": len(files), "objects": len(objects), "outcomes": dict(outcomes),
              **batch, "failures": len(failures),
              "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(result, indent=1))
    for line in failures[:20]:
        print("FAILURE", line)


if __name__ == "__main__":
    main()
