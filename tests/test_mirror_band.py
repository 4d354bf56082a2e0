"""The mirrored view computed only where a decision needs it (faceid/decisions.py): on real
LFW photos, a decision far from tau is made on one view and says so in its audit event, one
near tau is made on both views with the distance both views give, and the decisions are
those that computing both views always gives."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from db.store import Store
from faceid.decisions import _settled, identify_photos, verify_photo
from faceid.enrolment import enroll_images
from faceid.errors import ModelError
from faceid.gallery import Candidate, Gallery, Identification
from faceid.modelfile import load_model_info
from faceid.pipeline import FaceID
from tests.conftest import lfw

ENROLLED = {"Colin_Powell": [1, 2], "Tony_Blair": [1, 2], "Hugo_Chavez": [1, 2]}
PROBES = [("Colin_Powell", 4), ("Tony_Blair", 4), ("Hugo_Chavez", 4), ("Aaron_Peirsol", 1),
          ("Serena_Williams", 1), ("Gray_Davis", 1)]
BAND = 0.05


def pipeline(band: float | None) -> FaceID:
    fid = FaceID()
    fid.views = replace(fid.views, mirror_band=band)
    return fid


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, lfw_images: Path) -> str:
    """A gallery of three people, two real photos each, enrolled with both views."""
    folder = tmp_path_factory.mktemp("mirror")
    url = f"sqlite:///{folder / 'faceid.db'}"
    gallery = Gallery(Store(url), FaceID(), folder / "index")
    for name, numbers in ENROLLED.items():
        enroll_images(gallery, name.replace("_", " "), [lfw(lfw_images, name, n) for n in numbers])
    return url


def open_gallery(url: str, tmp_path: Path, band: float | None, tau: float) -> Gallery:
    return Gallery(Store(url), pipeline(band), tmp_path / "index", tau=tau)


def test_the_mirror_added_later_is_the_two_view_embedding(lfw_images):
    photo = lfw(lfw_images, "Colin_Powell", 4)
    later = pipeline(BAND).embed_image(photo, mirror_later=True)
    assert later.mirror is not None
    one_view = FaceID(views="fast").embed_image(photo).embedding  # scale 1.0, no mirror
    np.testing.assert_allclose(later.embedding, one_view, atol=1e-6)
    pipeline(BAND).add_mirror([later])
    assert later.mirror is None
    np.testing.assert_allclose(later.embedding, FaceID().embed_image(photo).embedding, atol=1e-6)
    # a preset without a band never leaves the mirror for later
    assert pipeline(None).embed_image(photo, mirror_later=True).mirror is None


def test_verify_skips_the_mirror_only_far_from_tau(url, tmp_path, lfw_images):
    photo, claim = lfw(lfw_images, "Colin_Powell", 4), "Colin Powell"
    probe = pipeline(BAND).embed_image(photo, mirror_later=True)
    base = open_gallery(url, tmp_path, BAND, 0.4)
    one = base.verify(probe.embedding, claim).distance
    pipeline(BAND).add_mirror([probe])
    both = base.verify(probe.embedding, claim).distance
    assert one != both
    far = open_gallery(url, tmp_path, BAND, one + 3 * BAND)  # clearly a match on one view
    v = verify_photo(far, photo, claim, record="test:")
    assert v.same and v.distance == pytest.approx(one, abs=1e-6)
    near = open_gallery(url, tmp_path, BAND, one + BAND / 2)  # too close to call on one view
    v = verify_photo(near, photo, claim, record="test:")
    assert v.distance == pytest.approx(both, abs=1e-6) and v.same == (both <= one + BAND / 2)
    skipped, decided = sorted(far.store.events(kind="decision"), key=lambda e: e.id)[-2:]
    assert json.loads(skipped.details).get("mirror") == "skipped"
    assert "mirror" not in json.loads(decided.details)


@pytest.mark.parametrize("tau", [0.30, 0.36, 0.4156])
def test_identify_decides_as_both_views_always_would(url, tmp_path, lfw_images, tau):
    photos = [lfw(lfw_images, name, n) for name, n in PROBES]
    lazy = identify_photos(open_gallery(url, tmp_path, BAND, tau), photos, top=2)
    always = identify_photos(open_gallery(url, tmp_path, None, tau), photos, top=2)
    assert [(r.path, r.decision, r.name) for r in lazy] == \
        [(r.path, r.decision, r.name) for r in always]
    assert not any(r.mirror_skipped for r in always)
    for a, b in zip(lazy, always):
        if not a.mirror_skipped:  # both views: the same distance
            assert a.distance == pytest.approx(b.distance, abs=1e-6)
        else:  # one view, far from every threshold the decision depends on
            assert abs(a.distance - tau) >= BAND
    assert sum(r.mirror_skipped for r in lazy) >= 1


def candidates(*distances: float) -> list[Candidate]:
    return [Candidate(i + 1, f"P{i}", None, d) for i, d in enumerate(distances)]


@pytest.mark.parametrize("distances, settled", [
    ((0.60, 0.70), True),    # unknown, beyond tau by more than the band
    ((0.44, 0.70), False),   # above tau, within the band
    ((0.37, 0.70), False),   # a match, within the band below tau
    ((0.20, 0.70), True),    # a match, clear of tau and of the margin
    ((0.20, 0.25), False),   # clear of tau, but the margin (0.05) is within 2 bands of 0.02
    ((0.20, 0.20), False),   # ambiguous by the margin, near it
    ((0.20,), True),         # one person enrolled: no margin to keep
])
def test_a_one_view_decision_is_settled_only_clear_of_every_threshold(distances, settled):
    ident = Identification("unknown", "above_tau", 0.40, 0.02, candidates(*distances))
    assert _settled(ident, BAND) is settled
    assert _settled(ident, None) is True  # no band: no mirror was left for later


def test_the_default_preset_leaves_the_mirror_for_later():
    """Only the default preset's band was measured (bench.mirror_band); ``accurate`` is
    for sites that chose accuracy over speed, so it computes every view."""
    info = load_model_info()
    assert 0 < info.view_preset().mirror_band < 0.1
    assert all(v.mirror_band is None for k, v in info.views.items() if k != info.default_views)


@pytest.mark.parametrize("band", [-0.1, 2.5, "wide"])
def test_a_model_file_with_a_bad_band_is_refused(tmp_path, band):
    doc = json.loads(load_model_info().path.read_text())
    doc["views"]["standard"]["mirror_band"] = band
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="mirror_band|incomplete"):
        load_model_info(path)
