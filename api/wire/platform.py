"""The platform's answers: health, introspection, gates, safe mode, events, audit, lifecycle."""

from __future__ import annotations

from typing import Any

from api.wire.base import Wire
from neira.lifecycle import Machine


class Health(Wire):
    """`GET /healthz`: started, not stopping, and the database answers; `schema` is the schema revision."""

    status: str
    database: str
    schema: str


class Capabilities(Wire):
    """`GET /api/neira/capabilities`: each gate's state (locked | disabled | experimental | stable)."""

    factory_adapter: str
    factory_script: str
    factory_wasm: str
    organs_builder: str
    self_edit: str


class CapabilitySet(Wire):
    """`POST /api/neira/capabilities/{name}`: the gate and its new state."""

    name: str
    state: str


class SafeMode(Wire):
    """`{enabled, reason}`."""

    enabled: bool
    reason: str | None


class Counts(Wire):
    """A total and the count per state."""

    by_state: dict[str, int]
    total: int | None = None
    records: int | None = None


class Introspection(Wire):
    """`GET /api/neira/introspection/status`."""

    safe_mode: SafeMode
    capabilities: dict[str, str]
    factory: Counts
    organs: Counts
    cells: dict[str, int]
    uptime_s: float


class Event(Wire):
    """One event: `{seq, at, type, subject, data}`."""

    seq: int
    at: float
    type: str
    subject: str
    data: dict[str, Any]


class AuditRecord(Wire):
    """One audit record: who did what to what, before and after, why, and the policy decisions."""

    seq: int
    at: float
    actor: str
    action: str
    subject: str
    before: Any = None
    after: Any = None
    reason: str | None = None
    decision_ids: list[str] = []


class Lifecycle(Wire):
    """`GET /api/neira/lifecycle`: both transition tables."""

    cells: Machine
    organs: Machine
