"""Model registry: one ``get_model(name, **kw)`` for every architecture (insightface style),
so model files name an architecture and the builder stays in one place."""

from __future__ import annotations

from typing import Callable

from torch import nn

from faceid.errors import ModelError
from faceid.nn.compact import CompactEncoder
from faceid.nn.dlib_resnet import DlibResNet

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "dlib_resnet_v1": DlibResNet,
    "compact_v1": CompactEncoder,
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
