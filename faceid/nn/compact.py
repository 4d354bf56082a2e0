"""A compact 128-d face encoder built from the shared blocks, small enough to train from
scratch on a 2-core CPU within an hour (the training issue's budget).

Input: (N, 3, S, S) RGB chips in 0..255 (the same convention as the dlib port, so the
Encoder and pipeline treat both alike); S is usually 64. Layout: a 3x3/2 stem, residual
stages of ``widths`` channels (each after the first starts with a strided block), then the
final feature map is flattened (aligned faces keep their parts in fixed places, so position
matters; a global average pool would throw that away), dropout, a linear layer to
``embedding_size`` and batch-norm. The caller L2-normalises.
"""

from __future__ import annotations

import torch
from torch import nn

from faceid.nn.blocks import ConvNormAct, ResidualBlock


class CompactEncoder(nn.Module):
    def __init__(self, chip_size: int = 64, widths: tuple[int, ...] | list[int] = (32, 64, 128, 256),
                 blocks: tuple[int, ...] | list[int] = (1, 2, 2, 1), embedding_size: int = 128,
                 dropout: float = 0.2, norm: str = "bn") -> None:
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError("widths and blocks need one entry per stage")
        self.chip_size = chip_size
        self.stem = ConvNormAct(3, widths[0], 3, 2, padding=1, norm=norm)
        layers: list[nn.Module] = []
        cin = widths[0]
        for stage, (cout, count) in enumerate(zip(widths, blocks)):
            for i in range(count):
                stride = 2 if (stage > 0 and i == 0) else 1
                layers.append(ResidualBlock(cin, cout, stride, norm=norm))
                cin = cout
        self.stages = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.stages(self.stem(torch.zeros(2, 3, chip_size, chip_size)))[0].numel()
        # batch-norm on the encoding: at initialisation the flattened ReLU features all point
        # the same way, so unit encodings start bunched together and the triplet loss barely
        # moves them; centring and scaling each dimension spreads them over the sphere.
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(flat, embedding_size, bias=False),
                                  nn.BatchNorm1d(embedding_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 127.5) / 128.0
        return self.head(self.stages(self.stem(x)))
