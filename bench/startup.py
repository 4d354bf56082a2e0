"""What a command costs before it does anything: wall time, CPU time and peak memory of
``faceid --help``, ``people list``, ``events``, ``model-info`` (on a gallery of one person,
enrolled once before timing) and one ``faceid compare`` (a badge reader's call), each run in
a fresh process as a user would, median of ``--runs``; and, for where that time goes, the
bare imports of the libraries those commands load (``import torch`` and friends, each in a
fresh Python). Each checkout gets an empty network-export cache (``FACEID_CACHE``): its first
``compare`` (which makes the exports, timed once, as "compare, first run") fills it, and
the timed commands after it find it, as every command after a user's first does.

    .venv/bin/python -m bench.startup [--runs 5] [--repo OLD_CHECKOUT --repo .]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LFW = Path(os.environ.get("FACEID_LFW", "../shared/datasets/lfw")) / "lfw-deepfunneled"


IMPORTS = ("torch", "cv2", "sqlalchemy.orm", "typer", "numpy")


def measure(root: Path, args: list[str]) -> dict[str, float]:
    """One fresh ``faceid`` process: wall s and CPU s (user + system)."""
    return measure_code(None, [str(root / "cli.py"), *args])


def measure_code(code: str | None, argv: list[str] | None = None) -> dict[str, float]:
    """One fresh Python running ``code`` (``-c``) or ``argv``: wall s and CPU s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *(argv if code is None else ["-c", code])], check=True,
                   capture_output=True, env={**os.environ, "FACEID_THREADS": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repo", type=Path, action="append", default=None,
                    help="checkout(s) whose cli.py to time (default: this one); give two "
                         "to compare before and after in one run")
    a = ap.parse_args()
    person = LFW / "Aaron_Peirsol"
    homes = []
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    try:
        for root in a.repo or [ROOT]:
            # each checkout enrols into a home of its own: its schema may differ
            home = Path(tempfile.mkdtemp(prefix="faceid-startup-"))
            homes.append(home)
            os.environ["FACEID_CACHE"] = str(home / "cache")
            report(root, "compare, first run", compare_args(person), 1, peak=False)
            subprocess.run([sys.executable, str(root / "cli.py"), "enroll", "Aaron Peirsol",
                            str(person / "Aaron_Peirsol_0001.jpg"), "--home", str(home)],
                           check=True, capture_output=True)
            commands = {"--help": ["--help"],
                        "people list": ["people", "list", "--home", str(home)],
                        "events": ["events", "--home", str(home)],
                        "model-info": ["model-info"],
                        "compare": compare_args(person)}
            for name, args in commands.items():
                report(root, name, args, a.runs)
        for module in IMPORTS:
            runs = [measure_code(f"import {module}") for _ in range(a.runs)]
            print(json.dumps({"command": f"python -c 'import {module}'",
                              "wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
                              "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2)}))
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


def compare_args(person: Path) -> list[str]:
    return ["compare", str(person / f"{person.name}_0001.jpg"),
            str(person / f"{person.name}_0002.jpg")]


def report(root: Path, name: str, args: list[str], runs_n: int, *, peak: bool = True) -> None:
    """Median of ``runs_n`` fresh processes. Peak memory is measured in a child of its
    own (``ru_maxrss`` of children is the largest child so far), after the timed runs."""
    runs = [measure(root, args) for _ in range(runs_n)]
    row = {"repo": str(root), "command": f"faceid {name}",
           "wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
           "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2)}
    if peak:
        out = subprocess.run([sys.executable, "-c", PEAK, str(root / "cli.py"), *args],
                             capture_output=True, text=True, env={**os.environ,
                                                                  "FACEID_THREADS": "1"})
        row["peak_mib"] = round(float(out.stdout.strip().splitlines()[-1]))
    print(json.dumps(row))


# runs cli.py in a grandchild and prints that process's peak RSS in MiB
PEAK = """import resource, subprocess, sys
subprocess.run([sys.executable, *sys.argv[1:]], capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"""


if __name__ == "__main__":
    main()
