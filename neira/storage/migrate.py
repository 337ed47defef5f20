"""The schema's one history (Alembic, `neira/storage/migrations/`), applied at start and by `neira migrate`.

The baseline revision creates each table and index only if it is missing, so a database made before
migrations existed (tables, no `alembic_version`) is brought to it as start-up used to do (missing tables
and indexes created); every later change is a revision of its own. On
PostgreSQL the upgrade holds an advisory lock for its transaction, so replicas starting together migrate
once and the others wait for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

BASELINE = "0001"
LOCK_KEY = 0x6E65697261  # "neira": the advisory lock replicas take while migrating


def config(connection: Any | None = None) -> Config:
    """Alembic's configuration for our history, bound to `connection` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision of the history."""
    return ScriptDirectory.from_config(config()).get_current_head() or BASELINE


def current(sync_conn: Any) -> str | None:
    """The revision the database is at (None: not under migrations yet)."""
    return MigrationContext.configure(sync_conn).get_current_revision()


def upgrade(sync_conn: Any) -> tuple[str | None, str]:
    """Bring the database to the head revision (inside the caller's transaction); (from, to)."""
    if sync_conn.dialect.name == "postgresql":
        sync_conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    before = current(sync_conn)
    command.upgrade(config(sync_conn), "head")
    return before, current(sync_conn) or head()
