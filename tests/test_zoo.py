"""The model zoo (issue 16): each architecture has the published parameter count, and each
one torchvision also defines computes what torchvision's does once torchvision's weights are
loaded through our name map. torchvision is the reference here, in the tests only."""

from __future__ import annotations

import pytest
import torch

from faceid.errors import ModelError
from faceid.nn import get_model
from faceid.nn.zoo import (TORCHVISION_ARCHITECTURES, count_macs, count_parameters,
                           from_torchvision_state_dict, torchvision_name_map, zoo_table)

# Published parameter counts of the standard configurations (1000 classes; LeNet-5: 10
# classes, full C3, linear output, see faceid/nn/classic.py). The torchvision figures are its
# model cards' (GoogLeNet without the auxiliary heads); MobileNet v1 is Keras's trainable count.
PUBLISHED = {
    "lenet5": 61_706, "alexnet": 61_100_840, "vgg16": 138_357_544, "resnet18": 11_689_512,
    "resnet34": 21_797_672, "resnet50": 25_557_032, "googlenet": 6_624_904,
    "mobilenet_v1": 4_231_976, "mobilenet_v2": 3_504_872, "efficientnet_b0": 5_288_548,
}
# The smallest input each network's pools allow is used where it is quick; VGG needs 32 px.
SIZE = {"alexnet": 64, "vgg16": 32}


pytestmark = pytest.mark.usefixtures("one_thread")  # the test machine is shared


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_published_figure(name):
    with torch.device("meta"):
        assert count_parameters(get_model(name)) == PUBLISHED[name]


def test_macs_are_the_published_figures():
    """Multiply-adds at 224x224 within 2% of the papers' / model cards' figures."""
    macs = {r.name: r.macs for r in zoo_table()}
    published = {"resnet50": 4.09e9, "resnet18": 1.81e9, "vgg16": 15.47e9,
                 "mobilenet_v1": 569e6, "mobilenet_v2": 300e6, "efficientnet_b0": 390e6,
                 "googlenet": 1.50e9, "alexnet": 0.714e9}
    for name, want in published.items():
        assert abs(macs[name] / want - 1) < 0.02, (name, macs[name], want)


def test_mac_count_of_a_conv_and_a_linear_by_hand():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, groups=1),
                              torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
                              torch.nn.Flatten(), torch.nn.Linear(8 * 5 * 5, 10))
    assert count_macs(net, (3, 5, 5)) == 25 * 8 * 3 * 9 + 25 * 8 * 1 * 9 + 200 * 10


@pytest.mark.parametrize("name", TORCHVISION_ARCHITECTURES)
def test_same_outputs_as_torchvision(name):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    theirs = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    # random running statistics, so that a batch-norm paired with the wrong layer shows
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours = get_model(name).eval()
    ours.load_state_dict(from_torchvision_state_dict(name, theirs.state_dict()))
    x = torch.randn(2, 3, SIZE.get(name, 64), SIZE.get(name, 64))
    with torch.no_grad():
        want, got = theirs(x), ours(x)
    assert got.shape == want.shape == (2, 1000)
    assert torch.allclose(got, want, atol=1e-4 * want.abs().max().item(), rtol=0), \
        (got - want).abs().max()


def test_name_map_renames_and_refuses_a_mismatch():
    with torch.device("meta"):
        sd = get_model("resnet18").state_dict()
    theirs = {k.replace("stages.", "layer"): v for k, v in sd.items()}  # only the count matters
    names = torchvision_name_map("resnet18", theirs)
    assert list(names.values()) == list(sd)
    theirs.pop(next(iter(theirs)))
    with pytest.raises(ModelError, match="tensors"):
        torchvision_name_map("resnet18", theirs)
    with pytest.raises(ModelError, match="no torchvision counterpart"):
        torchvision_name_map("lenet5", sd)


def test_inception_five_branch_variants():
    from faceid.nn.blocks import InceptionBlock

    def kernels(block):
        return [m.kernel_size[0] for m in block.b5.modules() if isinstance(m, torch.nn.Conv2d)]

    assert kernels(InceptionBlock(16, 8, (8, 16), (4, 8), 8)) == [1, 3, 3]  # the default
    assert kernels(InceptionBlock(16, 8, (8, 16), (4, 8), 8, five="3x3")) == [1, 3]
    assert kernels(InceptionBlock(16, 8, (8, 16), (4, 8), 8, five="5x5")) == [1, 5]
    x = torch.randn(1, 16, 9, 9)
    assert InceptionBlock(16, 8, (8, 16), (4, 8), 8, five="5x5")(x).shape == (1, 40, 9, 9)


def test_zoo_list_command():
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    p = subprocess.run([sys.executable, str(ROOT / "cli.py"), "zoo", "list", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    assert rows["resnet50"]["parameters"] == PUBLISHED["resnet50"]
    assert rows["dlib_resnet_v1"]["used_in"].startswith("face encoder")
    assert rows["minifasnet_v2"]["used_in"].startswith("liveness")
    assert rows["lenet5"]["input"] == "1x32x32" and rows["vgg16"]["macs"] > 15e9
