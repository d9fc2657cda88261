"""compiled routes: dynamic routes, the route of each call, how a call was recorded

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dynamic", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_calls_route_id_routes", "routes", ["route_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.alter_column("via", server_default="live")
    # Calls are no longer routed by the controller: a record is made live (AMI) or reconciled.
    op.execute("UPDATE calls SET via = 'live' WHERE via = 'controller'")
    op.execute("UPDATE calls SET via = 'reconciled' WHERE via = 'fallback'")


def downgrade() -> None:
    op.execute("UPDATE calls SET via = 'controller' WHERE via = 'live'")
    op.execute("UPDATE calls SET via = 'fallback' WHERE via = 'reconciled'")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.alter_column("via", server_default="controller")
        batch_op.drop_constraint("fk_calls_route_id_routes", type_="foreignkey")
        batch_op.drop_column("route_id")
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_column("dynamic")
