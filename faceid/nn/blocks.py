"""Building blocks shared by every network in faceid (encoders, liveness net, features).

Norm layers are chosen by name: ``"bn"`` (batch-norm, for training), ``"affine"`` (a frozen
per-channel scale and shift, what dlib stores in place of batch-norm) or ``"none"``.
Padding follows dlib's rule unless given: ``k // 2`` for stride 1, ``0`` for strided layers,
so that networks ported from dlib compute exactly what dlib computes.
"""

from __future__ import annotations

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


def default_padding(kernel: int, stride: int) -> int:
    """dlib's convention: 'same' padding for stride 1, none for strided convolutions."""
    return kernel // 2 if stride == 1 else 0


class ConvNormAct(nn.Sequential):
    """conv -> norm -> activation; ``act=False`` leaves the activation out."""

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
        act: bool = True,
        bias: bool = True,
    ) -> None:
        pad = default_padding(kernel, stride) if padding is None else padding
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=bias),
            make_norm(norm, cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
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


class ResidualBlock(nn.Module):
    """Two 3x3 conv-norm layers plus a shortcut, then ReLU (He et al.; dlib's ``ares``).

    A strided block's shortcut is a 2x2/2 average pool with zero-padded extra channels
    (dlib's ``ares_down``), so the block has no projection weights.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, *, norm: str = "bn") -> None:
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 3, stride, norm=norm)
        self.conv2 = ConvNormAct(cout, cout, 3, 1, norm=norm, act=False)
        self.shortcut: nn.Module = nn.AvgPool2d(2, 2) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(add_padded(self.conv2(self.conv1(x)), self.shortcut(x)))


class InceptionBlock(nn.Module):
    """Parallel 1x1, 3x3, double-3x3 (a 5x5 field) and pool branches, concatenated
    (GoogLeNet / FaceNet NN2 style). Output channels: sum of the four branch widths."""

    def __init__(
        self, cin: int, c1: int, c3: tuple[int, int], c5: tuple[int, int], cpool: int,
        *, norm: str = "bn",
    ) -> None:
        super().__init__()
        self.b1 = ConvNormAct(cin, c1, 1, norm=norm)
        self.b3 = nn.Sequential(ConvNormAct(cin, c3[0], 1, norm=norm),
                                ConvNormAct(c3[0], c3[1], 3, norm=norm))
        self.b5 = nn.Sequential(ConvNormAct(cin, c5[0], 1, norm=norm),
                                ConvNormAct(c5[0], c5[1], 3, norm=norm),
                                ConvNormAct(c5[1], c5[1], 3, norm=norm))
        self.bpool = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvNormAct(cin, cpool, 1, norm=norm))
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
