"""PolicyEngine: gate defaults and overrides, runtime flips, roles, safe mode, decisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neira.audit import Audit
from neira.errors import CapabilityDisabled, CapabilityLocked, Forbidden, InvalidRequest, NotFound, SafeModeActive
from neira.events import EventBus
from neira.metrics import Metrics
from neira.policy import DEFAULT_CAPABILITIES, PolicyEngine
from neira.storage.db import Database


async def make_policy(path: Path) -> PolicyEngine:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.create()
    metrics = Metrics()
    return PolicyEngine(db, EventBus(db, metrics), Audit(db, metrics), metrics)


@pytest.fixture
async def policy(tmp_path: Path) -> AsyncIterator[PolicyEngine]:
    p = await make_policy(tmp_path / "p.db")
    await p.load({}, safe_mode=False)
    yield p
    await p.db.close()


def test_seed_defaults() -> None:
    assert {k: v.value for k, v in DEFAULT_CAPABILITIES.items()} == {
        "factory_adapter": "experimental",
        "factory_script": "locked",
        "factory_wasm": "locked",
        "organs_builder": "experimental",
        "self_edit": "locked",
    }


async def test_gate_decisions_carry_rule_action_reason(policy: PolicyEngine) -> None:
    d = policy.gate("factory_adapter")
    assert (d.rule, d.action, d.capability) == ("capability.factory_adapter", "allow", "factory_adapter")
    assert d.decision_id.startswith("dec-")
    closed = policy.gate("factory_script")
    assert (closed.action, closed.reason) == ("deny", "factory_script is locked")
    with pytest.raises(CapabilityDisabled) as info:
        policy.enforce([closed])
    assert info.value.body()["capability"] == "factory_script"


async def test_start_overrides_win(tmp_path: Path) -> None:
    p = await make_policy(tmp_path / "o.db")
    await p.load({"factory_script": "experimental", "organs_builder": "disabled"}, safe_mode=True)
    assert p.capability_list()["factory_script"] == "experimental"
    assert p.gate("organs_builder").denied
    assert p.safe_mode
    with pytest.raises(InvalidRequest):
        await p.load({"organs_builder": "sideways"}, safe_mode=False)
    await p.db.close()


async def test_runtime_flip_is_persisted_audited_and_published(tmp_path: Path) -> None:
    p = await make_policy(tmp_path / "f.db")
    await p.load({}, False)
    sub = p.events.subscribe("*")
    assert await p.set_capability("admin", "organs_builder", "disabled", "maintenance") == {"name": "organs_builder", "state": "disabled"}
    ev = sub.queue.get_nowait()
    assert (ev.type, ev.data) == ("capability.changed", {"name": "organs_builder", "from": "experimental", "to": "disabled"})
    [record] = await p.audit.list()
    assert (record.actor, record.action, record.before, record.after, record.reason) == ("admin", "capability.set", "experimental", "disabled", "maintenance")
    assert record.decision_ids and record.decision_ids[0].startswith("dec-")
    again = PolicyEngine(p.db, p.events, p.audit, p.metrics)
    await again.load({}, False)
    assert again.capability_list()["organs_builder"] == "disabled"
    await p.db.close()


async def test_locked_gates_never_change(policy: PolicyEngine) -> None:
    with pytest.raises(CapabilityLocked):
        await policy.set_capability("admin", "self_edit", "stable")
    with pytest.raises(InvalidRequest):
        await policy.set_capability("admin", "organs_builder", "locked")
    with pytest.raises(NotFound):
        await policy.set_capability("admin", "warp_drive", "stable")
    assert policy.capability_list()["self_edit"] == "locked"


async def test_roles_and_safe_mode(policy: PolicyEngine) -> None:
    policy.enforce(policy.access("viewer", write=False))
    policy.enforce(policy.access("operator", write=True))
    with pytest.raises(Forbidden):
        policy.enforce(policy.access("viewer", write=True))
    with pytest.raises(Forbidden):
        policy.enforce(policy.access("operator", write=True, admin_only=True))
    await policy.set_safe_mode("admin", True, "incident")
    with pytest.raises(SafeModeActive):
        policy.enforce(policy.access("operator", write=True))
    policy.enforce(policy.access("admin", write=True))
    policy.enforce(policy.access("operator", write=False))
    assert policy.safe_mode_status() == {"enabled": True, "reason": "incident"}


@pytest.mark.parametrize("role", ["admin", "operator", "viewer", "system"])
@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("admin_only", [False, True])
@pytest.mark.parametrize("safe_mode", [False, True])
async def test_authorize_agrees_with_access(policy: PolicyEngine, role: str, write: bool, admin_only: bool, safe_mode: bool) -> None:
    """The fast path and the full decisions refuse exactly the same requests with the same error."""
    policy.safe_mode = safe_mode

    def outcome(fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - comparing which error each path raises
            return type(exc)
        return None

    assert outcome(lambda: policy.authorize(role, write, admin_only)) == outcome(lambda: policy.enforce(policy.access(role, write, admin_only)))


async def test_a_typo_in_the_overrides_is_refused(tmp_path: Path) -> None:
    p = await make_policy(tmp_path / "typo.db")
    with pytest.raises(InvalidRequest) as info:
        await p.load({"organ_builder": "disabled"}, safe_mode=False)
    assert "unknown capability 'organ_builder'" in info.value.reason
    await p.db.close()


async def test_start_overrides_are_never_stored(tmp_path: Path) -> None:
    """An env override lasts while the variable is set; a runtime flip of another gate does not make it stick."""
    p = await make_policy(tmp_path / "env.db")
    await p.load({"organs_builder": "disabled"}, safe_mode=False)
    await p.set_capability("admin", "factory_adapter", "stable")
    again = PolicyEngine(p.db, p.events, p.audit, p.metrics)
    await again.load({}, safe_mode=False)
    assert again.capability_list()["organs_builder"] == "experimental"
    assert again.capability_list()["factory_adapter"] == "stable"
    await p.db.close()


async def test_a_failed_flip_changes_nothing(tmp_path: Path) -> None:
    """Memory follows storage: if the transaction fails, the gate keeps its state."""
    p = await make_policy(tmp_path / "fail.db")
    await p.load({}, False)

    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    p.audit.record = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await p.set_capability("admin", "organs_builder", "disabled")
    with pytest.raises(RuntimeError):
        await p.set_safe_mode("admin", True)
    assert p.capability_list()["organs_builder"] == "experimental" and not p.safe_mode
    await p.db.close()
