"""Neural style transfer (Gatys et al. 2015, as the course's week 4 teaches it) on features of
the bundled dlib ResNet face encoder, the one pretrained network faceid ships offline.

The generated image G is optimised directly (Adam on its pixels) to minimise

    J(G) = alpha * J_content(C, G) + beta * J_style(S, G)

- ``J_content`` compares one layer's activations of the content image C and of G:
  ``sum((a_C - a_G)^2) / (4 * n_H * n_W * n_C)``.
- ``J_style`` compares Gram matrices (channel-by-channel correlations, the texture with the
  layout thrown away) of the style image S and of G on several layers, each weighted:
  ``sum_l lambda_l * sum((G_S - G_G)^2) / (4 * n_C^2 * (n_H * n_W)^2)``.

Layers of the dlib network, by name: ``conv1`` (the 7x7/2 stem conv, 32 channels at 1/2
resolution), ``stage1`` .. ``stage5`` (the end of each residual stage: 32, 64, 128, 256,
256 channels at 1/4 .. 1/64). Defaults: content on ``stage2``, style on ``conv1``, ``stage1``,
``stage2`` and ``stage3`` with equal weights; docs/DESIGN-NOTES.md says why.

Images are (H, W, 3) uint8 RGB arrays (load them with :func:`faceid.imageio.load_image`);
the network works on 0..255 pixels (it subtracts dlib's mean colour itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from faceid.errors import ModelError, UsageError

# the last residual block of each stage of the dlib network (faceid/nn/dlib_resnet.py STAGES)
_STAGE_ENDS = {"stage1": 2, "stage2": 6, "stage3": 9, "stage4": 12, "stage5": 13}
LAYERS = ("conv1", *_STAGE_ENDS)
DEFAULT_CONTENT = "stage2"
DEFAULT_STYLE: tuple[tuple[str, float], ...] = (("conv1", 0.25), ("stage1", 0.25),
                                                ("stage2", 0.25), ("stage3", 0.25))


@dataclass
class StyleConfig:
    """``steps`` Adam steps of ``lr`` pixel levels on G, started from
    ``(1 - noise) * C + noise * uniform(0, 255)`` (seeded)."""

    steps: int = 200
    alpha: float = 10.0
    beta: float = 1000.0  # the course's 40 is for VGG's features; dlib's Gram terms are smaller
    content_layer: str = DEFAULT_CONTENT
    style_layers: tuple[tuple[str, float], ...] = DEFAULT_STYLE
    lr: float = 2.0
    noise: float = 0.2  # more is left as pixel noise the stride-2 stem barely sees
    seed: int = 0


@dataclass
class StyleStep:
    step: int
    content: float
    style: float
    total: float
    seconds: float


@dataclass
class StyleResult:
    image: np.ndarray
    history: list[StyleStep] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        return self.history[-1].seconds / len(self.history) if self.history else 0.0


def parse_layers(text: str) -> tuple[tuple[str, float], ...]:
    """``"conv1,stage1:0.5,stage2"`` -> ((name, weight), ...); a layer without a weight
    shares what is left of 1 equally with the others without one."""
    named: list[tuple[str, float | None]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.partition(":")
        if name not in LAYERS:
            raise UsageError(f"--layers: unknown layer {name!r} (known: {', '.join(LAYERS)})")
        try:
            named.append((name, float(weight) if weight else None))
        except ValueError:
            raise UsageError(f"--layers: weight {weight!r} of {name} is not a number") from None
    if not named:
        raise UsageError("--layers names no layer")
    given = sum(w for _, w in named if w is not None)
    free = [n for n, w in named if w is None]
    share = max(0.0, 1.0 - given) / len(free) if free else 0.0
    return tuple((n, share if w is None else w) for n, w in named)


class DlibFeatures(nn.Module):
    """The dlib encoder's activations at named layers, for (N, 3, H, W) 0..255 images; it
    runs only as deep as the deepest layer asked for. Weights are frozen."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if not (hasattr(net, "stem") and hasattr(net, "blocks") and hasattr(net, "mean")):
            raise ModelError("style transfer needs the dlib ResNet encoder's features")
        self.net = net.eval().requires_grad_(False)

    @classmethod
    def bundled(cls) -> DlibFeatures:
        """From the bundled dlib ResNet v1 model file (weights checked by hash)."""
        from faceid.encoder import build_network
        from faceid.modelfile import load_model_info

        return cls(build_network(load_model_info()))

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        net = self.net
        out: dict[str, torch.Tensor] = {}
        x = (x - net.mean) / 256.0
        x = net.stem[0](x)
        if "conv1" in layers:
            out["conv1"] = x
        deepest = max((_STAGE_ENDS[n] for n in layers if n in _STAGE_ENDS), default=-1)
        if deepest >= 0:
            x = net.stem[1](x)
            for i, block in enumerate(net.blocks[:deepest + 1]):
                x = block(x)
                for name, end in _STAGE_ENDS.items():
                    if end == i and name in layers:
                        out[name] = x
        return out


def gram(a: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) activations -> (N, C, C) Gram matrices: ``A @ A^T`` with A the (C, H*W)
    unrolled activations of one image."""
    flat = a.flatten(2)
    return flat @ flat.transpose(1, 2)


def content_cost(a_c: torch.Tensor, a_g: torch.Tensor) -> torch.Tensor:
    """``sum((a_C - a_G)^2) / (4 n_H n_W n_C)`` for one image's (1, C, H, W) activations."""
    _, c, h, w = a_g.shape
    return ((a_c - a_g) ** 2).sum() / (4 * c * h * w)


def layer_style_cost(gram_s: torch.Tensor, a_g: torch.Tensor) -> torch.Tensor:
    """``sum((G_S - G_G)^2) / (4 n_C^2 (n_H n_W)^2)``, G_G the Gram matrix of ``a_g``."""
    _, c, h, w = a_g.shape
    return ((gram_s - gram(a_g)) ** 2).sum() / (4 * c * c * (h * w) ** 2)


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` scaled (area-averaged down, bicubic up) so its longer side is ``size``."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == (w, h):
        return image
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize(new, method))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float 0..255."""
    return torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float()


def to_image(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float -> (H, W, 3) uint8, clamped."""
    return x[0].detach().clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def transfer(content: np.ndarray, style: np.ndarray, cfg: StyleConfig | None = None, *,
             features: DlibFeatures | None = None,
             on_step: Callable[[StyleStep, Callable[[], np.ndarray]], None] | None = None,
             ) -> StyleResult:
    """Paint ``content`` in the style of ``style`` (both (H, W, 3) uint8; the style image
    may be of any size, Gram matrices do not keep positions). ``on_step(step, image)`` is
    called after every step with the costs and a function giving the image so far (for
    snapshots). Returns the image with the lowest total cost seen, and the costs per step."""
    cfg = cfg or StyleConfig()
    for name in (cfg.content_layer, *(n for n, _ in cfg.style_layers)):
        if name not in LAYERS:
            raise UsageError(f"unknown layer {name!r} (known: {', '.join(LAYERS)})")
    features = features or DlibFeatures.bundled()
    style_names = [n for n, _ in cfg.style_layers]
    c = to_tensor(content)
    with torch.no_grad():
        a_c = features(c, [cfg.content_layer])[cfg.content_layer]
        grams = {n: gram(a) for n, a in features(to_tensor(style), style_names).items()}
    gen = torch.Generator().manual_seed(cfg.seed)
    noise = torch.rand(c.shape, generator=gen) * 255
    g = ((1 - cfg.noise) * c + cfg.noise * noise).requires_grad_(True)
    opt = torch.optim.Adam([g], lr=cfg.lr)
    wanted = [cfg.content_layer, *style_names]
    history: list[StyleStep] = []
    best, best_cost = g.detach().clone(), float("inf")
    started = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        acts = features(g, wanted)
        j_content = content_cost(a_c, acts[cfg.content_layer])
        j_style = sum((w * layer_style_cost(grams[n], acts[n]) for n, w in cfg.style_layers),
                      torch.zeros(()))
        total = cfg.alpha * j_content + cfg.beta * j_style
        if total.item() < best_cost:  # the costs of the image before this step's update
            best, best_cost = g.detach().clone(), total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
        with torch.no_grad():
            g.clamp_(0, 255)
        record = StyleStep(step, j_content.item(), j_style.item(), total.item(),
                           time.perf_counter() - started)
        history.append(record)
        if on_step is not None:
            on_step(record, lambda: to_image(g))
    return StyleResult(to_image(best), history)
