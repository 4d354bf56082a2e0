"""Networks run by OpenCV or ONNX Runtime from a cached ONNX export (faceid/netrun.py): the
same embeddings and detections as torch on real photos, a process that finds the export
never imports torch, and a damaged, unwritable or wrong export never changes a result."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from faceid import netrun
from faceid.detection import FaceDetector, load_mtcnn
from faceid.encoder import Encoder
from faceid.imageio import load_image
from faceid.modelfile import load_model_info
from faceid.pipeline import FaceID
from tests.conftest import ROOT, lfw

PEOPLE = ["Aaron_Peirsol", "Colin_Powell", "Serena_Williams", "Gray_Davis"]


@pytest.fixture(scope="module")
def chips(lfw_images: Path) -> np.ndarray:
    """Aligned chips of real LFW faces, two photos each of four people."""
    fid = FaceID()
    images = [load_image(lfw(lfw_images, p, i)) for p in PEOPLE for i in (1, 2)]
    return np.stack([fid.chip(img, fid.detector.detect(img)[0]) for img in images])


def encoder_in(monkeypatch: pytest.MonkeyPatch, cache: Path | str, run: str = "auto") -> Encoder:
    monkeypatch.setenv("FACEID_CACHE", str(cache))
    monkeypatch.setenv("FACEID_RUNTIME", run)
    return Encoder(load_model_info())


@pytest.mark.parametrize("run, engine", [("auto", netrun.OrtNet), ("opencv", netrun.OpenCVNet)])
def test_each_engine_embeds_as_torch_does(monkeypatch, tmp_path, chips, run, engine):
    """The encoder runs in ONNX Runtime by default (faster), in OpenCV when asked."""
    cv = encoder_in(monkeypatch, tmp_path, run)
    torch_run = encoder_in(monkeypatch, tmp_path, "torch")
    assert isinstance(cv.net, engine) and isinstance(torch_run.net, netrun.TorchNet)
    a, b = cv.embed(chips), torch_run.embed(chips)
    assert np.abs(a - b).max() < 1e-4
    same = np.linalg.norm(a[0] - a[1]), np.linalg.norm(b[0] - b[1])
    assert abs(same[0] - same[1]) < 1e-4 and same[0] < 0.4  # one person's two photos


def test_opencv_detects_as_torch_does(monkeypatch, tmp_path, lfw_images, two_face_image):
    photos = [load_image(lfw(lfw_images, p, 1)) for p in PEOPLE] + [two_face_image]
    monkeypatch.setenv("FACEID_CACHE", str(tmp_path))
    found = {}
    for run in ("auto", "torch"):
        monkeypatch.setenv("FACEID_RUNTIME", run)
        found[run] = FaceDetector().detect_batch(photos)
        if run == "auto":  # the small networks stay in OpenCV (faster there)
            assert all(isinstance(net, netrun.OpenCVNet) for net in load_mtcnn())
    assert [len(f) for f in found["auto"]] == [len(f) for f in found["torch"]] == [1] * 4 + [2]
    for cv_faces, torch_faces in zip(found["auto"], found["torch"]):
        for c, t in zip(cv_faces, torch_faces):
            np.testing.assert_allclose(c.box, t.box, atol=1e-2)
            np.testing.assert_allclose(c.landmarks, t.landmarks, atol=1e-2)


def cached_export(cache: Path) -> tuple[Path, bytes, bytes]:
    """The encoder's cache file, its header line and the ONNX bytes after it."""
    (path,) = cache.glob(f"encoder-*.{netrun.CACHE_SUFFIX}")
    header, _, onnx = path.read_bytes().partition(b"\n")
    return path, header, onnx


def test_the_export_is_cached_with_its_hash(monkeypatch, tmp_path, chips):
    first = encoder_in(monkeypatch, tmp_path).embed(chips)
    path, header, onnx = cached_export(tmp_path)
    assert header == netrun.CACHE_HEADER + hashlib.sha256(onnx).hexdigest().encode()
    # a damaged export (a flipped byte in its weights) is noticed and made again
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    again = encoder_in(monkeypatch, tmp_path).embed(chips)
    assert np.array_equal(first, again)
    assert cached_export(tmp_path)[1:] == (header, onnx)


@pytest.mark.parametrize("run, engine", [("auto", netrun.OrtNet), ("opencv", netrun.OpenCVNet)])
def test_an_export_the_engine_cannot_read_is_made_again(monkeypatch, tmp_path, chips, caplog,
                                                        run, engine):
    """A cache file whose hash holds but whose content the engine refuses (written by
    another version, say) fails at load time, not at the first frame, and is replaced."""
    want = encoder_in(monkeypatch, tmp_path, run).embed(chips)
    path, _, onnx = cached_export(tmp_path)
    junk = b"not an onnx model"
    path.write_bytes(netrun.CACHE_HEADER + hashlib.sha256(junk).hexdigest().encode() + b"\n"
                     + junk)
    enc = encoder_in(monkeypatch, tmp_path, run)
    name = "ONNX Runtime" if engine is netrun.OrtNet else "OpenCV"
    assert f"{name} cannot read it" in caplog.text
    assert isinstance(enc.net, engine)
    assert np.array_equal(enc.embed(chips), want)
    assert cached_export(tmp_path)[2] == onnx


def test_an_unwritable_cache_still_runs_the_export(monkeypatch, tmp_path, chips, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    enc = encoder_in(monkeypatch, blocker)
    assert isinstance(enc.net, netrun.OrtNet)
    reference = encoder_in(monkeypatch, tmp_path / "ok").embed(chips)
    assert np.abs(enc.embed(chips) - reference).max() < 1e-6
    assert "not cached" in caplog.text


def test_no_home_for_a_cache_still_runs_the_export(monkeypatch, tmp_path, chips):
    """A service user without a home directory: the export runs from memory."""
    reference = encoder_in(monkeypatch, tmp_path).embed(chips)

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(netrun, "cache_dir", homeless)
    enc = encoder_in(monkeypatch, tmp_path / "unused")
    assert isinstance(enc.net, netrun.OrtNet)
    assert np.abs(enc.embed(chips) - reference).max() < 1e-6
    assert not (tmp_path / "unused").exists()


def test_an_export_that_differs_from_torch_is_not_used(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(netrun, "TOLERANCE", -1.0)  # no export can pass now
    enc = encoder_in(monkeypatch, tmp_path)
    assert isinstance(enc.net, netrun.TorchNet)
    assert not list(tmp_path.iterdir())
    assert "differs from torch's" in caplog.text


@pytest.mark.parametrize("run", ["auto", "opencv"])
def test_threads_share_one_encoder(monkeypatch, tmp_path, chips, run):
    """Concurrent calls give what serial calls give: ONNX Runtime's session serves them
    together; each takes a copy of the OpenCV net from a pool, and no more copies exist
    than calls ever overlapped."""
    enc = encoder_in(monkeypatch, tmp_path, run)
    want = enc.embed(chips)
    got: list[np.ndarray] = [None] * 6  # type: ignore[list-item]

    def run(i: int) -> None:
        for _ in range(3):
            got[i] = enc.embed(chips)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, want) for g in got)
    if run == "opencv":
        assert 1 <= len(enc.net._idle) <= 6  # the load's copy, plus one per overlapping call


def test_without_onnxruntime_the_encoder_runs_in_opencv(monkeypatch, tmp_path, chips, caplog):
    """ONNX Runtime is the encoder's preferred engine, not a requirement: without it the
    encoder runs in OpenCV, to the same embeddings, and the log says why it is slower."""
    want = encoder_in(monkeypatch, tmp_path).embed(chips)
    real = netrun.importlib.util.find_spec
    monkeypatch.setattr(netrun.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    enc = encoder_in(monkeypatch, tmp_path)
    assert isinstance(enc.net, netrun.OpenCVNet)
    assert "onnxruntime is not installed" in caplog.text
    assert np.abs(enc.embed(chips) - want).max() < 1e-5


def test_a_process_with_the_export_never_imports_torch(tmp_path, lfw_images):
    """The first `faceid compare` exports (and imports torch to do it); the next compares
    the two photos without importing torch, to the same distance."""
    a, b = lfw(lfw_images, "Colin_Powell", 1), lfw(lfw_images, "Colin_Powell", 2)
    env = {**os.environ, "FACEID_CACHE": str(tmp_path), "FACEID_THREADS": "1"}
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-X", "importtime", "cli.py", "compare", str(a),
                              str(b), "--json"], capture_output=True, text=True, cwd=ROOT,
                             env=env, check=True)
        imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
        runs.append((json.loads(out.stdout), "torch" in imported))
    (first, first_torch), (second, second_torch) = runs
    assert first_torch and not second_torch
    assert first["same"] and second["same"]
    assert abs(first["distance"] - second["distance"]) < 1e-6


def test_a_bad_runtime_setting_is_a_usage_error(tmp_path, lfw_images):
    a = lfw(lfw_images, "Colin_Powell", 1)
    env = {**os.environ, "FACEID_RUNTIME": "tensorflow"}
    out = subprocess.run([sys.executable, "cli.py", "compare", str(a), str(a)],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 2
    assert "FACEID_RUNTIME='tensorflow'" in out.stderr
