"""dlib's 128-d face-recognition ResNet ("anet_type" in dlib's dnn_face_recognition_ex.cpp),
rebuilt on the shared blocks, and the loader that fills it from dlib's weights file.

Architecture: 7x7/2 conv of 32 + affine + ReLU, 3x3/2 max-pool, residual stages of
3x32, (down + 3)x64, (down + 2)x128, (down + 2)x256, down x256 (affine in place of
batch-norm, average-pool shortcuts), global average pool, fc 128 without bias.
Input: a 150x150 RGB chip in 0..255; dlib subtracts a mean colour and divides by 256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceid.errors import ModelError
from faceid.nn.blocks import Affine, ConvNormAct, ResidualBlock
from faceid.nn.dlib_format import read_dlib_net

# (channels, blocks, first block strided?) for each stage, input side first.
STAGES: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True),
)
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)


class DlibResNet(nn.Module):
    """The metric network: uint8-range RGB chips (N, 3, 150, 150) -> (N, 128) descriptors."""

    chip_size = 150

    def __init__(self, norm: str = "affine", embedding_size: int = 128) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1))
        self.stem = nn.Sequential(ConvNormAct(3, 32, 7, 2, norm=norm), nn.MaxPool2d(3, 2))
        blocks: list[nn.Module] = []
        cin = 32
        for cout, count, down in STAGES:
            for i in range(count):
                blocks.append(ResidualBlock(cin, cout, 2 if (down and i == 0) else 1, norm=norm))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, embedding_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / 256.0
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))


def load_dlib_weights(model: DlibResNet, path: str | Path) -> DlibResNet:
    """Fill ``model`` from a dlib ``.dat`` file (e.g. ``dlib_face_recognition_resnet_model_v1``).

    The file's layers are matched, in order, to the model's Conv2d / Affine / Linear modules;
    any difference in kinds, counts or shapes is a :class:`ModelError`, never a silent
    partial load.
    """
    net = read_dlib_net(path)
    stored = [rec for rec in net.layers if rec.kind in ("con_4", "affine_", "fc_2")]
    targets = [m for m in model.modules() if isinstance(m, (nn.Conv2d, Affine, nn.Linear))]
    if len(stored) != len(targets):
        raise ModelError(f"{path}: {len(stored)} parameter layers in the file, "
                         f"the network has {len(targets)}")
    for rec, module in zip(stored, targets):
        assert rec.params is not None
        _fill(module, rec.kind, rec.params, rec.fields, str(path))
    avg_rgb = net.input.fields["avg_rgb"]
    model.mean.copy_(torch.tensor(avg_rgb, dtype=torch.float32).view(1, 3, 1, 1))
    return model


def _fill(module: nn.Module, kind: str, params: np.ndarray, fields: dict, name: str) -> None:
    def put(target: torch.Tensor, values: np.ndarray) -> None:
        if values.size != target.numel():
            raise ModelError(f"{name}: {kind} holds {values.size} values, "
                             f"the network expects {target.numel()}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(values.reshape(target.shape).copy()))

    if kind == "con_4" and isinstance(module, nn.Conv2d):
        n_w = module.weight.numel()
        put(module.weight, params[:n_w])
        assert module.bias is not None
        put(module.bias, params[n_w:])
    elif kind == "affine_" and isinstance(module, Affine):
        half = params.size // 2
        put(module.gamma, params[:half])
        put(module.beta, params[half:])
    elif kind == "fc_2" and isinstance(module, nn.Linear):
        # dlib stores the fc matrix as (inputs, outputs); torch wants (outputs, inputs)
        w = params.reshape(fields["num_inputs"], fields["num_outputs"]).T
        put(module.weight, np.ascontiguousarray(w))
    else:
        raise ModelError(f"{name}: layer {kind} does not line up with {type(module).__name__}")
