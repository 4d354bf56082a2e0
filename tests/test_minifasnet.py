"""MiniFASNet passive liveness (faceid/nn/minifasnet.py, faceid/antispoof.py).

The port is checked against the reference implementation's own outputs: the 80x80 crops and
logits in ../shared/models/minifasnet/reference/ (expected.json). The crop rule is checked
against the same crops, the package data against damage, and the three anti-spoofing
samples (../shared/datasets/antispoof_samples) are scored through faceid's own detector.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceid.antispoof import IDENTITY, MODEL_DIR, BoxMap, PassiveLiveness, crop_for
from faceid.detection import FaceDetector, Pick, pick_face
from faceid.errors import LivenessModelError
from faceid.imageio import load_image
from faceid.nn.minifasnet import build_minifasnet, load_reference_weights
from tests.conftest import DATASETS, ROOT

SOURCE = ROOT.parent / "shared" / "models" / "minifasnet"
REFERENCE = SOURCE / "reference"
SAMPLES = DATASETS / "antispoof_samples"
ARCHITECTURE = {"2.7_80x80_MiniFASNetV2.pth": "minifasnet_v2",
                "4_0_0_80x80_MiniFASNetV1SE.pth": "minifasnet_v1se"}
NETWORK = {"2.7_80x80_MiniFASNetV2.pth": "MiniFASNetV2",
           "4_0_0_80x80_MiniFASNetV1SE.pth": "MiniFASNetV1SE"}
TOLERANCE = 1e-4


pytestmark = pytest.mark.usefixtures("one_thread")  # the test machine is shared


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    doc = json.loads((REFERENCE / "expected.json").read_text())
    assert {c["weights"] for c in doc} == set(ARCHITECTURE) and len(doc) == 10
    return doc


@pytest.fixture(scope="module")
def ported() -> dict[str, torch.nn.Module]:
    """Each network filled straight from the reference .pth through the key map."""
    nets = {}
    for source, arch in ARCHITECTURE.items():
        model = build_minifasnet(arch).eval()
        state = torch.load(SOURCE / source, map_location="cpu", weights_only=True)
        assert load_reference_weights(model, state) == []  # published files: no FT branch
        nets[source] = model
    return nets


@pytest.fixture(scope="module")
def liveness() -> PassiveLiveness:
    return PassiveLiveness()


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def crop_tensor(crop_bgr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crop_bgr.astype(np.float32)).permute(2, 0, 1)[None]


def worst_logit_error(cases: list[dict], model_for) -> dict[str, float]:
    """Max |logit - reference logit| over the reference crops, per network."""
    worst = dict.fromkeys(NETWORK.values(), 0.0)
    for case in cases:
        x = crop_tensor(cv2.imread(str(REFERENCE / case["crop"])))
        with torch.inference_mode():
            logits = model_for(case["weights"])(x)[0].numpy()
        name = NETWORK[case["weights"]]
        worst[name] = max(worst[name], float(np.abs(logits - case["logits"]).max()))
    return worst


def test_port_reproduces_reference_logits(cases, ported):
    worst = worst_logit_error(cases, ported.__getitem__)
    print("max |logit diff|, reference .pth via key map:", worst)
    assert max(worst.values()) < TOLERANCE, worst


def test_packaged_networks_reproduce_reference_logits(cases, liveness):
    """The runtime networks (converted .pt, batch-norm folded, run by OpenCV from their
    export) compute the same."""
    by_name = {n.name: n.model for n in liveness.networks}

    def runtime_net(weights: str):  # noqa: ANN202 - torch tensor in, torch tensor out
        net = by_name[NETWORK[weights]]
        return lambda x: torch.from_numpy(net(x.numpy())[0])

    worst = worst_logit_error(cases, runtime_net)
    print("max |logit diff|, packaged networks:", worst)
    assert max(worst.values()) < TOLERANCE, worst


def test_logit_check_can_fail(cases, ported):
    """The comparison is sharp enough to catch a plausible porting slip (RGB for BGR)."""
    case = cases[0]
    x = crop_tensor(cv2.imread(str(REFERENCE / case["crop"])))
    with torch.inference_mode():
        swapped = ported[case["weights"]](x.flip(1))[0].numpy()
    assert np.abs(swapped - case["logits"]).max() > 100 * TOLERANCE


def test_reference_loader_drops_only_the_fourier_branch(cases, ported):
    """A reference *training* checkpoint (MultiFTNet: ``module.model.*`` plus the Fourier
    branch) loads too; the branch's keys are the only ones left unused."""
    source = "2.7_80x80_MiniFASNetV2.pth"
    state = torch.load(SOURCE / source, map_location="cpu", weights_only=True)
    checkpoint = {"module.model." + k.removeprefix("module."): v for k, v in state.items()}
    branch = {"module.FTGenerator.ft.0.weight": torch.zeros(128, 128, 3, 3),
              "module.FTGenerator.ft.1.running_mean": torch.zeros(128)}
    model = build_minifasnet("minifasnet_v2").eval()
    assert sorted(load_reference_weights(model, {**checkpoint, **branch})) == sorted(branch)
    x = crop_tensor(cv2.imread(str(REFERENCE / cases[0]["crop"])))
    with torch.inference_mode():
        assert torch.equal(model(x), ported[source](x))

    with pytest.raises(LivenessModelError, match="module.extra.weight"):
        load_reference_weights(build_minifasnet("minifasnet_v2"),
                               {**state, "module.extra.weight": torch.zeros(1)})
    missing = {k: v for k, v in state.items() if k != "module.prob.weight"}
    with pytest.raises(LivenessModelError, match="head.fc.weight"):
        load_reference_weights(build_minifasnet("minifasnet_v2"), missing)
    with pytest.raises(LivenessModelError, match="wrong shape"):
        load_reference_weights(build_minifasnet("minifasnet_v1se"), state)


def test_crop_rule_cuts_the_reference_crops(cases):
    """crop_for on the box the references were cut around gives the reference crop, pixel
    for pixel, from a BGR (cv2) or an RGB (faceid) decode of the source image."""
    for case in cases:
        x, y, w, h = case["box_xywh"]
        box = (x, y, x + w - 1, y + h - 1)  # the (x, y, w, h) crop_for derives is this one
        source = ROOT.parent / "shared" / case["source_image"]
        want = cv2.imread(str(REFERENCE / case["crop"]))
        assert np.array_equal(crop_for(cv2.imread(str(source)), box, case["scale"],
                                       bgr=True), want), case["crop"]
        assert np.array_equal(crop_for(load_image(source), box, case["scale"]), want)


def test_package_data_loads_offline(liveness, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the liveness models must load without the network")

    monkeypatch.setattr(socket, "socket", no_network)
    fresh = PassiveLiveness()
    assert fresh.model_dir == MODEL_DIR
    assert [(n.name, n.scale, n.size, n.live_class) for n in fresh.networks] == [
        ("MiniFASNetV2", 2.7, 80, 1), ("MiniFASNetV1SE", 4.0, 80, 1)]
    for name in ("LICENSE", "NOTICE", "minifasnet.json"):
        assert (MODEL_DIR / name).is_file()


def test_model_file_records_the_source_files():
    doc = json.loads((MODEL_DIR / "minifasnet.json").read_text())
    provenance = (SOURCE / "PROVENANCE.md").read_text()
    for net in doc["networks"]:
        assert net["source"]["sha256"] in provenance
        assert net["source"]["commit"] == "b6d5f04ad78778917853b25c778acef6d5626d15"
        assert (net["input_size"], net["channel_order"], net["pixel_range"],
                net["live_class"]) == (80, "BGR", [0, 255], 1)


def copy_models(dest: Path) -> Path:
    shutil.copytree(MODEL_DIR, dest)
    return dest


def test_truncated_weights_raise_naming_the_file(tmp_path):
    models = copy_models(tmp_path / "models")
    damaged = models / "minifasnet_v1se.pt"
    damaged.write_bytes(damaged.read_bytes()[:100_000])
    with pytest.raises(LivenessModelError, match="minifasnet_v1se.pt") as err:
        PassiveLiveness(models).networks
    assert "hash" in str(err.value)


def test_missing_weights_raise_naming_the_file(tmp_path):
    models = copy_models(tmp_path / "models")
    (models / "minifasnet_v2.pt").unlink()
    with pytest.raises(LivenessModelError, match=r"minifasnet_v2\.pt.*not found"):
        PassiveLiveness(models).networks


def test_loading_is_lazy(tmp_path):
    empty = PassiveLiveness(tmp_path)  # nothing there yet: no error until first use
    grey = np.full((120, 160, 3), 128, np.uint8)
    with pytest.raises(LivenessModelError, match="minifasnet.json"):
        empty.score(grey, (60, 40, 100, 90))


def test_live_sample_scores_above_print_and_screen(liveness, detector):
    """image_T1 is a live face, F1 a printed photo, F2 a screen replay; MTCNN boxes with the
    identity box map."""
    scores = {}
    for name in ("T1", "F1", "F2"):
        image = load_image(SAMPLES / f"image_{name}.jpg")
        face = pick_face(detector.detect(image), image.shape, Pick.largest)
        scores[name] = liveness.score(image, face.box)
    print("P(live):", {k: round(v, 6) for k, v in scores.items()})
    assert scores["T1"] > scores["F1"] and scores["T1"] > scores["F2"], scores


def test_score_many_matches_score(liveness, detector):
    image = load_image(SAMPLES / "image_T1.jpg")
    box = detector.detect(image)[0].box
    corner = (0.0, 0.0, 30.0, 40.0)
    many = liveness.score_many(image, [box, corner])
    assert many.shape == (2,)
    assert many[0] == pytest.approx(liveness.score(image, box), abs=1e-6)
    assert many[1] == pytest.approx(liveness.score(image, corner), abs=1e-6)
    assert liveness.score_many(image, []).shape == (0,)


def test_crops_of_awkward_faces():
    """A face over the border, a 20 px face, a box bigger than the image and a 1-pixel image
    all give a full crop; the crop is shifted inside, never padded."""
    flat = np.full((480, 640, 3), 200, np.uint8)
    for box, scale in [((-30, -20, 90, 130), 2.7), ((600, 400, 660, 500), 4.0),
                       ((300, 200, 320, 220), 2.7), ((-50, -50, 900, 700), 4.0),
                       ((10, 10, 10, 10), 2.7)]:
        crop = crop_for(flat, box, scale)
        assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
        assert (crop == 200).all(), box  # no black padding from outside the image
    assert crop_for(np.zeros((1, 1, 3), np.uint8), (0, 0, 5, 5), 4.0).shape == (80, 80, 3)


def test_flat_frames_do_not_crash(liveness):
    """Grey, overexposed and black frames give a probability, not an error."""
    for value in (128, 255, 0):
        frame = np.full((480, 640, 3), value, np.uint8)
        p = liveness.score_many(frame, [(300, 200, 320, 220), (0, 300, 150, 480)])
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_box_map():
    box = (100.3, 50.7, 180.9, 170.2)
    assert IDENTITY.apply(box) == box
    x1, y1, x2, y2 = BoxMap(width=1.5, height=0.5, shift_y=0.1).apply((100, 100, 200, 300))
    assert (x1, x2) == (75, 225)              # 1.5x as wide, same centre
    assert (y1, y2) == (170, 270)             # half as tall, centre 10% of 200 px lower
