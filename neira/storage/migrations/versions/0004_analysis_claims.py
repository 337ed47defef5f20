"""analysis claims: which replica measures a subject under analysis, and until when

Revision ID: 0004
Revises: 0003
Created: 2026-12-02 02:40:00

Made only when missing, like the baseline's tables: a database that start-up created from the declared
tables (a test's "old start-up" creates them all) already has it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analysis_claims',
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('replica', sa.String(length=32), nullable=False),
    sa.Column('until', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('subject'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('analysis_claims')
