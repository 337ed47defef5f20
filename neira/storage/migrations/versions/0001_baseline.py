"""baseline: the schema as start-up created it before migrations

Revision ID: 0001
Revises: (none)
Created: 2026-12-02 00:41:12.299651
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analysis_runs',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('since', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('ms', sa.Float(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('ix_analysis_runs_subject_seq', 'analysis_runs', ['subject', 'seq'], unique=False, if_not_exists=True)
    op.create_table('audit',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=160), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decision_ids', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_table('catalog',
    sa.Column('family', sa.String(length=8), nullable=False),
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('kind_value', sa.String(length=128), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('family', 'id', 'version'),
    if_not_exists=True,
    )
    op.create_table('cell_records',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('previous_state', sa.String(length=16), nullable=True),
    sa.Column('hitl', sa.Boolean(), nullable=False),
    sa.Column('template', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index('ix_cell_records_identity', 'cell_records', ['template_id', 'version', 'backend'], unique=True, if_not_exists=True)
    op.create_index(op.f('ix_cell_records_state'), 'cell_records', ['state'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_cell_records_template_id'), 'cell_records', ['template_id'], unique=False, if_not_exists=True)
    op.create_table('counters',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    if_not_exists=True,
    )
    op.create_table('events',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=160), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('ix_events_subject_seq', 'events', ['subject', 'seq'], unique=False, if_not_exists=True)
    op.create_table('holds',
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('since', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('subject'),
    if_not_exists=True,
    )
    op.create_table('idempotency',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key'),
    if_not_exists=True,
    )
    op.create_table('organs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('template', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('auto', sa.Boolean(), nullable=False),
    sa.Column('deadline', sa.Float(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cells', sa.JSON(), nullable=False),
    sa.Column('stage_times', sa.JSON(), nullable=False),
    sa.Column('build_started_at', sa.Float(), nullable=True),
    sa.Column('build_finished_at', sa.Float(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_organs_state'), 'organs', ['state'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_organs_template_id'), 'organs', ['template_id'], unique=False, if_not_exists=True)
    op.create_table('plans',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=True),
    sa.Column('base', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('applied_at', sa.Float(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_plans_session_id'), 'plans', ['session_id'], unique=False, if_not_exists=True)
    op.create_table('quarantine',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('measurement', sa.JSON(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('released_at', sa.Float(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('ix_quarantine_record', 'quarantine', ['record_id'], unique=False, if_not_exists=True)
    op.create_table('record_history',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_record_history_record_id'), 'record_history', ['record_id'], unique=False, if_not_exists=True)
    op.create_table('run_memory',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('scope', sa.String(length=160), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('entry', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('ix_run_memory_scope_seq', 'run_memory', ['scope', 'seq'], unique=False, if_not_exists=True)
    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    if_not_exists=True,
    )
    op.create_table('training_iterations',
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('passed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('p99_ms', sa.Float(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('record_id', 'iteration'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_training_iterations_session_id'), 'training_iterations', ['session_id'], unique=False, if_not_exists=True)
    op.create_table('training_reviews',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=8), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )
    op.create_index('ix_training_reviews_record', 'training_reviews', ['record_id', 'iteration', 'seq'], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_training_reviews_record', table_name='training_reviews')
    op.drop_table('training_reviews')
    op.drop_index(op.f('ix_training_iterations_session_id'), table_name='training_iterations')
    op.drop_table('training_iterations')
    op.drop_table('settings')
    op.drop_index('ix_run_memory_scope_seq', table_name='run_memory')
    op.drop_table('run_memory')
    op.drop_index(op.f('ix_record_history_record_id'), table_name='record_history')
    op.drop_table('record_history')
    op.drop_index('ix_quarantine_record', table_name='quarantine')
    op.drop_table('quarantine')
    op.drop_index(op.f('ix_plans_session_id'), table_name='plans')
    op.drop_table('plans')
    op.drop_index(op.f('ix_organs_template_id'), table_name='organs')
    op.drop_index(op.f('ix_organs_state'), table_name='organs')
    op.drop_table('organs')
    op.drop_table('idempotency')
    op.drop_table('holds')
    op.drop_index('ix_events_subject_seq', table_name='events')
    op.drop_table('events')
    op.drop_table('counters')
    op.drop_index(op.f('ix_cell_records_template_id'), table_name='cell_records')
    op.drop_index(op.f('ix_cell_records_state'), table_name='cell_records')
    op.drop_index('ix_cell_records_identity', table_name='cell_records')
    op.drop_table('cell_records')
    op.drop_table('catalog')
    op.drop_table('audit')
    op.drop_index('ix_analysis_runs_subject_seq', table_name='analysis_runs')
    op.drop_table('analysis_runs')
