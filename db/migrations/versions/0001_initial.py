"""people, models, templates, events

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(100), unique=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_people_name", "people", ["name"])
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("views", sa.String(50), nullable=False),
        sa.Column("embedding_size", sa.Integer, nullable=False),
        sa.Column("tau", sa.Float, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("name", "weights_sha256", "views"),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("face_size", sa.Float, nullable=False),
        sa.Column("sharpness", sa.Float, nullable=False),
        sa.Column("face_jpeg", sa.LargeBinary),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("person_id", "model_id", "source_hash"),
    )
    op.create_index("ix_templates_person_id", "templates", ["person_id"])
    op.create_index("ix_templates_model", "templates", ["model_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", TZ, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="SET NULL")),
        sa.Column("person_name", sa.String(200)),
        sa.Column("distance", sa.Float),
        sa.Column("margin", sa.Float),
        sa.Column("liveness", sa.Float),
        sa.Column("model", sa.String(300)),
        sa.Column("tau", sa.Float),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.Column("details", sa.Text),
        sa.Column("snapshot_jpeg", sa.LargeBinary),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_person_id", "events", ["person_id"])


def downgrade() -> None:
    for table in ("events", "templates", "models", "people"):
        op.drop_table(table)
