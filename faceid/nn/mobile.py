"""The mobile networks on the shared blocks: MobileNet v1 (depthwise-separable convs),
MobileNet v2 (inverted residuals with linear bottlenecks) and EfficientNet (MBConv with
squeeze-excitation, compound scaling). Laid out as torchvision builds v2 and EfficientNet, so
their weights load by :func:`faceid.nn.zoo.from_torchvision_state_dict`.

Each is ``stem`` (3x3/2 conv) -> ``stages`` -> ``head`` (1x1 conv where the paper has one,
global average pool, dropout, fc). Input (N, 3, 224, 224) RGB, any size >= 32.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from faceid.nn.blocks import ConvNormAct, DepthwiseSeparable, MBConv, classifier_head

# MobileNet v1 (Howard et al. 2017, table 1): (output width, stride) of the 13 separable layers.
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
             (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# MobileNet v2 (Sandler et al. 2018, table 2): expansion t, width c, repeats n, first stride s.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
# EfficientNet-B0 (Tan & Le 2019, table 1): expansion, kernel, first stride, width, repeats.
B0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
             (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled width to a multiple of ``divisor`` (never below it, never more than 10%
    down): the rule MobileNet v2 and EfficientNet scale their widths by."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _stem(cout: int, act: str) -> ConvNormAct:
    return ConvNormAct(3, cout, 3, 2, padding=1, act=act, bias=False)


class MobileNetV1(nn.Sequential):
    """MobileNet v1 at width 1.0: a 3x3/2 conv and 13 depthwise-separable layers (about a
    ninth of the multiply-adds of full 3x3 convs), 4,231,976 parameters at 1000 classes."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        cin = 32
        for cout, stride in V1_LAYERS:
            layers.append(DepthwiseSeparable(cin, cout, stride))
            cin = cout
        super().__init__(OrderedDict(stem=_stem(32, "relu"), stages=nn.Sequential(*layers),
                                     head=classifier_head(cin, num_classes, dropout)))


class MobileNetV2(nn.Sequential):
    """MobileNet v2: inverted residual blocks (:class:`MBConv`, ReLU6, linear projection),
    ``width`` scales every layer's channels (the last conv's 1280 only upwards).
    3,504,872 parameters at width 1.0 and 1000 classes."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0,
                 dropout: float = 0.2) -> None:
        cin = make_divisible(32 * width)
        blocks: list[nn.Module] = []
        for expand, c, repeats, stride in V2_STAGES:
            cout = make_divisible(c * width)
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, stride if i == 0 else 1, expand=expand,
                                     act="relu6"))
                cin = cout
        last = make_divisible(1280 * max(1.0, width))
        super().__init__(OrderedDict(
            stem=_stem(make_divisible(32 * width), "relu6"),
            stages=nn.Sequential(*blocks),
            head=nn.Sequential(ConvNormAct(cin, last, 1, act="relu6", bias=False),
                               classifier_head(last, num_classes, dropout)),
        ))


class EfficientNet(nn.Sequential):
    """EfficientNet: MBConv stages (SiLU, squeeze-excitation to a quarter of the block's
    input width) scaled by compound scaling: ``width`` multiplies the channels,
    ``depth`` the repeats per stage (B0: 1.0, 1.0; B1: 1.0, 1.1; B2: 1.1, 1.2; ...; the
    input resolution, the third factor, is the caller's). B0 has 5,288,548 parameters at
    1000 classes. Stochastic depth (a training regulariser) is not built."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0, depth: float = 1.0,
                 dropout: float = 0.2) -> None:
        cin = make_divisible(32 * width)
        stages: list[nn.Module] = []
        for expand, kernel, stride, c, repeats in B0_STAGES:
            cout = make_divisible(c * width)
            blocks: list[nn.Module] = []
            for i in range(math.ceil(repeats * depth)):
                blocks.append(MBConv(cin, cout, stride if i == 0 else 1, expand=expand,
                                     kernel=kernel, act="silu", se=max(1, cin // 4)))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        last = 4 * cin
        super().__init__(OrderedDict(
            stem=_stem(make_divisible(32 * width), "silu"),
            stages=nn.Sequential(*stages),
            head=nn.Sequential(ConvNormAct(cin, last, 1, act="silu", bias=False),
                               classifier_head(last, num_classes, dropout)),
        ))


def efficientnet_b0(**kwargs: object) -> EfficientNet:
    return EfficientNet(**{"width": 1.0, "depth": 1.0, **kwargs})
