"""dlib serialisation reader: packed integers and portable floats as dlib writes them, the
real weights file, and refusals of files that are not dlib networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceid.errors import ModelError
from faceid.modelfile import load_model_info, weights_path
from faceid.nn.dlib_format import DlibReader, read_dlib_net


def test_packed_integers_and_floats():
    # 300 = 0x012c -> control 2, bytes 2c 01; -5 -> control 0x81, byte 05;
    # 1.0 as mantissa 16 exponent -4; -0.75 as mantissa -3 exponent -2
    data = bytes([0x02, 0x2C, 0x01, 0x81, 0x05, 0x01, 0x10, 0x81, 0x04, 0x81, 0x03, 0x81, 0x02])
    r = DlibReader(data)
    assert r.int() == 300
    assert r.int() == -5
    assert r.float() == 1.0
    assert r.float() == -0.75
    assert r.at_end()
    assert math.isinf(DlibReader(bytes([0x01, 0x00, 0x02, 0x00, 0x7D])).float())  # exp 32000


def test_tensor_roundtrip():
    values = np.arange(6, dtype="<f4")
    data = bytes([0x01, 0x02, 0x01, 0x02, 0x01, 0x03, 0x01, 0x01, 0x01, 0x01]) + values.tobytes()
    t = DlibReader(data).tensor()
    assert t.shape == (2, 3, 1, 1)
    np.testing.assert_array_equal(t.reshape(-1), values)


def test_reads_the_shipped_resnet_file():
    net = read_dlib_net(weights_path(load_model_info()))
    kinds = [layer.kind for layer in net.layers]
    assert net.loss.kind.startswith("loss_metric")
    assert net.input.fields["nr"] == net.input.fields["nc"] == 150
    assert kinds.count("con_4") == 29 and kinds.count("add_prev_") == 14
    assert kinds[-1] == "fc_2" and net.layers[-1].fields["num_outputs"] == 128


def test_truncated_file_is_a_model_error(tmp_path):
    src = weights_path(load_model_info()).read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(src[: len(src) // 3])
    with pytest.raises(ModelError, match="truncated"):
        read_dlib_net(bad)


def test_non_dlib_file_is_a_model_error(tmp_path, lfw_images):
    jpg = next(lfw_images.glob("*/*.jpg"))
    with pytest.raises(ModelError):
        read_dlib_net(jpg)
