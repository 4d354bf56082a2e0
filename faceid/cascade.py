"""MTCNN's detection cascade over a batch of equal-size images: the image pyramid through
P-Net, then R-Net and O-Net on the surviving boxes, with non-maximum suppression between
stages (Zhang et al. 2016, as facenet-pytorch runs it, whose weights these are).

Written here, not imported, because facenet-pytorch's version pulls in torchvision for one
NMS call, about 2 s of CPU at every process start (``docs/DESIGN-NOTES.md``, "Detection").
The arithmetic follows that implementation step for step (area resampling, box rounding,
the "+1" pixel conventions of each stage, IoU for the first two NMS passes and
intersection-over-minimum for the last), and ``tests/test_cascade.py`` holds the two to the
same boxes and points on real photos. It runs in numpy, with the stage networks behind
``faceid/netrun.py`` (OpenCV, or torch where no export exists): torch's "area" resampling is
its adaptive average pooling, read here from each image's integral image (every window's
sum of whole pixel values is exact, so the means equal torch's to float32 rounding).
"""

from __future__ import annotations

import cv2
import numpy as np

from faceid.netrun import Net

STRIDE, CELL = 2, 12  # P-Net's output grid: one 12-px window every 2 px


def detect_cascade(images: np.ndarray, min_size: float, nets: tuple[Net, Net, Net],
                   thresholds: list[float], factor: float = 0.709
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Faces in each of ``images`` ((B, H, W, 3) uint8 RGB): per image, (boxes (N, 5):
    x1, y1, x2, y2, score) and (points (N, 5, 2)), in pixels."""
    pnet, rnet, onet = nets
    sums = integral_image(np.asarray(images))
    h, w = sums.shape[2] - 1, sums.shape[3] - 1
    boxes, owners = _proposals(sums, pnet, min_size, thresholds[0], factor)
    if len(boxes):
        boxes, owners, shifts = _stage(sums, boxes, owners, rnet, 24, thresholds[1], w, h)
        keep = _nms(boxes[:, :4], boxes[:, 4], owners, 0.7)
        boxes, owners = _regress(boxes[keep], shifts[keep]), owners[keep]
        boxes = _square(boxes)
    points = np.zeros((0, 5, 2), np.float32)
    if len(boxes):
        boxes, owners, shifts, marks = _stage(sums, boxes, owners, onet, 48, thresholds[2], w, h)
        side_w = boxes[:, 2] - boxes[:, 0] + 1
        side_h = boxes[:, 3] - boxes[:, 1] + 1
        xs = side_w[:, None] * marks[:, :5] + boxes[:, :1] - 1
        ys = side_h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1
        points = np.stack([xs, ys], axis=2)
        boxes = _regress(boxes, shifts)
        keep = _nms(boxes[:, :4], boxes[:, 4], owners, 0.7, min_mode=True)
        boxes, owners, points = boxes[keep], owners[keep], points[keep]
    return [(boxes[owners == b], points[owners == b]) for b in range(len(images))]


def integral_image(images: np.ndarray) -> np.ndarray:
    """(B, H, W, C) uint8 pixels -> (C, B, H + 1, W + 1) running sums per channel plane, a
    zero row and column first: any window's sum from four reads. Whole numbers, so exact
    (int32 while the image's total fits)."""
    b, h, w, c = images.shape
    dtype = np.int32 if h * w * 255 < 2**31 else np.int64
    out = np.zeros((c, b, h + 1, w + 1), dtype)
    planes = np.moveaxis(images, 3, 0)
    np.cumsum(planes, axis=2, dtype=dtype, out=out[:, :, 1:, 1:])
    np.cumsum(out[:, :, 1:, 1:], axis=3, out=out[:, :, 1:, 1:])
    return out


def area_crops(integral: np.ndarray, owners: np.ndarray, top: np.ndarray, left: np.ndarray,
               height: np.ndarray, width: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Crop k (image ``owners[k]``, ``height[k]`` x ``width[k]`` px at (``top[k]``,
    ``left[k]``)) resized to ``size`` (h, w) as torch's "area" interpolation does (adaptive
    average pooling: output pixel i averages input pixels floor(i * n / m) to
    ceil((i + 1) * n / m)); (N, C, h, w) float32."""
    rows_lo, rows_hi = _windows(top, height, size[0])
    cols_lo, cols_hi = _windows(left, width, size[1])
    channels, _, rows, cols = integral.shape
    planes = integral.reshape(channels, -1)  # each plane read by flat index: a fast gather
    base = (np.asarray(owners) * rows)[:, None]
    r_lo, r_hi = ((base + rows_lo) * cols)[:, :, None], ((base + rows_hi) * cols)[:, :, None]
    c_lo, c_hi = cols_lo[:, None, :], cols_hi[:, None, :]
    total = (planes.take(r_hi + c_hi, axis=1) - planes.take(r_lo + c_hi, axis=1)
             - planes.take(r_hi + c_lo, axis=1) + planes.take(r_lo + c_lo, axis=1))
    area = (rows_hi - rows_lo)[:, :, None] * (cols_hi - cols_lo)[:, None, :]  # (N, h, w)
    return np.ascontiguousarray((total / area.astype(np.float32)).transpose(1, 0, 2, 3))


def _windows(start: np.ndarray, n_in: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling's windows of ``n_in`` px from ``start``, ``n_out`` of them, as
    integral-image indices: (N, n_out) first and one-past-last rows (or columns)."""
    i = np.arange(n_out)
    n = np.asarray(n_in)[:, None]
    return (np.asarray(start)[:, None] + (i * n) // n_out,
            np.asarray(start)[:, None] - ((-(i + 1) * n) // n_out))  # ceil


def _proposals(sums: np.ndarray, pnet: Net, min_size: float, threshold: float,
               factor: float) -> tuple[np.ndarray, np.ndarray]:
    """P-Net over the pyramid (of the images' integral images): squared candidate boxes
    (N, 5) and their image index."""
    b, h, w = sums.shape[1], sums.shape[2] - 1, sums.shape[3] - 1
    everyone, zero = np.arange(b), np.zeros(b, np.int64)
    scale, side = CELL / min_size, min(h, w) * CELL / min_size
    found, owners = [], []
    while side >= CELL:
        data = area_crops(sums, everyone, zero, zero, np.full(b, h), np.full(b, w),
                          (int(h * scale + 1), int(w * scale + 1)))
        shifts, probs = pnet((data - 127.5) * 0.0078125)
        mask = probs[:, 1] >= threshold
        where = np.argwhere(mask)  # (image, row, col), row-major as torch's nonzero
        cells = where[:, :0:-1].astype(np.float32)  # (col, row)
        top_left = np.floor((STRIDE * cells + 1) / scale)
        bottom_right = np.floor((STRIDE * cells + CELL) / scale)
        part = np.concatenate([top_left, bottom_right, probs[:, 1][mask][:, None],
                               shifts.transpose(0, 2, 3, 1)[mask]], axis=1)
        keep = _nms(part[:, :4], part[:, 4], where[:, 0], 0.5)
        found.append(part[keep])
        owners.append(where[keep, 0])
        scale, side = scale * factor, side * factor
    if not found:
        return np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
    boxes, owner = np.concatenate(found), np.concatenate(owners)
    keep = _nms(boxes[:, :4], boxes[:, 4], owner, 0.7)
    boxes, owner = boxes[keep], owner[keep]
    size = boxes[:, 2:4] - boxes[:, :2]
    corners = np.concatenate([boxes[:, :2] + boxes[:, 5:7] * size,
                              boxes[:, 2:4] + boxes[:, 7:9] * size], axis=1)
    return _square(np.concatenate([corners, boxes[:, 4:5]], axis=1)), owner


def _stage(sums: np.ndarray, boxes: np.ndarray, owners: np.ndarray, net: Net,
           size: int, threshold: float, w: int, h: int) -> tuple[np.ndarray, ...]:
    """Run ``net`` on ``size``-px crops of ``boxes``; keep those scoring above
    ``threshold``: (boxes with the new scores, owners, box shifts[, O-Net's points])."""
    x1, y1, x2, y2 = np.trunc(boxes[:, :4]).astype(np.int64).T
    x1, y1 = np.maximum(x1, 1), np.maximum(y1, 1)
    x2, y2 = np.minimum(x2, w), np.minimum(y2, h)
    valid = (y2 > y1 - 1) & (x2 > x1 - 1)
    boxes, owners = boxes[valid], owners[valid]
    x1, y1, x2, y2 = x1[valid], y1[valid], x2[valid], y2[valid]
    if not len(boxes):
        empty = (np.zeros((0, 4), np.float32),)
        return (boxes, owners) + empty + ((np.zeros((0, 10), np.float32),)
                                          if size == 48 else ())
    crops = area_crops(sums, owners, y1 - 1, x1 - 1, y2 - y1 + 1, x2 - x1 + 1, (size, size))
    out = net((crops - 127.5) * 0.0078125)
    score = out[-1][:, 1]
    passed = score > threshold
    boxes = np.concatenate([boxes[passed, :4], score[passed, None]], axis=1)
    return (boxes, owners[passed], *(o[passed] for o in out[:-1]))


def _regress(boxes: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Apply a stage's box shifts (fractions of the box side, "+1" pixel sides)."""
    side = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], axis=1)
    out = boxes.copy()
    out[:, :2] = boxes[:, :2] + shifts[:, :2] * side
    out[:, 2:4] = boxes[:, 2:4] + shifts[:, 2:4] * side
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square about its centre (the longer side)."""
    out = boxes.copy()
    wh = boxes[:, 2:4] - boxes[:, :2]
    side = wh.max(axis=1)
    out[:, :2] = boxes[:, :2] + wh * 0.5 - side[:, None] * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float,
         *, min_mode: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression within each group (image), best score first: a box
    overlapping a kept one by more than ``threshold`` goes. Overlap is IoU with sides
    x2 - x1 (the first two stages: OpenCV's NMSBoxes, on boxes moved apart per group), or
    intersection over the smaller box with "+1" pixel sides (``min_mode``, the last stage,
    a few boxes); indices of the kept boxes, best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    b = boxes.astype(np.float64)
    g = np.asarray(groups)
    if not min_mode:
        b = b + (g * (b.max() + 1))[:, None]  # groups can no longer overlap
        xywh = np.column_stack([b[:, :2], b[:, 2:4] - b[:, :2]])
        kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float64).tolist(),
                                0.0, threshold)  # scores are probabilities: none below 0
        return np.asarray(kept, np.int64).ravel()
    # ties (scores saturate at 1.0) broken as facenet-pytorch's own NMS does: from the end
    # of numpy's ascending argsort of the float32 scores
    order = np.argsort(scores.astype(np.float32))[::-1]
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    kept_list: list[int] = []
    remaining = np.asarray(order)
    while remaining.size:
        i, rest = remaining[0], remaining[1:]
        kept_list.append(int(i))
        same = g[rest] == g[i]
        mine = rest[same]
        iw = np.maximum(0.0, np.minimum(b[i, 2], b[mine, 2]) - np.maximum(b[i, 0], b[mine, 0]) + 1)
        ih = np.maximum(0.0, np.minimum(b[i, 3], b[mine, 3]) - np.maximum(b[i, 1], b[mine, 1]) + 1)
        overlap = iw * ih / np.minimum(area[i], area[mine])
        suppressed = np.zeros(len(rest), bool)
        suppressed[same] = overlap > threshold
        remaining = rest[~suppressed]  # still best first
    return np.asarray(kept_list, np.int64)
