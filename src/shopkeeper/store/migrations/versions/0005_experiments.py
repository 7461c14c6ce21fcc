"""experiments, and the cohort, experiment, arm, propensity and unit of every decision

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shopkeeper.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_AT = shopkeeper.store.schema.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("unit", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("cohort", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("experiment", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("arm", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("propensity", sa.Float(), nullable=True))
    op.create_index(
        "ix_decisions_experiment_unit",
        "decisions",
        ["experiment", "unit", "arm", "at", "person_id", "propensity"],
        unique=False,
    )
    op.create_index(
        "ix_decisions_cohort_unit",
        "decisions",
        ["cohort", "unit", "at", "person_id", "propensity"],
        unique=False,
    )
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("weights", sa.Text(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=True),
        sa.Column("outcome_events", sa.Text(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("floor", sa.Float(), nullable=False),
        sa.Column("salt", sa.String(length=128), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("stopped_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_experiments")),
    )
    op.create_index(
        op.f("ix_experiments_placement_status"), "experiments", ["placement", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_experiments_placement_status"), table_name="experiments")
    op.drop_table("experiments")
    op.drop_index("ix_decisions_cohort_unit", table_name="decisions")
    op.drop_index("ix_decisions_experiment_unit", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        for column in ("propensity", "arm", "experiment", "cohort", "unit"):
            batch.drop_column(column)
