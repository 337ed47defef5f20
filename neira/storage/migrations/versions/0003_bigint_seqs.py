"""64-bit sequence numbers on PostgreSQL (events, audit, analysis runs, …): the routes take `since` up to
2**63 - 1, and a busy install must not run out at 2**31. SQLite's INTEGER is 64-bit already.

Revision ID: 0003
Revises: 0002
Created: 2026-12-02 02:58:00
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ("record_history", "events", "audit", "run_memory", "training_reviews", "analysis_runs", "quarantine")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:  # the column, and the sequence behind it (made `AS integer` by serial)
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN seq TYPE BIGINT')
        op.execute(f"DO $$ BEGIN EXECUTE 'ALTER SEQUENCE ' || pg_get_serial_sequence('\"{table}\"', 'seq') "
                   f"|| ' AS BIGINT'; END $$")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN seq TYPE INTEGER')
