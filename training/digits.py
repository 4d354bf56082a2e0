"""LeNet-5 trained end to end on scikit-learn's bundled digits (the course's first CNN on
real data): 1,797 8x8 grey images of 0-9 (UCI's optdigits test set, shipped inside
scikit-learn, so nothing is downloaded), upsampled to 28x28 and padded to LeNet's 32x32 as
MNIST is.

The test split is held out, stratified by class and fixed by the seed; nothing is chosen on
it (the epochs and learning rate are set in advance, the accuracy is read once at the end).
Training uses the face trainer's augmentation (:func:`training.augment.augment`: a small
rotation, scale and shift; no mirror image, which would change a digit), Adam and a
one-cycle learning rate. About 0.5 s per epoch on one CPU thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.augment import augment

SIZE = 32


@dataclass
class DigitsConfig:
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    test_fraction: float = 0.2
    seed: int = 0
    act: str = "tanh"      # LeCun's; "relu" with pool "max" is the modern variant
    pool: str = "avg"
    augment: bool = True
    threads: int | None = 1


@dataclass
class DigitsResult:
    test_accuracy: float
    test_errors: int
    n_train: int
    n_test: int
    train_accuracy: float
    seconds: float
    parameters: int
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    model: torch.nn.Module | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("model")
        return out


def load_digits_32() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (N, 32, 32) uint8 (ink bright, 0..255) and their (N,) labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.pad(F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False),
              (2, 2, 2, 2))
    chips = (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    return chips, data.target.astype(np.int64)


def split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: stratified by class, fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_fraction, stratify=labels,
                                   random_state=seed)
    return np.sort(train), np.sort(test)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """0..255 -> about zero mean, unit variance (the digits' ink covers ~20% of the square)."""
    return (x / 255.0 - 0.2) / 0.35


def accuracy(net: torch.nn.Module, chips: np.ndarray, labels: np.ndarray) -> float:
    net.eval()
    with torch.no_grad():
        x = _normalise(torch.from_numpy(chips).unsqueeze(1).float())
        pred = net(x).argmax(1).numpy()
    return float((pred == labels).mean())


def train_digits(cfg: DigitsConfig, *, log: Callable[[str], None] = print) -> DigitsResult:
    """Train LeNet-5 on the digits' training split, then score the held-out split once."""
    from faceid.nn import get_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    chips, labels = load_digits_32()
    train_idx, test_idx = split(labels, cfg.test_fraction, cfg.seed)
    x_train = torch.from_numpy(chips[train_idx]).unsqueeze(-1)  # (N, 32, 32, 1) for augment
    y_train = torch.from_numpy(labels[train_idx])
    net = get_model("lenet5", num_classes=10, act=cfg.act, pool=cfg.pool)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-len(train_idx) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1))
    log(f"LeNet-5 on {len(train_idx)} training digits, {len(test_idx)} held out "
        f"(stratified, seed {cfg.seed}); {cfg.epochs} epochs")
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = torch.randperm(len(train_idx), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if cfg.augment:
                x = augment(x_train[idx], gen, rotate_deg=10, scale=0.1, shift=0.06,
                            colour=0.0, flip=False)
            else:
                x = x_train[idx].permute(0, 3, 1, 2).float()
            logits = net(_normalise(x))
            loss = F.cross_entropy(logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_train[idx]).sum())
        row = {"epoch": epoch, "loss": loss_sum / len(order), "train_accuracy": correct / len(order),
               "seconds": time.perf_counter() - started}
        history.append(row)
        log(f"epoch {epoch}/{cfg.epochs}: loss {row['loss']:.4f}, train accuracy (augmented) "
            f"{row['train_accuracy']:.4f}, {row['seconds']:.1f} s")
    seconds = time.perf_counter() - started
    test_acc = accuracy(net, chips[test_idx], labels[test_idx])
    return DigitsResult(
        test_accuracy=test_acc, test_errors=int(round((1 - test_acc) * len(test_idx))),
        n_train=len(train_idx), n_test=len(test_idx),
        train_accuracy=accuracy(net, chips[train_idx], labels[train_idx]), seconds=seconds,
        parameters=sum(p.numel() for p in net.parameters()), history=history,
        config=asdict(cfg), model=net)
