"""GoogLeNet (Inception v1, Szegedy et al. 2014) on the shared :class:`InceptionBlock`, as
torchvision builds it (batch-norm after every conv, eps 1e-3; one 3x3 conv in the "5x5"
branch; ceil-mode pools), so torchvision's weights load. The two auxiliary classifiers are
training aids and are left out: 6,624,904 parameters at 1000 classes.

``stem`` (7x7/2, pool, 1x1, 3x3, pool) -> ``stages`` (inceptions 3a-3b, pool, 4a-4e, pool,
5a-5b) -> ``head`` (global average pool, dropout, fc). Input (N, 3, 224, 224), any size
>= 32.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from faceid.nn.blocks import ConvNormAct, InceptionBlock, classifier_head

# Per inception module: (1x1, (3x3 reduce, 3x3), (5x5 reduce, 5x5), pool projection); "M" a
# 3x3/2 max-pool, "m" the 2x2/2 one before 5a. The paper's table 1.
INCEPTIONS: tuple = (
    (64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64), "M",
    (192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64),
    (128, (128, 256), (24, 64), 64), (112, (144, 288), (32, 64), 64),
    (256, (160, 320), (32, 128), 128), "m",
    (256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128),
)


class GoogLeNet(nn.Sequential):
    """``five`` is the inception modules' "5x5" branch (see :class:`InceptionBlock`):
    torchvision's "3x3" by default, "5x5" for the paper's."""

    def __init__(self, num_classes: int = 1000, *, five: str = "3x3",
                 dropout: float = 0.2) -> None:
        def conv(cin: int, cout: int, k: int, stride: int = 1) -> ConvNormAct:
            return ConvNormAct(cin, cout, k, stride, padding=k // 2, bias=False)

        layers: list[nn.Module] = []
        cin = 192
        for spec in INCEPTIONS:
            if isinstance(spec, str):
                layers.append(nn.MaxPool2d(3 if spec == "M" else 2, 2, ceil_mode=True))
                continue
            block = InceptionBlock(cin, *spec, five=five, bias=False)
            layers.append(block)
            cin = block.out_channels
        super().__init__(OrderedDict(
            stem=nn.Sequential(conv(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
                               conv(64, 64, 1), conv(64, 192, 3),
                               nn.MaxPool2d(3, 2, ceil_mode=True)),
            stages=nn.Sequential(*layers),
            head=classifier_head(cin, num_classes, dropout),
        ))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 1e-3
