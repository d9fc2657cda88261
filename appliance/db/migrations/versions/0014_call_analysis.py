"""call analysis: phrase rules per account, and what each transcribed call was about

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("phrases", sa.Text(), nullable=False),
        sa.Column("speaker", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "speaker IN ('any', 'caller', 'answerer')", name=op.f("ck_analysis_rules_speaker")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_analysis_rules_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_rules")),
        sa.UniqueConstraint("account_id", "tag", name="uq_analysis_rules_account_tag"),
    )
    op.create_table(
        "call_analyses",
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("spam", sa.Boolean(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("analysed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["transcripts.call_id"],
            name=op.f("fk_call_analyses_call_id_transcripts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_analyses")),
    )
    with op.batch_alter_table("call_analyses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_analyses_score"), ["score"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_analyses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_analyses_score"))

    op.drop_table("call_analyses")
    op.drop_table("analysis_rules")
