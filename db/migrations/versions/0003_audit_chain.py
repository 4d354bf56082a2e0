"""events: door, actor, kind (decision / admin), the relay's and notifiers' outcomes, and a
hash chain (record, prev_hash, hash) over every row, existing rows included

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import hashlib

import sqlalchemy as sa
from alembic import op

from db.audit import GENESIS, link, record_of

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW = (sa.Column("kind", sa.String(20), nullable=False, server_default="decision"),
       sa.Column("door", sa.String(100)), sa.Column("actor", sa.String(200)),
       sa.Column("actuation", sa.Text), sa.Column("delivery", sa.Text),
       sa.Column("snapshot_sha256", sa.String(64)), sa.Column("record", sa.Text),
       sa.Column("prev_hash", sa.String(64)), sa.Column("hash", sa.String(64)))


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for column in NEW:
            batch.add_column(column)
    conn = op.get_bind()
    # rows of people still enrolled get their name, so the chained record keeps who it was
    conn.execute(sa.text("UPDATE events SET person_name = (SELECT name FROM people "
                         "WHERE people.id = events.person_id) "
                         "WHERE person_name IS NULL AND person_id IS NOT NULL"))
    events = sa.table("events", *(sa.column(c) for c in (
        "id", "time", "kind", "door", "actor", "source", "decision", "reason", "person_id",
        "person_name", "distance", "margin", "liveness", "model", "tau", "details",
        "snapshot_jpeg", "snapshot_sha256", "record", "prev_hash", "hash")))
    prev = GENESIS
    for row in conn.execute(sa.select(events).order_by(events.c.id)).all():
        sha = hashlib.sha256(row.snapshot_jpeg).hexdigest() if row.snapshot_jpeg else None
        record = record_of(row, snapshot_sha256=sha)
        digest = link(prev, record)
        conn.execute(sa.update(events).where(events.c.id == row.id).values(
            snapshot_sha256=sha, record=record, prev_hash=prev, hash=digest))
        prev = digest


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for column in reversed(NEW):
            batch.drop_column(column.name)
