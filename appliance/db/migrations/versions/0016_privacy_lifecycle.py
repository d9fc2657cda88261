"""privacy lifecycle: retention, legal hold, restriction, erasure, consent evidence

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 02:00:00

Retention per data type with a legal hold per account or call, the per-number restriction
list, resumable erasure requests, account deletion with a grace period and the consent
evidence of each call.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("subject_sealed", sa.String(length=1000), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed", sa.String(length=500), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'done')", name=op.f("ck_erasure_requests_state")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_erasure_requests_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
    )
    op.create_table(
        "restricted_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_restricted_numbers_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restricted_numbers")),
        sa.UniqueConstraint("account_id", "e164", name=op.f("uq_restricted_numbers_account_id")),
    )
    op.add_column("accounts", sa.Column("transcript_days", sa.Integer(), nullable=True))
    op.add_column("accounts", sa.Column("call_days", sa.Integer(), nullable=True))
    op.add_column(
        "accounts",
        sa.Column("call_expiry", sa.String(length=10), server_default="anonymise", nullable=False),
    )
    op.add_column("accounts", sa.Column("visit_days", sa.Integer(), nullable=True))
    op.add_column("accounts", sa.Column("lead_days", sa.Integer(), nullable=True))
    op.add_column("accounts", sa.Column("delivery_days", sa.Integer(), nullable=True))
    op.add_column("accounts", sa.Column("legal_hold_days", sa.Integer(), nullable=True))
    op.add_column(
        "accounts", sa.Column("delete_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("accounts", sa.Column("erase_after", sa.DateTime(timezone=True), nullable=True))

    op.add_column("calls", sa.Column("consent_prompt", sa.String(length=100), nullable=True))
    op.add_column("calls", sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "calls", sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "calls", sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("calls", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+): a batch copy would drop `calls`, whose ON DELETE
    # CASCADE would take the recordings with it
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, columns in (
        ("calls", ("anonymised_at", "legal_hold", "restricted", "consent_at", "consent_prompt")),
        (
            "accounts",
            (
                "erase_after",
                "delete_requested_at",
                "legal_hold_days",
                "delivery_days",
                "lead_days",
                "visit_days",
                "call_expiry",
                "call_days",
                "transcript_days",
            ),
        ),
    ):
        for column in columns:
            if sqlite:
                op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            else:
                op.drop_column(table, column)
    op.drop_table("restricted_numbers")
    op.drop_table("erasure_requests")
