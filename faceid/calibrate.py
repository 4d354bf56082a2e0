"""Threshold calibration: choose tau on labelled pairs (best accuracy, or the loosest tau
whose false-accept rate stays within a target), and fit P(same | distance) by logistic
regression, so decisions and probabilities come from measured data, not guesses.
:func:`calibrate_model` does the whole job a site or a trainer runs: embed the pairs, fit,
and write a model file whose view preset carries the new tau and fit."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from faceid import metrics
from faceid.errors import PairsFileError

if TYPE_CHECKING:
    from faceid.pairs import Pair
    from faceid.pipeline import FaceID


def tau_at_far(distances: np.ndarray, labels: np.ndarray, far: float) -> float:
    """The loosest distance threshold whose false-accept rate on these pairs stays within
    ``far`` (accept when distance <= tau). Where even the closest different-person pair is
    nearer than every same-person pair, no threshold above zero meets the target, and tau
    falls just below the smallest distance (accept nothing) rather than becoming NaN.

    The estimate is only as fine as the negatives allow: a FAR of 1e-3 needs well over a
    thousand different-person pairs to mean anything."""
    d, y = np.asarray(distances, float), np.asarray(labels, int)
    if not (0 < far < 1):
        raise ValueError(f"target FAR must be between 0 and 1, got {far}")
    _, tau = metrics.tar_at_far(d, y, far)
    if not np.isfinite(tau):
        tau = float(d.min()) - 1e-6
    return float(tau)


def calibrate(distances: np.ndarray, labels: np.ndarray, far: float | None = None) -> dict:
    """Return tau, the logistic slope/intercept, and the error rates at tau on these pairs."""
    d, y = np.asarray(distances, float), np.asarray(labels, int)
    if len(np.unique(y)) != 2:
        raise ValueError("calibration needs both same-person and different-person pairs")
    if far is None:
        tau, _ = metrics.best_threshold(d, y)
        rule = "best accuracy"
    else:
        tau = tau_at_far(d, y, far)
        rule = f"FAR <= {far:g}"
    lr = LogisticRegression(C=1e4).fit(d.reshape(-1, 1), y)
    accept = d <= tau
    impostors = d[y == 0]
    return {"tau": round(float(tau), 4), "rule": rule,
            # the normal fit of different-person distances: a gallery too small to estimate
            # its own thresholds falls back on it (faceid.operating_point)
            "impostor_mean": round(float(impostors.mean()), 6),
            "impostor_sd": round(float(impostors.std()), 6),
            "impostor_pairs": int(len(impostors)),
            "slope": round(float(lr.coef_[0, 0]), 4), "intercept": round(float(lr.intercept_[0]), 4),
            "accuracy": float(np.mean(accept == (y == 1))),
            "far": float(np.mean(accept[y == 0])), "frr": float(np.mean(~accept[y == 1])),
            "pairs": int(len(y))}


def calibrate_model(fid: FaceID, pairs: list[Pair], pairs_file: Path, *,
                    far: float | None = None, write: Path | None = None,
                    progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Embed the labelled ``pairs`` (read from ``pairs_file``) with ``fid``, fit tau (for
    ``far``, or best accuracy) and P(same | distance) for its view preset, and, with
    ``write``, save a copy of its model file carrying them (weights still found from the new
    file's folder). Returns the fit; pairs that cannot be fitted are a PairsFileError naming
    the file."""
    from faceid.modelfile import save_model_info, weights_path
    from faceid.verify_pairs import labelled_distances, verify_pairs

    results = verify_pairs(fid, pairs, progress=progress)
    d, y = labelled_distances(results)
    try:
        cal = calibrate(d, y, far)
    except ValueError as exc:
        raise PairsFileError(f"{pairs_file}: {exc}") from None
    cal["data"] = str(pairs_file)
    cal["views"] = fid.views_name
    if write is not None:
        if fid.info.weights.get("path"):  # weights beside the JSON: keep pointing at them
            fid.info.weights["path"] = os.path.relpath(weights_path(fid.info),
                                                       write.resolve().parent)
        fid.views.tau = cal["tau"]
        fid.views.probability = {"slope": cal["slope"], "intercept": cal["intercept"]}
        fid.views.calibration = dict(cal)
        save_model_info(fid.info, write)
        cal["written"] = str(write)
    return cal
