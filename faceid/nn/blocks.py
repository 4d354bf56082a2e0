"""Building blocks shared by every network in faceid (encoders, liveness net, features).

Norm layers are chosen by name: ``"bn"`` (batch-norm, for training), ``"affine"`` (a frozen
per-channel scale and shift, what dlib stores in place of batch-norm) or ``"none"``.
Padding follows dlib's rule unless given: ``k // 2`` for stride 1, ``0`` for strided layers,
so that networks ported from dlib compute exactly what dlib computes. The model zoo
(``faceid/nn/classic.py``, ``resnet.py``, ``inception.py``, ``mobile.py``) passes
``padding=k // 2`` at every stride, the convention of the papers and of torchvision.
Activations are chosen by name too: ``"relu"``, ``"relu6"``, ``"silu"``, ``"tanh"``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class Affine(nn.Module):
    """Per-channel ``y = gamma * x + beta`` on NCHW tensors (dlib's ``affine_`` layer)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def make_norm(kind: str, channels: int) -> nn.Module:
    """Return the norm layer named ``kind`` ("bn", "affine" or "none") for ``channels``."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "affine":
        return Affine(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (expected bn, affine or none)")


_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "relu6": lambda: nn.ReLU6(inplace=True),
                "silu": lambda: nn.SiLU(inplace=True), "tanh": nn.Tanh}


def make_act(kind: str) -> nn.Module:
    """Return the activation named ``kind`` ("relu", "relu6", "silu" or "tanh")."""
    try:
        return _ACTIVATIONS[kind]()
    except KeyError:
        raise ValueError(f"unknown activation {kind!r} (expected "
                         f"{', '.join(_ACTIVATIONS)})") from None


def default_padding(kernel: int, stride: int) -> int:
    """dlib's convention: 'same' padding for stride 1, none for strided convolutions."""
    return kernel // 2 if stride == 1 else 0


class ConvNormAct(nn.Sequential):
    """conv -> norm -> activation; ``act=False`` leaves the activation out, ``act=True`` is
    ReLU, a string names another (:func:`make_act`). Items: 0 conv, 1 norm, 2 activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        *,
        padding: int | None = None,
        groups: int = 1,
        norm: str = "bn",
        act: bool | str = True,
        bias: bool = True,
    ) -> None:
        pad = default_padding(kernel, stride) if padding is None else padding
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=bias),
            make_norm(norm, cout),
        ]
        if act:
            layers.append(make_act("relu" if act is True else act))
        super().__init__(*layers)


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sum two NCHW tensors of possibly different C, H, W: the smaller is zero-padded at the
    end of each axis (dlib's ``add_prev`` semantics, which its residual shortcuts rely on)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


def make_shortcut(kind: str, cin: int, cout: int, stride: int, *, norm: str = "bn",
                  bias: bool = True) -> nn.Module:
    """A residual block's shortcut. ``"pool"`` (dlib's ``ares_down``): a 2x2/2 average pool
    when strided, extra channels zero-padded by :func:`add_padded`, no weights.
    ``"projection"`` (He et al.'s option B, torchvision's ``downsample``): a strided 1x1
    conv-norm when the width or the resolution changes. The identity otherwise."""
    if kind == "pool":
        return nn.AvgPool2d(2, 2) if stride != 1 else nn.Identity()
    if kind == "projection":
        if stride == 1 and cin == cout:
            return nn.Identity()
        return ConvNormAct(cin, cout, 1, stride, padding=0, norm=norm, act=False, bias=bias)
    raise ValueError(f"unknown shortcut {kind!r} (expected pool or projection)")


class ResidualBlock(nn.Module):
    """Two 3x3 conv-norm layers plus a shortcut, then ReLU (He et al.'s basic block; dlib's
    ``ares``).

    By default (dlib's port) a strided block's shortcut is a 2x2/2 average pool with
    zero-padded extra channels (dlib's ``ares_down``), so the block has no projection
    weights, and the strided conv has dlib's padding. ResNet-18/34 use
    ``shortcut="projection", padding=1, bias=False`` (see :func:`make_shortcut`).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, *, norm: str = "bn",
                 shortcut: str = "pool", padding: int | None = None, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 3, stride, padding=padding, norm=norm, bias=bias)
        self.conv2 = ConvNormAct(cout, cout, 3, 1, norm=norm, act=False, bias=bias)
        self.shortcut = make_shortcut(shortcut, cin, cout, stride, norm=norm, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(add_padded(self.conv2(self.conv1(x)), self.shortcut(x)))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided here, ResNet v1.5 as torchvision has it) -> 1x1 expand to
    ``width * expansion``, plus a projection shortcut where the shape changes, then ReLU
    (ResNet-50 and deeper): a block of ``4 * width`` channels at the cost of ``width``."""

    def __init__(self, cin: int, width: int, stride: int = 1, *, expansion: int = 4,
                 norm: str = "bn", bias: bool = False) -> None:
        super().__init__()
        cout = width * expansion
        self.conv1 = ConvNormAct(cin, width, 1, norm=norm, bias=bias)
        self.conv2 = ConvNormAct(width, width, 3, stride, padding=1, norm=norm, bias=bias)
        self.conv3 = ConvNormAct(width, cout, 1, norm=norm, act=False, bias=bias)
        self.shortcut = make_shortcut("projection", cin, cout, stride, norm=norm, bias=bias)
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class InceptionBlock(nn.Module):
    """Parallel 1x1, 3x3, "5x5" and pool branches, concatenated (GoogLeNet / FaceNet NN2
    style), each wide branch behind a 1x1 reduction. Output channels: sum of the four branch
    widths.

    ``five`` is what the 5x5 branch holds after its reduction: ``"double3x3"`` (the default:
    two 3x3 convs, a 5x5 field for fewer weights, Inception v2 and FaceNet), ``"5x5"`` (the
    GoogLeNet paper) or ``"3x3"`` (one 3x3, what torchvision's GoogLeNet builds: its
    weights were trained so).
    """

    def __init__(
        self, cin: int, c1: int, c3: tuple[int, int], c5: tuple[int, int], cpool: int,
        *, norm: str = "bn", five: str = "double3x3", bias: bool = True,
    ) -> None:
        super().__init__()

        def cna(a: int, b: int, k: int) -> ConvNormAct:
            return ConvNormAct(a, b, k, norm=norm, bias=bias)

        wide = {"double3x3": lambda: [cna(c5[0], c5[1], 3), cna(c5[1], c5[1], 3)],
                "5x5": lambda: [cna(c5[0], c5[1], 5)], "3x3": lambda: [cna(c5[0], c5[1], 3)]}
        if five not in wide:
            raise ValueError(f"unknown 5x5 branch {five!r} (expected {', '.join(wide)})")
        self.b1 = cna(cin, c1, 1)
        self.b3 = nn.Sequential(cna(cin, c3[0], 1), cna(c3[0], c3[1], 3))
        self.b5 = nn.Sequential(cna(cin, c5[0], 1), *wide[five]())
        self.bpool = nn.Sequential(nn.MaxPool2d(3, 1, 1), cna(cin, cpool, 1))
        self.out_channels = c1 + c3[1] + c5[1] + cpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bpool(x)], dim=1)


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv-norm-act then 1x1 pointwise conv-norm-act (MobileNet): about
    ``1/cout + 1/9`` of a full 3x3 convolution's multiply-adds, for CPU-friendly encoders."""

    def __init__(self, cin: int, cout: int, stride: int = 1, *, norm: str = "bn") -> None:
        super().__init__(
            ConvNormAct(cin, cin, 3, stride, padding=1, groups=cin, norm=norm, bias=False),
            ConvNormAct(cin, cout, 1, norm=norm, bias=False),
        )


class SqueezeExcite(nn.Module):
    """Channel gate (Hu et al.): global average -> 1x1 conv to ``squeeze`` channels
    (``norm``, ``act``) -> 1x1 conv back (``norm``) -> sigmoid, multiplied onto the input.
    EfficientNet's: ``act="silu", norm="none", bias=True``."""

    def __init__(self, channels: int, squeeze: int, *, act: str = "relu", norm: str = "bn",
                 bias: bool = False) -> None:
        super().__init__()
        self.reduce = ConvNormAct(channels, squeeze, 1, norm=norm, act=act, bias=bias)
        self.expand = ConvNormAct(squeeze, channels, 1, norm=norm, act=False, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.expand(self.reduce(x.mean(dim=(2, 3), keepdim=True))))


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion to ``cin * expand`` channels (none when
    ``expand`` is 1), ``kernel`` x ``kernel`` depthwise conv, optional squeeze-excitation
    (``se`` squeeze channels, 0 = none), then a *linear* 1x1 projection (no activation: the
    narrow bottleneck keeps its information), plus the input when stride 1 keeps the width.
    MobileNetV2's block with ``act="relu6", se=0``; EfficientNet's with ``act="silu"`` and
    ``se = cin // 4``."""

    def __init__(self, cin: int, cout: int, stride: int = 1, *, expand: int = 6,
                 kernel: int = 3, act: str = "relu6", se: int = 0, norm: str = "bn") -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = (ConvNormAct(cin, hidden, 1, norm=norm, act=act, bias=False)
                       if expand != 1 else nn.Identity())
        self.depthwise = ConvNormAct(hidden, hidden, kernel, stride, padding=kernel // 2,
                                     groups=hidden, norm=norm, act=act, bias=False)
        self.se = (SqueezeExcite(hidden, se, act=act, norm="none", bias=True) if se
                   else nn.Identity())
        self.project = ConvNormAct(hidden, cout, 1, norm=norm, act=False, bias=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


def classifier_head(cin: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pool -> dropout -> linear: the head of ResNet, GoogLeNet, the
    MobileNets and EfficientNet (items ``pool``, ``flatten``, ``drop``, ``fc``)."""
    return nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                                     drop=nn.Dropout(dropout),
                                     fc=nn.Linear(cin, num_classes)))


def fold_norms(module: nn.Module) -> nn.Module:
    """Fold every Affine / eval-mode BatchNorm that directly follows a Conv2d inside a
    ConvNormAct into the convolution (exact for inference, fewer passes over memory)."""
    for child in module.modules():
        if not isinstance(child, ConvNormAct):
            continue
        conv, norm = child[0], child[1]
        if isinstance(norm, Affine):
            scale, shift = norm.gamma.detach(), norm.beta.detach()
        elif isinstance(norm, nn.BatchNorm2d) and not norm.training:
            scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
            shift = norm.bias.detach() - norm.running_mean * scale
        else:
            continue
        with torch.no_grad():
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(shift)
            conv.bias = nn.Parameter(bias * scale + shift)
        child[1] = nn.Identity()
    return module
