"""Processes racing on one database: opening a new home at once, being killed while the
schema is made, and enrolling the same new name at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from db.store import NewTemplate, Store

CTX = mp.get_context("fork")


def _open(url: str, barrier, results) -> None:
    barrier.wait()
    try:
        Store(url, timeout=60).close()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_home_at_once_all_succeed(tmp_path):
    failures = []
    for round_ in range(8):
        url = f"sqlite:///{tmp_path / f'home{round_}' / 'faceid.db'}"
        barrier, results = CTX.Barrier(3), CTX.Queue()
        procs = [CTX.Process(target=_open, args=(url, barrier, results)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        failures += [r for r in (results.get(timeout=5) for _ in procs) if r != "ok"]
    assert not failures, failures[:3]


def _die_after(url: str, statements: int) -> None:
    """Open a new database and die (as kill -9 would) after ``statements`` DDL
    statements of the schema's creation."""
    import db.engine as engine

    make = engine.create_engine

    def dying_engine(url: str, timeout: float):
        e = make(url, timeout)
        seen = [0]

        @sa.event.listens_for(e, "after_cursor_execute")
        def count(conn, cursor, statement, *args):  # noqa: ANN001
            if statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
                seen[0] += 1
                if seen[0] == statements:
                    os._exit(9)
        return e

    engine.create_engine = dying_engine
    import db.store

    db.store.create_engine = dying_engine
    Store(url)
    os._exit(0)  # the schema has fewer statements: not a kill


@pytest.mark.parametrize("statements", [1, 3, 5, 8, 12])
def test_a_kill_while_the_schema_is_made_leaves_a_database_that_opens(tmp_path, statements):
    url = f"sqlite:///{tmp_path / 'faceid.db'}"
    p = CTX.Process(target=_die_after, args=(url, statements))
    p.start()
    p.join(120)
    assert p.exitcode in (9, 0)
    store = Store(url)  # must open (and finish the schema), not fail on half of one
    mid = store.model_record("m", "sha", "std", 4, 0.5).id
    store.enroll("Ada", [NewTemplate(np.ones(4, np.float32), "a.jpg", "h", 1.0, 90.0, 50.0)],
                 mid)
    assert [p.name for p in store.people()] == ["Ada"]
    assert store.verify_chain().ok


def _enrol_names(url: str, worker: int, names: list[str], barrier, results) -> None:
    store = Store(url, timeout=60)
    mid = store.model_record("m", "sha", "std", 4, 0.5).id
    barrier.wait()
    errors = []
    rng = np.random.default_rng(worker)
    for i, name in enumerate(names):
        t = NewTemplate(rng.random(4).astype(np.float32), f"w{worker}-{i}.jpg",
                        f"w{worker}-{i}", 1.0, 90.0, 50.0)
        try:
            store.enroll(name, [t], mid)
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put(errors)


def _same_name_race(url: str, workers: int = 4, names: int = 80) -> None:
    Store(url).close()
    people = [f"Person {i}" for i in range(names)]
    barrier, results = CTX.Barrier(workers), CTX.Queue()
    procs = [CTX.Process(target=_enrol_names, args=(url, w, people, barrier, results))
             for w in range(workers)]
    for p in procs:
        p.start()
    errors = [e for _ in procs for e in results.get(timeout=300)]
    for p in procs:
        p.join(60)
    assert not errors, errors[:3]
    store = Store(url)
    rows = store.people()
    assert len(rows) == names == len({r.name for r in rows})  # no duplicates
    assert sum(r.templates for r in rows) == workers * names  # no template lost
    assert store.verify_chain().ok


def test_concurrent_enrolment_of_the_same_names_makes_no_duplicates_sqlite(tmp_path: Path):
    _same_name_race(f"sqlite:///{tmp_path / 'faceid.db'}")


def test_concurrent_enrolment_of_the_same_names_makes_no_duplicates_postgresql(postgres):
    _same_name_race(postgres.new_database())
