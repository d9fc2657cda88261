"""sign-in locks per user and client network

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 09:00:00

Wrong answers lock one client network out of one user (`signin_failures`), no longer the
user for everyone (`users.locked_until` goes). `users.failed_logins` now counts the user's
wrong answers from all networks since `users.failed_at` was a quiet quarter hour ago.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _drop_user_column(name: str) -> None:
    # plain DROP COLUMN (SQLite 3.35+): a batch copy would drop `users` and cascade
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE users DROP COLUMN {name}")
    else:
        op.drop_column("users", name)


def upgrade() -> None:
    op.create_table(
        "signin_failures",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_signin_failures_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "network", name=op.f("pk_signin_failures")),
    )
    op.create_index(
        op.f("ix_signin_failures_last_failed_at"),
        "signin_failures",
        ["last_failed_at"],
        unique=False,
    )
    op.add_column("users", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    _drop_user_column("locked_until")


def downgrade() -> None:
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    _drop_user_column("failed_at")
    op.drop_index(op.f("ix_signin_failures_last_failed_at"), table_name="signin_failures")
    op.drop_table("signin_failures")
