"""templates (every save a new version) and template_aborts (messages not produced, per reason)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shopkeeper.store.schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_AT = shopkeeper.store.schema.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("saved_at", _AT, nullable=False),
        sa.Column("saved_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_table(
        "template_aborts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "reason"),
    )


def downgrade() -> None:
    op.drop_table("template_aborts")
    op.drop_table("templates")
