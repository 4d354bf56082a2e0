"""Model files: the bundled default's metadata, view presets, and refusals of broken files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceid.encoder import Encoder
from faceid.errors import ModelError
from faceid.modelfile import DEFAULT_MODEL, load_model_info, save_model_info


def test_default_model_records_its_metadata():
    info = load_model_info()
    assert info.architecture == "dlib_resnet_v1" and info.embedding_size == 128
    assert info.chip_size == 150 and info.template.shape == (5, 2)
    assert len(info.weights["sha256"]) == 64 and "training_data" in info.extra
    for name in ("fast", "standard", "accurate"):
        v = info.view_preset(name)
        assert 0.3 < v.tau < 0.6 and v.calibration["data"].endswith("pairsDevTrain.txt")
        assert v.probability_same(0.1) > 0.99 and v.probability_same(0.9) < 0.01
    assert info.view_preset().count == 2 and info.view_preset("fast").count == 1
    assert info.view_preset("accurate").count == 4


def test_unknown_preset_is_refused():
    with pytest.raises(ModelError, match="no view preset 'turbo'"):
        load_model_info().view_preset("turbo")


def test_round_trip(tmp_path):
    info = load_model_info()
    save_model_info(info, tmp_path / "m.json")
    again = load_model_info(tmp_path / "m.json")
    assert again.to_json() == info.to_json()


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.pop("views"), "incomplete"),
    (lambda d: d.update(format="other/1"), "not a faceid model file"),
    (lambda d: d["chip"].update(template=[[1, 2]]), "5 \\(x, y\\) points"),
    (lambda d: d.update(default_views="nope"), "default_views"),
])
def test_broken_model_files(tmp_path, mutate, msg):
    doc = json.loads(DEFAULT_MODEL.read_text())
    mutate(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=msg):
        load_model_info(p)


def test_not_json(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{ nope")
    with pytest.raises(ModelError, match="not a readable model file"):
        load_model_info(p)


def test_weights_with_the_wrong_hash_are_refused():
    info = load_model_info()
    info.weights = {**info.weights, "sha256": "0" * 64}
    with pytest.raises(ModelError, match="does not match"):
        Encoder(info)


def test_view_embedding_is_the_renormalised_mean(lfw_images):
    from faceid.detection import Pick, pick_face
    from faceid.imageio import load_image
    from faceid.pipeline import FaceID

    fid = FaceID(views="accurate")
    img = load_image(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg")
    face = pick_face(fid.detect(img), img.shape, Pick.center)
    chips = fid.view_chips(img, face)
    assert chips.shape == (2, 150, 150, 3)
    got = fid.encoder.embed_views(chips[None], flip=True)[0]
    singles = fid.encoder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
    want = singles.sum(0) / np.linalg.norm(singles.sum(0))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_torch_weights_beside_the_model_file(tmp_path, fid):
    """A model file can name a PyTorch state dict beside it (how trained models ship)."""
    import torch

    from faceid.modelfile import weights_path
    from faceid.nn import get_model
    from faceid.nn.dlib_resnet import load_dlib_weights

    info = load_model_info()
    net = load_dlib_weights(get_model(info.architecture, **info.architecture_kwargs),
                            weights_path(info))
    torch.save({"model": net.state_dict()}, tmp_path / "w.pt")
    info.weights = {"format": "torch", "path": "w.pt"}
    save_model_info(info, tmp_path / "m.json")
    mine = Encoder(load_model_info(tmp_path / "m.json"))
    chips = np.random.default_rng(0).integers(0, 255, (3, 150, 150, 3), dtype=np.uint8)
    np.testing.assert_allclose(mine.embed(chips), fid.encoder.embed(chips), atol=1e-5)
