"""The Command Cell as a service: text → parse → resolve → plan (saved) → reply; apply by plan id or by
saying «применить» / "apply" in the same session. One code path for REST, chat page and CLI."""

from __future__ import annotations

import time
from typing import Any, Protocol

import msgspec
from msgspec import UNSET
from msgspec.structs import replace

from neira.audit import Audit
from neira.catalog import CELL, ORGAN, check_id
from neira.commands import actions, run_command, train_command
from neira.commands.answer import ALLOWED, CommandReply, PolicyVerdict, Target, Told, violation
from neira.commands.known import Known
from neira.commands.lexicon import Lexicon
from neira.commands.model import ParseFailure
from neira.commands.parse import parse
from neira.commands.intents import Does, does
from neira.commands.plan import Services, active_record, gate_verdicts, make_plan
from neira.commands.plan_memo import PlanMemo
from neira.commands.plan_store import PlanStore, new_plan_id
from neira.commands.reply import done_text, error_reply, failure_body, failure_reply, say, violations_text
from neira.commands.resolve import Resolution, resolve_known
from neira.errors import NeiraError
from neira.ids import new_id
from neira.metrics import Metrics
from neira.storage.feed import RESET
from neira.plan import MoveOrgan, MoveRecord, Plan, plan_view
from neira.plan_apply import Applied, ApplyResult, CoreExecutor, carry_out, check_facts
from neira.policy import OPEN_STATES, decision_error
from neira.structs import to_builtins



class CommandCore(Services, Protocol):
    """What the Command Cell uses of the core: the planning services plus audit, metrics, the runtime and
    the Training Orchestrator."""

    audit: Audit
    metrics: Metrics
    training: train_command.Trainer


class CommandService:
    """Understands commands against the live catalog and carries out their plans through the core."""

    def __init__(self, core: CommandCore) -> None:
        self.core = core
        self.store = PlanStore(core.db, core.settings.plan_ttl_s)
        self._seen: tuple[Any, Any, tuple[str, ...]] | None = None  # (cells map, organs map, built organs)
        self._lexicon: Lexicon | None = None
        self._known: Known | None = None
        self._built: set[str] | None = None  # template ids of the organs built so far (loaded once)
        self._built_tuple: tuple[str, ...] | None = None
        core.db.feed.subscribe("organs", self._organs_added)
        self._counters: dict[tuple[str, str], Any] = {}  # (intent, outcome) → its neira_commands_total child
        self.executor = CoreExecutor(core.factory, core.catalog, core.organs)
        self.memo = PlanMemo(core.catalog, core.factory.records.cache, core.policy, core.db.feed)

    async def known(self) -> Known:
        """The resolver's view of the catalog and of the organ templates built so far. The catalog's in-memory
        maps are replaced on every change, and the built templates follow the change feed (a new organ row
        names its template), so the lexicon and the view are rebuilt only when something they depend on
        moved — never by re-reading every organ."""
        cells = await self.core.catalog.latest_view(CELL)
        organs = await self.core.catalog.latest_view(ORGAN)
        if self._built is None:
            self._built = set(await self.core.organs.built_templates())
            self._built_tuple = None
        if self.core.policy.capabilities.get("organs_builder") not in OPEN_STATES:
            built: tuple[str, ...] = ()  # organs_builder closed: versions come from the catalog alone
        else:
            if self._built_tuple is None:
                self._built_tuple = tuple(sorted(self._built))
            built = self._built_tuple
        seen = self._seen
        if seen is None or seen[0] is not cells or seen[1] is not organs:
            self._lexicon = Lexicon.from_templates(list(cells.values()), list(organs.values()))
            self._known = None
        if self._known is None or seen is None or seen[2] != built:
            self._known = Known(list(cells.values()), list(organs.values()), self._lexicon, built)
        self._seen = (cells, organs, built)
        return self._known

    def _organs_added(self, changes: list[Any]) -> None:
        """New organ rows name their template (the change feed): the built templates grow without a read."""
        if self._built is None:
            return
        for change in changes:
            if change.key == RESET:  # anything may have changed: read the built templates again when asked
                self._built, self._built_tuple = None, None
                return
            if isinstance(change.value, str) and change.value not in self._built:
                self._built.add(change.value)
                self._built_tuple = None

    async def close(self) -> None:
        """Let the plans already said commit."""
        await self.store.close()

    async def handle(self, text: str, session_id: str | None, actor: str) -> CommandReply:
        """The reply to one phrase, in the contract's shape (200), never an exception.

        A phrase the frame tier read (not the grammar) is said back first: «Понял так: …», "I understood: …";
        `understood_as` carries the same words."""
        known = await self.known()
        started = time.perf_counter()
        parsed = parse(text, known.lexicon)
        self.core.metrics.command_parse_seconds.observe(time.perf_counter() - started)
        out = await self._answer(parsed, text, session_id or new_id("s", 8), actor, known)
        reading = getattr(parsed, "reading", None)
        if reading and out.understood:
            out = replace(out, understood_as=reading, reply=say(out.lang, "understood_as", reading=reading) + out.reply)
        return out

    async def _answer(self, parsed: Any, text: str, session_id: str, actor: str, known: Known) -> CommandReply:
        res = parsed if isinstance(parsed, ParseFailure) else resolve_known(parsed, known)
        if isinstance(res, ParseFailure):
            intent = getattr(parsed, "__struct_config__", None)
            self._count(intent.tag if intent and not isinstance(parsed, ParseFailure) else "unknown", "not_understood")
            return CommandReply(understood=False, lang=res.lang, error=failure_body(res), reply=failure_reply(res),
                                session_id=session_id)
        out = CommandReply(understood=True, lang=res.lang, reply="", session_id=session_id, intent=res.intent,
                           spec=res.spec, policy=ALLOWED, plan=None,
                           target=_target(res.target) if res.target is not None else UNSET)
        how = does(res.intent)
        if how is not Does.READ:  # the route is open to every role; writes are checked here
            refused = [d for d in self.core.policy.access(actor, write=True) if d.denied]
            if refused:
                self._count(res.intent, "denied")
                violations = [violation(d) for d in refused]
                return replace(out, policy=PolicyVerdict(allowed=False, violations=violations),
                               error=decision_error(refused[0]).body(),
                               reply=say(res.lang, "refused", violations=violations_text(res.lang, violations)))
        try:
            if how is Does.PLAN:
                return await self._plan(res, session_id, out, text, actor)
            if how is Does.APPLY:
                return await self._apply_in_session(res, session_id, actor, out)
            if res.intent == "help":
                self._count("help", "done")
                return replace(out, reply=say(res.lang, "help"))
            if res.intent in ("train", "review"):  # evidence at once, no plan (neira/commands/train_command.py)
                told = await self._training(res, session_id, text, actor)
                self._count(res.intent, "done")
                return _with(out, told)
            if how is Does.RUN:  # changes nothing: runs at once, no plan (neira/commands/run_command.py)
                told = await run_command.run(res, self.core.runs, self.core.factory)
                self._count("run", "done")
                return _with(out, told)
            result, reply = await actions.run(res, self.core)
        except NeiraError as exc:
            self._count(res.intent, "stale" if exc.code == "plan_stale" else "error")
            return replace(out, error=exc.body(), reply=error_reply(res.lang, exc))
        self._count(res.intent, "done")
        target = out.target
        if isinstance(target, Target) and isinstance(result.get("id"), str) and target.id != result["id"]:
            out = replace(out, target=Target(kind=target.kind, id=result["id"], template_id=target.id))  # what it read
        return replace(out, result=result, reply=reply)

    async def _training(self, res: Resolution, session_id: str, said: str, actor: str) -> Told:
        async def active(ref: str) -> dict[str, Any]:
            return await active_record(self.core, ref)

        return await train_command.answer(res, self.core.training, active, session_id, said, actor)

    async def _plan(self, res: Resolution, session_id: str, out: CommandReply, said: str, actor: str) -> CommandReply:
        started = time.perf_counter()
        key = self.memo.key(res)
        plan_id = new_plan_id()
        handed = self.memo.get(key, plan_id) or self.memo.put(key, await make_plan(res, self.core, plan_id))
        plan, shown = handed.plan, handed.shown
        await self.store.save(plan.id, session_id, plan.base,
                              {"plan": handed.body, "text": said, "actor": actor, "intent": res.intent})
        self.core.metrics.command_plan_seconds.observe(time.perf_counter() - started)
        violations = [violation(d) for d in plan.decisions if d.action == "deny"]
        self._count(res.intent, "planned" if plan.allowed else "denied")
        if plan.allowed:
            reply = say(res.lang, "planned", summary=shown.summary)
        else:
            reply = say(res.lang, "planned_denied", violations=violations_text(res.lang, violations))
        target = _acted_on(plan)
        policy = ALLOWED if plan.allowed and not violations else PolicyVerdict(allowed=plan.allowed, violations=violations)
        return replace(out, policy=policy, plan=shown, reply=reply + "\n" + shown.text, target=target or out.target)

    async def _apply_in_session(self, res: Resolution, session_id: str, actor: str, out: CommandReply) -> CommandReply:
        row = await self.store.load(res.plan_id) if res.plan_id else await self.store.last_of_session(session_id)
        if row is not None and row.body.get("actor", actor) != actor:
            row = None  # «apply» applies the caller's own last plan: a session id is not a credential
        if row is None:
            self._count("apply", "nothing")
            return replace(out, reply=say(res.lang, "nothing_to_apply"))
        applied = await self.apply(row.id, actor)
        self._count("apply", "applied" if not applied.already_applied else "repeat")
        return replace(out, plan=applied.plan, applied=applied.applied, summary=applied.summary,
                       already_applied=applied.already_applied, reply=applied.reply)

    async def apply(self, plan_id: str, actor: str) -> ApplyResult:
        """Carry out a saved plan exactly as shown, once, in one transaction: its facts are read again first
        (PlanStale, 409, when one moved), then every step runs; the plan is marked applied and the apply
        audited in the same transaction, so a crash leaves all of it or none. A repeated apply (or one that
        waited for the first) answers the first one's result."""
        check_id(plan_id, "plan id")
        await self.core.catalog.index()  # loaded before the writer lock: the steps read it from memory
        await self.store.flush()  # the plan may still be pending (write-behind): it must be a row to be marked
        async with self.core.db.transaction() as tx:
            row = await self.store.load_to_apply(tx, plan_id)
            plan = row.body.plan
            shown = plan_view(plan)
            if row.applied_at is not None:
                first = msgspec.convert(row.result or {}, _Done)
                return ApplyResult(plan_id=plan_id, plan=shown, already_applied=True, applied=first.applied,
                                   summary=first.summary or shown.summary, reply=say(plan.lang, "already_applied"))
            await check_facts(tx, plan, gate_verdicts(self.core.policy))
            applied = await carry_out(tx, plan, actor, self.executor)
            result = {"applied": to_builtins(applied), "summary": shown.summary}
            await self.store.mark_applied(tx, plan_id, result)
            await self.core.audit.record(tx, actor, "command.apply", f"plan:{plan_id}", None, result,
                                         row.body.text, [d.decision_id for d in plan.decisions])
        done = done_text(plan.lang, result["applied"])  # type: ignore[arg-type]
        return ApplyResult(plan_id=plan_id, plan=shown, already_applied=False, applied=applied, summary=shown.summary,
                           reply=say(plan.lang, "applied", done=done))

    def _count(self, intent: str, outcome: str) -> None:
        child = self._counters.get((intent, outcome))
        if child is None:  # a few dozen (intent, outcome) pairs: each label child is looked up once
            child = self._counters[(intent, outcome)] = self.core.metrics.commands.labels(intent, outcome)
        child.inc()


class _Done(msgspec.Struct):
    """A saved plan's result (`plans.result`): what its first apply did."""

    applied: list[Applied] = []
    summary: str | None = None


def _target(target: dict[str, str]) -> Target:
    return Target(kind=target["kind"], id=target["id"], template_id=target.get("template_id"))  # type: ignore[arg-type]


def _with(out: CommandReply, told: Told) -> CommandReply:
    """The reply with what an intent's handler told filled in."""
    fields = {name: getattr(told, name) for name in told.__struct_fields__}
    return replace(out, **{k: v for k, v in fields.items() if v is not UNSET})


def _acted_on(plan: Plan) -> Target | None:
    """The exact record or organ a one-change lifecycle plan names."""
    if len(plan.steps) != 1:
        return None
    step = plan.steps[0]
    if isinstance(step, MoveRecord):
        return Target(kind="cell", id=step.record_id, template_id=step.template_id)
    if isinstance(step, MoveOrgan):
        return Target(kind="organ", id=step.organ_id, template_id=step.template_id)
    return None
