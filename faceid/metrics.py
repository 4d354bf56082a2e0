"""Verification metrics on (distance, label) pairs, from scikit-learn's ROC machinery:
accuracy at a threshold, the best-accuracy threshold, TAR at a FAR, EER, k-fold accuracy
with the threshold chosen on the other folds (the LFW protocol), and ROC / DET plots.

Convention: label 1 = same person; a pair is accepted when distance <= threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def accuracy_at(distances: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(np.mean((distances <= threshold) == (labels == 1)))


def best_threshold(distances: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold with the highest accuracy (midpoint between neighbouring distances),
    and that accuracy."""
    order = np.argsort(distances)
    d, y = distances[order], labels[order] == 1
    # accepting the first k pairs: correct = positives among them + negatives after them
    correct = np.concatenate([[0], np.cumsum(y)]) + np.concatenate(
        [[(~y).sum()], (~y).sum() - np.cumsum(~y)])
    k = int(np.argmax(correct))
    if k == 0:
        thr = float(d[0]) - 1e-6
    elif k == len(d):
        thr = float(d[-1]) + 1e-6
    else:
        thr = float((d[k - 1] + d[k]) / 2)
    return thr, float(correct[k] / len(d))


def roc_points(distances: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """(FAR, TAR, thresholds) with thresholds in distance units."""
    far, tar, thr = roc_curve(labels, -distances, drop_intermediate=False)
    return far, tar, -thr


def tar_at_far(distances: np.ndarray, labels: np.ndarray, far_target: float) -> tuple[float, float]:
    """Highest TAR whose FAR does not exceed ``far_target``, and the threshold giving it."""
    far, tar, thr = roc_points(distances, labels)
    ok = np.nonzero(far <= far_target)[0]
    i = ok[-1]
    return float(tar[i]), float(thr[i]) if np.isfinite(thr[i]) else float("nan")


def eer(distances: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate (where FAR = FRR), and its threshold."""
    far, tar, thr = roc_points(distances, labels)
    frr = 1 - tar
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2), float(thr[i])


def summary(distances: np.ndarray, labels: np.ndarray, far_target: float = 1e-3) -> dict:
    """The figures every report prints: best accuracy and its threshold, TAR@FAR, EER, AUC."""
    distances, labels = np.asarray(distances, float), np.asarray(labels, int)
    thr, acc = best_threshold(distances, labels)
    tar, tar_thr = tar_at_far(distances, labels, far_target)
    e, e_thr = eer(distances, labels)
    return {"pairs": int(len(labels)), "positives": int(labels.sum()),
            "best_accuracy": acc, "best_threshold": thr,
            "far_target": far_target, "tar_at_far": tar, "tar_threshold": tar_thr,
            "eer": e, "eer_threshold": e_thr,
            "auc": float(roc_auc_score(labels, -distances))}


def kfold_accuracy(distances: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict:
    """Per-fold accuracy with the threshold chosen (best accuracy) on the other folds.

    A distance of NaN marks a pair that could not be scored (no face, unreadable image): it
    is left out of threshold choice and counts as a wrong decision in its fold, so failures
    cannot flatter the score."""
    ok = ~np.isnan(distances)
    accs, thrs = [], []
    for f in np.unique(folds):
        train, test = (folds != f) & ok, folds == f
        thr, _ = best_threshold(distances[train], labels[train])
        decided = np.where(ok[test], distances[test] <= thr, labels[test] == 0)
        accs.append(float(np.mean(decided == (labels[test] == 1))))
        thrs.append(thr)
    return {"fold_accuracy": accs, "fold_threshold": thrs,
            "mean_accuracy": float(np.mean(accs)), "std_accuracy": float(np.std(accs))}


def save_plots(distances: np.ndarray, labels: np.ndarray, prefix: str | Path,
               title: str = "") -> list[Path]:
    """Write ``<prefix>_roc.png`` (TAR vs FAR, log FAR) and ``<prefix>_det.png`` (FRR vs FAR
    on normal-deviate axes); returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    far, tar, _ = roc_points(np.asarray(distances, float), np.asarray(labels, int))
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [prefix.with_name(prefix.name + "_roc.png"), prefix.with_name(prefix.name + "_det.png")]

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.semilogx(np.clip(far, 1e-5, 1), tar)
    ax.set(xlabel="false accept rate", ylabel="true accept rate", title=f"ROC {title}",
           xlim=(1e-4, 1), ylim=(0.8, 1.0))
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    eps = 1e-5
    ax.plot(norm.ppf(np.clip(far, eps, 1 - eps)), norm.ppf(np.clip(1 - tar, eps, 1 - eps)))
    ticks = np.array([1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5])
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set(xlabel="false accept rate", ylabel="false reject rate", title=f"DET {title}",
           xlim=norm.ppf([1e-4, 0.5]), ylim=norm.ppf([1e-4, 0.5]))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths
