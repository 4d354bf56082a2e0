"""Model registry: one ``get_model(name, **kw)`` for every architecture (insightface style),
so model files name an architecture and the builder stays in one place."""

from __future__ import annotations

from typing import Callable

from torch import nn

from faceid.errors import ModelError
from faceid.nn.classic import AlexNet, LeNet5, vgg16
from faceid.nn.compact import CompactEncoder
from faceid.nn.dlib_resnet import DlibResNet
from faceid.nn.inception import GoogLeNet
from faceid.nn.mobile import MobileNetV1, MobileNetV2, efficientnet_b0
from faceid.nn.resnet import resnet18, resnet34, resnet50

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "dlib_resnet_v1": DlibResNet,
    "compact_v1": CompactEncoder,
    # the model zoo (faceid/nn/zoo.py lists them with their sizes and uses)
    "lenet5": LeNet5,
    "alexnet": AlexNet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "googlenet": GoogLeNet,
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
    "efficientnet_b0": efficientnet_b0,
}


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def get_model(name: str, **kwargs: object) -> nn.Module:
    """Build the architecture ``name`` (untrained) with builder-specific keyword options."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        known = ", ".join(available_models())
        raise ModelError(f"unknown architecture {name!r} (known: {known})") from None
    return builder(**kwargs)
