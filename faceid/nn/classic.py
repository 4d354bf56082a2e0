"""The plain convolutional stacks of the course, on the shared blocks: LeNet-5, AlexNet and
VGG-16. Each is an ``nn.Sequential`` of ``features`` (conv-act layers and pools) and
``head`` (the fully connected layers), so ``net.features`` is the feature extractor.

Inputs: LeNet-5 (N, 1, 32, 32) grey images; AlexNet and VGG (N, 3, 224, 224) RGB (any size
their pools allow: an adaptive average pool fixes the size the classifier sees, as in
torchvision). Outputs: (N, num_classes) logits.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from faceid.nn.blocks import ConvNormAct, make_act

# VGG configuration "D" (Simonyan & Zisserman, table 1): conv widths, "M" a 2x2/2 max-pool.
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M")


class LeNet5(nn.Sequential):
    """LeNet-5 (LeCun et al. 1998) as the course draws it: 32x32 input -> C1 6@5x5 ->
    S2 2x2 pool -> C3 16@5x5 -> S4 -> C5 120@5x5 (a 1x1 map) -> F6 84 -> ``num_classes``.

    The variant, said plainly: C3 sees all six S2 maps (LeCun's sparse connection table is
    left out), the pools have no trainable coefficients, and the output is a linear layer
    under a softmax loss instead of the paper's RBF units. 61,706 parameters at 10 classes
    (the paper's network has about 60,000). ``act`` is the paper's ``"tanh"`` by default;
    ``pool`` is ``"avg"`` (subsampling) or ``"max"``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, act: str = "tanh",
                 pool: str = "avg") -> None:
        pools = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
        if pool not in pools:
            raise ValueError(f"unknown pool {pool!r} (expected avg or max)")

        def conv(cin: int, cout: int) -> ConvNormAct:
            return ConvNormAct(cin, cout, 5, padding=0, norm="none", act=act)

        super().__init__(OrderedDict(
            features=nn.Sequential(conv(in_channels, 6), pools[pool](2), conv(6, 16),
                                   pools[pool](2), conv(16, 120)),
            head=nn.Sequential(nn.Flatten(), nn.Linear(120, 84), make_act(act),
                               nn.Linear(84, num_classes)),
        ))


def _fc_head(pooled: int, cin: int, num_classes: int, *, hidden: int = 4096,
             dropout: float = 0.5, dropout_first: bool) -> nn.Sequential:
    """Adaptive average pool to ``pooled`` x ``pooled``, then two hidden fully connected
    ReLU layers with dropout (before each, AlexNet; after each, VGG) and the classifier."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(pooled), nn.Flatten()]
    width = cin * pooled * pooled
    for _ in range(2):
        fc = [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        drop = [nn.Dropout(dropout)]
        layers += drop + fc if dropout_first else fc + drop
        width = hidden
    return nn.Sequential(*layers, nn.Linear(hidden, num_classes))


class AlexNet(nn.Sequential):
    """AlexNet, the single-GPU variant of Krizhevsky's "one weird trick" paper that
    torchvision ships (64-192-384-256-256 filters, no local response normalisation):
    61,100,840 parameters at 1000 classes."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        def conv(cin: int, cout: int, k: int, stride: int = 1) -> ConvNormAct:
            return ConvNormAct(cin, cout, k, stride, padding=2 if k > 3 else 1, norm="none")

        super().__init__(OrderedDict(
            features=nn.Sequential(
                conv(3, 64, 11, 4), nn.MaxPool2d(3, 2), conv(64, 192, 5), nn.MaxPool2d(3, 2),
                conv(192, 384, 3), conv(384, 256, 3), conv(256, 256, 3), nn.MaxPool2d(3, 2)),
            head=_fc_head(6, 256, num_classes, dropout=dropout, dropout_first=True),
        ))


class VGG(nn.Sequential):
    """VGG (Simonyan & Zisserman): stacks of 3x3 conv-ReLU layers between 2x2 max-pools,
    then three fully connected layers. ``config`` lists widths and "M" pools; the default
    is VGG-16 (configuration D), 138,357,544 parameters at 1000 classes."""

    def __init__(self, config: tuple[int | str, ...] = VGG16, num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        layers: list[nn.Module] = []
        cin = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(ConvNormAct(cin, int(item), 3, padding=1, norm="none"))
                cin = int(item)
        super().__init__(OrderedDict(
            features=nn.Sequential(*layers),
            head=_fc_head(7, cin, num_classes, dropout=dropout, dropout_first=False),
        ))


def vgg16(**kwargs: object) -> VGG:
    """VGG-16 (configuration D)."""
    return VGG(VGG16, **kwargs)
