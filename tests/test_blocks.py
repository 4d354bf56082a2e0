"""Shared CNN blocks: shapes, dlib's padded residual add, and exact norm folding."""

from __future__ import annotations

import torch

from faceid.nn import available_models, get_model
from faceid.nn.blocks import (Affine, ConvNormAct, DepthwiseSeparable, InceptionBlock,
                              ResidualBlock, add_padded, fold_norms)


def test_block_shapes():
    x = torch.randn(2, 16, 32, 32)
    assert ConvNormAct(16, 24, 3)(x).shape == (2, 24, 32, 32)
    assert ConvNormAct(16, 24, 3, 2)(x).shape == (2, 24, 15, 15)  # dlib: no pad when strided
    assert ResidualBlock(16, 16)(x).shape == (2, 16, 32, 32)
    assert ResidualBlock(16, 32, 2)(x).shape == (2, 32, 16, 16)  # pool path is the larger
    inc = InceptionBlock(16, 8, (8, 16), (4, 8), 8)
    assert inc(x).shape == (2, inc.out_channels, 32, 32) and inc.out_channels == 40
    assert DepthwiseSeparable(16, 32, 2)(x).shape == (2, 32, 16, 16)


def test_add_padded_zero_fills_the_smaller_input():
    a = torch.ones(1, 2, 3, 3)
    b = torch.ones(1, 1, 4, 4)
    s = add_padded(a, b)
    assert s.shape == (1, 2, 4, 4)
    assert s[0, 0, 0, 0] == 2 and s[0, 1, 0, 0] == 1 and s[0, 0, 3, 3] == 1 and s[0, 1, 3, 3] == 0


def test_fold_norms_is_exact():
    torch.manual_seed(0)
    for norm in ("affine", "bn"):
        m = torch.nn.Sequential(ConvNormAct(3, 8, 3, norm=norm), ResidualBlock(8, 16, 2, norm=norm))
        for mod in m.modules():
            if isinstance(mod, Affine):
                mod.gamma.data.uniform_(0.5, 2)
                mod.beta.data.uniform_(-1, 1)
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
        m.eval()
        x = torch.randn(2, 3, 20, 20)
        with torch.no_grad():
            before = m(x)
            after = fold_norms(m)(x)
        assert torch.allclose(before, after, atol=1e-5)
        assert not any(isinstance(mod, (Affine, torch.nn.BatchNorm2d)) for mod in m.modules())


def test_registry_builds_the_dlib_resnet():
    assert "dlib_resnet_v1" in available_models()
    net = get_model("dlib_resnet_v1").eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 150, 150) * 255).shape == (2, 128)


def test_unknown_architecture_is_a_model_error():
    from faceid.errors import ModelError
    import pytest

    with pytest.raises(ModelError, match="unknown architecture 'resnet9000'"):
        get_model("resnet9000")
