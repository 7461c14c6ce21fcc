"""personas and audiences: persona_runs, personas, persona_members, audiences

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shopkeeper.store.schema

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_AT = shopkeeper.store.schema.UtcDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "persona_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_persona_runs"),
    )
    op.create_table(
        "personas",
        sa.Column("persona_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("renamed", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("persona_id", name="pk_personas"),
    )
    op.create_table(
        "persona_members",
        sa.Column("person_id", _ID, nullable=False),
        sa.Column("persona_id", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name="pk_persona_members"),
    )
    op.create_index("ix_persona_members_persona_id", "persona_members", ["persona_id"])
    op.create_table(
        "audiences",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_audiences"),
    )


def downgrade() -> None:
    for table in ("audiences", "persona_members", "personas", "persona_runs"):
        op.drop_table(table)
