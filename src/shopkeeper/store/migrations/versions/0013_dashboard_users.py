"""dashboard users, sessions and failed logins

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shopkeeper.store.schema

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_AT = shopkeeper.store.schema.UtcDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("disabled_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_users"),
        sa.UniqueConstraint("email", name="uq_dashboard_users_email"),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("expires_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_dashboard_sessions"),
    )
    op.create_index("ix_dashboard_sessions_user_id", "dashboard_sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_subject_at", "login_failures", ["subject", "at"])


def downgrade() -> None:
    for table in ("login_failures", "dashboard_sessions", "dashboard_users"):
        op.drop_table(table)
