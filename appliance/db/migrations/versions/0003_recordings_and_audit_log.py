"""recordings and audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 02:47:55.942311
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.String(length=128), nullable=False),
        sa.Column("audio_format", sa.String(length=32), nullable=False),
        sa.Column("plaintext_bytes", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_recordings_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_recordings")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_key_id"), ["key_id"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consent_announced", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "recording_opted_out", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )

    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recording", sa.String(length=10), server_default="never", nullable=False)
        )
        batch_op.add_column(sa.Column("consent_prompt", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("consent_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_routes_recording"), "recording IN ('always', 'never', 'on_demand')"
        )
    op.execute(sa.text("UPDATE routes SET recording = 'always' WHERE record"))
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_column("record")


def downgrade() -> None:
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("record", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(sa.text("UPDATE routes SET record = (recording = 'always')"))
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_routes_recording"), type_="check")
        batch_op.drop_column("consent_opt_out")
        batch_op.drop_column("consent_prompt")
        batch_op.drop_column("recording")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("recording_opted_out")
        batch_op.drop_column("consent_announced")

    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordings_key_id"))

    op.drop_table("recordings")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
