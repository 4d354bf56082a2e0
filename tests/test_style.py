"""Neural style transfer on the dlib encoder's features (issue 16), on real photos: a LFW
face as content, a screen-replay photo from antispoof_samples as style. Small (64 px) and
short runs; the recorded sample run is in docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from faceid.errors import UsageError
from faceid.imageio import load_image
from faceid.style import (DlibFeatures, StyleConfig, content_cost, fit, gram,
                          layer_style_cost, parse_layers, transfer)
from tests.conftest import DATASETS, ROOT, lfw

STYLE = DATASETS / "antispoof_samples" / "image_F2.jpg"


pytestmark = pytest.mark.usefixtures("one_thread")  # the test machine is shared


@pytest.fixture(scope="module")
def features():
    return DlibFeatures.bundled()


@pytest.fixture(scope="module")
def images(lfw_images):
    return (fit(load_image(lfw(lfw_images, "Aaron_Peirsol", 1)), 64),
            fit(load_image(STYLE), 64))


def test_gram_matches_a_direct_computation():
    a = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    direct = torch.zeros(2, 4, 4, dtype=torch.float64)
    for n in range(2):
        for i in range(4):
            for j in range(4):
                direct[n, i, j] = (a[n, i] * a[n, j]).sum()
    assert torch.allclose(gram(a), direct)
    # the costs' normalisations, by hand on a tiny case
    x, y = torch.ones(1, 2, 1, 3), torch.zeros(1, 2, 1, 3)
    assert content_cost(x, y).item() == pytest.approx(6 / (4 * 2 * 1 * 3))
    assert layer_style_cost(gram(x), y).item() == pytest.approx(4 * 9 / (4 * 4 * 9))


def test_content_and_style_costs_fall(features, images):
    content, style = images
    # from the course's start (60% noise) with its balance of the two costs
    cfg = StyleConfig(steps=25, alpha=10, beta=40, noise=0.6)
    result = transfer(content, style, cfg, features=features)
    first, last = result.history[0], result.history[-1]
    assert last.content < 0.7 * first.content
    assert last.style < 0.7 * first.style
    assert result.image.shape == content.shape and result.image.dtype == np.uint8


def test_without_style_the_result_stays_close_to_the_content(features, images, lfw_images):
    content, style = images
    result = transfer(content, style, StyleConfig(steps=25, beta=0.0), features=features)
    moved = np.abs(result.image.astype(float) - content).mean()
    other = fit(load_image(lfw(lfw_images, "George_W_Bush", 1)), 64)
    apart = np.abs(other.astype(float) - content).mean()  # another face photo
    assert moved < 0.3 * apart, (moved, apart)  # about the 20% start noise left: 18 vs 100
    styled = transfer(content, style, StyleConfig(steps=25), features=features)
    assert np.abs(styled.image.astype(float) - content).mean() > moved


def test_layers_option():
    assert parse_layers("conv1,stage2") == (("conv1", 0.5), ("stage2", 0.5))
    assert parse_layers("conv1:0.4,stage1,stage2") == (("conv1", 0.4), ("stage1", 0.3),
                                                       ("stage2", 0.3))
    with pytest.raises(UsageError, match="unknown layer 'pool9'"):
        parse_layers("pool9")


def test_style_command(tmp_path, lfw_images):
    out = tmp_path / "styled.png"
    p = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--threads", "1", "style",
                        str(lfw(lfw_images, "Aaron_Peirsol", 1)), str(STYLE), "-o", str(out),
                        "--steps", "4", "--size", "64", "--snapshot-every", "2", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["size"] == [64, 64] and len(data["snapshots"]) == 2
    assert out.is_file() and (tmp_path / "styled-step4.png").is_file()
    assert "step 2/4" in p.stderr
    bad = subprocess.run([sys.executable, str(ROOT / "cli.py"), "style", str(tmp_path / "no.jpg"),
                          str(STYLE), "-o", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert bad.returncode == 10 and bad.stderr.startswith("error:") and "no.jpg" in bad.stderr
