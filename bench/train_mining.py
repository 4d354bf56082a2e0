"""Triplet mining compared on the same budget (training issue, result c): batch-hard vs
semi-hard (FaceNet) vs batch-all, each training the compact encoder from scratch for the same
wall-clock minutes on LFW View 1 (train: peopleDevTrain.txt less 10% held-out identities;
report: pairsDevTest.txt, people-disjoint), with the triplet loss alone (no pair head), so
that only the mining rule differs. Same seed, data, schedule and augmentation.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.train_mining --lfw ../shared/datasets/lfw --minutes 4 [--json out.json]

Runs one after another (never side by side: they would share the CPU unevenly).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from training.losses import Mining
from training.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench-mining"))
    ap.add_argument("--cache", type=Path, default=Path("reports/train-cache"))
    ap.add_argument("--head", default="none", help="pair head for every run (default: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--widths", default="24,48,96,192", help="compact encoder stage widths")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = {}
    for mining in Mining:
        out = args.out / mining.value
        shutil.rmtree(out, ignore_errors=True)   # this bench owns its run folders
        cfg = TrainConfig(data=str(args.lfw / "lfw-deepfunneled"), out=str(out),
                          people=str(args.lfw / "peopleDevTrain.txt"),
                          test_pairs=str(args.lfw / "pairsDevTest.txt"), pairs_root=str(args.lfw),
                          cache=str(args.cache), mining=mining.value, head=args.head,
                          lr=args.lr, widths=[int(w) for w in args.widths.split(",")],
                          epochs=1000, minutes=args.minutes, eval_every=0, seed=args.seed,
                          name=f"scratch-{mining.value}")
        r = train(cfg, log=print)
        speeds = sorted(h["images_per_s"] for h in r.history)
        rows[mining.value] = {**r.metrics, "epochs": len(r.history),
                              "images": sum(h["images"] for h in r.history),
                              "images_per_s_median": speeds[len(speeds) // 2],
                              "last_active": r.history[-1]["active"],
                              "last_pos_dist": r.history[-1]["pos_dist"],
                              "last_neg_dist": r.history[-1]["neg_dist"],
                              "load_avg_median": sorted(h["load_avg"] for h in r.history)[len(r.history) // 2]}
    print(f"\n{args.minutes:g} min each, head {args.head}, pairsDevTest (people-disjoint):")
    print("| mining | epochs | images | img/s | load | best-threshold acc | 10-fold acc | AUC | "
          "active triplets (last epoch) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, r in rows.items():
        print(f"| {m} | {r['epochs']} | {r['images']} | {r['images_per_s_median']:.0f} | "
              f"{r['load_avg_median']:.1f} | "
              f"{100 * r['best_accuracy']:.2f}% | {100 * r['cv10_accuracy']:.2f}% | "
              f"{r['auc']:.4f} | {100 * r['last_active']:.1f}% |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
