"""door liveness: which liveness parts a door runs and its last decision's liveness score,
for the admin page's view of each door

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("doors") as batch:
        batch.add_column(sa.Column("liveness", sa.String(40)))
        batch.add_column(sa.Column("last_liveness", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("doors") as batch:
        batch.drop_column("last_liveness")
        batch.drop_column("liveness")
