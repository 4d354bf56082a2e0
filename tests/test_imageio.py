"""Image loading: every input kind a user may hand us, and every way a file can be bad."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from faceid.errors import (CorruptImage, EmptyFile, FileMissing, ImageTooLarge, NotAFile,
                           NotAnImage)
from faceid.imageio import load_image
from tests.conftest import lfw


@pytest.fixture()
def portrait(lfw_images):
    return lfw(lfw_images, "Aaron_Peirsol", 1)


def test_jpeg_loads_as_rgb_uint8(portrait):
    img = load_image(portrait)
    assert img.shape == (250, 250, 3) and img.dtype == np.uint8 and img.flags.c_contiguous


def test_exif_orientation_is_applied(portrait, tmp_path):
    src = Image.open(portrait).crop((0, 0, 250, 200))  # not square, so rotation shows
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    src.save(path, exif=exif)
    assert load_image(path).shape == (250, 200, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_modes_convert_to_rgb(portrait, tmp_path, mode):
    src = Image.open(portrait)
    if mode == "I;16":
        grey = np.asarray(src.convert("L")).astype(np.uint16) * 257
        img = Image.fromarray(grey)  # PIL picks I;16 for uint16 data
        path = tmp_path / "grey16.png"
    else:
        img = src.convert(mode)
        path = tmp_path / f"img_{mode}.{'jpg' if mode in ('L', 'CMYK') else 'png'}"
    img.save(path)
    out = load_image(path)
    assert out.shape == (250, 250, 3) and out.dtype == np.uint8
    ref = np.asarray(src.convert("L"), float)
    assert np.abs(out.mean(axis=2) - ref).mean() < 25  # same picture, not a black frame


def test_arrays_of_any_depth(portrait):
    rgb = load_image(portrait)
    assert load_image(rgb[:, :, 0]).shape == (250, 250, 3)
    assert np.array_equal(load_image(rgb.astype(np.uint16) * 257), rgb)
    assert np.array_equal(load_image(rgb.astype(np.float32) / 255), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(load_image(rgba), rgb)


def test_missing_file(tmp_path):
    with pytest.raises(FileMissing, match="nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(EmptyFile, match="empty.jpg"):
        load_image(p)


def test_truncated_jpeg(portrait, tmp_path):
    p = tmp_path / "cut.jpg"
    p.write_bytes(portrait.read_bytes()[:3000])
    with pytest.raises(CorruptImage, match="cut.jpg"):
        load_image(p)


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not an image\n")
    with pytest.raises(NotAnImage, match="notes.jpg"):
        load_image(p)


def test_directory(tmp_path):
    with pytest.raises(NotAFile, match="directory"):
        load_image(tmp_path)


def test_huge_image_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(p)  # a tiny file that declares 400 MP
    with pytest.raises(ImageTooLarge, match="image of 400,000,000 pixels exceeds the "
                                            "50,000,000-pixel limit"):
        load_image(p)
    Image.new("1", (10000, 6000)).save(p)  # 60 MP: above faceid's limit, below Pillow's
    with pytest.raises(ImageTooLarge, match="10000x6000 image exceeds"):
        load_image(p)


def test_pillows_bomb_guard_stays_on_for_the_process(tmp_path, monkeypatch):
    """faceid checks sizes itself, but must not switch off Pillow's guard for other code in
    the process; a limit above Pillow's own is refused rather than silently capped."""
    from faceid.errors import UsageError

    assert Image.MAX_IMAGE_PIXELS is not None
    p = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(p)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(p)
    monkeypatch.setenv("FACEID_MAX_PIXELS", str(10**12))
    with pytest.raises(UsageError, match="FACEID_MAX_PIXELS"):
        load_image(p)


def test_folder_walks_take_photos_by_content_as_well_as_by_name(lfw_images, tmp_path):
    """ORL-style .pgm files and extensionless exports are photos; a README is not; a broken
    file named .jpg is still reported, not skipped."""
    from faceid.imageio import image_files
    from tests.conftest import lfw
    from tests.fuzz_cases import run_cli

    person = tmp_path / "people" / "Colin_Powell"
    person.mkdir(parents=True)
    Image.open(lfw(lfw_images, "Colin_Powell", 1)).convert("L").save(person / "1.pgm")
    (person / "2").write_bytes(lfw(lfw_images, "Colin_Powell", 2).read_bytes())
    (person / "README.txt").write_text("photos of Colin Powell\n")
    (person / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    assert [p.name for p in image_files(person)] == ["1.pgm", "2", "broken.jpg"]
    code, out, err = run_cli("enroll-dir", tmp_path / "people", "--home", tmp_path / "home",
                             "--json", timeout=300)
    report = json.loads(out)
    assert code == 0 and report["templates_added"] == 2, err
    assert report["images_failed"] == 1 and "broken.jpg" in report["failures"][0]
