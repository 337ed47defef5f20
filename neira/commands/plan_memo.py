"""Plans remembered while nothing they read has moved. A plan's steps, facts and risks depend only on the
resolution and on what planning reads: the catalog, the cell records, the organs and the gates. While none of
those has committed a change (their generations stand still), the same resolution plans the same way, so
the plan is taken from here with a new id and fresh policy decisions (each gate asked again: its own decision
id and metric, and a changed verdict makes it a miss)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import msgspec

from neira.ids import new_id
from neira.plan import Decision, Plan, PlanView, plan_view
from neira.structs import Frozen, to_builtins

SIZE = 256  # remembered plans (the oldest goes first)


class _Gates(Protocol):
    capabilities: dict[str, Any]

    def gate(self, name: str) -> Any: ...


class _Generations(Protocol):
    generation: int


class Remembered(Frozen):
    """One plan, ready to hand out again: its parts as the saved body and the reply carry them."""

    lang: str
    steps: msgspec.Raw  # the saved body's parts that stay the same, encoded once (the store writes them as
    facts: msgspec.Raw  # they are; only the apply reads them, from the row)
    risks: msgspec.Raw
    base: str
    decisions: list[Decision]
    shown: PlanView  # (under the id it was made with)
    plan: Plan


class Handed(Frozen):
    """A plan handed out: the Plan, its saved body and its view."""

    plan: Plan
    body: dict[str, Any]
    shown: PlanView


class PlanMemo:
    """Resolution (encoded) → Remembered, for the current generations of everything planning reads."""

    def __init__(self, catalog: _Generations, records: Any, policy: _Gates, feed: Any) -> None:
        self.catalog, self.records, self.policy = catalog, records, policy
        self._organs = 0
        self._state: tuple[Any, ...] | None = None
        self._memo: OrderedDict[bytes, Remembered] = OrderedDict()
        self._encoded: dict[int, tuple[Any, bytes]] = {}  # id(resolution) → (it, its encoding)
        feed.subscribe("organs", self._organs_moved)

    def _organs_moved(self, changes: list[Any]) -> None:
        self._organs += 1

    def _now(self) -> tuple[Any, ...]:
        gates = tuple(sorted((k, str(v)) for k, v in self.policy.capabilities.items()))
        return (self.catalog.generation, self.records.generation, self._organs, gates)

    def key(self, resolution: Any) -> tuple[bytes, tuple[Any, ...]]:
        """The memo key of a resolution, and the state it is valid for. A resolution said again is the same
        object (resolve.resolve_known), so its encoding is found by identity."""
        hit = self._encoded.get(id(resolution))
        if hit is None or hit[0] is not resolution:
            if len(self._encoded) >= SIZE * 4:
                self._encoded.clear()
            hit = self._encoded[id(resolution)] = (resolution, msgspec.json.encode(resolution))
        return hit[1], self._now()

    def get(self, key: tuple[bytes, tuple[Any, ...]], plan_id: str) -> Handed | None:
        """The remembered plan under a new id with fresh decisions, or None."""
        encoded, state = key
        if state != self._state:
            self._memo.clear()
            self._state = state
            return None
        hit = self._memo.get(encoded)
        if hit is None:
            return None
        decisions = []
        for d in hit.decisions:
            if d.capability:
                fresh = self.policy.gate(d.capability)
                if fresh.action != d.action:
                    return None
                decisions.append(Decision(decision_id=fresh.decision_id, rule=fresh.rule, action=fresh.action,
                                          reason=fresh.reason, capability=fresh.capability))
            else:
                decisions.append(msgspec.structs.replace(d, decision_id=new_id("dec")))
        plan = msgspec.structs.replace(hit.plan, id=plan_id, decisions=decisions)
        body = {"id": plan_id, "lang": hit.lang, "steps": hit.steps, "decisions": [to_builtins(d) for d in decisions],
                "facts": hit.facts, "risks": hit.risks, "base": hit.base}
        return Handed(plan=plan, body=body, shown=msgspec.structs.replace(hit.shown, id=plan_id))

    def put(self, key: tuple[bytes, tuple[Any, ...]], plan: Plan) -> Handed:
        """Remember a plan just made (unless something committed while it was made) and hand it out."""
        encoded, state = key
        body: dict[str, Any] = to_builtins(plan)  # type: ignore[assignment]
        shown = plan_view(plan)
        if state == self._now():
            if state != self._state:
                self._memo.clear()
                self._state = state
            raw = msgspec.json.encode
            self._memo[encoded] = Remembered(
                lang=plan.lang, steps=msgspec.Raw(raw(body["steps"])), facts=msgspec.Raw(raw(body["facts"])),
                risks=msgspec.Raw(raw(body["risks"])), base=plan.base,
                decisions=list(plan.decisions), shown=shown, plan=plan)
            if len(self._memo) > SIZE:
                self._memo.popitem(last=False)
        return Handed(plan=plan, body=body, shown=shown)
