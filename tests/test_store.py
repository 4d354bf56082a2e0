"""The enrolment store and its FAISS index, on SQLite and on a real PostgreSQL server, with
encodings of real LFW photos."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from db.store import NewTemplate, Store
from faceid.errors import (AmbiguousPerson, DatabaseReset, DuplicatePerson, GalleryMissing,
                           ModelMismatch, SchemaTooNew, UnknownPerson)
from faceid.detection import Pick
from faceid.gallery import Gallery
from tests.conftest import lfw

PEOPLE = {"Colin_Powell": [1, 2, 3], "Tony_Blair": [1, 2, 3], "Serena_Williams": [1, 2, 3],
          "Hugo_Chavez": [1, 2, 3]}


@pytest.fixture(scope="session")
def faces(fid, lfw_images: Path) -> dict[str, list[NewTemplate]]:
    """Three templates per person, from real LFW photos (encoded once per session)."""
    from faceid.enrolment import enrolment_gate, source_hash, to_template

    out: dict[str, list[NewTemplate]] = {}
    for name, numbers in PEOPLE.items():
        paths = [lfw(lfw_images, name, n) for n in numbers]
        results = fid.embed_images(paths, keep_faces=True, gate=enrolment_gate(fid))
        out[name] = [to_template(r, source_hash(p)) for r, p in zip(results, paths)]
    return out


@pytest.fixture
def gallery(db_url: str, fid, tmp_path: Path) -> Gallery:
    return Gallery(Store(db_url, timeout=2), fid, tmp_path / "index")


def test_schema_is_migrated_once(db_url: str) -> None:
    s1 = Store(db_url)
    s2 = Store(db_url)  # a second open sees the head revision and changes nothing
    assert s1.schema_revision == s2.schema_revision == "0006"
    tables = set(sa.inspect(s1.engine).get_table_names())
    assert {"people", "templates", "models", "events", "api_keys", "doors", "alembic_version"} <= tables
    doors = {c["name"] for c in sa.inspect(s1.engine).get_columns("doors")}
    assert {"liveness", "last_liveness", "fps", "last_decision"} <= doors


def test_newer_schema_is_refused(db_url: str) -> None:
    store = Store(db_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999_future'"))
    store.close()
    with pytest.raises(SchemaTooNew, match="newer than this faceid"):
        Store(db_url)


def test_enrol_is_idempotent_and_bumps_revision(gallery: Gallery, faces) -> None:
    first = gallery.enroll("Colin Powell", faces["Colin_Powell"][:2])
    assert first.created and len(first.added) == 2
    again = gallery.enroll("Colin Powell", faces["Colin_Powell"])
    assert not again.created and again.already == 2 and len(again.added) == 1
    assert gallery.store.template_count(gallery.model.id) == 3
    assert gallery.store.revision(gallery.model.id) == 2
    assert len(gallery.index) == 3


def test_duplicate_names_need_distinct_external_ids(gallery: Gallery, faces) -> None:
    t = faces["Tony_Blair"]
    gallery.enroll("Tony Blair", t[:1])
    with pytest.raises(DuplicatePerson, match="--external-id"):
        gallery.enroll("Tony Blair", t[1:2], new=True)
    with pytest.raises(DuplicatePerson, match="no external id"):
        gallery.enroll("Tony Blair", t[1:2], external_id="B-2")
    gallery.store.update_person("Tony Blair", external_id="B-1")
    second = gallery.enroll("Tony Blair", t[1:2], external_id="B-2")
    assert second.created
    with pytest.raises(AmbiguousPerson, match="B-1.*B-2"):
        gallery.store.resolve("Tony Blair")
    assert gallery.store.resolve("B-2").id == second.person_id
    assert gallery.store.resolve(f"#{second.person_id}").external_id == "B-2"
    with pytest.raises(DuplicatePerson, match="already belongs"):
        gallery.enroll("Someone Else", t[2:], external_id="B-1")
    with pytest.raises(UnknownPerson):
        gallery.store.resolve("Nobody Here")


def test_identify_and_verify_on_held_out_photos(db_url: str, faces, fid, tmp_path: Path,
                                                lfw_images: Path) -> None:
    # four people are too few to estimate thresholds (the strict fallback would be in
    # force): this test is about matching, at the model's 1:1 tau as a fixed site threshold
    gallery = Gallery(Store(db_url, timeout=2), fid, tmp_path / "index", tau=fid.tau)
    for name, templates in faces.items():
        gallery.enroll(name.replace("_", " "), templates)
    for name in PEOPLE:
        probe = fid.embed_image(lfw(lfw_images, name, 4), Pick.center).embedding
        found = gallery.identify(probe)
        assert found.decision == "match", found.to_dict()
        assert found.person.name == name.replace("_", " ")
        assert gallery.verify(probe, name.replace("_", " ")).same
        other = next(n for n in PEOPLE if n != name).replace("_", " ")
        assert not gallery.verify(probe, other).same
    stranger = fid.embed_image(lfw(lfw_images, "Aaron_Peirsol", 1)).embedding
    assert gallery.identify(stranger).decision == "unknown"


def test_remove_person_erases_templates_keeps_events(gallery: Gallery, faces) -> None:
    a = gallery.enroll("Colin Powell", faces["Colin_Powell"])
    gallery.enroll("Hugo Chavez", faces["Hugo_Chavez"])
    gallery.store.add_event(source="test", decision="grant", reason="match",
                            person_id=a.person_id, person_name="Colin Powell")
    gallery.remove("Colin Powell")
    assert len(gallery.index) == 3
    assert set(gallery.index.owners.values()) == {gallery.store.resolve("Hugo Chavez").id}
    probe = faces["Colin_Powell"][0].vector
    assert all(c.name != "Colin Powell" for c in gallery.identify(probe).candidates)
    (event,) = gallery.store.events(kind="decision")
    assert event.person_id is None and event.person_name == "Colin Powell"
    with pytest.raises(UnknownPerson):
        gallery.store.resolve("Colin Powell")


def test_disabled_person_is_not_matched(gallery: Gallery, faces) -> None:
    gallery.enroll("Serena Williams", faces["Serena_Williams"][:2])
    gallery.enroll("Tony Blair", faces["Tony_Blair"])
    gallery.store.update_person("Serena Williams", active=False)
    probe = faces["Serena_Williams"][2].vector
    assert gallery.identify(probe).person is None or \
        gallery.identify(probe).person.name != "Serena Williams"
    assert gallery.verify(probe, "Serena Williams").reason == "inactive"


def test_second_process_sees_changes_and_index_never_stale(db_url: str, fid, faces,
                                                           tmp_path: Path) -> None:
    door = Gallery(Store(db_url), fid, tmp_path / "door")
    office = Gallery(Store(db_url), fid, tmp_path / "office")
    office.enroll("Hugo Chavez", faces["Hugo_Chavez"])
    office.flush()
    assert len(door.index) == 0 and door.refresh() and len(door.index) == 3
    assert door.identify(faces["Hugo_Chavez"][0].vector).person.name == "Hugo Chavez"
    # the door's own write after a foreign one: resync rather than add on a stale base
    office.enroll("Tony Blair", faces["Tony_Blair"][:1])
    door.enroll("Colin Powell", faces["Colin_Powell"][:1])
    assert len(door.index) == 5 == door.store.template_count(door.model.id)


@pytest.mark.parametrize("damage", ["missing", "truncated", "other_model", "stale", "forged"])
def test_index_file_problems_are_rebuilt(damage: str, fid, faces, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    g = Gallery(Store(url), fid, tmp_path / "index")
    g.enroll("Colin Powell", faces["Colin_Powell"])
    g.flush()
    path = g.index.path
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "other_model":
        from db.index import GalleryIndex

        other = GalleryIndex(tmp_path / "elsewhere", "some-other-model", 128)
        other.rebuild(g.index.revision, *g.store.gallery(g.model.id)[1:])
        path.write_bytes(other.path.read_bytes())
    elif damage == "forged":  # ids, count, revision as before; a stranger's vectors
        from db.index import GalleryIndex

        revision, ids, owners, _ = g.store.gallery(g.model.id)
        forged = GalleryIndex(tmp_path / "forge", g.model.key, 128)
        forged.rebuild(revision, ids, owners,
                       np.stack([faces["Tony_Blair"][0].vector] * len(ids)))
        path.write_bytes(forged.path.read_bytes())
    else:  # another process enrolled while this index file was not updated
        Store(url).enroll("Tony Blair", faces["Tony_Blair"][:1], g.model.id)
    again = Gallery(Store(url), fid, tmp_path / "index")
    assert len(again.messages) == 1 and "rebuilt" in again.messages[0]
    if damage == "forged":
        assert "vectors differ" in again.messages[0]
        assert again.rank(faces["Tony_Blair"][0].vector, 1)[0].distance > 0.3
    assert len(again.index) == again.store.template_count(again.model.id)
    assert again.identify(faces["Colin_Powell"][0].vector).person.name == "Colin Powell"
    assert Gallery(Store(url), fid, tmp_path / "index").messages == []  # now in step


def test_a_deleted_or_emptied_database_is_not_recreated_over_its_index(fid, faces,
                                                                    tmp_path: Path) -> None:
    db_file = tmp_path / "f.db"
    url = f"sqlite:///{db_file}"
    g = Gallery(Store(url), fid, tmp_path / "index")
    g.enroll("Colin Powell", faces["Colin_Powell"])
    g.flush()
    g.store.close()
    index_bytes = g.index.path.read_bytes()
    for damage in ("emptied", "deleted"):
        for f in tmp_path.glob("f.db*"):
            f.unlink()
        if damage == "emptied":
            db_file.write_bytes(b"")
            with pytest.raises(GalleryMissing, match="0 bytes"):
                Store(url, create=False)  # a command that only reads
        with pytest.raises(DatabaseReset, match="3 templates"):
            Gallery(Store(url), fid, tmp_path / "index")  # enrolment would create one
        assert g.index.path.read_bytes() == index_bytes  # the last copy is kept


def test_templates_of_another_model_are_refused(db_url: str, faces, tmp_path: Path) -> None:
    from faceid.pipeline import FaceID

    fast = Gallery(Store(db_url), FaceID(views="fast"), tmp_path / "index")
    fast.enroll("Hugo Chavez", faces["Hugo_Chavez"])
    standard = Gallery(Store(db_url), FaceID(), tmp_path / "index")
    with pytest.raises(ModelMismatch, match="reembed"):
        standard.require_same_model()
    with pytest.raises(ModelMismatch):
        standard.verify(faces["Hugo_Chavez"][0].vector, "Hugo Chavez")


def test_events_filter_by_time_and_person(gallery: Gallery, faces) -> None:
    p = gallery.enroll("Tony Blair", faces["Tony_Blair"][:1]).person_id
    gallery.store.add_event(source="door-1", decision="grant", reason="match", person_id=p,
                            person_name="Tony Blair", distance=0.3, liveness=0.9)
    gallery.store.add_event(source="door-1", decision="deny", reason="unknown")
    assert len(gallery.store.events(kind="decision")) == 2
    assert [e.decision for e in gallery.store.events(person="Tony Blair", kind="decision")] == ["grant"]
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    assert gallery.store.events(since=future) == []
    assert len(gallery.store.events(since=past, kind="decision")) == 2


def test_a_photos_events_are_written_together_or_not_at_all(gallery: Gallery) -> None:
    store = gallery.store
    ids = store.add_events([{"source": "api:k:two.jpg", "decision": "unknown", "reason": "above_tau"},
                            {"source": "api:k:two.jpg", "decision": "match", "reason": "match",
                             "door": "lobby", "distance": 0.2}])
    assert ids[1] == ids[0] + 1
    with pytest.raises(Exception):  # the second row breaks NOT NULL: neither is kept
        store.add_events([{"source": "api:k:three.jpg", "decision": "unknown", "reason": "x"},
                          {"source": "api:k:three.jpg", "decision": None, "reason": "x"}])
    assert [e.source for e in store.events(kind="decision")] == ["api:k:two.jpg"] * 2
    assert store.verify_chain().ok
    assert [e.door for e in store.events(door="lobby")] == ["lobby"]
    assert [e.id for e in store.events(decision="match")] == [ids[1]]
    assert [e.id for e in store.events(before=ids[1], kind="decision")] == [ids[0]]


def test_vectors_round_trip_exactly(gallery: Gallery, faces) -> None:
    t = faces["Serena_Williams"]
    r = gallery.enroll("Serena Williams", t)
    got = gallery.store.person_vectors(r.person_id, gallery.model.id)
    assert np.array_equal(np.sort(got, axis=0), np.sort(np.stack([x.vector for x in t]),
                                                        axis=0))


def test_site_tau_overrides_the_model_tau(db_url: str, fid, faces, tmp_path: Path) -> None:
    strict = Gallery(Store(db_url), fid, tmp_path / "index", tau=0.05)
    strict.enroll("Tony Blair", faces["Tony_Blair"][:2])
    probe = faces["Tony_Blair"][2].vector
    found = strict.identify(probe)
    assert strict.tau == 0.05 and found.decision == "unknown" and found.reason == "above_tau"
    assert strict.tau_verify == 0.05 and not strict.verify(probe, "Tony Blair").same
    default = Gallery(Store(db_url), fid, tmp_path / "index")
    assert default.tau == default.operating_point().tau_identify
    loose = Gallery(Store(db_url), fid, tmp_path / "index", tau=0.45)
    assert loose.identify(probe).decision == "match"


def test_schema_head_is_the_newest_migration_and_an_up_to_date_gallery_skips_alembic(tmp_path):
    """Opening a gallery already at the head revision reads one row instead of importing
    alembic (a fifth of every command's start); the shortcut's constant must follow the
    migrations folder, or a new migration would never run."""
    import subprocess
    import sys

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from db.engine import MIGRATIONS, SCHEMA_HEAD
    from tests.conftest import ROOT

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD
    url = f"sqlite:///{tmp_path}/g.db"
    code = ("import sys; from db.store import Store; s = Store(%r); "
            "print(s.schema_revision, 'alembic' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code % url], capture_output=True, text=True,
                           cwd=ROOT, check=True)
    again = subprocess.run([sys.executable, "-c", code % url], capture_output=True, text=True,
                           cwd=ROOT, check=True)
    assert first.stdout.split() == [SCHEMA_HEAD, "True"]   # created: the migrations ran
    assert again.stdout.split() == [SCHEMA_HEAD, "False"]  # at head: only read
