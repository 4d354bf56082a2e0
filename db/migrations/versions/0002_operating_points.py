"""operating points (the thresholds a gallery decides with) and the impostor cohort

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operating_points",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("gallery_revision", sa.Integer, nullable=False),
        sa.Column("method", sa.String(50), nullable=False),
        sa.Column("fpir", sa.Float, nullable=False),
        sa.Column("far", sa.Float, nullable=False),
        sa.Column("tau_identify", sa.Float, nullable=False),
        sa.Column("tau_verify", sa.Float, nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("templates", sa.Integer, nullable=False),
        sa.Column("cohort", sa.Integer, nullable=False),
        sa.Column("pairs", sa.Integer, nullable=False),
        sa.Column("thin", sa.Boolean, nullable=False),
        sa.Column("details", sa.Text),
    )
    op.create_index("ix_operating_points_model", "operating_points", ["model_id", "id"])
    op.create_table(
        "cohort",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_id", "source_hash"),
    )


def downgrade() -> None:
    op.drop_table("cohort")
    op.drop_index("ix_operating_points_model", "operating_points")
    op.drop_table("operating_points")
