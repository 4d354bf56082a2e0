"""Liveness benchmark: ISO/IEC 30107-3 error rates of the passive motion check, the CNN
classifier and the gate that fuses them, on the sets of ``bench/spoof_sets.py`` (attacks
SYNTHETIC, live presentations real clips).

    .venv/bin/python -m bench.liveness --datasets ../shared/datasets [--json reports/liveness/report.json]

Protocol
* LFW people with 6+ photos are shuffled (seed) and split: ``--n-dev`` people build the
  development attacks (the motion threshold is chosen on them, the CNN is trained on them),
  ``--n-test`` other people build the test attacks reported here. Live clips are never used
  for choosing anything; every live window is a test presentation.
* A presentation is ACCEPTED when the decision would have been ``live=True`` at any frame
  (the door opens at the first such frame); undecided to the end counts as refused (the gate
  fails closed). APCER is per attack type (print, replay, slideshow); BPCER over live windows.
* Motion is swept over thresholds, so the table also gives APCER where BPCER = 5% and BPCER
  where APCER = 1%. Live windows are split by how far the head turned or nodded in them
  (landmark yaw / pitch range against the challenge's own turn and nod sizes): a head held
  still gives no 3-D motion to see, so those windows show what the passive check cannot do.
* The active challenge (``--challenge``) is run on every test attack with the real detector's
  landmarks on every frame (:func:`bench.spoof_sets.with_real_detections`), ``--trials``
  random prompt sequences each; the 2-s presentation is played forwards and backwards
  (no cut) until the challenge's time runs out. Its BPCER needs people who follow prompts,
  and no clip here does, so it is not measured.
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

from bench.spoof_sets import (
    Sequence,
    Still,
    attack_sequence,
    background_frame,
    live_sequences,
    load_stills,
    slideshow_sequence,
    with_real_detections,
)
from faceid.detect import FaceDetector
from faceid.imageio import load_image
from faceid.liveness import (
    MOTION_THRESHOLD,
    POSE_SMOOTH,
    ChallengeLiveness,
    CnnLiveness,
    MotionLiveness,
    face_crop,
)
from faceid.quality import head_pose
from training.liveness import KEEP, LivenessTrainConfig, train_liveness

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


def challenge_passes(seq: Sequence, rng: random.Random, n: int = 2, timeout_s: float = 6.0,
                     **sizes: float) -> bool:
    """Whether a random ``n``-prompt challenge passes on this presentation, played forwards
    and backwards (ping-pong, no cut) until every prompt's time could have run out.
    ``sizes``: ChallengeLiveness settings other than its defaults (yaw_delta, ...)."""
    seen = list(seq.seen())
    if len(seen) < 2:
        return False
    ch = ChallengeLiveness(n=n, timeout_s=timeout_s, rng=rng, **sizes)
    dt = (seen[-1][2] - seen[0][2]) / (len(seen) - 1) or 1 / 15
    order = seen + seen[-2:0:-1]
    k = 0
    while ch.prompt is not None and k * dt <= n * timeout_s + 1:
        ch.update(order[k % len(order)][1], k * dt)
        k += 1
    return ch.result().live is True


def pose_change(seq: Sequence, smooth: int = POSE_SMOOTH) -> tuple[float, float]:
    """(yaw range, pitch range) of the landmark head pose over the presentation, each pose the
    median of the last ``smooth`` frames as :class:`ChallengeLiveness` smooths it."""
    poses = [head_pose(f.landmarks) for _, f, _ in seq.seen()]
    if not poses:
        return 0.0, 0.0
    yp = np.array([(p.yaw, p.pitch) for p in poses])
    med = np.array([np.median(yp[max(0, i - smooth + 1):i + 1], axis=0) for i in range(len(yp))])
    return float(np.ptp(med[:, 0])), float(np.ptp(med[:, 1]))


def cnn_mean(cnn: CnnLiveness, seq: Sequence, every: int = 3) -> float:
    """Mean P(live) over every ``every``-th seen frame (as the gate averages it)."""
    crops = [face_crop(fr, f.box, cnn.size, cnn.context) for fr, f, _ in list(seq.seen())[::every]]
    return float(cnn.score_crops(np.stack(crops)).mean()) if crops else 0.0


def shuffled_people(datasets: Path, rng: np.random.Generator) -> list[Path]:
    """LFW people with 6+ photos in a seeded order: the first ``--n-dev`` are the development
    split (thresholds are chosen on them), the rest may be tested on."""
    lfw = datasets / "lfw" / "lfw-deepfunneled"
    people = sorted(p for p in lfw.iterdir() if len(list(p.glob("*.jpg"))) >= 6)
    return [people[i] for i in rng.permutation(len(people))]


def build(args: argparse.Namespace, detector: FaceDetector) -> tuple[dict, list[Still], list[Still]]:
    """The presentations: {"dev": [...], "test": [...]} and the dev/test stills."""
    root = Path(args.datasets)
    cache = Path(args.out) / "cache"
    rng = np.random.default_rng(args.seed)
    people = shuffled_people(root, rng)
    dev_people, test_people = people[:args.n_dev], people[args.n_dev:args.n_dev + args.n_test]
    textures = [load_image(max(p.glob("*.jpg")))
                for p in people[args.n_dev + args.n_test:args.n_dev + args.n_test + 8]]
    sets: dict[str, list[Sequence]] = {"dev": [], "test": []}
    stills: dict[str, list[Still]] = {}
    for split, group in (("dev", dev_people), ("test", test_people)):
        stills[split] = load_stills([min(p.glob("*.jpg")) for p in group], detector, cache)
        for still in tqdm(stills[split], desc=f"{split} attacks", leave=False):
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
    live = live_sequences(root, detector, cache)
    sets["test"] += live
    return sets, stills["dev"], stills["test"]


def cnn_crops(seqs: list[Sequence], stills: list[Still], rng: np.random.Generator,
              every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Training crops for the CNN from the development split only: live = the dev people's
    stills through the same camera model as the attacks (noise, JPEG); spoof = every
    ``every``-th frame of the dev attack presentations."""
    import cv2

    live = []
    for s in stills:
        for _ in range(4):
            img = s.image.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.normal(0, 2.5, s.image.shape)
            _, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 91))])
            live.append(face_crop(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), s.face.box, KEEP,
                                  1.6 * 1.25, np.array([*rng.normal(0, 0.03, 2), 0.0])))
    spoof = [face_crop(fr, f.box, KEEP, 1.6 * 1.25)
             for seq in seqs if seq.kind != "live" for fr, f, _ in list(seq.seen())[::every]]
    return np.stack(live), np.stack(spoof)


def rates(accept: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """APCER per attack type and BPCER (fractions)."""
    out = {f"apcer_{k}": float(accept[kinds == k].mean())
           for k in ("print", "replay", "slideshow") if (kinds == k).any()}
    out["bpcer"] = float((~accept[kinds == "live"]).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="../shared/datasets")
    ap.add_argument("--out", default="reports/liveness")
    ap.add_argument("--n-dev", type=int, default=12)
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--captures", type=int, default=5, help="warped copies of each real captured attack")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--trials", type=int, default=3, help="random challenge sequences per attack")
    ap.add_argument("--no-cnn", action="store_true", help="skip training and scoring the CNN")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    detector = FaceDetector()
    sets, dev_stills, _ = build(args, detector)
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
    rng_ch = random.Random(args.seed)
    attacks = [s for s in sets["test"] if s.kind != "live"]
    passed: dict[str, list[bool]] = {}
    for seq in tqdm(attacks, desc="challenge", leave=False):
        real = with_real_detections(seq, detector, cache)
        passed.setdefault(seq.kind, []).extend(challenge_passes(real, rng_ch) for _ in range(args.trials))
    report["challenge"] = {"trials_per_attack": args.trials,
                           **{f"apcer_{k}": float(np.mean(v)) for k, v in passed.items()},
                           "attempts": {k: len(v) for k, v in passed.items()}, "bpcer": None}
    if args.no_cnn:
        return finish(report, args, t0)
    # CNN: trained on the development split only
    rng = np.random.default_rng(args.seed + 1)
    live_c, spoof_c = cnn_crops(sets["dev"], dev_stills, rng)
    model = Path(args.out) / "cnn" / "liveness.json"
    cfg = LivenessTrainConfig("<dev stills>", "<dev attacks>", str(model), epochs=args.epochs,
                              seed=args.seed)
    trained = train_liveness(cfg, crops=(live_c, spoof_c), log=lambda s: print(s, file=sys.stderr))
    cnn = CnnLiveness.load(model)
    p_live = np.array([cnn_mean(cnn, s) for s in tqdm(sets["test"], desc="cnn", leave=False)])
    acc_cnn = p_live >= cnn.threshold
    samples = Path(args.datasets) / "antispoof_samples"
    still_scores = {}
    for name in ("image_T1.jpg", "image_F1.jpg", "image_F2.jpg"):
        img = load_image(samples / name)
        faces = detector.detect(img)
        still_scores[name] = cnn.score(img, max(faces, key=lambda f: f.size)) if faces else None
    report["cnn"] = {"train": {"live_crops": len(live_c), "spoof_crops": len(spoof_c),
                               "threshold": trained.threshold, "held_out": trained.val,
                               "seconds": trained.seconds},
                     "test": rates(acc_cnn, kinds), "antispoof_samples_p_live": still_scores,
                     "by_variant": {f"{k}/{v}": float(acc_cnn[(kinds == k) & (variants == v)].mean())
                                    for k, v in sorted(set(zip(kinds, variants)))}}
    report["gate_motion_and_cnn"] = rates(acc_default & acc_cnn, kinds)
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
