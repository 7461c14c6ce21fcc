"""people.generation: a person link is bound to the person id and this number, which a merge redraws

Existing people get 0; links signed before this release are of the old `pt1` form and are refused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("generation", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("generation")
