"""call outcomes and route options

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 02:04:14.691279
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hangup_party", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("answered_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("ring_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("talk_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("first_time", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("after_hours", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("via", sa.String(length=12), server_default="controller", nullable=False)
        )
        batch_op.create_index(
            "ix_calls_account_caller", ["account_id", "caller_number"], unique=False
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_calls_disposition"),
            "disposition IN ('answered', 'no_answer', 'busy', 'failed', 'abandoned')",
        )

    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announcement", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("whisper", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("hours", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
        )
        batch_op.add_column(sa.Column("after_hours_route_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_routes_after_hours_route_id_routes"),
            "routes",
            ["after_hours_route_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_routes_after_hours_route_id_routes"), type_="foreignkey"
        )
        batch_op.drop_column("is_default")
        batch_op.drop_column("after_hours_route_id")
        batch_op.drop_column("timezone")
        batch_op.drop_column("hours")
        batch_op.drop_column("whisper")
        batch_op.drop_column("announcement")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_calls_disposition"), type_="check")
        batch_op.drop_index("ix_calls_account_caller")
        batch_op.drop_column("via")
        batch_op.drop_column("after_hours")
        batch_op.drop_column("first_time")
        batch_op.drop_column("talk_seconds")
        batch_op.drop_column("ring_seconds")
        batch_op.drop_column("answered_by")
        batch_op.drop_column("hangup_party")
