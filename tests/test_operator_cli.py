"""Operator safety from the command line, as a guard or an auditor would meet it: a
mistyped home, a badge number that equals someone's internal id, a removal without
confirmation, an edited audit trail, a door started with an output it cannot write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import lfw
from tests.test_cli import assert_one_line_error
from tests.test_gallery_cli import as_json, faceid


def test_a_mistyped_home_is_an_error_not_an_empty_gallery(tmp_path: Path,
                                                          lfw_images: Path) -> None:
    home = tmp_path / "no-such-home"
    photo = lfw(lfw_images, "Colin_Powell", 1)
    assert_one_line_error(faceid(home, "identify", photo), 57, "no gallery")
    assert_one_line_error(faceid(home, "people", "list"), 57, "no gallery")
    assert_one_line_error(faceid(home, "watch", "--source", photo.parent), 57, "no gallery")
    assert not home.exists()  # nothing was created by reading


def test_the_door_refuses_outputs_it_cannot_write_before_it_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    p = faceid(home, "watch", "--source", tmp_path, "--record", tmp_path / "nope" / "o.mp4")
    assert_one_line_error(p, 3, "no such folder")
    p = faceid(home, "watch", "--source", tmp_path, "--webhook", "http://127.0.0.1:9/x",
               extra_env={"FACEID_WEBHOOK_SECRET": ""})
    assert_one_line_error(p, 2, "signing secret")


def test_ids_badges_removal_and_the_audit_trail(tmp_path: Path, lfw_images: Path) -> None:
    home = tmp_path / "home"
    p = faceid(home, "enroll", "Colin Powell", lfw(lfw_images, "Colin_Powell", 1), "--json")
    assert p.returncode == 0, p.stderr
    first = as_json(p)["person_id"]
    p = faceid(home, "enroll", "Tony Blair", lfw(lfw_images, "Tony_Blair", 1),
               "--external-id", str(first), "--json")
    assert p.returncode == 0, p.stderr
    private = [home / "faceid.db", *(home / "index").iterdir()]
    assert len(private) >= 2 and all(f.stat().st_mode & 0o077 == 0 for f in private)
    # the bare value names #1 and the holder of badge 1: refused, never guessed
    assert_one_line_error(faceid(home, "people", "remove", str(first), "--yes"), 54,
                          f"badge:{first}")
    # no terminal to ask and no --yes: a usage error, nothing removed
    assert_one_line_error(faceid(home, "people", "remove", f"badge:{first}"), 2, "--yes")
    p = faceid(home, "people", "remove", f"badge:{first}", "--yes", "--json")
    assert p.returncode == 0 and "Tony Blair" in as_json(p)["removed"], p.stderr
    names = [x["name"] for x in as_json(faceid(home, "people", "list", "--json"))["people"]]
    assert names == ["Colin Powell"]
    admin = as_json(faceid(home, "events", "--kind", "admin", "--json"))["events"]
    actions = [e["decision"] for e in reversed(admin)]
    assert actions[:2] == ["enrol", "enrol"] and actions[-1] == "remove"
    p = faceid(home, "audit", "verify", "--json")
    assert p.returncode == 0 and as_json(p)["ok"], p.stdout
    head = as_json(p)["head_hash"]
    with sqlite3.connect(home / "faceid.db") as db:
        db.execute("UPDATE events SET person_name = 'Someone Else' WHERE decision = 'remove'")
    p = faceid(home, "audit", "verify", "--expect-head", head)
    assert p.returncode == 58 and "audit trail broken at event" in p.stderr, p.stderr
