"""each call keeps the source, medium and campaign it came in under

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("medium", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("campaign_name", sa.String(length=120), nullable=True))
    # calls so far: what their number says now is the best there is
    op.execute(
        "UPDATE calls SET source_name = (SELECT sources.name FROM tracking_numbers JOIN sources "
        "ON sources.id = tracking_numbers.source_id WHERE tracking_numbers.id = "
        "calls.tracking_number_id), medium = (SELECT sources.medium FROM tracking_numbers JOIN "
        "sources ON sources.id = tracking_numbers.source_id WHERE tracking_numbers.id = "
        "calls.tracking_number_id), campaign_name = (SELECT campaigns.name FROM tracking_numbers "
        "JOIN campaigns ON campaigns.id = tracking_numbers.campaign_id WHERE tracking_numbers.id "
        "= calls.tracking_number_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("campaign_name")
        batch_op.drop_column("medium")
        batch_op.drop_column("source_name")
