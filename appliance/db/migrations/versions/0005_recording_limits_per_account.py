"""recording limits per account

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 03:02:41.220034
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_quota_mb", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("recording_days", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "recording_when_full",
                sa.String(length=16),
                server_default="delete_oldest",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("recording_paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("recording_paused")
        batch_op.drop_column("recording_when_full")
        batch_op.drop_column("recording_days")
        batch_op.drop_column("recording_quota_mb")
