"""The Command Cell as a service: text → parse → resolve → plan (saved) → reply; apply by plan id or by
saying «применить» / "apply" in the same session. One code path for REST, chat page and CLI."""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from typing import Any

import msgspec

from neira.catalog import CELL, ORGAN
from neira.commands import actions, run_command
from neira.commands.known import Known
from neira.commands.lexicon import Lexicon
from neira.commands.model import ParseFailure
from neira.commands.parse import parse
from neira.commands.plan import make_plan, render
from neira.commands.plan_store import PlanStore, new_plan_id
from neira.commands.reply import failure_body, failure_reply, say
from neira.commands.resolve import Resolution, resolve
from neira.errors import NeiraError, PlanStale
from neira.events import Subscription
from neira.policy import Decision, decision_error

SPEC_INTENTS = frozenset({"create_organ", "update_organ", "build_pipeline", "create_cell"})
_RESOLUTION = msgspec.json.Decoder(Resolution)


READ_INTENTS = frozenset({"status", "list", "help"})  # what a viewer (or an operator in safe mode) may say


class CommandService:
    """Understands commands against the live catalog and carries out their plans through the core."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.store = PlanStore(core.db)
        self._seen: tuple[Any, Any, tuple[str, ...]] | None = None  # (cells map, organs map, built organs)
        self._lexicon: Lexicon | None = None
        self._known: Known | None = None
        self._built: tuple[str, ...] | None = None  # template ids of the organs built so far
        self._events: Subscription | None = None  # every event, to know when `_built` must be re-read
        self._counters: dict[tuple[str, str], Any] = {}  # (intent, outcome) → its neira_commands_total child
        self._applying: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def known(self) -> Known:
        """The resolver's view of the catalog and of the organs built so far. The catalog's in-memory maps
        are replaced on every change, and the built organs are re-read only after an organ or gate event, so
        the lexicon and the view are rebuilt only when something they depend on moved."""
        cells = await self.core.catalog.latest_view(CELL)
        organs = await self.core.catalog.latest_view(ORGAN)
        if self._organs_moved() or self._built is None:
            try:
                self._built = tuple(o["template_id"] for o in await self.core.organs.list())
            except NeiraError:  # organs_builder closed: versions come from the catalog alone
                self._built = ()
        built, seen = self._built, self._seen
        if seen is None or seen[0] is not cells or seen[1] is not organs:
            self._lexicon = Lexicon.from_templates(list(cells.values()), list(organs.values()))
            self._known = None
        if self._known is None or seen is None or seen[2] != built:
            self._known = Known(list(cells.values()), list(organs.values()), self._lexicon, built)
        self._seen = (cells, organs, built)
        return self._known

    def _organs_moved(self) -> bool:
        """Whether an organ or a capability gate changed since the last look. Every committed change
        publishes its event (subject `organ:<id>` or `capability:<name>`) before this can run again; the
        subscription is drained first, so an event that lands during the re-read shows up next time."""
        if self._events is None:
            self._events = self.core.events.subscribe("*", maxsize=64)
            return True
        moved, self._events.lagged = self._events.lagged, False
        queue = self._events.queue
        while not queue.empty():
            moved = queue.get_nowait().subject.startswith(("organ:", "capability:")) or moved
        return moved

    async def close(self) -> None:
        """Stop listening to the event bus; let the plans already said commit."""
        if self._events is not None:
            self.core.events.unsubscribe("*", self._events)
            self._events = None
        await self.store.close()

    async def handle(self, text: str, session_id: str | None, actor: str) -> dict[str, Any]:
        """The reply to one phrase: always a dict in the contract's shape (200), never an exception."""
        session_id = session_id or f"s-{secrets.token_hex(8)}"
        known = await self.known()
        started = time.perf_counter()
        parsed = parse(text, known.lexicon)
        self.core.metrics.command_parse_seconds.observe(time.perf_counter() - started)
        res = parsed if isinstance(parsed, ParseFailure) else resolve(parsed, known)
        if isinstance(res, ParseFailure):
            intent = getattr(parsed, "__struct_config__", None)
            self._count(intent.tag if intent and not isinstance(parsed, ParseFailure) else "unknown", "not_understood")
            return {"understood": False, "lang": res.lang, "error": failure_body(res), "reply": failure_reply(res),
                    "session_id": session_id}
        out: dict[str, Any] = {"understood": True, "lang": res.lang, "intent": res.intent, "spec": res.spec,
                               "policy": {"allowed": True, "violations": []}, "plan": None, "session_id": session_id}
        if res.target is not None:
            out["target"] = res.target
        try:
            if res.intent not in READ_INTENTS:  # the route is open to every role; writes are checked here
                self.core.policy.authorize(actor, write=True)
            if res.intent in SPEC_INTENTS:
                return await self._plan(res, session_id, out, text, actor)
            if res.intent == "apply":
                return await self._apply_in_session(res, session_id, actor, out)
            if res.intent == "help":
                self._count("help", "done")
                return out | {"reply": say(res.lang, "help")}
            if res.intent == "run":  # changes nothing: runs at once, no plan (neira/commands/run_command.py)
                answer = await run_command.run(res, self.core.runs, self.core.factory)
                self._count("run", "done")
                return out | answer
            result, reply = await actions.run(res, self.core, actor)
        except NeiraError as exc:
            self._count(res.intent, "stale" if exc.code == "plan_stale" else "error")
            key = "stale" if exc.code == "plan_stale" else "service_error"
            return out | {"error": exc.body(), "reply": say(res.lang, key, reason=exc.reason)}
        self._count(res.intent, "done")
        target = out.get("target")
        record = result.get("id") or result.get("organ_id") if isinstance(result, dict) else None
        if target and target["kind"] == "organ" and target["id"].startswith("organ.") and isinstance(record, str):
            out["target"] = {"kind": "organ", "id": record, "template_id": target["id"]}  # the organ it acted on
        return out | {"result": result, "reply": reply}

    async def _plan(self, res: Resolution, session_id: str, out: dict[str, Any], said: str, actor: str) -> dict[str, Any]:
        started = time.perf_counter()
        planned = await make_plan(res, self.core)
        summary, text = render(planned["changes"], res.lang)
        plan = {"id": new_plan_id(), "base": planned["base"], "changes": planned["changes"], "summary": summary, "text": text}
        await self.store.save(plan["id"], session_id, plan["base"],
                              {"resolution": msgspec.to_builtins(res), "plan": plan, "policy": planned["policy"],
                               "text": said, "actor": actor})
        self.core.metrics.command_plan_seconds.observe(time.perf_counter() - started)
        policy = {"allowed": planned["policy"]["allowed"], "violations": planned["policy"]["violations"]}
        self._count(res.intent, "planned" if policy["allowed"] else "denied")
        if policy["allowed"]:
            reply = say(res.lang, "planned", summary=summary)
        else:
            reply = say(res.lang, "planned_denied", violations="; ".join(v["reason"] for v in policy["violations"]))
        return out | {"policy": policy, "plan": plan, "reply": reply + "\n" + text}

    async def _apply_in_session(self, res: Resolution, session_id: str, actor: str, out: dict[str, Any]) -> dict[str, Any]:
        row = await self.store.load(res.plan_id) if res.plan_id else await self.store.last_of_session(session_id)
        if row is not None and row.body.get("actor", actor) != actor:
            row = None  # «apply» applies the caller's own last plan: a session id is not a credential
        if row is None:
            self._count("apply", "nothing")
            return out | {"reply": say(res.lang, "nothing_to_apply")}
        applied = await self.apply(row.id, actor)
        self._count("apply", "applied" if not applied.get("already_applied") else "repeat")
        return out | {"plan": applied["plan"], "result": applied["result"], "reply": applied["reply"]}

    async def apply(self, plan_id: str, actor: str) -> dict[str, Any]:
        """Carry out a saved plan once; PlanStale (409) when its base no longer matches the state. Applies of
        one plan run one at a time, so a double click gets the first apply's result, not a refusal."""
        lock = self._applying.get(plan_id)
        if lock is None:
            lock = self._applying[plan_id] = asyncio.Lock()
        async with lock:
            return await self._apply_once(plan_id, actor)

    async def _apply_once(self, plan_id: str, actor: str) -> dict[str, Any]:
        row = await self.store.load(plan_id)
        res = _RESOLUTION.decode(msgspec.json.encode(row.body["resolution"]))
        plan = row.body["plan"]
        if row.applied_at is not None:
            if row.result is None:  # claimed by a run that died before it finished (no apply runs now)
                raise PlanStale(f"an earlier apply of {plan_id} was interrupted; ask again for a fresh plan")
            return {"plan_id": plan_id, "plan": plan, "already_applied": True, "result": row.result,
                    "reply": say(res.lang, "already_applied")}
        fresh = await make_plan(res, self.core)
        if fresh["base"] != row.base:
            raise PlanStale(f"{plan_id} was made against another state; ask again for a fresh plan")
        for violation in fresh["policy"]["violations"]:
            raise decision_error(_as_decision(violation))
        if not await self.store.claim(plan_id):
            raise PlanStale(f"{plan_id} is being applied already")
        try:
            result = await self._execute(res, actor)
        except BaseException:
            await self.store.release(plan_id)
            raise
        decision_ids = [d["decision_id"] for d in fresh["policy"]["decisions"]]
        await self.store.finish(plan_id, result, self.core.audit, actor, row.body.get("text"), decision_ids)
        done = ", ".join(f"{k} {v}" for k, v in _done_items(result))
        return {"plan_id": plan_id, "plan": plan, "already_applied": False, "result": result,
                "reply": say(res.lang, "applied", done=done)}

    async def _execute(self, res: Resolution, actor: str) -> dict[str, Any]:
        spec = res.spec or {}
        if spec.get("kind") == "factory_spec":
            status, record = await self.core.factory.create(spec["spec"], actor)
            return {"cell": {"record_id": record["id"], "state": record["state"], "template_id": record["template_id"],
                             "created": status == 201}}
        drafts = []
        for draft in res.new_cells:
            status, record = await self.core.factory.create({"template": draft, "backend": "adapter", "hitl": True}, actor)
            drafts.append({"record_id": record["id"], "state": record["state"], "template_id": draft["id"]})
        template = spec["template"]
        try:
            existing = await self.core.catalog.get_organ_template(template["id"])
        except NeiraError:
            await self.core.catalog.put_organ_template(template)
        else:
            if _organ_body(existing) != _organ_body(template):
                raise PlanStale(f"{template['id']} was registered with other cells meanwhile; ask again for a fresh plan")
        _, built = await self.core.organs.build({"organ_template": template["id"]}, actor)
        return {"cells": drafts, "organ": {"organ_id": built["organ_id"], "state": built["state"],
                                           "template_id": template["id"]}}

    def _count(self, intent: str, outcome: str) -> None:
        child = self._counters.get((intent, outcome))
        if child is None:  # a few dozen (intent, outcome) pairs: each label child is looked up once
            child = self._counters[(intent, outcome)] = self.core.metrics.commands.labels(intent, outcome)
        child.inc()


def _organ_body(template: dict[str, Any]) -> dict[str, Any]:
    """What makes two organ templates the same organ: cells and pathways."""
    return {"cells": template.get("cells"), "pathways": template.get("pathways")}


def _done_items(result: dict[str, Any]) -> list[tuple[str, str]]:
    items = [("cell", f"{c['record_id']} ({c['template_id']}, {c['state']})") for c in result.get("cells", [])]
    if "cell" in result:
        c = result["cell"]
        items.append(("cell", f"{c['record_id']} ({c['template_id']}, {c['state']})"))
    if "organ" in result:
        o = result["organ"]
        items.append(("organ", f"{o['organ_id']} ({o['template_id']}, {o['state']})"))
    return items


def _as_decision(violation: dict[str, Any]) -> Decision:
    return Decision(**{k: violation[k] for k in ("decision_id", "rule", "action", "reason", "capability") if k in violation})
