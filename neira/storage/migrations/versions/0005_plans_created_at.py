"""plans by age: an index on plans.created_at, so plans never applied are dropped after the plan TTL

Revision ID: 0005
Revises: 0004
Created: 2026-12-02 12:10:00

Made only when missing, like the baseline's indexes.
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_plans_created_at'), 'plans', ['created_at'], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_plans_created_at'), table_name='plans')
