"""Alignment: a similarity warp (rotation, uniform scale, translation) that puts the five
MTCNN landmarks onto a fixed template in the encoder's chip.

The template of each model lives in its model file (``chip.template``); see
``docs/ALIGNMENT.md`` for how the default one was derived and chosen by LFW accuracy.
"""

from __future__ import annotations

import cv2
import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray,
                         weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares similarity (Umeyama 1991) mapping points ``src`` (N, 2) onto
    ``dst``; returns the 2x3 matrix. Hand-written because OpenCV's
    ``estimateAffinePartial2D`` is a robust (RANSAC/LMedS) fit without point weights, and
    with five landmarks of unequal reliability we want to weight each one."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s, d = src - mu_s, dst - mu_d
    cov = (d * w[:, None]).T @ s
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / (w @ (s ** 2).sum(1))
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_face(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray,
               size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Warp ``image`` so that ``landmarks`` (5, 2) land on ``template`` (weighted least
    squares, see :func:`similarity_transform`) in a size x size chip.

    When the face is much larger than the chip, the image is first shrunk with area
    averaging, so the bilinear warp does not alias (as dlib's chip extractor does with its
    pyramid).
    """
    m = similarity_transform(landmarks, template, weights)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    if scale < 0.5:
        shrink = scale * 1.5
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(1, round(w * shrink)), max(1, round(h * shrink))),
                           interpolation=cv2.INTER_AREA)
        m = similarity_transform(np.asarray(landmarks) * shrink, template, weights)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
