"""Graduation (contract §7): every promotion of an organ or a cell record out of canary or experimental rests
on the canary verdict (neira/analysis.py) or on a recorded human decision.

- The stage delays are the *minimum* dwell in a stage. An organ leaves canary when its verdict passes and, if its
  template says `policies.hitl: true`, a human approves; it leaves experimental for stable by itself once the
  delay has passed and the verdict passes. A failing verdict fails it (the family's stable version keeps the
  traffic). `inconclusive` holds it: only a human (with `force` and a reason) moves it on.
- `hold` stops an organ's progression until `approve`; holds are rows (`holds`), so they survive a restart.
- A cell record in no organ under build graduates by the same rules when its `hitl` is false; when it is true,
  nothing moves it by itself and a human approves each step. Approving against a verdict that is not `pass`
  needs `{"force": true, "reason"}`: without it a failing verdict is 403 `policy_denied` naming the failing
  metric, a running or inconclusive one 409 `held` (`waiting_for: "analysis"`); the forced approval is audited
  with its reason and the verdict it overrode.
- The verdict is read whenever a promotion is considered: when the Analyzer stores a round (`on_round`, inside
  the round's transaction, so a verdict and the promotion it causes commit together), when a stage's delay
  passes (`due_in`, the builder's timer) and when a human approves. Each check locks and re-reads the row
  inside the writer's transaction (`FOR UPDATE` on PostgreSQL, where replicas share the rows; the hold is read
  from its row), so a promotion happens once, whoever asks, however often and on whichever replica.
- With canary analysis turned off (`NEIRA_ANALYSIS_INTERVAL_MS=0`) there is no evidence to wait for: the stage
  delays alone decide, as before, and approve moves one stage forward (`enabled` is false).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, select

from neira.errors import Held, InvalidRequest, PolicyDenied
from neira.lifecycle import (
    ANALYSED_STAGES, BUILDING_ORGAN_STATES, CellEvent, OrganEvent, OrganState, advance, organ_move,
)
from neira.organs.status import OrganMoved, VerdictSummary
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.structs import Base, Frozen, to_builtins
from neira.verdict import Analysis
from neira.commands.why import waiting_text

if TYPE_CHECKING:
    from neira.analysis import Analyzer, Subject
    from neira.audit import Audit
    from neira.events import EventBus
    from neira.factory import Factory
    from neira.organs.builder import OrganBuilder

log = logging.getLogger("neira.graduation")
WaitingFor = Literal["delay", "analysis", "approval", "gate"]
ACTOR = "analysis"  # the actor of a promotion or failure a verdict caused
HOLDS = tables.holds
HOLDS_FEED = "holds"  # the change feed's table of holds made and ended (each organ's key)
R, O = tables.cell_records, tables.organs


class Step(Frozen):
    """What graduation does with a subject now: promote it one stage, fail it, or wait (for what)."""

    action: Literal["promote", "fail", "wait"]
    waiting_for: WaitingFor | None = None


def next_step(stage: str, verdict: str | None, *, dwell_passed: bool, hitl: bool, held: bool) -> Step:
    """The one rule of automatic graduation (pure): a hold waits for approval; a draft leaves after its delay;
    in canary/experimental a failing verdict fails at once, otherwise the delay, then a passing verdict, then
    (out of canary, when `hitl`) a human are waited for."""
    if held:
        return Step(action="wait", waiting_for="approval")
    if stage == OrganState.DRAFT:
        return Step(action="promote") if dwell_passed else Step(action="wait", waiting_for="delay")
    if stage not in ANALYSED_STAGES:
        return Step(action="wait")
    if verdict == "fail":
        return Step(action="fail")
    if not dwell_passed:
        return Step(action="wait", waiting_for="delay")
    if verdict != "pass":
        return Step(action="wait", waiting_for="analysis")
    if stage == OrganState.CANARY and hitl:
        return Step(action="wait", waiting_for="approval")
    return Step(action="promote")


Verdict = VerdictSummary  # the verdict a promotion rests on, as status, events and audit records show it


def summary(a: Analysis) -> Verdict:
    """The verdict in short (the status' `analysis`)."""
    return Verdict(verdict=a.verdict, stage=a.stage, runs=a.runs, errors=a.errors, error_rate=a.error_rate,
                   p50_ms=a.p50_ms, p99_ms=a.p99_ms, baseline_id=a.baseline.id if a.baseline else None,
                   baseline_p99_ms=a.baseline.p99_ms if a.baseline else None, min_runs=a.thresholds.min_runs,
                   reasons=list(a.reasons))


def in_words(v: Verdict) -> str:
    """`verdict pass: 20 runs, 0 errors, p99 1.2 ms (baseline cell-1 1.0 ms); error_rate 0.000 ≤ …`: the reason
    of a move a verdict caused (audit, history)."""
    base = f" (baseline {v.baseline_id} {v.baseline_p99_ms:.1f} ms)" if v.baseline_id and v.baseline_p99_ms is not None else ""
    return f"verdict {v.verdict}: {v.runs} runs, {v.errors} errors, p99 {v.p99_ms:.1f} ms{base}; " + "; ".join(v.reasons)


def failing_metrics(a: Analysis) -> list[dict[str, Any]]:
    """The violations of a failing verdict, one per reason, each naming its metric."""
    return [{"rule": f"analysis.{r.split(' ', 1)[0]}", "metric": r.split(" ", 1)[0], "reason": r} for r in a.reasons]


class Approval(Base):
    """The body of `POST /organs/{id}/approve` and `POST /factory/cells/{id}/approve`."""

    reason: str | None = None
    force: bool = False


class Graduation:
    """Decides and carries out promotions on evidence; owns the holds."""

    def __init__(self, db: Database, analysis: Analyzer, organs: OrganBuilder, factory: Factory, events: EventBus,
                 audit: Audit, enabled: bool) -> None:
        self.db, self.analysis, self.organs, self.factory = db, analysis, organs, factory
        self.events, self.audit, self.enabled = events, audit, enabled
        self._holds: dict[str, dict[str, Any]] = {}  # organ id → {since, actor, reason}, mirrored from the rows
        self._announced: set[tuple[str, float]] = set()  # (organ, stint) whose wait for approval was announced
        self._reload_holds = False  # another process changed an organ (perhaps its hold): read the holds again
        self._reloading: asyncio.Task | None = None
        db.feed.subscribe(HOLDS_FEED, self._holds_changed)
        organs.attach(self)
        factory.approval_guard = self.guard_cell
        if enabled:
            analysis.on_round = self.on_round

    async def start(self) -> None:
        """Load the holds (before the builder resumes its timers)."""
        await self._load_holds()

    async def _load_holds(self) -> None:
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(HOLDS)))
        self._holds = {r.subject.partition(":")[2]: {"since": r.since, "actor": r.actor, "reason": r.reason} for r in rows}

    def _holds_changed(self, changes: list[Any]) -> None:
        """Another replica made or ended a hold (its changes arrive without a value; ours carry the hold and
        the mirror follows them after the commit): the mirror of the holds is read again (one small SELECT for
        a burst of changes). Only holds are followed — a replica's stage moves read nothing here. What decides
        a move reads the row itself (`_held_in`); the mirror serves the status."""
        if all(c.value is not None for c in changes) or self.db.is_sqlite:
            return
        self._reload_holds = True
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self._follow_holds(), name="neira holds reload")

    async def _follow_holds(self) -> None:
        while self._reload_holds:
            self._reload_holds = False
            try:
                await self._load_holds()
            except Exception as exc:  # the next change from another replica reads them again
                log.warning("reading the holds failed (%s)", type(exc).__name__)
                return

    # --- reads ---------------------------------------------------------------------------------------------
    def held(self, organ_id: str) -> bool:
        """Whether a human holds the organ."""
        return organ_id in self._holds

    def hold_of(self, organ_id: str) -> dict[str, Any] | None:
        """`{since, actor, reason}` of the organ's hold, or None."""
        return self._holds.get(organ_id)

    def dwell_passed(self, state: str, since: float, now: float) -> bool:
        """Whether the minimum time in `state` (its stage delay) has passed since `since`."""
        return now >= since + self.organs.progress.delays_s.get(state, 0.0)

    async def organ_analysis(self, organ_id: str) -> Analysis | None:
        """The organ's analysis now, or None when analysis is off."""
        if not self.enabled:
            return None
        return await self.analysis.of("organ", organ_id)

    async def explain(self, row: Any, gate_held: bool) -> dict[str, Any]:
        """The status' `{waiting_for, held_by, hold, analysis}` of an organ row."""
        hold = self._holds.get(row.id)
        building = row.state in {s.value for s in BUILDING_ORGAN_STATES}
        analysis = await self.organ_analysis(row.id) if self.enabled else None
        out: dict[str, Any] = {"waiting_for": None, "held_by": None, "hold": hold if building else None,
                               "analysis": to_builtins(summary(analysis)) if analysis is not None and analysis.stage else None}
        if not building or not row.auto:
            if building and hold is not None:
                out["waiting_for"] = "approval"
            return out
        if gate_held:
            return {**out, "waiting_for": "gate", "held_by": "organs_builder"}
        if not self.enabled:
            return {**out, "waiting_for": "approval" if hold is not None else "delay"}
        since = float((row.stage_times or {}).get(row.state) or row.updated_at)
        step = next_step(row.state, analysis.verdict if analysis is not None else None,
                         dwell_passed=self.dwell_passed(row.state, since, time.time()), hitl=self._hitl(row),
                         held=hold is not None)
        out["waiting_for"] = step.waiting_for if step.action == "wait" else None
        return out

    @staticmethod
    def _hitl(row: Any) -> bool:
        return bool((row.template.get("policies") or {}).get("hitl", True))

    # --- automatic: a stage's delay passed, or a round of measurements was stored ----------------------------
    async def due_in(self, tx: Tx, organ_ids: list[str]) -> None:
        """The builder's timer: these organs' delays in canary/experimental passed. Promote or fail those whose
        verdict says so; the others wait (the Analyzer's next round asks again)."""
        for organ_id in organ_ids:  # rows the timer's claim locked already (FOR UPDATE is a no-op on them then)
            row = (await tx.conn.execute(select(O).where(O.c.id == organ_id).with_for_update())).first()
            if row is None:
                continue
            subject = await self.analysis.subject(f"organ:{organ_id}", tx.conn)
            if subject is None:
                continue
            await self._consider_organ(tx, row, await self.analysis.analysis_in(tx.conn, subject))

    async def on_round(self, tx: Tx, subject: Subject, result: Analysis, changed: bool) -> None:
        """Inside the transaction that stored a round of measurements: act on the verdict it produced. The row
        is locked first (on PostgreSQL; SQLite has one writer), waiting for a stage move another replica is
        committing, and then read as it is: a promotion happens once, whoever asks."""
        if subject.key.startswith("organ:"):
            row = (await tx.conn.execute(select(O).where(O.c.id == subject.id).with_for_update())).first()
            if row is not None:
                await self._consider_organ(tx, row, result)
            return
        await self._consider_cell(tx, subject, result)

    async def _consider_organ(self, tx: Tx, row: Any, result: Analysis) -> Step | None:
        if not row.auto or row.state not in ANALYSED_STAGES or self.organs.progress.held_since is not None:
            return None  # paused by hand, not under analysis, or every build held by the closed gate
        since = float((row.stage_times or {}).get(row.state) or row.updated_at)
        if result.since is not None and abs(result.since - since) > 1e-6:
            return None  # measured in another stint
        held = await self._held_in(tx, row.id)  # the row: a hold made on another replica counts too
        step = next_step(row.state, result.verdict, dwell_passed=self.dwell_passed(row.state, since, time.time()),
                         hitl=self._hitl(row), held=held)
        verdict = summary(result)
        if step.action == "promote":
            await self.organs.promote_in(tx, row, ACTOR, "organ.promote", in_words(verdict), verdict)
        elif step.action == "fail":
            await self.organs.fail_in(tx, row, ACTOR, in_words(verdict), verdict)
        elif (step.waiting_for == "approval" and not held and (row.id, since) not in self._announced
              and not await self._announced_in(tx, row.id, since)):
            # It starts to wait for a human (whoever asked: a round of measurements or the stage's timer, on
            # whichever replica: the row is locked, and an announcement another replica made is a row).
            shown = to_builtins(verdict)
            await self.events.emit(tx, "organ.waiting", f"organ:{row.id}", {
                "id": row.id, "state": row.state, "waiting_for": "approval", "analysis": shown,
                "text": {lang: waiting_text(row.id, shown, lang) for lang in ("ru", "en")}})
            key = (row.id, since)
            tx.after_commit(lambda: self._announced.add(key))
        return step

    async def _announced_in(self, tx: Tx, organ_id: str, since: float) -> bool:
        e = tables.events.c
        q = select(e.seq).where(e.subject == f"organ:{organ_id}", e.type == "organ.waiting", e.at >= since).limit(1)
        return (await tx.conn.execute(q)).first() is not None

    async def _held_in(self, tx: Tx, organ_id: str) -> bool:
        return (await tx.conn.execute(select(HOLDS.c.subject).where(HOLDS.c.subject == f"organ:{organ_id}"))).first() is not None

    async def _consider_cell(self, tx: Tx, subject: Subject, result: Analysis) -> None:
        row = (await tx.conn.execute(select(R).where(R.c.id == subject.id).with_for_update())).first()
        if row is None or row.hitl or row.state not in ANALYSED_STAGES or abs(subject.since - (result.since or 0)) > 1e-6:
            return
        if await self._in_organ_under_build(tx, row.id):
            return  # it graduates with its organ
        step = next_step(row.state, result.verdict, dwell_passed=self.dwell_passed(row.state, subject.since, time.time()),
                         hitl=False, held=False)
        verdict = summary(result)
        if step.action == "promote":
            await self.factory.graduate_in(tx, row.id, CellEvent.APPROVE, ACTOR, in_words(verdict))
        elif step.action == "fail":
            await self.factory.graduate_in(tx, row.id, CellEvent.FAIL, ACTOR, in_words(verdict))

    async def _in_organ_under_build(self, tx: Tx, record_id: str) -> bool:
        rows = await tx.conn.execute(select(O.c.cells).where(O.c.state.in_([s.value for s in BUILDING_ORGAN_STATES])))
        return any(c.get("record_id") == record_id for (cells,) in rows for c in cells or [])

    # --- a human ---------------------------------------------------------------------------------------------
    async def hold_in(self, tx: Tx, row: Any, actor: str, reason: str | None, decision_ids: tuple[str, ...]) -> OrganMoved:
        """Stop the organ's progression where it is until `approve` (a row; idempotent while held)."""
        organ_move(row.state, OrganEvent.HOLD)
        if await self._held_in(tx, row.id):  # the row, not the mirror: it may have been made on another replica
            return OrganMoved(id=row.id, state=row.state, held=True, waiting_for="approval")
        now = time.time()
        await tx.conn.execute(HOLDS.insert().values(subject=f"organ:{row.id}", since=now, actor=actor, reason=reason))
        hold = {"since": now, "actor": actor, "reason": reason}
        tx.changed("organs", row.id)
        tx.changed(HOLDS_FEED, row.id, hold)
        await self.events.emit(tx, "organ.hold", f"organ:{row.id}", {"id": row.id, "state": row.state, "actor": actor, "reason": reason})
        await self.audit.record(tx, actor, "organ.hold", f"organ:{row.id}", {"state": row.state, "held": False},
                                {"state": row.state, "held": True}, reason, list(decision_ids))
        tx.after_commit(lambda: self._holds.__setitem__(row.id, hold))
        return OrganMoved(id=row.id, state=row.state, held=True, waiting_for="approval")

    async def release_in(self, tx: Tx, row: Any, actor: str, reason: str | None) -> bool:
        if not await self._held_in(tx, row.id):
            return False
        await tx.conn.execute(delete(HOLDS).where(HOLDS.c.subject == f"organ:{row.id}"))
        tx.changed("organs", row.id)
        tx.changed(HOLDS_FEED, row.id, {})  # (a value: this process's own change, its mirror follows below)
        await self.audit.record(tx, actor, "organ.release", f"organ:{row.id}", {"state": row.state, "held": True},
                                {"state": row.state, "held": False}, reason)
        tx.after_commit(lambda: self._holds.pop(row.id, None))
        return True

    async def approve_organ_in(self, tx: Tx, row: Any, actor: str, reason: str | None, force: bool,
                               decision_ids: tuple[str, ...]) -> OrganMoved:
        """A human's approve under evidence: it ends a hold, and promotes one stage when the verdict passes (a
        draft has none to wait for); against any other verdict only with `force` and a reason."""
        new = organ_move(row.state, OrganEvent.APPROVE).value
        check_force(force, reason)
        released = await self.release_in(tx, row, actor, reason)
        if row.state == OrganState.DRAFT:
            await self.organs.promote_in(tx, row, actor, "organ.approve", reason or "approved", None, decision_ids)
            return OrganMoved(id=row.id, state=new)
        result = await self.analysis.analysis_in(tx.conn, await self.analysis.subject(f"organ:{row.id}", tx.conn))
        verdict = summary(result)
        if result.verdict != "pass":
            if not force:
                if released:  # the hold ended; the promotion waits for the evidence
                    return OrganMoved(id=row.id, state=row.state, held=False, waiting_for="analysis", analysis=verdict)
                refuse(f"organ {row.id}", row.state, new, result)
            await self.audit.record(tx, actor, "organ.force_approve", f"organ:{row.id}", {"state": row.state, "verdict": to_builtins(verdict)},
                                    {"state": new}, reason, list(decision_ids))
        why = f"{reason or 'approved'} ({in_words(verdict)})"
        await self.organs.promote_in(tx, row, actor, "organ.approve", why, verdict, decision_ids)
        return OrganMoved(id=row.id, state=new)

    async def guard_cell(self, tx: Tx, row: Any, force: bool, reason: str | None, actor: str) -> str | None:
        """Before a human approves a record out of canary/experimental (analysis on): the verdict must pass, or
        `force` with a reason overrides it (audited). Returns the verdict in words for the move's reason."""
        check_force(force, reason)
        if not self.enabled or row.state not in ANALYSED_STAGES:
            return None
        subject = await self.analysis.subject(f"cell:{row.id}", tx.conn)
        result = await self.analysis.analysis_in(tx.conn, subject)
        verdict = summary(result)
        if result.verdict == "pass":
            return in_words(verdict)
        new = advance(row.state, CellEvent.APPROVE).value
        if not force:
            refuse(f"cell record {row.id}", row.state, new, result)
        await self.audit.record(tx, actor, "cell.force_approve", f"cell:{row.id}", {"state": row.state, "verdict": to_builtins(verdict)},
                                {"state": new}, reason)
        return f"forced over {in_words(verdict)}"


def check_force(force: bool, reason: str | None) -> None:
    """`force` needs a reason (a forced approval is audited with it)."""
    if force and not (reason and reason.strip()):
        raise InvalidRequest("force needs a reason: say why the verdict is overridden")


def refuse(what: str, state: str, new: str, result: Analysis) -> None:
    """403 `policy_denied` naming the failing metric, or 409 `held` while the verdict is not in."""
    if result.verdict == "fail":
        metrics = failing_metrics(result)
        raise PolicyDenied(metrics, f"{what}: the canary verdict fails ({'; '.join(result.reasons)}); "
                                    f"approve with force and a reason to override it")
    raise Held(f"{what} waits for its canary analysis ({result.verdict}: {'; '.join(result.reasons)})", "analysis",
               **{"from": state, "to": new, "analysis": to_builtins(summary(result))})

