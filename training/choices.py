"""The training command's choices (how triplets are mined, where a run starts), apart from
the modules that need torch, so ``faceid --help`` does not load it."""

from __future__ import annotations

from enum import Enum


class Mining(str, Enum):
    batch_hard = "batch-hard"
    semi_hard = "semi-hard"
    batch_all = "batch-all"


class Start(str, Enum):
    scratch = "scratch"
    finetune = "finetune"


class Activation(str, Enum):
    """LeNet-5's activation in ``faceid train-digits``: LeCun's tanh or the modern ReLU."""
    tanh = "tanh"
    relu = "relu"


class Pool(str, Enum):
    """LeNet-5's subsampling: LeCun's average or the modern max."""
    avg = "avg"
    max = "max"
