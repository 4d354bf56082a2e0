"""Does fine-tuning the pretrained encoder help on people-disjoint LFW? (training issue,
result b). LFW View 1: fine-tune on peopleDevTrain.txt (less 10% held-out identities, which
calibrate tau), score on pairsDevTest.txt (people-disjoint), beside the pretrained model's own
score on the same pairs, chips and scoring (mirror views, distance). The fine-tuned model is
scored by distance and by its binary pair head.

Caveat: the pretrained dlib model was trained on ~3M faces of ~7,500 people (FaceScrub, VGG
Face, web images); its overlap with LFW identities is not documented, so its baseline may
have seen some of these people.

    .venv/bin/python -m bench.train_finetune --lfw ../shared/datasets/lfw --minutes 6 --freeze-stages 3 [--json out.json]

On a GPU box without the dataset: export the aligned 150-px chips here (JPEG, ~50 MB), carry
the file over, and run from it:

    .venv/bin/python -m bench.train_finetune --lfw ../shared/datasets/lfw --export reports/ft-chips.npz
    .venv/bin/python -m bench.train_finetune --chips reports/ft-chips.npz --device cuda --minutes 5
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from training.data import (
    LandmarkCache,
    export_chips,
    load_exported,
    load_pair_set,
    load_training_set,
    read_people,
)
from training.models import build_encoder
from training.train import TrainConfig, score_pairs, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=Path("../shared/datasets/lfw"))
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--freeze-stages", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--head", default="abs")
    ap.add_argument("--mining", default="batch-hard")
    ap.add_argument("--out", type=Path, default=Path("reports/bench-finetune"))
    ap.add_argument("--cache", type=Path, default=Path("reports/train-cache"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--base-model", help="model file to fine-tune (default: the bundled dlib ResNet)")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality of --export")
    ap.add_argument("--export", type=Path, help="write the aligned chips to this .npz and stop")
    ap.add_argument("--chips", type=Path, help="train and test from an exported .npz")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    device = torch.device(args.device)

    net, spec, _ = build_encoder("finetune", base_model=args.base_model)
    template = np.asarray(spec.template)
    if args.export:
        cache = LandmarkCache(args.cache)
        people = read_people(args.lfw / "peopleDevTrain.txt")
        data = load_training_set(args.lfw / "lfw-deepfunneled", cache, spec.chip_size, template,
                                 people=people)
        test = load_pair_set(args.lfw / "pairsDevTest.txt", args.lfw, cache, spec.chip_size,
                             template)
        path = export_chips(args.export, data, test, template=template, quality=args.quality)
        print(f"{path}: {len(data.labels)} training chips, {len(test.chips)} test chips, "
              f"{path.stat().st_size / 2 ** 20:.1f} MiB")
        return
    if args.chips:
        _, test = load_exported(args.chips, spec.chip_size, template)
    else:
        test = load_pair_set(args.lfw / "pairsDevTest.txt", args.lfw, LandmarkCache(args.cache),
                             spec.chip_size, template)
    baseline, _, _ = score_pairs(net.to(device), None, test, device)
    print(f"pretrained: best-threshold {100 * baseline['best_accuracy']:.2f}%, 10-fold "
          f"{100 * baseline['cv10_accuracy']:.2f}%, AUC {baseline['auc']:.4f}")

    shutil.rmtree(args.out, ignore_errors=True)   # this bench owns its run folder
    from_lfw = args.chips is None
    cfg = TrainConfig(data=str(args.lfw / "lfw-deepfunneled") if from_lfw else str(args.chips),
                      out=str(args.out),
                      people=str(args.lfw / "peopleDevTrain.txt") if from_lfw else None,
                      test_pairs=str(args.lfw / "pairsDevTest.txt") if from_lfw else None,
                      pairs_root=str(args.lfw),
                      cache=str(args.cache), start="finetune", base_model=args.base_model,
                      freeze_stages=args.freeze_stages,
                      epochs=1000, minutes=args.minutes, p=args.p, k=args.k, lr=args.lr,
                      head=args.head, mining=args.mining, eval_every=0, warmup_epochs=0.2,
                      device=args.device, name="dlib-finetuned")
    r = train(cfg, log=print)
    tuned = r.metrics
    rows = {"pretrained (distance)": baseline, "fine-tuned (distance)": tuned}
    print(f"\nfine-tuned {args.minutes:g} min on {args.device} ({len(r.history)} epochs, "
          f"{sum(h['images'] for h in r.history)} images), stages frozen: {args.freeze_stages}")
    print("| model | scored by | best-threshold acc | 10-fold acc | AUC |")
    print("|---|---|---|---|---|")
    print(f"| pretrained dlib ResNet | distance | {100 * baseline['best_accuracy']:.2f}% | "
          f"{100 * baseline['cv10_accuracy']:.2f}% | {baseline['auc']:.4f} |")
    print(f"| fine-tuned | distance | {100 * tuned['best_accuracy']:.2f}% | "
          f"{100 * tuned['cv10_accuracy']:.2f}% | {tuned['auc']:.4f} |")
    if "head_cv10_accuracy" in tuned:
        print(f"| fine-tuned | pair head | - | {100 * tuned['head_cv10_accuracy']:.2f}% | "
              f"{tuned['head_auc']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "history": r.history}, indent=2))


if __name__ == "__main__":
    main()
