"""integrator hooks: tags, notes and score adjustments on calls; call.finished is call.ended

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 06:00:00

Integrators (AGI scripts, plugins) tag calls, adjust their lead score and attach notes. The
webhook event `call.finished` is renamed `call.ended`, beside the new lifecycle events.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _rename_event(old: str, new: str) -> None:
    # whole words only: destinations.events is a space-separated list
    op.execute(
        sa.text(
            "UPDATE destinations SET events = "
            "TRIM(REPLACE(' ' || events || ' ', :old, :new)) WHERE ' ' || events || ' ' LIKE :like"
        ).bindparams(old=f" {old} ", new=f" {new} ", like=f"% {old} %")
    )
    op.execute(
        sa.text("UPDATE deliveries SET event = :new WHERE event = :old").bindparams(
            old=old, new=new
        )
    )


def upgrade() -> None:
    op.create_table(
        "call_tags",
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_tags_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", "tag", name=op.f("pk_call_tags")),
    )
    op.create_table(
        "call_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("origin", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_notes_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_notes")),
    )
    op.create_index(op.f("ix_call_notes_call_id"), "call_notes", ["call_id"], unique=False)
    op.add_column(
        "calls",
        sa.Column("score_adjustment", sa.Integer(), server_default="0", nullable=False),
    )
    _rename_event("call.finished", "call.ended")


def downgrade() -> None:
    _rename_event("call.ended", "call.finished")
    # plain DROP COLUMN (SQLite 3.35+): a batch copy would drop `calls` and cascade
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE calls DROP COLUMN score_adjustment")
    else:
        op.drop_column("calls", "score_adjustment")
    op.drop_index(op.f("ix_call_notes_call_id"), table_name="call_notes")
    op.drop_table("call_notes")
    op.drop_table("call_tags")
