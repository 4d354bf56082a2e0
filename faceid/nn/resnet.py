"""ResNet-18/34/50 (He et al. 2015) on the shared blocks, laid out as torchvision builds them
(ResNet v1.5: a bottleneck's stride is on its 3x3 conv), so torchvision's weights load by
:func:`faceid.nn.zoo.from_torchvision_state_dict`.

``stem`` (7x7/2 conv-BN-ReLU, 3x3/2 max-pool) -> ``stages[0..3]`` (identity shortcuts inside
a stage, a 1x1 projection where the width or resolution changes) -> ``head`` (global
average pool, fc). Input (N, 3, 224, 224) RGB, any size >= 32; output (N, num_classes).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from faceid.nn.blocks import Bottleneck, ConvNormAct, ResidualBlock, classifier_head


class ResNet(nn.Sequential):
    """``block`` "basic" (two 3x3 convs, ResNet-18/34) or "bottleneck" (1x1-3x3-1x1,
    4x wider out, ResNet-50); ``layers`` blocks per stage; stage widths 64-128-256-512."""

    def __init__(self, block: str = "basic", layers: tuple[int, ...] = (2, 2, 2, 2),
                 num_classes: int = 1000, widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"unknown block {block!r} (expected basic or bottleneck)")
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, (width, count) in enumerate(zip(widths, layers)):
            blocks: list[nn.Module] = []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                if block == "basic":
                    blocks.append(ResidualBlock(cin, width, stride, shortcut="projection",
                                                padding=1, bias=False))
                    cin = width
                else:
                    b = Bottleneck(cin, width, stride)
                    blocks.append(b)
                    cin = b.out_channels
            stages.append(nn.Sequential(*blocks))
        super().__init__(OrderedDict(
            stem=nn.Sequential(ConvNormAct(3, widths[0], 7, 2, padding=3, bias=False),
                               nn.MaxPool2d(3, 2, 1)),
            stages=nn.Sequential(*stages),
            head=classifier_head(cin, num_classes),
        ))


def resnet18(**kwargs: object) -> ResNet:
    return ResNet("basic", (2, 2, 2, 2), **kwargs)


def resnet34(**kwargs: object) -> ResNet:
    return ResNet("basic", (3, 4, 6, 3), **kwargs)


def resnet50(**kwargs: object) -> ResNet:
    return ResNet("bottleneck", (3, 4, 6, 3), **kwargs)
