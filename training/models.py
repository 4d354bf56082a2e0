"""The encoders a run can train: ``scratch`` (the compact encoder from the shared blocks, at
a small chip) or ``finetune`` (the default pretrained dlib ResNet, or any model file, with
its early stages optionally frozen). Both output 128-d encodings that the loop normalises.

A :class:`ModelSpec` is what the checkpoint and the final model file record about the
network: architecture name and keyword arguments, chip size and landmark template, and where
the starting weights came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from faceid.errors import ModelError
from faceid.modelfile import ModelInfo, load_model_info, verify_weights, weights_path
from faceid.nn import get_model
from faceid.nn.dlib_resnet import STAGES, load_dlib_weights
from training.choices import Start


@dataclass
class ModelSpec:
    architecture: str
    kwargs: dict[str, Any]
    chip_size: int
    template: list[list[float]]
    init: str                              # "scratch" or the model file fine-tuned from
    frozen: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_encoder(start: Start | str, *, chip_size: int = 64, widths: list[int] | None = None,
                  base_model: str | None = None, freeze_stages: int = 0) -> tuple[nn.Module, ModelSpec, ModelInfo]:
    """Return (network, spec, base model info). The landmark template is the base model's
    (the default model's for ``scratch``), scaled to the chip, so the pipeline aligns a
    trained model's faces exactly as training did."""
    start = Start(start)
    base = load_model_info(base_model)
    if start is Start.scratch:
        kwargs: dict[str, Any] = {"chip_size": chip_size}
        if widths:
            kwargs["widths"] = list(widths)
        net = get_model("compact_v1", **kwargs)
        template = base.template * chip_size / base.chip_size
        return net, ModelSpec("compact_v1", kwargs, chip_size, np.round(template, 3).tolist(),
                              "scratch"), base
    net = get_model(base.architecture, **base.architecture_kwargs)
    path = weights_path(base)
    verify_weights(base, path)
    if base.weights.get("format") == "dlib-dat":
        load_dlib_weights(net, path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state.get("model", state))
    frozen = freeze(net, freeze_stages)
    spec = ModelSpec(base.architecture, dict(base.architecture_kwargs), base.chip_size,
                     np.round(base.template, 3).tolist(), str(base.path), frozen)
    return net, spec, base


def stage_modules(net: nn.Module) -> list[nn.Module]:
    """The network's stages, input side first: the stem, then each residual stage."""
    if hasattr(net, "blocks") and hasattr(net, "stem"):          # dlib ResNet
        stages, start = [net.stem], 0
        for _, count, _ in STAGES:
            stages.append(nn.Sequential(*list(net.blocks)[start:start + count]))
            start += count
        return stages
    if hasattr(net, "stages") and hasattr(net, "stem"):          # compact encoder
        return [net.stem, net.stages]
    raise ModelError(f"do not know the stages of {type(net).__name__}")


def freeze(net: nn.Module, stages: int) -> list[str]:
    """Freeze the first ``stages`` stages (0 = train everything); returns their names."""
    parts = stage_modules(net)
    if not 0 <= stages < len(parts):
        raise ValueError(f"--freeze-stages must be 0..{len(parts) - 1}")
    names = []
    for i, part in enumerate(parts[:stages]):
        for p in part.parameters():
            p.requires_grad_(False)
        names.append("stem" if i == 0 else f"stage{i}")
    return names
