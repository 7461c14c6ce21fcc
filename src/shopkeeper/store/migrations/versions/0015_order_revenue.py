"""each order's revenue kept on its event, and an index for one trait of everyone

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 13:50:00

Reports read an order's revenue from `events.revenue` instead of parsing every order's payload (1M
events: the holdout report spent half its time there). The orders stored before are filled in here,
in batches; a row left empty is still read from its payload. `traits (key, person_id)` lets an
audience's trait leaf read one trait without scanning every trait of everyone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.store.event_log import ORDER_COMPLETED, stored_revenue

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BATCH = 5_000


def upgrade() -> None:
    op.add_column("events", sa.Column("revenue", sa.Float(), nullable=True))
    op.create_index("ix_traits_key_person_id", "traits", ["key", "person_id"])
    events = sa.table(
        "events", sa.column("id"), sa.column("event"), sa.column("payload"), sa.column("revenue", sa.Float())
    )
    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.payload)
            .where(events.c.event == ORDER_COMPLETED, events.c.id > after)
            .order_by(events.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            sa.update(events)
            .where(events.c.id == sa.bindparam("row"))
            .values(revenue=sa.bindparam("amount")),
            [{"row": row.id, "amount": stored_revenue(row.payload)} for row in rows],
        )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_traits_key_person_id", table_name="traits")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("revenue")
