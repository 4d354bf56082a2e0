"""MiniFASNet V2 and V1SE, the passive anti-spoofing CNNs of Minivision's
Silent-Face-Anti-Spoofing (the models deepface uses), rebuilt on the shared blocks, and the
loader that fills them from that repository's weights.

Architecture (MobileFaceNet-style, channel-pruned, 80x80 input): a stem of a 3x3/2 conv and a
3x3 depthwise conv; three stages, each a strided inverted-residual block (1x1 expand, 3x3
depthwise, linear 1x1 project) followed by residual ones; a head of a 1x1 conv to 512, a
learned 5x5 depthwise "global" conv, a 128-d linear embedding with batch-norm and a 3-way
classifier. Every conv is followed by batch-norm and, except the projections, PReLU. The
pruning left each block its own expansion width, which is why the stage tables below list
them one by one. V1SE adds a squeeze-and-excitation gate to the last block of each stage.

Input: (N, 3, 80, 80) float **BGR** in 0..255, not normalised. This differs from faceid's
other networks (RGB) on purpose: the weights were trained so, and keeping the reference
convention lets the port be checked against the reference outputs number for number.
Output: 3 logits; class 1 is a live face, 0 and 2 are attacks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import torch
from torch import nn

from faceid.errors import LivenessModelError
from faceid.nn.blocks import ConvNormAct, SqueezeExcite

# Per stage: (output width, expansion width of the strided first block, expansion widths of
# the residual blocks). From the published weights' shapes (the reference's "keep" lists).
V2_STAGES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (64, 103, (13, 13, 13, 13)),
    (128, 231, (231, 52, 26, 77, 26, 26)),
    (128, 308, (26, 26)),
)
V1_STAGES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (64, 103, (13, 26, 13, 52)),
    (128, 231, (154, 52, 26, 52, 26, 26)),
    (128, 308, (26, 26)),
)


class ConvNormPReLU(ConvNormAct):
    """conv (no bias) -> batch-norm -> PReLU, 'same' padding at any stride (the reference's
    conv block). A ConvNormAct, so :func:`faceid.nn.blocks.fold_norms` folds it."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *,
                 groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=kernel // 2, groups=groups,
                         act=False, bias=False)
        self.append(nn.PReLU(cout))


class InvertedResidual(nn.Module):
    """1x1 expand (PReLU) -> 3x3 depthwise (PReLU) -> 1x1 linear projection, optionally
    squeeze-excited, plus the input when ``residual`` (MobileNetV2 / MobileFaceNet)."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1, *,
                 residual: bool = True, se: bool = False) -> None:
        super().__init__()
        if residual and (cin != cout or stride != 1):
            raise ValueError("a residual block keeps its width and resolution")
        self.expand = ConvNormPReLU(cin, mid, 1)
        self.dw = ConvNormPReLU(mid, mid, 3, stride, groups=mid)
        self.project = ConvNormAct(mid, cout, 1, act=False, bias=False)
        # the reference puts batch-norm inside the gate: SqueezeExcite's defaults
        self.se: nn.Module = SqueezeExcite(cout, cout // 4) if se else nn.Identity()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.project(self.dw(self.expand(x))))
        return x + y if self.residual else y


class Stage(nn.Module):
    """A strided block (``down``) that halves the resolution, then residual ``blocks``."""

    def __init__(self, cin: int, cout: int, down_mid: int, mids: tuple[int, ...], *,
                 se: bool) -> None:
        super().__init__()
        self.down = InvertedResidual(cin, down_mid, cout, 2, residual=False)
        self.blocks = nn.Sequential(*(
            InvertedResidual(cout, mid, cout, se=se and i == len(mids) - 1)
            for i, mid in enumerate(mids)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class MiniFASNet(nn.Module):
    """(N, 3, S, S) BGR 0..255 -> (N, num_classes) logits; see the module docstring."""

    def __init__(self, stages: tuple[tuple[int, int, tuple[int, ...]], ...] = V2_STAGES, *,
                 se: bool = False, input_size: int = 80, stem: int = 32, width: int = 512,
                 embedding_size: int = 128, num_classes: int = 3, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(
            conv=ConvNormPReLU(3, stem, 3, 2),
            dw=ConvNormPReLU(stem, stem, 3, groups=stem),
        ))
        layers: list[nn.Module] = []
        cin = stem
        for cout, down_mid, mids in stages:
            layers.append(Stage(cin, cout, down_mid, mids, se=se))
            cin = cout
        self.stages = nn.Sequential(*layers)
        # Four stride-2 steps: the last map is ceil(S / 16) wide, and the depthwise "global"
        # conv covers it exactly (5x5 at 80x80), a learned, position-aware pooling.
        kernel = (input_size + 15) // 16
        self.head = nn.Sequential(OrderedDict(
            conv=ConvNormPReLU(cin, width, 1),
            gdc=ConvNormAct(width, width, kernel, padding=0, groups=width, act=False,
                            bias=False),
            flatten=nn.Flatten(),
            embed=nn.Linear(width, embedding_size, bias=False),
            norm=nn.BatchNorm1d(embedding_size),
            drop=nn.Dropout(dropout),
            fc=nn.Linear(embedding_size, num_classes, bias=False),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def minifasnet_v2(**kwargs: object) -> MiniFASNet:
    """MiniFASNet V2 (the 2.7x-crop model)."""
    return MiniFASNet(V2_STAGES, **kwargs)


def minifasnet_v1se(**kwargs: object) -> MiniFASNet:
    """MiniFASNet V1SE (the 4.0x-crop model): V1 widths plus squeeze-excitation."""
    return MiniFASNet(V1_STAGES, **{"se": True, "dropout": 0.75, **kwargs})


ARCHITECTURES: dict[str, Callable[..., MiniFASNet]] = {
    "minifasnet_v2": minifasnet_v2,
    "minifasnet_v1se": minifasnet_v1se,
}


def build_minifasnet(name: str, **kwargs: object) -> MiniFASNet:
    """Build the architecture ``name`` (untrained), or a LivenessModelError naming the known."""
    try:
        return ARCHITECTURES[name](**kwargs)
    except KeyError:
        raise LivenessModelError(f"unknown MiniFASNet architecture {name!r} "
                                 f"(known: {', '.join(sorted(ARCHITECTURES))})") from None


# --- reference weights -------------------------------------------------------------------
# The reference names, after DataParallel's "module." prefix (and MultiFTNet's "model." one in
# training checkpoints), and where each lives here.
_REFERENCE_MODULES = (
    ("conv1.", "stem.conv."), ("conv2_dw.", "stem.dw."),
    ("conv_23.", "stages.0.down."), ("conv_3.model.", "stages.0.blocks."),
    ("conv_34.", "stages.1.down."), ("conv_4.model.", "stages.1.blocks."),
    ("conv_45.", "stages.2.down."), ("conv_5.model.", "stages.2.blocks."),
    ("conv_6_sep.", "head.conv."), ("conv_6_dw.", "head.gdc."),
    ("linear.", "head.embed."), ("bn.", "head.norm."), ("prob.", "head.fc."),
)
_REFERENCE_BLOCK_PARTS = {"conv": "expand", "conv_dw": "dw", "project": "project",
                          "se_module": "se"}
# Inside a conv block: conv / bn / prelu are ConvNormAct's items 0 / 1 / 2; inside the SE gate
# fc1+bn1 are the reduce conv, fc2+bn2 the expand conv.
_REFERENCE_LAYERS = {"conv": "0", "bn": "1", "prelu": "2",
                     "fc1": "reduce.0", "bn1": "reduce.1", "fc2": "expand.0", "bn2": "expand.1"}
# The Fourier-spectrum branch (MultiFTNet.FTGenerator) is an auxiliary training loss only: its
# output never reaches the classifier, so inference drops it. The published files do not
# include it; the reference trainer's checkpoints do.
FT_BRANCH_PREFIX = "FTGenerator."


def reference_key(name: str) -> str:
    """The module name here of the reference parameter ``name`` (``module.`` prefix removed),
    e.g. ``conv_4.model.5.se_module.fc1.weight`` -> ``stages.1.blocks.5.se.reduce.0.weight``."""
    for old, new in _REFERENCE_MODULES:
        if name.startswith(old):
            rest = name[len(old):]
            break
    else:
        raise KeyError(name)
    if new.endswith("blocks."):
        index, rest = rest.split(".", 1)
        new += index + "."
    if new.startswith("stages."):
        part, rest = rest.split(".", 1)
        new += _REFERENCE_BLOCK_PARTS[part] + "."
    if new.startswith(("head.embed", "head.norm", "head.fc")):
        return new + rest
    layer, param = rest.split(".", 1)
    return new + _REFERENCE_LAYERS[layer] + "." + param


def convert_reference_state(state: Mapping[str, torch.Tensor]
                            ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a reference state dict to this module's names; returns it and the keys dropped
    (the Fourier branch's, the only ones allowed to go unused). Any other unknown key is a
    LivenessModelError, never silently skipped."""
    renamed: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        name = key.removeprefix("module.").removeprefix("model.")
        if name.startswith(FT_BRANCH_PREFIX):
            dropped.append(key)
            continue
        try:
            renamed[reference_key(name)] = value
        except (KeyError, ValueError):
            raise LivenessModelError(f"reference weight {key!r} has no place in MiniFASNet "
                                     "(not a MiniFASNet state dict?)") from None
    return renamed, dropped


def load_reference_weights(model: MiniFASNet, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Fill ``model`` from a reference state dict (``torch.load`` of the published ``.pth``)
    and return the keys dropped (see :func:`convert_reference_state`). Missing, extra or
    misshapen weights are a LivenessModelError: a partial load would still run, and answer
    nonsense."""
    renamed, dropped = convert_reference_state(state)
    load_converted_weights(model, renamed, "reference state dict")
    return dropped


def load_converted_weights(model: nn.Module, state: Mapping[str, torch.Tensor],
                           name: str) -> None:
    """Load a state dict already in this module's names, strictly; ``name`` (the file) is
    what a LivenessModelError names."""
    own = model.state_dict()
    problems = {
        "missing": sorted(own.keys() - state.keys()),
        "unexpected": sorted(state.keys() - own.keys()),
        "wrong shape": sorted(k for k in own.keys() & state.keys()
                              if own[k].shape != state[k].shape),
    }
    found = [f"{what} {keys[:3]}" + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
             for what, keys in problems.items() if keys]
    if found:
        raise LivenessModelError(f"{name}: weights do not fit {type(model).__name__} "
                                 f"({'; '.join(found)})")
    model.load_state_dict(state)
