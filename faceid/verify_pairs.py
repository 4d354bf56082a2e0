"""Batch verification of photo pairs: every distinct image is embedded once, each pair gets
a distance, a probability and a decision at tau, or the error of the image that failed.
With labels, the run also reports accuracy at tau, TAR at a FAR, EER, and ROC/DET plots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceid import metrics
from faceid.detection import Pick
from faceid.pairs import Pair
from faceid.pipeline import FaceID, FaceResult, StageTimes
from faceid.rows import write_rows

FIELDS = ("line", "img1", "img2", "label", "distance", "probability", "same", "error",
          "error_code")


@dataclass
class PairResult:
    pair: Pair
    distance: float | None = None
    probability: float | None = None
    same: bool | None = None
    error: str | None = None
    error_code: int | None = None

    def row(self) -> dict[str, object]:
        return {"line": self.pair.line, "img1": str(self.pair.a), "img2": str(self.pair.b),
                "label": self.pair.label,
                "distance": None if self.distance is None else round(self.distance, 6),
                "probability": None if self.probability is None else round(self.probability, 6),
                "same": self.same, "error": self.error, "error_code": self.error_code}


def embed_distinct(fid: FaceID, pairs: Sequence[Pair], pick: Pick,
                   progress: Callable[[int], None] | None = None,
                   times: StageTimes | None = None) -> dict[Path, FaceResult]:
    """Embed each image that appears in ``pairs`` exactly once (the cache of the run)."""
    images = list(dict.fromkeys(p for pair in pairs for p in (pair.a, pair.b)))
    results = fid.embed_images(images, pick, progress=progress, times=times)
    return dict(zip(images, results))


def verify_pairs(fid: FaceID, pairs: Sequence[Pair], pick: Pick = Pick.center, *,
                 progress: Callable[[int], None] | None = None) -> list[PairResult]:
    """Score every pair; a failed image fails only the pairs that use it."""
    cache = embed_distinct(fid, pairs, pick, progress)
    out = []
    for pair in pairs:
        ra, rb = cache[pair.a], cache[pair.b]
        bad = ra.error or rb.error
        if bad is not None:
            out.append(PairResult(pair, error=bad.message, error_code=bad.exit_code))
            continue
        c = fid.compare_embeddings(ra.embedding, rb.embedding)
        out.append(PairResult(pair, c.distance, c.probability, c.same))
    return out


def distinct_images(pairs: Sequence[Pair]) -> int:
    return len({p for pair in pairs for p in (pair.a, pair.b)})


def summarize(results: Sequence[PairResult], tau: float, far: float = 1e-3) -> dict:
    """Counts always; with labels, accuracy at tau (failed pairs count as wrong) and the
    ROC figures over the pairs that were scored."""
    scored = [r for r in results if r.distance is not None]
    out: dict[str, object] = {"pairs": len(results), "scored": len(scored),
                              "failed": len(results) - len(scored), "tau": tau}
    labelled = [r for r in scored if r.pair.label is not None]
    if labelled and len({r.pair.label for r in labelled}) == 2:
        d = np.array([r.distance for r in labelled])
        y = np.array([r.pair.label for r in labelled])
        n_lab = sum(r.pair.label is not None for r in results)
        correct = int(np.sum((d <= tau) == (y == 1)))
        out["accuracy_at_tau"] = correct / n_lab
        roc = metrics.summary(d, y, far)
        out["roc_pairs"] = roc.pop("pairs")  # the scored, labelled pairs the ROC is drawn from
        out.update(roc)
    return out


def write_results(results: Sequence[PairResult], path: Path) -> None:
    """CSV or JSON by extension (.json -> JSON list, anything else -> CSV)."""
    write_rows([r.row() for r in results], FIELDS, path)


def labelled_distances(results: Sequence[PairResult]) -> tuple[np.ndarray, np.ndarray]:
    scored = [r for r in results if r.distance is not None and r.pair.label is not None]
    return (np.array([r.distance for r in scored]), np.array([r.pair.label for r in scored]))
