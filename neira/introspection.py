"""Counts for `/api/neira/introspection/status`: what the factory, the organs and the catalog hold."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from neira.policy import PolicyEngine
from neira.storage import tables
from neira.storage.db import Database

STARTED_AT = time.time()


async def _count_by(db: Database, column: Any) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(select(column, func.count()).group_by(column))
        return {str(k): int(n) for k, n in rows}


async def status(db: Database, policy: PolicyEngine) -> dict[str, Any]:
    """A snapshot of the whole service."""
    records = await _count_by(db, tables.cell_records.c.state)
    organs = await _count_by(db, tables.organs.c.state)
    families = await _count_by(db, tables.catalog.c.family)
    return {
        "safe_mode": policy.safe_mode_status(),
        "capabilities": policy.capability_list(),
        "factory": {"records": sum(records.values()), "by_state": records},
        "organs": {"total": sum(organs.values()), "by_state": organs},
        "cells": {"catalog_versions": families.get("cell", 0), "organ_template_versions": families.get("organ", 0)},
        "uptime_s": round(time.time() - STARTED_AT, 3),
    }
