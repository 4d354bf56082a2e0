"""Training-time augmentation on a batch of cached chips, in torch (no per-image Python
loop, no worker processes): horizontal flip, colour (brightness, contrast, saturation) and
a small similarity warp (rotation, scale, shift) that mimics alignment jitter.

All randomness comes from the ``torch.Generator`` passed in, whose state the training
checkpoint saves, so runs repeat exactly from a seed and across a resume.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(chips: torch.Tensor, gen: torch.Generator, *, rotate_deg: float = 10.0,
            scale: float = 0.08, shift: float = 0.05, colour: float = 0.3,
            flip: bool = True) -> torch.Tensor:
    """(B, S, S, C) uint8 chips -> (B, C, S, S) float in 0..255, augmented per image.
    C is 3 (faces) or 1 (grey: no saturation change); ``flip=False`` for images a mirror
    changes the meaning of (digits)."""
    x = chips.permute(0, 3, 1, 2).float()
    b = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    flip = (torch.rand(b, generator=gen) < 0.5) & flip  # drawn either way: same stream
    angle = uniform(-rotate_deg, rotate_deg) * math.pi / 180
    s = 1.0 / uniform(1 - scale, 1 + scale)
    tx, ty = uniform(-shift, shift) * 2, uniform(-shift, shift) * 2
    sign = torch.where(flip, -1.0, 1.0)
    theta = torch.stack([
        torch.stack([s * torch.cos(angle) * sign, -s * torch.sin(angle), tx], 1),
        torch.stack([s * torch.sin(angle) * sign, s * torch.cos(angle), ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    bright = uniform(1 - colour, 1 + colour).view(b, 1, 1, 1)
    contrast = uniform(1 - colour, 1 + colour).view(b, 1, 1, 1)
    sat = uniform(1 - colour, 1 + colour).view(b, 1, 1, 1)
    if x.shape[1] == 3:
        grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
        x = grey + (x - grey) * sat
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * bright
    return x.clamp(0, 255)
