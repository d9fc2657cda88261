"""website visits, number pools, swap rules, form leads and call attribution

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dni_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("origins", sa.String(length=2000), nullable=False),
        sa.Column("replace_numbers", sa.String(length=500), nullable=False),
        sa.Column("consent_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("hold_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column("forms", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_dni_sites_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dni_sites")),
        sa.UniqueConstraint("key", name=op.f("uq_dni_sites_key")),
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("landing_page", sa.String(length=2000), nullable=False),
        sa.Column("referrer", sa.String(length=2000), nullable=True),
        sa.Column("source_name", sa.String(length=120), nullable=False),
        sa.Column("medium", sa.String(length=60), nullable=True),
        sa.Column("campaign_name", sa.String(length=120), nullable=True),
        sa.Column("keyword", sa.String(length=120), nullable=True),
        sa.Column("click_id_type", sa.String(length=8), nullable=True),
        sa.Column("click_id", sa.String(length=256), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_visits_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["dni_sites.id"],
            name=op.f("fk_visits_site_id_dni_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index("ix_visits_site_seen", ["site_id", "last_seen_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_visitor"), ["visitor"], unique=False)

    op.create_table(
        "leads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("form", sa.String(length=120), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("page", sa.String(length=2000), nullable=True),
        sa.Column("source_name", sa.String(length=120), nullable=True),
        sa.Column("medium", sa.String(length=60), nullable=True),
        sa.Column("campaign_name", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_leads_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["dni_sites.id"],
            name=op.f("fk_leads_site_id_dni_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_leads_visit_id_visits"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_leads_account_created", ["account_id", "created_at"], unique=False
        )

    op.create_table(
        "visit_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_pages_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_pages")),
    )
    with op.batch_alter_table("visit_pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_pages_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "dni_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("number_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "field IN ('source', 'medium', 'campaign', 'referrer', 'landing')",
            name=op.f("ck_dni_rules_field"),
        ),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["tracking_numbers.id"],
            name=op.f("fk_dni_rules_number_id_tracking_numbers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["dni_sites.id"],
            name=op.f("fk_dni_rules_site_id_dni_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dni_rules")),
    )
    op.create_table(
        "number_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.String(length=32), nullable=False),
        sa.Column("number_id", sa.Integer(), nullable=False),
        sa.Column("held_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recycled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["tracking_numbers.id"],
            name=op.f("fk_number_holds_number_id_tracking_numbers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_number_holds_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_holds")),
    )
    with op.batch_alter_table("number_holds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_number_holds_number_from", ["number_id", "held_from"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_number_holds_visit_id"), ["visit_id"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visit_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("attribution", sa.String(length=12), nullable=True))
        batch_op.create_index(batch_op.f("ix_calls_visit_id"), ["visit_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_visit_id_visits"),
            "visits",
            ["visit_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pool_site_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_tracking_numbers_pool_site_id"), ["pool_site_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tracking_numbers_pool_site_id_dni_sites"),
            "dni_sites",
            ["pool_site_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tracking_numbers_pool_site_id_dni_sites"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_tracking_numbers_pool_site_id"))
        batch_op.drop_column("pool_site_id")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_calls_visit_id_visits"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_calls_visit_id"))
        batch_op.drop_column("attribution")
        batch_op.drop_column("visit_id")

    with op.batch_alter_table("number_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_holds_visit_id"))
        batch_op.drop_index("ix_number_holds_number_from")

    op.drop_table("number_holds")
    op.drop_table("dni_rules")
    with op.batch_alter_table("visit_pages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_pages_visit_id"))

    op.drop_table("visit_pages")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_account_created")

    op.drop_table("leads")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_visitor"))
        batch_op.drop_index("ix_visits_site_seen")

    op.drop_table("visits")
    op.drop_table("dni_sites")
