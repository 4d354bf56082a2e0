"""LFW View 2 evaluation: 10 folds of 300 same + 300 different pairs; each fold's threshold is
the best-accuracy threshold on the other nine (the protocol of Huang et al. 2007).

A pair whose image fails (no face found, unreadable) cannot be skipped without flattering
the score, so it counts as a wrong decision in its fold and is listed in the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceid import metrics
from faceid.detection import Pick
from faceid.errors import DatasetError
from faceid.pairs import read_pairs
from faceid.pipeline import FaceID
from faceid.verify_pairs import PairResult, distinct_images, verify_pairs


def view2_pairs_file(root: str | Path) -> Path:
    path = Path(root) / "pairs.txt"
    if not path.is_file():
        raise DatasetError(f"{root}: not an LFW folder (no pairs.txt); pass --root to the "
                           "folder holding pairs.txt and lfw-deepfunneled/")
    return path


def evaluate_view2(fid: FaceID, root: str | Path, *, far: float = 1e-3,
                   pick: Pick = Pick.center,
                   progress: Callable[[int], None] | None = None) -> tuple[dict, list[PairResult]]:
    """Run View 2 and return (report, per-pair results)."""
    pairs = read_pairs(view2_pairs_file(root), root)
    results = verify_pairs(fid, pairs, pick, progress=progress)
    folds = np.array([r.pair.fold for r in results])
    labels = np.array([r.pair.label for r in results])
    d = np.array([r.distance if r.distance is not None else np.nan for r in results])
    ok = ~np.isnan(d)
    folded = metrics.kfold_accuracy(d, labels, folds)
    report = {
        "protocol": "LFW View 2 (pairs.txt), 10 folds, threshold from the other 9 folds",
        "model": fid.info.name, "views": fid.views_name, "pairs": len(results),
        "images": distinct_images(pairs),
        "failed_pairs": int((~ok).sum()),
        "failures": sorted({r.error for r in results if r.error}),
        **folded,
        **{k: v for k, v in metrics.summary(d[ok], labels[ok], far).items()
           if k in ("far_target", "tar_at_far", "tar_threshold", "eer", "eer_threshold", "auc")},
        "accuracy_at_model_tau": float(np.mean(np.where(ok, d <= fid.tau, labels == 0)
                                               == (labels == 1))),
        "model_tau": fid.tau,
    }
    return report, results


def write_report(report: dict, results: list[PairResult], out_dir: Path) -> list[Path]:
    """report.json, the ROC and DET plots of the scored pairs; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    d = np.array([r.distance for r in results if r.distance is not None])
    y = np.array([r.pair.label for r in results if r.distance is not None])
    return [path, *metrics.save_plots(d, y, out_dir / "lfw_view2", "LFW View 2")]
