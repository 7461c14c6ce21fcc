"""indexes on (person_id, id) of events and interactions: decide's stamp finds a person's newest in one probe

Without them PostgreSQL read every row of the person to find the largest id (1.3 ms for a person with
5,000 order lines).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_events_person_id_id"), "events", ["person_id", "id"], unique=False)
    op.create_index(op.f("ix_interactions_person_id_id"), "interactions", ["person_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_interactions_person_id_id"), table_name="interactions")
    op.drop_index(op.f("ix_events_person_id_id"), table_name="events")
