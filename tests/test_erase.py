"""`people erase`: every trace of a person's face leaves the database files themselves, and
the audit trail still verifies."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from db.schema import Event, Template
from db.store import Store
from faceid.enrolment import enroll_images
from faceid.gallery import Gallery
from tests.conftest import lfw


def _raw(folder: Path) -> bytes:
    """Every byte of the SQLite database and its write-ahead log."""
    return b"".join(f.read_bytes() for f in sorted(folder.glob("faceid.db*")))


def test_erase_removes_templates_crops_snapshots_and_index_entries(fid, lfw_images, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'faceid.db'}")
    gallery = Gallery(store, fid, tmp_path / "index")
    enroll_images(gallery, "Colin Powell", [lfw(lfw_images, "Colin_Powell", 1)])
    enroll_images(gallery, "Tony Blair", [lfw(lfw_images, "Tony_Blair", 1)])
    colin = store.resolve("Colin Powell")
    with store.session() as s:
        template = s.scalar(sa.select(Template).filter_by(person_id=colin.id))
        vector, crop = template.vector, template.face_jpeg
    store.add_event(source="door", decision="grant", reason="match", person_id=colin.id,
                    person_name="Colin Powell", snapshot_jpeg=crop)
    raw = _raw(tmp_path)
    assert vector in raw and crop[-200:-136] in raw  # where the face was before

    gallery.remove("Colin Powell", erase=True)

    raw = _raw(tmp_path)
    assert vector not in raw and crop[-200:-136] not in raw
    with store.session() as s:
        event = s.scalar(sa.select(Event).where(Event.kind == "decision"))
        assert event.snapshot_jpeg is None and event.snapshot_sha256 is not None
        assert event.person_name == "Colin Powell" and event.person_id is None
    erase = [e for e in store.events(kind="admin") if e.reason == "erase"]
    assert len(erase) == 1 and '"snapshots": 1' in erase[0].details
    assert store.verify_chain().ok
    assert [p.name for p in store.people()] == ["Tony Blair"]
    assert len(gallery.index) == 1
    again = Gallery(Store(f"sqlite:///{tmp_path / 'faceid.db'}"), fid, tmp_path / "index")
    assert again.messages == [] and len(again.index) == 1


def test_people_erase_from_the_command_line(lfw_images, tmp_path):
    from tests.fuzz_cases import run_cli

    home = ["--home", str(tmp_path / "home")]
    code, _, err = run_cli("enroll", "Colin Powell", lfw(lfw_images, "Colin_Powell", 1), *home,
                           timeout=120)
    assert code == 0, err
    code, _, err = run_cli("people", "erase", "Colin Powell", *home)
    assert code == 2 and "needs --yes" in err  # no terminal to ask
    code, out, err = run_cli("people", "erase", "colin powell", "--yes", "--json", *home)
    assert code == 0 and '"erased": "Colin Powell (#1)"' in out, err
    code, out, _ = run_cli("people", "list", "--json", *home)
    assert code == 0 and '"people": []' in out
