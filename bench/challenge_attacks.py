"""The active challenge against a larger set of print and screen attacks than
``bench.liveness`` holds in memory: enough presentations that a zero count bounds APCER near
1%. Attacks are SYNTHETIC (``faceid/synthetic_attacks.py``), made and scored one at a time.

    .venv/bin/python -m bench.challenge_attacks --people 100 --json reports/liveness/challenge.json

People: LFW people with 6+ photos, in ``bench.liveness``'s seeded order, skipping its
``--n-dev`` development people (on whom the challenge's turn and nod sizes were set); the
first photo of each. Per person: the four print variants and ``--replays`` screen replays,
each with MTCNN's own detection on every frame, played forwards and backwards until the
challenge's time runs out, ``--trials`` random 2-prompt sequences each. A presentation
counts as accepted if any of its trials passed. The 95% upper bound for zero accepted is the
rule of three (3 / presentations). ``--yaw-delta`` / ``--pitch-delta`` / ``--smooth`` rerun it
with other challenge settings (the earlier 0.2 / 0.12 / 1, say).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.liveness import PRINT_VARIANTS, shuffled_people
from faceid.synthetic_attacks import (
    attack_sequence,
    challenge_passes,
    background_frame,
    load_stills,
    with_real_detections,
)
from faceid.detection import FaceDetector
from faceid.imageio import load_image


def summarize(accepted: dict[str, list[bool]], args: argparse.Namespace, t0: float,
              quiet: bool = False) -> None:
    """Counts per variant and per kind, written to ``--json`` (and printed unless quiet)."""
    report: dict = {"args": vars(args), "by_variant": {}, "by_kind": {}}
    for key, hits in sorted(accepted.items()):
        report["by_variant"][key] = {"presentations": len(hits), "accepted": int(sum(hits))}
    for kind in ("print", "replay"):
        hits = [h for key, v in accepted.items() if key.startswith(kind) for h in v]
        if hits:
            report["by_kind"][kind] = {"presentations": len(hits), "accepted": int(sum(hits)),
                                       "apcer": float(np.mean(hits)),
                                       "upper_95_if_zero": min(1.0, 3 / len(hits))}
    report["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    if not quiet:
        print(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="../shared/datasets")
    ap.add_argument("--out", default="reports/liveness")
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--replays", type=int, default=3, help="screen replays per person")
    ap.add_argument("--trials", type=int, default=3, help="random challenge sequences per attack")
    ap.add_argument("--n-dev", type=int, default=12, help="bench.liveness's development people, skipped")
    ap.add_argument("--yaw-delta", type=float, default=None, help="override the challenge's turn size")
    ap.add_argument("--pitch-delta", type=float, default=None, help="override the challenge's nod size")
    ap.add_argument("--smooth", type=int, default=None, help="override the challenge's pose smoothing (frames)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    detector = FaceDetector()
    cache = Path(args.out) / "cache"
    rng = np.random.default_rng(args.seed)
    people = shuffled_people(Path(args.datasets), rng)
    textures = [load_image(max(p.glob("*.jpg"))) for p in people[-8:]]
    chosen = people[args.n_dev:args.n_dev + args.people]
    rng_ch = random.Random(args.seed)
    sizes = {k: v for k, v in (("yaw_delta", args.yaw_delta), ("pitch_delta", args.pitch_delta),
                               ("smooth", args.smooth)) if v is not None}
    accepted: dict[str, list[bool]] = {}
    for i, person in enumerate(tqdm(chosen, desc="people")):
        stills = load_stills([min(person.glob("*.jpg"))], detector, cache)
        if not stills:
            continue
        bg = background_frame(rng, textures[int(rng.integers(len(textures)))])
        attacks = [("print", v) for v in PRINT_VARIANTS] + [("replay", "screen")] * args.replays
        for kind, variant in attacks:
            seq = with_real_detections(attack_sequence(stills[0], kind, variant, rng, bg), detector, None)
            hit = any(challenge_passes(seq, rng_ch, **sizes) for _ in range(args.trials))
            accepted.setdefault(f"{kind}/{variant}", []).append(hit)
        if i % 10 == 9:
            summarize(accepted, args, t0, quiet=True)  # a killed run keeps what it measured
    summarize(accepted, args, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
