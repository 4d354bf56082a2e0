"""LeNet-5 on scikit-learn's bundled digits (issue 16): the split is held out, stratified and
fixed by the seed, and a short run learns (the full run's figure is in docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from training.digits import DigitsConfig, load_digits_32, split, train_digits

pytestmark = pytest.mark.usefixtures("one_thread")  # the test machine is shared


def test_digits_are_lenet_sized_and_the_split_is_stratified_and_fixed():
    chips, labels = load_digits_32()
    assert chips.shape == (1797, 32, 32) and chips.dtype == np.uint8
    assert chips[:, :2].max() == 0 and chips[:, :, -2:].max() == 0  # the 2-px MNIST margin
    train, test = split(labels, 0.2, seed=0)
    assert len(test) == 360 and not set(train) & set(test)
    share = np.bincount(labels[test], minlength=10) / np.bincount(labels, minlength=10)
    assert np.all(np.abs(share - 0.2) < 0.02)
    assert np.array_equal(split(labels, 0.2, seed=0)[1], test)
    assert not np.array_equal(split(labels, 0.2, seed=1)[1], test)


def test_a_short_run_learns():
    result = train_digits(DigitsConfig(epochs=4, seed=0, threads=1), log=lambda _: None)
    assert result.test_accuracy > 0.8  # chance is 0.1
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.parameters == 61_706


def test_train_digits_command_json():
    p = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--threads", "1", "train-digits",
                        "--epochs", "2", "--json"], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["n_test"] == 360 and 0.1 < data["test_accuracy"] <= 1.0
    assert "epoch 2/2" in p.stderr  # progress goes to stderr under --json
