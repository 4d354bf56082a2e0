"""Encoder: aligned chips -> L2-normalised embeddings, batched, on the CPU by default.

The network runs through ``faceid/netrun.py``: OpenCV on a cached export, else torch. Norm
layers are folded into the convolutions before either (exact, and markedly faster on a CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from faceid.errors import ModelError
from faceid.modelfile import ModelInfo, verify_weights, weights_path
from faceid.netrun import load_net

if TYPE_CHECKING:
    import torch


def build_network(info: ModelInfo, *, check_hash: bool = True) -> torch.nn.Module:
    """The torch network ``info`` describes, with its weights loaded (checked against the
    model file's hash) and norms folded, in eval mode. Imports torch."""
    import torch

    from faceid.nn import get_model
    from faceid.nn.blocks import fold_norms
    from faceid.nn.dlib_resnet import load_dlib_weights

    net = get_model(info.architecture, **info.architecture_kwargs)
    path = weights_path(info)
    if check_hash:
        verify_weights(info, path)
    fmt = info.weights.get("format")
    if fmt == "dlib-dat":
        load_dlib_weights(net, path)
    elif fmt == "torch":
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("model", state))
        except (RuntimeError, OSError, KeyError, AttributeError) as exc:
            raise ModelError(f"{path}: cannot load weights ({exc})") from None
    else:
        raise ModelError(f"{info.path}: unknown weights format {fmt!r}")
    return fold_norms(net.eval())


class Encoder:
    """Holds one loaded network and embeds uint8 RGB chips of ``info.chip_size``."""

    def __init__(self, info: ModelInfo, *, device: str = "cpu", batch_size: int = 32,
                 check_hash: bool = True) -> None:
        self.info = info
        self.batch_size = batch_size
        sha = info.weights.get("sha256")  # weights without one are never cached
        identity = ({"architecture": info.architecture, "kwargs": info.architecture_kwargs,
                     "weights": sha} if sha else None)
        if check_hash:
            verify_weights(info, weights_path(info))  # on a cached export too: same refusals
        s = info.chip_size
        self.net = load_net(f"encoder-{info.name}", identity,
                            lambda: build_network(info, check_hash=False), (2, 3, s, s),
                            outputs=1, value_range=(0.0, 255.0), device=device,
                            prefer="onnxruntime")

    @property
    def size(self) -> int:
        return self.info.embedding_size

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 chips -> (N, D) float32 unit vectors (N may be 0)."""
        chips = np.asarray(chips)
        s = self.info.chip_size
        if chips.ndim != 4 or chips.shape[1:] != (s, s, 3):
            raise ValueError(f"expected (N, {s}, {s}, 3) chips, got {chips.shape}")
        out = np.empty((len(chips), self.size), np.float32)
        for i in range(0, len(chips), self.batch_size):
            x = chips[i:i + self.batch_size].transpose(0, 3, 1, 2)  # the net makes it float32
            y = self.net(x)[0]
            out[i:i + len(x)] = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        return out

    def embed_views(self, chips: np.ndarray, flip: bool = False) -> np.ndarray:
        """(N, K, S, S, 3) chips, K views of each face -> (N, D) unit vectors: the mean of
        the K (and, with ``flip``, K mirrored) view embeddings, renormalised."""
        total = self.view_sums(chips, flip)
        return total / np.linalg.norm(total, axis=1, keepdims=True)

    def view_sums(self, chips: np.ndarray, flip: bool = False) -> np.ndarray:
        """(N, K, S, S, 3) chips -> (N, D): the sum of each face's K (with ``flip``, 2K) unit
        view embeddings, not renormalised, so views encoded later (a mirror computed only
        when a decision needs it) add to it exactly."""
        n, k = chips.shape[:2]
        flat = chips.reshape(n * k, *chips.shape[2:])
        if flip:
            flat = np.concatenate([flat, mirrored(flat)])
        views = self.embed(np.ascontiguousarray(flat)).reshape(-1, n, k, self.size)
        return views.sum(axis=(0, 2))


def mirrored(chips: np.ndarray) -> np.ndarray:
    """Chips (..., S, S, 3) mirrored left to right: the second view of the view presets,
    whether encoded with the first or later (:meth:`faceid.pipeline.FaceID.add_mirror`)."""
    return chips[..., ::-1, :]
