"""door status: each door's last heartbeat, for the server's view of a site

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "doors",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(200)),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.Column("running", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("fps", sa.Float),
        sa.Column("last_decision", sa.String(50)),
        sa.Column("last_decision_at", TZ),
    )


def downgrade() -> None:
    op.drop_table("doors")
