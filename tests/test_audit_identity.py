"""Identity references that cannot be confused, and the tamper-evident audit trail, on
SQLite and on a real PostgreSQL server, with encodings of real LFW photos."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from db.store import Store
from faceid.errors import AmbiguousPerson, UnknownPerson
from faceid.gallery import Gallery
from tests.test_store import faces  # noqa: F401 - the session fixture of real encodings


@pytest.fixture
def gallery(db_url: str, fid, tmp_path: Path) -> Gallery:
    return Gallery(Store(db_url, timeout=2), fid, tmp_path / "index")


def test_badge_numbers_never_reach_an_internal_id(gallery: Gallery, faces) -> None:  # noqa: F811
    """Person #2 holds badge "1"; person #1 has no badge. The bare value "1" names both and
    is refused; "#1" and "badge:1" each reach exactly one of them."""
    first = gallery.enroll("Colin Powell", faces["Colin_Powell"][:1]).person_id
    second = gallery.enroll("Tony Blair", faces["Tony_Blair"][:1],
                            external_id=str(first)).person_id
    store = gallery.store
    with pytest.raises(AmbiguousPerson, match=rf"#{first}.*badge:{first}|badge:{first}.*#{first}"):
        store.resolve(str(first))
    assert store.resolve(f"#{first}").id == first
    assert store.resolve(f"badge:{first}").id == second
    with pytest.raises(UnknownPerson, match="external id"):
        store.resolve("badge:999")
    with pytest.raises(UnknownPerson, match="#999"):
        store.resolve("#999")
    # a verify against a badge reaches the badge holder, not internal id 1
    probe = faces["Tony_Blair"][1].vector
    assert gallery.verify(probe, f"badge:{first}").same
    assert not gallery.verify(probe, f"#{first}").same


def test_names_match_case_insensitively_with_a_suggestion(gallery: Gallery, faces) -> None:  # noqa: F811
    pid = gallery.enroll("Serena Williams", faces["Serena_Williams"][:1]).person_id
    assert gallery.store.resolve("serena WILLIAMS").id == pid
    with pytest.raises(UnknownPerson, match="did you mean 'Serena Williams'"):
        gallery.store.resolve("Serena Wiliams")


def test_every_admin_action_is_an_event_without_biometrics(gallery: Gallery, faces) -> None:  # noqa: F811
    pid = gallery.enroll("Hugo Chavez", faces["Hugo_Chavez"][:2]).person_id
    gallery.enroll("Hugo Chavez", faces["Hugo_Chavez"][2:])
    store = gallery.store
    store.update_person(f"#{pid}", name="Hugo R. Chavez", external_id="B-7")
    store.update_person(f"#{pid}", active=False)
    store.update_person(f"#{pid}", active=True)
    gallery.recalibrate()
    gallery.remove(f"#{pid}")
    admin = list(reversed(store.events(kind="admin")))
    assert [e.decision for e in admin] == ["enrol", "add_templates", "rename", "disable",
                                           "enable", "thresholds", "remove"]
    assert all(e.actor and e.kind == "admin" for e in admin)
    rename = json.loads(admin[2].details)
    assert "Hugo Chavez" in rename["before"] and "B-7" in rename["after"]
    for e in admin:  # counts and names only: never a vector or a crop
        assert e.snapshot_jpeg is None and "vector" not in (e.details or "")
    assert store.verify_chain().ok  # removal nulls person_id; the chain still holds


def _tamper(store: Store, sql: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql))


def test_chain_names_the_first_edited_or_deleted_row(db_url: str) -> None:
    store = Store(db_url)
    ids = [store.add_event(source="door", decision="deny", reason="unknown", door="front",
                           distance=0.61 + i / 100) for i in range(6)]
    report = store.verify_chain()
    assert report.ok and report.rows == 6 and report.head_id == ids[-1]
    _tamper(store, f"UPDATE events SET decision = 'grant' WHERE id = {ids[2]}")
    bad = store.verify_chain()
    assert not bad.ok and bad.broken_at == ids[2] and bad.rows == 2
    _tamper(store, f"UPDATE events SET decision = 'deny' WHERE id = {ids[2]}")
    assert store.verify_chain().ok  # put back exactly: intact again
    _tamper(store, f"DELETE FROM events WHERE id = {ids[3]}")
    bad = store.verify_chain()
    assert bad.broken_at == ids[4] and "deleted" in bad.problem


def test_rows_cut_off_the_end_show_against_a_recorded_head(db_url: str) -> None:
    store = Store(db_url)
    ids = [store.add_event(source="door", decision="deny", reason="unknown") for _ in range(3)]
    head = store.verify_chain().head_hash
    assert store.chain_holds(head)
    _tamper(store, f"DELETE FROM events WHERE id = {ids[-1]}")
    assert store.verify_chain().ok  # what is left is a valid chain...
    assert not store.chain_holds(head)  # ...but the head recorded before is gone


def test_snapshot_retention_keeps_the_chain_but_a_swap_breaks_it(db_url: str) -> None:
    from datetime import datetime, timedelta, timezone

    store = Store(db_url)
    eid = store.add_event(source="door", decision="grant", reason="match",
                          snapshot_jpeg=b"\xff\xd8jpeg-bytes")
    store.add_event(source="door", decision="deny", reason="unknown")
    with store.session() as s:
        s.execute(sa.text("UPDATE events SET snapshot_jpeg = :b WHERE id = :i"),
                  {"b": b"\xff\xd8other", "i": eid})
    assert store.verify_chain().broken_at == eid
    assert store.prune_snapshots(datetime.now(timezone.utc) + timedelta(days=1)) == 1
    assert store.verify_chain().ok


def test_concurrent_writers_never_fork_the_chain(db_url: str) -> None:
    """Four threads, each with its own Store (own connections), append at once."""
    Store(db_url)  # migrate once

    def write(k: int) -> None:
        store = Store(db_url, timeout=30)
        for i in range(15):
            store.add_event(source=f"door-{k}", decision="deny", reason="unknown")

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = Store(db_url).verify_chain()
    assert report.ok and report.rows == 60, report.to_dict()
