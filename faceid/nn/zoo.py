"""The model zoo: every architecture faceid builds, with its standard input, its size and
where faceid uses it (``faceid zoo list``), and the name map that loads torchvision's weights
into the zoo's networks (how the tests prove each one computes what torchvision's does).

Sizes are measured on the ``meta`` device: no weights are allocated, so listing VGG-16's
138 million parameters costs nothing. Multiply-adds are counted by forward hooks on every
Conv2d and Linear (a multiply-add per weight use; pools, norms, activations and additions
are not counted, as in the papers' figures).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from faceid.errors import ModelError
from faceid.nn.registry import get_model


@dataclass(frozen=True)
class ZooEntry:
    """One architecture: ``build()`` gives its standard configuration (untrained);
    ``input_size`` is (C, H, W) of one input at the size it was designed for."""

    name: str
    build: Callable[[], nn.Module]
    input_size: tuple[int, int, int]
    used_in: str


def _registered(name: str) -> Callable[[], nn.Module]:
    return lambda: get_model(name)


def _minifasnet(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from faceid.nn.minifasnet import build_minifasnet

        return build_minifasnet(name)

    return build


_RGB224 = (3, 224, 224)
ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("dlib_resnet_v1", _registered("dlib_resnet_v1"), (3, 150, 150),
             "face encoder (default); style transfer features"),
    ZooEntry("compact_v1", _registered("compact_v1"), (3, 64, 64),
             "face encoder (faceid train --start scratch)"),
    ZooEntry("minifasnet_v2", _minifasnet("minifasnet_v2"), (3, 80, 80), "liveness (door)"),
    ZooEntry("minifasnet_v1se", _minifasnet("minifasnet_v1se"), (3, 80, 80), "liveness (door)"),
    ZooEntry("lenet5", _registered("lenet5"), (1, 32, 32), "course: digits (faceid train-digits)"),
    ZooEntry("alexnet", _registered("alexnet"), _RGB224, "library only"),
    ZooEntry("vgg16", _registered("vgg16"), _RGB224, "library only"),
    ZooEntry("resnet18", _registered("resnet18"), _RGB224, "library only"),
    ZooEntry("resnet34", _registered("resnet34"), _RGB224, "library only"),
    ZooEntry("resnet50", _registered("resnet50"), _RGB224, "library only"),
    ZooEntry("googlenet", _registered("googlenet"), _RGB224, "library only"),
    ZooEntry("mobilenet_v1", _registered("mobilenet_v1"), _RGB224, "library only"),
    ZooEntry("mobilenet_v2", _registered("mobilenet_v2"), _RGB224, "library only"),
    ZooEntry("efficientnet_b0", _registered("efficientnet_b0"), _RGB224, "library only"),
)


def count_parameters(net: nn.Module) -> int:
    """Trainable and frozen parameters (not buffers such as batch-norm's running statistics:
    the published counts leave those out)."""
    return sum(p.numel() for p in net.parameters())


def count_macs(net: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Multiply-adds of one forward pass on one (C, H, W) input, counted by forward hooks on
    Conv2d (output elements x input channels per group x kernel area) and Linear (output
    elements x input features). Runs on whatever device ``net`` is on; ``meta`` is free."""
    total = 0

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    device = next(net.parameters()).device
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return total


@dataclass(frozen=True)
class ZooRow:
    name: str
    parameters: int
    macs: int | None
    input_size: tuple[int, int, int]
    used_in: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "parameters": self.parameters, "macs": self.macs,
                "input": "x".join(map(str, self.input_size)), "used_in": self.used_in}


def zoo_table(size: int | None = None) -> list[ZooRow]:
    """Each zoo architecture's parameters and multiply-adds at its standard input size (or
    at ``size`` x ``size``; None where the network cannot take it), measured on the meta
    device (a few seconds for all of them)."""
    rows = []
    for entry in ZOO:
        shape = entry.input_size if size is None else (entry.input_size[0], size, size)
        with torch.device("meta"):
            net = entry.build()
            try:
                macs: int | None = count_macs(net, shape)
            except RuntimeError:  # too small for its pools, or a fixed-size layer
                macs = None
            rows.append(ZooRow(entry.name, count_parameters(net), macs, shape, entry.used_in))
    return rows


# --- torchvision's weights ---------------------------------------------------------------
# The zoo builds its networks in the order torchvision registers its modules, so the two
# state dicts list the same tensors in the same order under different names. GoogLeNet's
# auxiliary classifiers (training aids, not in the zoo's network) are dropped.
TORCHVISION_ARCHITECTURES = ("alexnet", "vgg16", "resnet18", "resnet34", "resnet50",
                             "googlenet", "mobilenet_v2", "efficientnet_b0")


def torchvision_name_map(name: str, state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """torchvision's state-dict names for architecture ``name`` -> the zoo network's names
    (e.g. ``layer2.0.downsample.0.weight`` -> ``stages.1.0.shortcut.0.weight``).

    Tensors are paired in order; every pair must agree in kind (the last part of the name:
    weight, bias, running_mean, ...) and shape, and the counts must be equal, else a
    :class:`ModelError` names the first that does not line up (never a partial map)."""
    if name not in TORCHVISION_ARCHITECTURES:
        raise ModelError(f"no torchvision counterpart for {name!r} "
                         f"(known: {', '.join(TORCHVISION_ARCHITECTURES)})")
    theirs = [(k, tuple(v.shape)) for k, v in state.items()
              if not (name == "googlenet" and k.startswith("aux"))]
    if not theirs:
        raise ModelError(f"torchvision {name}: empty state dict")
    num_classes = theirs[-1][1][0]  # the classifier's bias comes last
    with torch.device("meta"):
        ours = [(k, tuple(v.shape)) for k, v in
                get_model(name, num_classes=num_classes).state_dict().items()]
    if len(ours) != len(theirs):
        raise ModelError(f"torchvision {name}: {len(theirs)} tensors, the zoo's network has "
                         f"{len(ours)}")
    out = {}
    for (tk, tshape), (ok, oshape) in zip(theirs, ours):
        if tk.rsplit(".", 1)[-1] != ok.rsplit(".", 1)[-1] or tshape != oshape:
            raise ModelError(f"torchvision {name}: {tk} {list(tshape)} does not line up with "
                             f"{ok} {list(oshape)}")
        out[tk] = ok
    return out


def from_torchvision_state_dict(name: str, state: Mapping[str, torch.Tensor]
                                ) -> dict[str, torch.Tensor]:
    """torchvision's state dict for ``name`` renamed for the zoo's network
    (``get_model(name, num_classes=...).load_state_dict(...)`` takes it, strict)."""
    return {ours: state[theirs] for theirs, ours in torchvision_name_map(name, state).items()}
