"""the dashboard counts calls by the source and campaign each came in with

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 17:40:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_dashboard")
        batch_op.create_index(
            "ix_calls_dashboard",
            [
                "started_at",
                "account_id",
                "source_name",
                "campaign_name",
                "disposition",
                "first_time",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_dashboard")
        batch_op.create_index(
            "ix_calls_dashboard",
            ["started_at", "account_id", "tracking_number_id", "disposition", "first_time"],
            unique=False,
        )
