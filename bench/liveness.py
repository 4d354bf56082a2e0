"""Liveness benchmark: ISO/IEC 30107-3 error rates of the passive motion check, the active
challenge and the shipped passive gate (MiniFASNet + motion, as the door runs it), on the sets
of ``faceid/synthetic_attacks.py`` (attacks SYNTHETIC, live presentations real clips).

    .venv/bin/python -m bench.liveness --datasets ../shared/datasets [--json reports/liveness/report.json]

Protocol
* LFW people with 6+ photos are shuffled (seed) and split: ``--n-dev`` people build the
  development attacks (the motion threshold is chosen on them), ``--n-test`` other people
  build the test attacks reported here. Live clips are never used for choosing anything;
  every live window is a test presentation. The passive gate chooses nothing here: its
  threshold is the shipped operating point (chosen on pad-dev's real attacks,
  ``bench.liveness_pad``).
* A presentation is ACCEPTED when the decision would have been ``live=True`` at any frame
  (the door opens at the first such frame); undecided to the end counts as refused (the gate
  fails closed). APCER is per attack type (print, replay, slideshow); BPCER over live windows.
* Motion is swept over thresholds, so the table also gives APCER where BPCER = 5% and BPCER
  where APCER = 1%. Live windows are split by how far the head turned or nodded in them
  (landmark yaw / pitch range against the challenge's own turn and nod sizes): a head held
  still gives no 3-D motion to see, so those windows show what the passive check cannot do.
  Its attack frames carry the still's detection through the known warp (with jitter).
* The passive gate, ``LivenessGate(passive=PassiveCheck.load(None))`` (MiniFASNet at the
  shipped threshold, motion vetoing only a track that jumps, no challenge), gets one new
  track per test presentation, fed as the door feeds it (``update(frame, face, t)`` on every
  frame the face was found, ``result()`` after each) with MTCNN's own detection on every
  frame (:func:`faceid.synthetic_attacks.with_real_detections`: MiniFASNet's crop follows the
  detector's box). APCER per attack type and variant and BPCER come as k/n with one-sided
  95% Clopper-Pearson upper bounds; ``quality_ended`` counts presentations left on a
  ``quality:`` reason (the door says ``low_quality``, not ``not_live``; a live window so
  left is still a refusal, counted in BPCER).
* The active challenge (``--challenge``) is run on every test attack with the same real
  detections, ``--trials`` random prompt sequences each; the 2-s presentation is played
  forwards and backwards (no cut) until the challenge's time runs out. Its BPCER needs
  people who follow prompts, and no clip here does, so it is not measured.

Result (2026-12-03, 2-core EPYC shared with a test run, 521 s, detection cache empty): the
passive gate accepted 12/85 SYNTHETIC prints (14.1%, bound 21.9%; every variant but the
captured one: plain 4, blur 3, glare 3, moire 2 of 20), 0/25 replays (bound 11.3%) and 0/20
slideshows (all end ``track_jump``); it refused 13/39 live windows (33.3%, bound 47.7%),
12 of them faces under its 60-px minimum (``quality:small_face``) and 1 a track jump, so
26/27 judgeable live windows were accepted. Motion alone at 0.5: APCER 29.4 / 64.0 / 5.0%,
BPCER 53.8%. The synthetic prints are LFW photos with lowered contrast and a paper margin
but no paper texture, likely easier than real prints (pad-dev's real prints: 0/786 frames
accepted); still, with motion no longer refusing a planar track, texture alone stands
between the door and a flat picture.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from bench.liveness_pad import rate
from faceid.synthetic_attacks import (
    Sequence,
    challenge_passes,
    attack_sequence,
    background_frame,
    live_sequences,
    load_stills,
    slideshow_sequence,
    with_real_detections,
)
from faceid.detection import FaceDetector
from faceid.imageio import load_image
from faceid.door.liveness import (
    MOTION_THRESHOLD,
    POSE_SMOOTH,
    ChallengeLiveness,
    LivenessGate,
    MotionLiveness,
    PassiveCheck,
)
from faceid.quality import head_pose

PRINT_VARIANTS = ("plain", "blur", "glare", "moire")


def motion_trace(seq: Sequence) -> dict:
    """Run the motion check over a presentation; ``best`` is the largest ratio at which it
    would have said live at some frame (before any jump), -1 if it never could decide."""
    m = MotionLiveness()
    best = -1.0
    for frame, face, t in seq.seen():
        m.update(frame, face, t)
        r = m.result()
        if r.reason == "track_jump":
            break
        if r.live is not None:
            best = max(best, r.details["ratio"])
    final = m.result()
    return {"best": best, "final": final.reason, "jumps": m.jumps, "ratio": final.details["ratio"]}


def pose_change(seq: Sequence, smooth: int = POSE_SMOOTH) -> tuple[float, float]:
    """(yaw range, pitch range) of the landmark head pose over the presentation, each pose the
    median of the last ``smooth`` frames as :class:`ChallengeLiveness` smooths it."""
    poses = [head_pose(f.landmarks) for _, f, _ in seq.seen()]
    if not poses:
        return 0.0, 0.0
    yp = np.array([(p.yaw, p.pitch) for p in poses])
    med = np.array([np.median(yp[max(0, i - smooth + 1):i + 1], axis=0) for i in range(len(yp))])
    return float(np.ptp(med[:, 0])), float(np.ptp(med[:, 1]))


def shuffled_people(datasets: Path, rng: np.random.Generator) -> list[Path]:
    """LFW people with 6+ photos in a seeded order: the first ``--n-dev`` are the development
    split (thresholds are chosen on them), the rest may be tested on."""
    lfw = datasets / "lfw" / "lfw-deepfunneled"
    people = sorted(p for p in lfw.iterdir() if len(list(p.glob("*.jpg"))) >= 6)
    return [people[i] for i in rng.permutation(len(people))]


def build(args: argparse.Namespace, detector: FaceDetector) -> dict[str, list[Sequence]]:
    """The presentations: {"dev": [...], "test": [...]}."""
    root = Path(args.datasets)
    cache = Path(args.out) / "cache"
    rng = np.random.default_rng(args.seed)
    people = shuffled_people(root, rng)
    dev_people, test_people = people[:args.n_dev], people[args.n_dev:args.n_dev + args.n_test]
    textures = [load_image(max(p.glob("*.jpg")))
                for p in people[args.n_dev + args.n_test:args.n_dev + args.n_test + 8]]
    sets: dict[str, list[Sequence]] = {"dev": [], "test": []}
    for split, group in (("dev", dev_people), ("test", test_people)):
        stills = load_stills([min(p.glob("*.jpg")) for p in group], detector, cache)
        for still in tqdm(stills, desc=f"{split} attacks", leave=False):
            bg = background_frame(rng, textures[int(rng.integers(len(textures)))])
            for variant in PRINT_VARIANTS:
                sets[split].append(attack_sequence(still, "print", variant, rng, bg))
            sets[split].append(attack_sequence(still, "replay", "screen", rng, bg))
        if split == "test":
            for p in tqdm(group, desc="slideshows", leave=False):
                shots = load_stills(sorted(p.glob("*.jpg"))[:6], detector, cache)
                bg = background_frame(rng, textures[int(rng.integers(len(textures)))])
                sets[split].append(slideshow_sequence(shots, rng, bg))
            # the real captured attacks of antispoof_samples, moved by planar warps
            samples = root / "antispoof_samples"
            for name, kind in (("image_F1.jpg", "print"), ("image_F2.jpg", "replay")):
                cap = load_stills([samples / name], detector, cache)
                for _ in range(args.captures):
                    bg = background_frame(rng, textures[int(rng.integers(len(textures)))])
                    sets[split] += [attack_sequence(s, kind, "capture", rng, bg) for s in cap]
    sets["test"] += live_sequences(root, detector, cache)
    return sets


def rates(accept: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """APCER per attack type and BPCER (fractions)."""
    out = {f"apcer_{k}": float(accept[kinds == k].mean())
           for k in ("print", "replay", "slideshow") if (kinds == k).any()}
    out["bpcer"] = float((~accept[kinds == "live"]).mean())
    return out


def gate_trace(gate: LivenessGate, seq: Sequence) -> dict:
    """Run the gate over one presentation as the door feeds it (one track, every frame the
    face was seen, the result read after each). ``accepted``: live=True at some frame (the
    door would open there, so feeding stops); otherwise ``reason`` is why it was still not
    live at the end (``quality:...`` is what the door reports as low_quality, not not_live)."""
    track = gate.new_track()
    result = track.result()
    for frame, face, t in seq.seen():
        track.update(frame, face, t)
        result = track.result()
        if result.live is True:
            break
    passive = result.details.get("passive", {}).get("details", {})
    return {"accepted": result.live is True, "reason": result.reason,
            "p_live": passive.get("p_live"), "scored_frames": passive.get("frames", 0)}


def gate_rates(traces: list[dict], kinds: np.ndarray, variants: np.ndarray) -> dict:
    """APCER per attack type and per attack variant, BPCER over live windows, each as k/n
    with its one-sided 95% Clopper-Pearson bound (a zero count still bounds the rate), and
    per kind how the presentations that were not accepted ended."""
    accept = np.array([t["accepted"] for t in traces])
    out: dict = {f"apcer_{k}": rate(int(accept[kinds == k].sum()), int((kinds == k).sum()))
                 for k in ("print", "replay", "slideshow") if (kinds == k).any()}
    live = kinds == "live"
    out["bpcer"] = rate(int((~accept[live]).sum()), int(live.sum()))
    out["apcer_by_variant"] = {
        f"{k}/{v}": rate(int(accept[(kinds == k) & (variants == v)].sum()),
                         int(((kinds == k) & (variants == v)).sum()))
        for k, v in sorted(set(zip(kinds, variants))) if k != "live"}
    out["quality_ended"] = {k: sum(t["reason"].startswith("quality:")
                                   for t, kd in zip(traces, kinds) if kd == k)
                            for k in np.unique(kinds)}
    out["ended"] = {k: dict(Counter(t["reason"] for t, kd in zip(traces, kinds) if kd == k))
                    for k in np.unique(kinds)}
    out["attack_max_p_live"] = {k: max((t["p_live"] or 0.0 for t, kd in zip(traces, kinds)
                                        if kd == k), default=None)
                                for k in ("print", "replay", "slideshow")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="../shared/datasets")
    ap.add_argument("--out", default="reports/liveness")
    ap.add_argument("--n-dev", type=int, default=12)
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--captures", type=int, default=5, help="warped copies of each real captured attack")
    ap.add_argument("--trials", type=int, default=3, help="random challenge sequences per attack")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    detector = FaceDetector()
    sets = build(args, detector)
    traces = {split: [motion_trace(s) for s in tqdm(seqs, desc=f"motion {split}", leave=False)]
              for split, seqs in sets.items()}
    dev_best = np.array([t["best"] for t in traces["dev"]])
    test_best = np.array([t["best"] for t in traces["test"]])
    kinds = np.array([s.kind for s in sets["test"]])
    variants = np.array([s.variant for s in sets["test"]])
    # motion threshold: the lowest that accepts at most 1% of the development attacks
    dev_sorted = np.sort(dev_best)
    k = int(np.ceil(0.99 * len(dev_sorted))) - 1
    calibrated = float(dev_sorted[k]) + 1e-4 if dev_sorted[k] > 0 else MOTION_THRESHOLD
    report: dict = {"machine": "see docs/BENCHMARKS.md", "args": vars(args),
                    "counts": {k: int((kinds == k).sum()) for k in np.unique(kinds)},
                    "dev_attacks": len(sets["dev"]), "calibrated_motion_threshold": calibrated,
                    "default_motion_threshold": MOTION_THRESHOLD}
    sweep = []
    for thr in sorted({MOTION_THRESHOLD, calibrated, *np.round(np.arange(0.1, 1.51, 0.05), 2)}):
        sweep.append({"threshold": float(thr), **rates(test_best >= thr, kinds)})
    report["motion_sweep"] = sweep
    acc_default = test_best >= MOTION_THRESHOLD
    report["motion_default"] = rates(acc_default, kinds)
    report["motion_by_variant"] = {
        f"{k}/{v}": {"n": int(((kinds == k) & (variants == v)).sum()),
                     "accepted": float(acc_default[(kinds == k) & (variants == v)].mean())}
        for k, v in sorted(set(zip(kinds, variants)))}
    live_rows = kinds == "live"
    decided = live_rows & (test_best >= 0)
    report["motion_live_decided"] = {
        "windows": int(live_rows.sum()), "ever_decided": int(decided.sum()),
        "bpcer_among_decided": float((test_best[decided] < MOTION_THRESHOLD).mean())
        if decided.any() else None}
    report["motion_outcomes_live"] = {r: int(sum(t["final"] == r for t, kd in zip(traces["test"], kinds) if kd == "live"))
                                      for r in ("live", "planar_motion", "insufficient_motion", "track_jump", "pending")}
    report["motion_outcomes_slideshow"] = {r: int(sum(t["final"] == r for t, kd in zip(traces["test"], kinds) if kd == "slideshow"))
                                           for r in ("live", "planar_motion", "insufficient_motion", "track_jump", "pending")}
    # the operating point the issue asks for: the lowest threshold with APCER <= 1% on
    # print and on replay (test), and the BPCER there, for moving and for still heads
    strict = next((r for r in sweep if r.get("apcer_print", 0) <= 0.01
                   and r.get("apcer_replay", 0) <= 0.01), None)
    moves = [pose_change(s) for s in sets["test"]]
    ch = ChallengeLiveness()
    moving = np.array([y >= ch.yaw_delta or p >= ch.pitch_delta for y, p in moves])
    split = {}
    for label, rows in (("moving", live_rows & moving), ("still", live_rows & ~moving)):
        split[label] = {"windows": int(rows.sum()),
                        "bpcer_default": float((test_best[rows] < MOTION_THRESHOLD).mean()) if rows.any() else None,
                        "bpcer_at_apcer_1pct": float((test_best[rows] < strict["threshold"]).mean())
                        if rows.any() and strict else None}
    report["motion_at_apcer_1pct"] = strict
    report["live_by_head_movement"] = {"rule": f"yaw range >= {ch.yaw_delta} or pitch range >= {ch.pitch_delta}",
                                       **split}
    # the active challenge on the attacks, with the real detector's landmarks
    cache = Path(args.out) / "cache"
    dev_moves = np.array([pose_change(with_real_detections(s, detector, cache)) for s in sets["dev"]])
    report["challenge_dev_pose_change"] = {"max_yaw": float(dev_moves[:, 0].max()),
                                           "max_pitch": float(dev_moves[:, 1].max()),
                                           "yaw_delta": ch.yaw_delta, "pitch_delta": ch.pitch_delta}
    # what the door sees: MTCNN's own detection on every frame (live clips already have it)
    seen = [with_real_detections(seq, detector, cache)
            for seq in tqdm(sets["test"], desc="detect", leave=False)]
    rng_ch = random.Random(args.seed)
    passed: dict[str, list[bool]] = {}
    for real in tqdm([seq for seq in seen if seq.kind != "live"], desc="challenge", leave=False):
        passed.setdefault(real.kind, []).extend(challenge_passes(real, rng_ch)
                                                for _ in range(args.trials))
    report["challenge"] = {"trials_per_attack": args.trials,
                           **{f"apcer_{k}": float(np.mean(v)) for k, v in passed.items()},
                           "attempts": {k: len(v) for k, v in passed.items()}, "bpcer": None}
    # the shipped passive gate (MiniFASNet + motion as evidence), as the door runs it
    passive = PassiveCheck.load(None)
    gate = LivenessGate(passive=passive)
    gate_traces = [gate_trace(gate, seq) for seq in tqdm(seen, desc="passive gate", leave=False)]
    report["passive_gate"] = {"threshold": passive.threshold, "source": passive.source,
                              "faces": "MTCNN on every frame",
                              **gate_rates(gate_traces, kinds, variants)}
    return finish(report, args, t0)


def finish(report: dict, args: argparse.Namespace, t0: float) -> int:
    """Print the report (and write it with ``--json``)."""
    report["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
