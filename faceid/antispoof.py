"""Passive liveness from a single frame: MiniFASNet V2 + V1SE (Silent-Face-Anti-Spoofing's
published models, ported in ``faceid/nn/minifasnet.py``) on loose crops around the face.

P(live) is the mean, over the two networks, of the softmax at the live class; each network
sees its own crop (the face box scaled 2.7x for V2, 4.0x for V1SE) because they were trained
so: the wide crop keeps a print's edge or a screen's bezel in view.

The crop rule is the reference's (``src/generate_patches.py``), reproduced exactly, so the
networks see what they were trained on. Its box is another detector's (RetinaFace: wider,
shorter boxes than MTCNN's), and box shape moves the scores a lot, so :class:`BoxMap` maps
faceid's MTCNN boxes before cropping; which mapping is best is for measurement to decide
(``IDENTITY`` feeds the MTCNN box as it is).

Weights are package data (``faceid/models/minifasnet/``, written by
``scripts/convert_minifasnet.py``), loaded on first use and refused, with a
:class:`~faceid.errors.LivenessModelError` naming the file, when missing or not the bytes the
model file records. The networks run through ``faceid/netrun.py`` (OpenCV on a cached
export, else torch), like the detector and the encoder, so a door never imports torch.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from faceid.errors import LivenessModelError
from faceid.modelfile import read_checked, read_json_document
from faceid.netrun import Net, load_net

if TYPE_CHECKING:
    import torch

MODEL_DIR = Path(__file__).parent / "models" / "minifasnet"
MODEL_FILE = "minifasnet.json"
MODEL_FORMAT = "faceid-minifasnet/1"


@dataclass(frozen=True)
class BoxMap:
    """Reshape an (x1, y1, x2, y2) box about its centre: ``width`` and ``height`` scale its
    sides, ``shift_y`` moves it down by that fraction of its original height. Meant to turn MTCNN boxes
    into the proportions of the detector the liveness models were trained with."""

    width: float = 1.0
    height: float = 1.0
    shift_y: float = 0.0

    def apply(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = (float(v) for v in box)
        # written as growth on each side, so the identity returns the box bit for bit
        dx = (x2 - x1) * (self.width - 1.0) / 2
        dy = (y2 - y1) * (self.height - 1.0) / 2
        down = (y2 - y1) * self.shift_y
        return x1 - dx, y1 - dy + down, x2 + dx, y2 + dy + down


IDENTITY = BoxMap()


def crop_for(image: np.ndarray, box: Sequence[float], scale: float, size: int = 80,
             box_map: BoxMap = IDENTITY, *, bgr: bool = False) -> np.ndarray:
    """The (size, size, 3) uint8 **BGR** crop a MiniFASNet expects around ``box``.

    ``image`` is (H, W, 3) uint8, RGB as faceid loads it (``bgr=True``: already BGR, as from
    ``cv2.imread``). The reference rule (``CropImage`` in the reference's
    ``src/generate_patches.py``): the (mapped) box becomes the reference detector's integer
    (x, y, w, h); it is scaled about its centre by ``scale``, the scale lowered so the crop
    fits in the image, the crop shifted (not clipped) to lie inside it, cut (edges inclusive)
    and resized bilinearly. A face at the border therefore gets an off-centre crop of full
    size, a tiny face a small crop blown up; neither fails.
    """
    img_h, img_w = image.shape[:2]
    x1, y1, x2, y2 = box_map.apply(box)
    # (x, y, w, h) as the reference's RetinaFace wrapper makes it from a float box
    x, y = int(x1), int(y1)
    w, h = max(1, int(x2 - x1 + 1)), max(1, int(y2 - y1 + 1))
    scale = min((img_h - 1) / h, (img_w - 1) / w, scale)
    new_w, new_h = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    left, right = _shift_inside(cx - new_w / 2, cx + new_w / 2, img_w)
    top, bottom = _shift_inside(cy - new_h / 2, cy + new_h / 2, img_h)
    patch = image[int(top):int(bottom) + 1, int(left):int(right) + 1]
    crop = cv2.resize(patch, (size, size))
    return crop if bgr else np.ascontiguousarray(crop[:, :, ::-1])


def _shift_inside(lo: float, hi: float, extent: int) -> tuple[float, float]:
    """Move the span [lo, hi] inside [0, extent - 1] without changing its length, in the
    reference's arithmetic so the integer crop edges come out the same. The scale clamp
    makes the span at most extent - 1 long, so the crop is never empty."""
    if lo < 0:
        lo, hi = 0.0, hi - lo
    if hi > extent - 1:
        lo, hi = lo - (hi - extent + 1), float(extent - 1)
    return lo, hi


@dataclass(frozen=True)
class _Network:
    name: str
    scale: float
    size: int
    live_class: int
    model: Net


class PassiveLiveness:
    """P(live) of faces from MiniFASNet V2 + V1SE. Weights load on first use from
    ``model_dir`` (default: the package's ``models/minifasnet``)."""

    def __init__(self, model_dir: str | Path | None = None, *,
                 box_map: BoxMap = IDENTITY) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
        self.box_map = box_map
        self._networks: list[_Network] | None = None

    @property
    def networks(self) -> list[_Network]:
        """The loaded networks (loading them on first use)."""
        if self._networks is None:
            self._networks = load_networks(self.model_dir)
        return self._networks

    def score(self, image_rgb: np.ndarray, box: Sequence[float]) -> float:
        """P(live) of the face at ``box`` (x1, y1, x2, y2) in an (H, W, 3) uint8 RGB image."""
        return float(self.score_many(image_rgb, [box])[0])

    def score_many(self, image_rgb: np.ndarray, boxes: Iterable[Sequence[float]]) -> np.ndarray:
        """P(live) of every face in one image, each network run once on all the crops."""
        boxes = list(boxes)
        live = np.zeros(len(boxes))
        if not boxes:
            return live
        for net in self.networks:
            crops = np.stack([crop_for(image_rgb, b, net.scale, net.size, self.box_map)
                              for b in boxes])
            logits = net.model(crops.transpose(0, 3, 1, 2))[0]  # the net makes it float32
            odds = np.exp(logits - logits.max(axis=1, keepdims=True)).astype(np.float64)
            live += odds[:, net.live_class] / odds.sum(axis=1)  # the softmax's live class
        return live / len(self.networks)


def load_networks(model_dir: Path) -> list[_Network]:
    """Every network the model file in ``model_dir`` lists, weights verified and loaded,
    for inference only (batch-norm folded into the convolutions). Any problem is a
    LivenessModelError naming the file."""
    path = model_dir / MODEL_FILE
    doc = read_json_document(path, MODEL_FORMAT, LivenessModelError, "liveness model")
    try:
        entries = [(n["name"], n["architecture"], n["weights"], n["sha256"],
                    float(n["crop_scale"]), int(n["input_size"]), int(n["live_class"]),
                    n["channel_order"], list(n["pixel_range"])) for n in doc["networks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise LivenessModelError(f"{path}: incomplete liveness model file ({exc})") from None
    networks = []
    for name, arch, weights, sha, scale, size, live_class, order, pixels in entries:
        if order != "BGR" or pixels != [0, 255]:
            raise LivenessModelError(f"{path}: {name} wants {order} {pixels} input; only "
                                     "BGR 0..255 is implemented")
        data = read_checked(model_dir / weights, sha, LivenessModelError, "liveness weights")
        model = load_net(f"liveness-{name}", {"architecture": arch, "size": size, "sha256": sha},
                         partial(_build, arch, size, data, model_dir / weights),
                         (2, 3, size, size), outputs=1, value_range=(0.0, 255.0))
        networks.append(_Network(name, scale, size, live_class, model))
    return networks


def _build(arch: str, size: int, data: bytes, path: Path) -> torch.nn.Module:
    """The torch network from checked weight bytes, batch-norm folded, in eval mode."""
    import torch

    from faceid.nn.blocks import fold_norms
    from faceid.nn.minifasnet import build_minifasnet, load_converted_weights

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise LivenessModelError(f"{path}: not a readable state dict ({exc})") from None
    model = build_minifasnet(arch, input_size=size)
    load_converted_weights(model, state, str(path))
    return fold_norms(model.eval())
