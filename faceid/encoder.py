"""Encoder: aligned chips -> L2-normalised embeddings, batched, on the CPU by default.

Norm layers are folded into the convolutions at load time and the network runs in
channels-last layout: both are exact and make CPU inference markedly faster.
"""

from __future__ import annotations

import numpy as np
import torch

from faceid.errors import ModelError
from faceid.config import apply_threads
from faceid.modelfile import ModelInfo, verify_weights, weights_path
from faceid.nn import get_model
from faceid.nn.blocks import fold_norms
from faceid.nn.dlib_resnet import load_dlib_weights


class Encoder:
    """Holds one loaded network and embeds uint8 RGB chips of ``info.chip_size``."""

    def __init__(self, info: ModelInfo, *, device: str = "cpu", batch_size: int = 32,
                 check_hash: bool = True) -> None:
        apply_threads()
        self.info = info
        self.device = torch.device(device)
        self.batch_size = batch_size
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
        self.net = fold_norms(net.eval()).to(self.device, memory_format=torch.channels_last)

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
        with torch.inference_mode():
            for i in range(0, len(chips), self.batch_size):
                x = torch.from_numpy(chips[i:i + self.batch_size]).to(self.device)
                x = x.permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)
                out[i:i + len(x)] = torch.nn.functional.normalize(self.net(x), dim=1).cpu()
        return out

    def embed_views(self, chips: np.ndarray, flip: bool = False) -> np.ndarray:
        """(N, K, S, S, 3) chips, K views of each face -> (N, D) unit vectors: the mean of
        the K (and, with ``flip``, K mirrored) view embeddings, renormalised."""
        n, k = chips.shape[:2]
        flat = chips.reshape(n * k, *chips.shape[2:])
        if flip:
            flat = np.concatenate([flat, flat[:, :, ::-1]])
        views = self.embed(np.ascontiguousarray(flat)).reshape(-1, n, k, self.size)
        mean = views.sum(axis=(0, 2))
        return mean / np.linalg.norm(mean, axis=1, keepdims=True)
