"""Alembic's entry point. shopkeeper always hands it an open connection (see `engine.migrate`)."""

from __future__ import annotations

from alembic import context

from shopkeeper.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
