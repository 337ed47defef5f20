"""Alembic's environment for neira: always given a live connection by `neira.storage.migrate` (never a URL
from an ini file), the one schema history for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context

from neira.storage import tables

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    # SQLite alters a column by copying its table: revisions that alter columns are written in batch mode
    # (the baseline, which only creates, was not).
    render_as_batch=context.config.attributes.get("render_as_batch", connection.dialect.name == "sqlite"),
    compare_type=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
