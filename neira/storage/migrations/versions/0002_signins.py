"""signins: the pages' sign-in codes and sessions, as digests, shared by every replica

Revision ID: 0002
Revises: 0001
Created: 2026-12-02 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signins',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('digest'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('signins')
