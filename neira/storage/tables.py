"""The schema, dialect-neutral (SQLite now, PostgreSQL later): SQLAlchemy Core tables on one MetaData."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()
# A sequence number: 64-bit everywhere (the routes take `since` up to 2**63 - 1), spelled INTEGER on SQLite,
# where only that spelling makes the column the rowid.
SEQ = BigInteger().with_variant(Integer(), "sqlite")

catalog = Table(
    "catalog",
    metadata,
    Column("family", String(8), primary_key=True),  # "cell" | "organ"
    Column("id", String(128), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # analysis|action|memory, or "organ"
    Column("kind_value", String(128), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

cell_records = Table(
    "cell_records",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("template_id", String(128), nullable=False, index=True),
    Column("version", String(64), nullable=False),
    Column("backend", String(16), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("previous_state", String(16)),
    Column("hitl", Boolean, nullable=False),
    Column("template", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_cell_records_identity", "template_id", "version", "backend", unique=True),
)

record_history = Table(
    "record_history",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("record_id", String(64), nullable=False, index=True),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("reason", Text),
)

organs = Table(
    "organs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("template_id", String(128), nullable=False, index=True),
    Column("template", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("auto", Boolean, nullable=False),  # automatic progression on; manual status stops it
    Column("deadline", Float),  # wall-clock time of the next automatic stage, when building
    Column("attempts", Integer, nullable=False),
    Column("cells", JSON, nullable=False),  # [{id, record_id}] the organ's cells and their records
    Column("stage_times", JSON, nullable=False),  # {state: at}
    Column("build_started_at", Float),
    Column("build_finished_at", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("type", String(64), nullable=False),
    Column("subject", String(160), nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_events_subject_seq", "subject", "seq"),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(160), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("reason", Text),
    Column("decision_ids", JSON, nullable=False),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("session_id", String(128), index=True),
    Column("base", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Float, nullable=False, index=True),  # plans never applied are dropped after the TTL
    Column("applied_at", Float),
    Column("result", JSON),
)

run_memory = Table(  # the `context` cell's memory: the newest entries per scope (an organ, or a cell record)
    "run_memory",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("scope", String(160), nullable=False),
    Column("at", Float, nullable=False),
    Column("entry", JSON, nullable=False),
    Index("ix_run_memory_scope_seq", "scope", "seq"),
)

training_iterations = Table(  # the Training Orchestrator: one row per iteration over a record's samples
    "training_iterations",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("iteration", Integer, primary_key=True),  # 1, 2, ... per record
    Column("score", Float, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("p99_ms", Float, nullable=False),
    Column("results", JSON, nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("session_id", String(128), index=True),  # the chat session that asked for it, if any
)

training_reviews = Table(  # HITL reviews of iterations; the newest review of an iteration is its verdict
    "training_reviews",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("record_id", String(64), nullable=False),
    Column("iteration", Integer, nullable=False),
    Column("verdict", String(8), nullable=False),  # accept | reject
    Column("comment", Text, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_training_reviews_record", "record_id", "iteration", "seq"),
)

analysis_runs = Table(  # canary analysis: one row per measured run of a record or an organ
    "analysis_runs",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("subject", String(80), nullable=False),  # cell:<record id> | organ:<organ id>
    Column("stage", String(16), nullable=False),  # the stage it was measured in (baseline: a stable version measured beside a canary)
    Column("since", Float, nullable=False),  # when the subject entered that stage: one stint, one set of measurements
    Column("source", String(16), nullable=False),  # samples | shadow | traffic (the immune system's traffic:<id> subjects)
    Column("ok", Boolean, nullable=False),  # the run completed
    Column("passed", Boolean, nullable=False),  # and its output met the sample's expect
    Column("ms", Float, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_analysis_runs_subject_seq", "subject", "seq"),
)

analysis_claims = Table(  # which replica measures a subject under analysis, until when (neira/analysis_claims.py)
    "analysis_claims",
    metadata,
    Column("subject", String(80), primary_key=True),  # cell:<record id> | organ:<organ id>
    Column("replica", String(32), nullable=False),
    Column("until", Float, nullable=False),  # the lease ends then unless its replica renews it
)

holds = Table(  # graduation: a human's hold on an organ's progression (contract §7); approve deletes it
    "holds",
    metadata,
    Column("subject", String(80), primary_key=True),  # organ:<id>
    Column("since", Float, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("reason", Text),
)

quarantine = Table(  # the immune system: a record taken out of traffic, why, and how it ended (neira/immune.py)
    "quarantine",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("record_id", String(64), nullable=False),
    Column("template_id", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("cause", String(16), nullable=False),  # error_rate | integrity
    Column("reason", Text, nullable=False),  # names the measurement: "error_rate 0.300 > max_error_rate 0.01 over 20 runs"
    Column("measurement", JSON, nullable=False),
    Column("at", Float, nullable=False),
    Column("released_at", Float),  # null while it holds
    Column("outcome", String(16)),  # healed | rolled_back | <the state a human moved it to>
    Index("ix_quarantine_record", "record_id"),
)

# The pages' sign-in codes and sessions (api/signin.py), shared by every replica: only SHA-256 digests of the
# secrets are kept, so a row gives nothing a caller could replay.
signins = Table(
    "signins",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # "code" | "session"
    Column("role", String(16), nullable=False),
    Column("expires_at", Float, nullable=False),
)
