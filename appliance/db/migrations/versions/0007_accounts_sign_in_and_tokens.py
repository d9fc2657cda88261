"""roles for agencies and clients, browser sessions, sign-in lockout and second step, e-mail
addresses and mailed links, token
scopes and expiry, the account of each audit entry, call log indexes, released tracking
numbers, SIP endpoints, white label

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROLES = "role IN ('owner', 'admin', 'manager', 'analyst', 'client_viewer')"
OLD_ROLES = "role IN ('admin', 'manager', 'viewer')"


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
    # a viewer read everything of its account: that is an analyst now
    op.execute("UPDATE users SET role = 'analyst' WHERE role = 'viewer'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_check_constraint("role", ROLES)
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("totp_sealed", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("scopes", sa.String(length=300), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    # tokens made before scopes existed keep what they could do: read calls and recordings
    op.execute("UPDATE api_keys SET scopes = 'calls:read recordings:read recordings:control'")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_log_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_audit_log_account_id_accounts",
            "accounts",
            ["account_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("verified", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)
    op.create_table(
        "user_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('invite', 'reset')", name=op.f("ck_user_links_purpose")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_links_token_hash")),
    )
    op.create_index(op.f("ix_user_links_user_id"), "user_links", ["user_id"], unique=False)
    op.create_index(
        "ix_calls_account_started", "calls", ["account_id", "started_at", "id"], unique=False
    )
    op.create_index("ix_calls_started", "calls", ["started_at", "id"], unique=False)
    op.create_index(
        "ix_calls_dashboard",
        "calls",
        ["started_at", "account_id", "tracking_number_id", "disposition", "first_time"],
        unique=False,
    )
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("brand_name", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("brand_colour", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("brand_logo", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("brand_logo_type", sa.String(length=16), nullable=True))
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=True),
        sa.Column("password_sealed", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_endpoints_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoints_name")),
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for column in ("brand_logo_type", "brand_logo", "brand_colour", "brand_name"):
            batch_op.drop_column(column)
    op.drop_table("endpoints")
    with op.batch_alter_table("tracking_numbers", schema=None) as batch_op:
        batch_op.drop_column("released_at")
    op.drop_index("ix_calls_dashboard", table_name="calls")
    op.drop_index("ix_calls_started", table_name="calls")
    op.drop_index("ix_calls_account_started", table_name="calls")
    op.drop_index(op.f("ix_user_links_user_id"), table_name="user_links")
    op.drop_table("user_links")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_log_account_id_accounts", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_audit_log_account_id"))
        batch_op.drop_column("account_id")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        for column in ("last_used_at", "revoked_at", "expires_at", "scopes", "name"):
            batch_op.drop_column(column)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_sealed")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
    op.execute("UPDATE users SET role = 'viewer' WHERE role IN ('analyst', 'client_viewer')")
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'owner'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_check_constraint("role", OLD_ROLES)
