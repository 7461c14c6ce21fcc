"""an index on items.updated_at: decide checks its catalog cache against the newest change

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 06:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_items_updated_at"), "items", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_items_updated_at"), table_name="items")
