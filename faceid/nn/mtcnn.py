"""MTCNN's three stage networks (Zhang et al. 2016: P-Net, R-Net, O-Net), and their weights.

The weights are the ones facenet-pytorch ships inside its wheel (``data/pnet.pt`` and
friends, MIT). They are found with ``importlib.util.find_spec`` and read as plain state
dicts, without importing facenet-pytorch: its detection module imports torchvision, which
costs about 2 s of CPU at every start of a command that only needed these three small
networks (``docs/DESIGN-NOTES.md``, "Detection"). Layer names match that package's, so its
state dicts load as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from faceid.errors import ModelError
from faceid.modelfile import mtcnn_weights_dir


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=k), nn.PReLU(cout)]


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12-px windows at stride 2. Returns (box shifts
    (N, 4, H, W), face probability (N, 2, H, W))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 10, 3)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv(10, 16, 3)
        self.conv3, self.prelu3 = _conv(16, 32, 3)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24-px crops. Returns (box shifts (N, 4), face probability (N, 2))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 28, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv(28, 48, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _conv(48, 64, 2)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the original (Caffe) weights flatten width-major: (N, W, H, C)
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48-px crops. Returns (box shifts (N, 4), five points (N, 10: x's then
    y's, as fractions of the crop), face probability (N, 2))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(3, 32, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv(32, 64, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _conv(64, 64, 3)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = _conv(64, 128, 2)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


STAGES = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def load_stage(name: str) -> nn.Module:
    """One stage network (``pnet``, ``rnet`` or ``onet``) with facenet-pytorch's weights,
    in eval mode."""
    path = mtcnn_weights_dir() / f"{name}.pt"
    net = STAGES[name]()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except FileNotFoundError:
        raise ModelError(f"{path}: MTCNN weights file not found") from None
    except Exception as exc:  # noqa: BLE001 - unreadable or mismatched: one clear line
        raise ModelError(f"{path}: not a usable MTCNN {name} state dict ({exc})") from None
    return net.eval()


def load_stages() -> tuple[PNet, RNet, ONet]:
    """The three networks with facenet-pytorch's weights, in eval mode."""
    return tuple(load_stage(name) for name in STAGES)  # type: ignore[return-value]
