"""The PolicyEngine: capability gates, roles and safe mode. Every check is a Decision with an id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.audit import Audit
from neira.errors import (
    CapabilityDisabled,
    CapabilityLocked,
    Forbidden,
    InvalidRequest,
    NeiraError,
    NotFound,
    PolicyDenied,
    SafeModeActive,
)
from neira.events import EventBus
from neira.ids import new_id
from neira.metrics import Metrics
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.structs import Base

GateListener = Callable[[Tx, bool], Awaitable[None]]
"""Called inside the transaction that opens (True) or closes (False) a gate, so a change that must follow the
gate (the organ builder holding its builds) commits with the flip or not at all."""


class GateState(StrEnum):
    """States of a capability gate (like Kubernetes feature gates: locked cannot change at run time)."""

    LOCKED = "locked"
    DISABLED = "disabled"
    EXPERIMENTAL = "experimental"
    STABLE = "stable"


class Role(StrEnum):
    """Who is asking."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    SYSTEM = "system"  # the service itself: timers, auto-heal, restart recovery


DEFAULT_CAPABILITIES: dict[str, GateState] = {
    "factory_adapter": GateState.EXPERIMENTAL,
    "factory_script": GateState.LOCKED,
    "factory_wasm": GateState.LOCKED,
    "organs_builder": GateState.EXPERIMENTAL,
    "self_edit": GateState.LOCKED,
}
OPEN_STATES = (GateState.EXPERIMENTAL, GateState.STABLE)


class Decision(Base):
    """One policy evaluation: which rule, what it decided, and why."""

    decision_id: str
    rule: str
    action: str  # allow | deny | warn
    reason: str
    capability: str | None = None

    @property
    def denied(self) -> bool:
        """True when the decision refuses the request."""
        return self.action == "deny"


def _decision(rule: str, action: str, reason: str, capability: str | None = None) -> Decision:
    return Decision(decision_id=new_id("dec"), rule=rule, action=action, reason=reason, capability=capability)


class PolicyEngine:
    """Holds gate states and safe mode (persisted), and evaluates requests against them."""

    def __init__(self, db: Database, events: EventBus, audit: Audit, metrics: Metrics) -> None:
        self.db, self.events, self.audit, self.metrics = db, events, audit, metrics
        self.capabilities: dict[str, GateState] = dict(DEFAULT_CAPABILITIES)
        self._flips: dict[str, str] = {}  # runtime flips only: what is stored, so env overrides stay env's
        self.safe_mode = False
        self.safe_mode_reason: str | None = None
        self._counters: dict[tuple[str, str], Any] = {}
        self._listeners: dict[str, list[GateListener]] = {}
        self._start: tuple[dict[str, str], bool] = ({}, False)  # NEIRA_CAPABILITIES, NEIRA_SAFE_MODE
        self._reloading: asyncio.Task | None = None
        db.feed.subscribe("settings", self._settings_changed)

    def on_gate(self, name: str, listener: GateListener) -> None:
        """Call `listener(tx, open)` inside every run-time flip that opens or closes gate `name`."""
        self._listeners.setdefault(name, []).append(listener)

    def is_open(self, name: str) -> bool:
        """Whether gate `name` is open now (experimental or stable)."""
        return self.capabilities.get(name) in OPEN_STATES

    async def load(self, overrides: dict[str, str], safe_mode: bool) -> None:
        """Defaults, then stored runtime flips, then the start-time overrides (NEIRA_CAPABILITIES,
        NEIRA_SAFE_MODE), which win but are never stored."""
        parsed = validate_overrides(overrides)
        self._start = (overrides, safe_mode)
        async with self.db.read() as conn:
            rows = {r.key: r.value for r in await conn.execute(select(tables.settings))}
        self.capabilities = dict(DEFAULT_CAPABILITIES)
        self._flips = {}
        for name, state in (rows.get("capabilities") or {}).items():
            if name in self.capabilities and self.capabilities[name] is not GateState.LOCKED:
                self._flips[name] = state
                self.capabilities[name] = GateState(state)
        self.capabilities.update(parsed)
        stored = rows.get("safe_mode") or {}
        self.safe_mode = safe_mode or bool(stored.get("enabled"))
        self.safe_mode_reason = "NEIRA_SAFE_MODE" if safe_mode else stored.get("reason")
        self._export()

    def _start_overrides(self) -> dict[str, GateState]:
        return validate_overrides(self._start[0])

    async def _stored_flips(self, conn: AsyncConnection) -> dict[str, str]:
        """The run-time flips as stored now (as `load` reads them: gates locked by default never flip)."""
        t = tables.settings
        stored = (await conn.execute(select(t.c.value).where(t.c.key == "capabilities"))).scalar() or {}
        return {n: s for n, s in stored.items()
                if n in DEFAULT_CAPABILITIES and DEFAULT_CAPABILITIES[n] is not GateState.LOCKED}

    def _settings_changed(self, changes: list[Any]) -> None:
        """Another process flipped a gate or safe mode (a change without its value): read them again. Our own
        flips carry their value and are applied by their commit hooks."""
        if all(c.value is not None for c in changes) or (self._reloading and not self._reloading.done()):
            return
        self._reloading = asyncio.get_running_loop().create_task(self.load(*self._start), name="neira policy reload")

    def _export(self) -> None:
        for name, state in self.capabilities.items():
            for s in GateState:
                self.metrics.capability_state.labels(name, s.value).set(1 if s is state else 0)
        self.metrics.safe_mode.set(1 if self.safe_mode else 0)

    def _count(self, d: Decision) -> Decision:
        key = (d.rule, d.action)
        counter = self._counters.get(key)
        if counter is None:  # labels() is a locked lookup; a dry-run asks for the same child every time
            counter = self._counters[key] = self.metrics.policy_decisions.labels(d.rule, d.action)
        counter.inc()
        return d

    # --- evaluations -------------------------------------------------------------------------------
    def gate(self, name: str) -> Decision:
        """Whether capability `name` is open (experimental or stable)."""
        state = self.capabilities.get(name)
        if state is None:
            return self._count(_decision(f"capability.{name}", "deny", f"unknown capability {name}", name))
        if state in OPEN_STATES:
            return self._count(_decision(f"capability.{name}", "allow", f"{name} is {state.value}", name))
        return self._count(_decision(f"capability.{name}", "deny", f"{name} is {state.value}", name))

    def require(self, name: str) -> None:
        """The read-path twin of `enforce([gate(name)])`: raise CapabilityDisabled when the gate is closed,
        without building a decision when it is open (reads are not audited)."""
        if self.capabilities.get(name) not in OPEN_STATES:
            self.enforce([self.gate(name)])

    def access(self, role: Role | str, write: bool, admin_only: bool = False) -> list[Decision]:
        """Role and safe-mode decisions for a request."""
        role = Role(role)
        if role is Role.SYSTEM or role is Role.ADMIN:
            return [self._count(_decision("role", "allow", f"{role.value} may do this"))]
        if admin_only:
            return [self._count(_decision("role", "deny", "only the admin may do this"))]
        if write and role is Role.VIEWER:
            return [self._count(_decision("role", "deny", "the viewer role may only read"))]
        decisions = [self._count(_decision("role", "allow", f"{role.value} may do this"))]
        if write and self.safe_mode:
            decisions.append(self._count(_decision("safe_mode", "deny", "safe mode is on: only the admin may write")))
        return decisions

    def authorize(self, role: Role | str, write: bool, admin_only: bool = False) -> None:
        """The per-request fast path of `access`: the same rules, raising the same errors, without building
        decisions for requests that pass (every HTTP request comes through here)."""
        if role == "admin" or role == "system":
            return
        if admin_only or (write and (role == "viewer" or self.safe_mode)):
            self.enforce(self.access(role, write, admin_only))

    @staticmethod
    def enforce(decisions: list[Decision]) -> None:
        """Raise the contract's error for the first denying decision."""
        for d in decisions:
            if d.denied:
                raise decision_error(d)

    # --- runtime changes ---------------------------------------------------------------------------
    async def set_capability(self, actor: str, name: str, state: str, reason: str | None = None) -> dict[str, Any]:
        """Flip a gate at run time; locked gates never change."""
        if name not in self.capabilities:
            raise NotFound(f"unknown capability {name}")
        try:
            new = GateState(state)
        except ValueError:
            raise InvalidRequest("state must be one of disabled, experimental, stable") from None
        if new is GateState.LOCKED:
            raise InvalidRequest("a gate can only be locked at start (NEIRA_CAPABILITIES)")
        async with self.db.transaction() as tx:
            # read what is stored under the lock (another replica may have flipped since our last reload), so
            # concurrent flips on any replica each audit the state they replaced and none is lost
            await tx.lock("settings", "capabilities")
            stored = await self._stored_flips(tx.conn)
            old = self.capabilities[name]
            if old is GateState.LOCKED:
                raise CapabilityLocked(name)
            if name not in self._start_overrides():
                old = GateState(stored.get(name, DEFAULT_CAPABILITIES[name].value))
            d = self._count(_decision(f"capability.{name}", "allow", f"{actor} set {name} to {new.value}", name))
            flips = {**stored, name: new.value}
            await tx.conn.execute(self.db.upsert(tables.settings, {"key": "capabilities", "value": flips}, ["key"]))
            tx.changed("settings", "capabilities", flips)
            await self.audit.record(tx, actor, "capability.set", name, old.value, new.value, reason, [d.decision_id])
            await self.events.emit(tx, "capability.changed", f"capability:{name}", {"name": name, "from": old.value, "to": new.value})
            if (old in OPEN_STATES) != (new in OPEN_STATES):
                for listener in self._listeners.get(name, ()):
                    await listener(tx, new in OPEN_STATES)

            def committed() -> None:
                self._flips = flips
                self.capabilities[name] = new
                self._export()

            tx.after_commit(committed)
        return {"name": name, "state": new.value}

    async def set_safe_mode(self, actor: str, enabled: bool, reason: str | None = None) -> dict[str, Any]:
        """Turn safe mode on or off; audited and published."""
        d = self._count(_decision("safe_mode", "allow", f"{actor} turned safe mode {'on' if enabled else 'off'}"))
        async with self.db.transaction() as tx:
            await tx.lock("settings", "safe_mode")
            stored = (await tx.conn.execute(select(tables.settings.c.value).where(tables.settings.c.key == "safe_mode"))).scalar()
            old = self._start[1] or bool((stored or {}).get("enabled"))
            await tx.conn.execute(self.db.upsert(tables.settings, {"key": "safe_mode", "value": {"enabled": enabled, "reason": reason}}, ["key"]))
            tx.changed("settings", "safe_mode", enabled)
            await self.audit.record(tx, actor, "safe_mode.set", "safe_mode", old, enabled, reason, [d.decision_id])
            await self.events.emit(tx, "safe_mode.changed", "safe_mode", {"enabled": enabled, "reason": reason})

            def committed() -> None:
                self.safe_mode, self.safe_mode_reason = enabled, reason
                self._export()

            tx.after_commit(committed)
        return {"enabled": enabled, "reason": reason}

    def safe_mode_status(self) -> dict[str, Any]:
        """`{enabled, reason}`."""
        return {"enabled": self.safe_mode, "reason": self.safe_mode_reason}

    def capability_list(self) -> dict[str, str]:
        """Gate name → state."""
        return {k: v.value for k, v in self.capabilities.items()}


def validate_overrides(overrides: dict[str, str]) -> dict[str, GateState]:
    """NEIRA_CAPABILITIES checked against the known gates and states: a typo must not leave a gate open."""
    parsed: dict[str, GateState] = {}
    for name, state in overrides.items():
        if name not in DEFAULT_CAPABILITIES:
            raise InvalidRequest(f"NEIRA_CAPABILITIES: unknown capability {name!r}; known: {', '.join(DEFAULT_CAPABILITIES)}")
        try:
            parsed[name] = GateState(state)
        except ValueError:
            raise InvalidRequest(f"NEIRA_CAPABILITIES: unknown state {state!r} for {name}; use locked, disabled, experimental or stable") from None
    return parsed


def decision_error(d: Decision) -> NeiraError:
    """The contract's error for a denying decision."""
    if d.rule.startswith("capability.") and d.capability:
        if d.reason.endswith("locked"):
            return CapabilityDisabled(d.capability, f"capability {d.capability} is locked")
        return CapabilityDisabled(d.capability)
    if d.rule == "role":
        return Forbidden(d.reason)
    if d.rule == "safe_mode":
        return SafeModeActive(d.reason)
    return PolicyDenied([{"rule": d.rule, "reason": d.reason, "decision_id": d.decision_id}], d.reason)
