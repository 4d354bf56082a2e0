"""The liveness classifier: a small MobileNet-style CNN on the shared blocks, one logit for
"live" from a loose face crop (the crop keeps a print's edge or a screen's bezel in view).

Small on purpose: a site trains it on a few hundred of its own photos on a CPU
(``faceid train-liveness``), and the camera loop runs it on every frame of a track.
Input: (N, 3, S, S) RGB in 0..255 (the convention of every faceid network); S is usually 64.
"""

from __future__ import annotations

import torch
from torch import nn

from faceid.errors import LivenessModelError
from faceid.nn.blocks import ConvNormAct, DepthwiseSeparable


class LivenessNet(nn.Module):
    """3x3/2 stem, depthwise-separable stages (each but the last strided), global average
    pool, dropout, one linear logit. ``widths`` are the stage widths."""

    def __init__(self, widths: tuple[int, ...] | list[int] = (32, 64, 96, 128),
                 stem: int = 16, dropout: float = 0.2, norm: str = "bn") -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormAct(3, stem, 3, 2, padding=1, norm=norm)]
        cin = stem
        for i, cout in enumerate(widths):
            layers.append(DepthwiseSeparable(cin, cout, 2 if i < len(widths) - 1 else 1,
                                             norm=norm))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(cin, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - 127.5) / 128.0)).squeeze(1)


_BUILDERS = {"liveness_v1": LivenessNet}


def build_liveness_net(name: str, **kwargs: object) -> nn.Module:
    """Build the liveness architecture ``name`` (untrained)."""
    try:
        return _BUILDERS[name](**kwargs)
    except KeyError:
        raise LivenessModelError(f"unknown liveness architecture {name!r} "
                                 f"(known: {', '.join(sorted(_BUILDERS))})") from None
