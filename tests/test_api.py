"""The public API (``import faceid``): the verbs the README's example uses, on real LFW photos
and a real clip, through a real SQLite gallery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import faceid
from faceid.errors import MultipleFaces, NoFace
from tests.conftest import DATASETS, ROOT, lfw


def test_import_faceid_loads_no_network_library():
    """``import faceid`` (and so ``faceid --help``) must not pay for torch or OpenCV."""
    code = ("import sys, faceid; heavy = [m for m in ('torch', 'cv2', 'faiss', 'sqlalchemy') "
            "if m in sys.modules]; print(heavy, sorted(faceid.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.startswith("[] "), out
    for verb in ("load", "detect", "embed", "compare", "open_gallery", "enroll", "identify",
                 "verify", "watch"):
        assert f"'{verb}'" in out


def test_no_module_shadows_a_verb():
    """Importing a submodule sets it as an attribute of the package: a module named like a
    verb (``faceid/detect.py`` once was) would replace the verb."""
    import importlib
    import inspect
    import pkgutil

    for info in pkgutil.walk_packages(faceid.__path__, "faceid."):
        importlib.import_module(info.name)
    for verb in faceid.__all__:
        assert inspect.isfunction(getattr(faceid, verb)), verb


def test_load_detect_embed_compare(lfw_images):
    a1, a2 = lfw(lfw_images, "Aaron_Peirsol", 1), lfw(lfw_images, "Aaron_Peirsol", 2)
    image = faceid.load(a1)
    assert image.shape == (250, 250, 3) and image.dtype == np.uint8
    faces = faceid.detect(image)
    assert len(faces) == 1 and faces[0].landmarks.shape == (5, 2)
    vector = faceid.embed(a1.read_bytes())
    assert vector.shape == (128,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
    same = faceid.compare(a1, a2)
    other = faceid.compare(a1, lfw(lfw_images, "George_W_Bush", 1))
    assert same.same and not other.same and same.distance < same.tau < other.distance


def test_embed_refuses_what_it_cannot_use(lfw_images, two_face_image):
    with pytest.raises(MultipleFaces):
        faceid.embed(two_face_image)
    assert faceid.embed(two_face_image, pick="largest").shape == (128,)
    with pytest.raises(NoFace):
        faceid.embed(np.full((200, 200, 3), 90, np.uint8))


def test_gallery_enroll_identify_verify_and_record(tmp_path, lfw_images):
    gallery = faceid.open_gallery(tmp_path)
    faceid.enroll(gallery, "Aaron Peirsol", [lfw(lfw_images, "Aaron_Peirsol", 1)],
                  external_id="B-7")
    faceid.enroll(gallery, "Laura Bush", [lfw(lfw_images, "Laura_Bush", 1)])
    faceid.enroll(gallery, "Colin Powell", [lfw(lfw_images, "Colin_Powell", 1)])
    probe = lfw(lfw_images, "Aaron_Peirsol", 2)
    stranger = lfw(lfw_images, "George_W_Bush", 1)
    rows = faceid.identify(gallery, [probe, stranger, tmp_path / "missing.jpg"], record=True)
    assert [r.decision for r in rows] == ["match", "unknown", None]
    assert rows[0].name == "Aaron Peirsol" and rows[1].name is None
    assert rows[2].error_code == 10 and "missing.jpg" in rows[2].error
    assert faceid.verify(gallery, probe, "badge:B-7", record=True).same
    assert not faceid.verify(gallery, stranger, "badge:B-7").same
    sources = [e.source for e in gallery.store.events(kind="decision")]
    assert sorted(sources) == sorted([f"api:{probe}", f"api:{stranger}",
                                      f"api:{tmp_path / 'missing.jpg'}", f"api:{probe}"])


def test_a_missing_gallery_is_not_created_when_told_so(tmp_path):
    from faceid.errors import GalleryMissing

    with pytest.raises(GalleryMissing):
        faceid.open_gallery(tmp_path / "nowhere", create=False)


def test_watch_grants_the_enrolled_live_person_and_records_it(tmp_path):
    """The head-pose clip's man, enrolled from a still of the clip, is let in by the door
    the API runs (YuNet, passive gate), and the grant is an event."""
    from faceid.door.sources import FrameSource

    clip = DATASETS / "videos" / "preview" / "head-pose-face-detection-male.gif"
    first = next(iter(FrameSource(str(clip))))[2]
    gallery = faceid.open_gallery(tmp_path)
    faceid.enroll(gallery, "head-pose man", [first])
    decisions = [d for report in faceid.watch(gallery, str(clip), door="api-test")
                 for d in report.decisions]
    assert [(d.decision, d.person_name) for d in decisions][:1] == [("grant", "head-pose man")]
    events = gallery.store.events(kind="decision")
    assert events[-1].decision == "grant" and events[-1].door == "api-test"


def test_readme_example_uses_only_the_public_api():
    """The README's Python example imports nothing but ``faceid``."""
    text = (ROOT / "README.md").read_text()
    example = text[text.index("## Python API"):]
    example = example[example.index("```python"):example.index("```", 10 + example.index("```python"))]
    imports = [ln.strip() for ln in example.splitlines() if ln.strip().startswith(("import", "from"))]
    assert imports and all(ln == "import faceid" for ln in imports), imports
    assert Path(faceid.__file__).parent.name == "faceid"
