"""Automatic progression: which builds advance by themselves, their timers, and the batched stage moves.

Every in-memory change here runs after the commit of the transaction it mirrors, synchronously (no await
between the commit and the hook), so memory never disagrees with the database. A build's generation
changes with every start and manual move; a timer entry carrying an old generation is simply skipped.

A closed `organs_builder` gate holds every build: no stage moves, and the hold's start is a row (settings
`organs_hold`), so a server started with the gate closed holds them too. Opening the gate moves every deadline
on by the time held (one UPDATE, and the timer heap remapped in place): each build keeps the delay it had
left when the hold began.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from neira.events import EventBus
from neira.lifecycle import ANALYSED_STAGES, ORGAN_STAGES, OrganState, next_organ_stage
from neira.metrics import Metrics
from neira.organs import store
from neira.organs.rows import OrganRows
from neira.organs.scheduler import Due, StageScheduler
from neira.storage.db import Database, Tx

log = logging.getLogger("neira.organs")

DRAFT, STABLE, FAILED = OrganState.DRAFT.value, OrganState.STABLE.value, OrganState.FAILED.value
YIELD_EVERY = 500  # builds handled between two yields to the event loop inside one batch
# The lifecycle's automatic next stage, as plain strings for the hot loop.
NEXT_STAGE: dict[str, str] = {s.value: n.value for s in OrganState if (n := next_organ_stage(s)) is not None}
GATED = frozenset(ANALYSED_STAGES)  # stages whose end graduation judges when canary analysis is on


class Flight:
    """A build that progresses by itself: its current state, generation, stage times and start."""

    __slots__ = ("gen", "started", "state", "times")

    def __init__(self, state: str, gen: int, times: dict[str, float], started: float | None) -> None:
        self.state, self.gen, self.times, self.started = state, gen, times, started


class Progress:
    """Holds the builds in flight and the one scheduler task that moves them on time."""

    def __init__(self, db: Database, events: EventBus, metrics: Metrics, stage_delays_ms: tuple[int, ...],
                 rows: OrganRows) -> None:
        self.db, self.events, self.metrics, self.rows = db, events, metrics, rows
        # seconds a build stays in each stage before the next one (draft, canary, experimental)
        self.delays_s = {s.value: d / 1000 for s, d in zip(ORGAN_STAGES, stage_delays_ms, strict=False)}
        self._flights: dict[str, Flight] = {}
        self._generations = itertools.count(1)
        self._building = 0
        self._scheduler = StageScheduler(self._advance)
        self.held_since: float | None = None  # when the closed gate began holding every build
        # set by the builder: the cells follow each batch of moves; graduation's holds; and, with canary analysis
        # on, graduation decides the moves out of canary and experimental (neira/graduation.py)
        self.carry: Callable[[Tx, list[tuple[str, str]]], Awaitable[None]] | None = None
        self.is_held: Callable[[str], bool] = lambda _organ_id: False
        self.gated: Callable[[Tx, list[str]], Awaitable[None]] | None = None

    async def start(self, gate_open: bool = True) -> int:
        """Reload every build in flight (auto on, not stable or failed) with its stored deadline, so it goes
        on with the delay it had left; count the organs still building; start the scheduler. A hold stored
        by an earlier run ends now if the gate is open; a closed gate with no stored hold starts one."""
        async with self.db.read() as conn:
            held_since = await store.read_hold(conn)
        if gate_open != (held_since is None):
            async with self.db.transaction() as tx:
                await self.gate_changed(tx, gate_open, held_since)
        elif held_since is not None:
            self._hold(held_since)
        async with self.db.read() as conn:
            rows = await store.in_flight(conn)
            self._building = await store.count_building(conn)
        now = time.time()
        for r in rows:
            flight = self._track(r.id, r.state, dict(r.stage_times or {}), r.build_started_at)
            self._scheduler.push(r.deadline if r.deadline is not None else now, r.id, flight.gen)  # one each:
            # deadlines read back from the database rarely coincide, and a restart is not the hot path
        self.metrics.organs_building.set(self._building)
        self._scheduler.start()
        return len(rows)

    async def close(self) -> None:
        """Stop the timer task and forget the flights (they are all in the database)."""
        await self._scheduler.close()
        self._flights.clear()

    def _track(self, organ_id: str, state: str, times: dict[str, float], started: float | None) -> Flight:
        flight = self._flights[organ_id] = Flight(state, next(self._generations), times, started)
        return flight

    def _count_building(self, delta: int) -> None:
        self._building += delta
        self.metrics.organs_building.set(self._building)

    # --- the gate -----------------------------------------------------------------------------------------
    async def gate_changed(self, tx: Tx, gate_open: bool, held_since: float | None = None) -> None:
        """Inside the transaction that closes the gate: hold every build from now; that opens it: release
        them, each deadline moved on by the time held (the policy's gate listener; also at start)."""
        now = time.time()
        if not gate_open:
            await store.write_hold(tx, self.db, now)
            tx.after_commit(lambda: self._hold(now))
            return
        since = held_since if held_since is not None else self.held_since
        if since is None:
            return
        shift = max(0.0, now - since)
        await store.release_hold(tx, since, shift)
        for organ_id in self._flights:
            tx.changed("organs", organ_id)  # cached rows carry the old deadlines

        def released() -> None:
            self.held_since = None
            self._scheduler.release(since, shift)

        tx.after_commit(released)

    def _hold(self, since: float) -> None:
        self.held_since = since
        self._scheduler.hold()

    # --- post-commit hooks -------------------------------------------------------------------------------
    def started(self, builds: list[tuple[str, str, int]], deadline: float, now: float, newly_building: int) -> None:
        """Builds (organ id, template id, attempt) committed in draft: track them and set their timers."""
        times = {DRAFT: now}  # shared until each build's next move replaces it (never changed in place)
        due = []
        for organ_id, template_id, attempt in builds:
            due.append((organ_id, self._track(organ_id, DRAFT, times, now).gen))
            log.debug("organ build started id=%s template=%s attempt=%d", organ_id, template_id, attempt)
        self._scheduler.push_many(deadline, due)
        self.metrics.organ_build_attempts.inc(len(builds))
        self._count_building(newly_building)

    def stopped(self, organ_id: str, was_building: bool, building: bool, new_state: str, started: float | None,
                now: float) -> None:
        """A manual move or a cancel was committed: the build no longer progresses by itself."""
        self._flights.pop(organ_id, None)  # its timer entries are stale from now on
        self._count_building(int(building) - int(was_building))
        if was_building and new_state == FAILED:
            self.metrics.organ_build_failures.inc()
        elif was_building and new_state == STABLE and started is not None:
            self.metrics.organ_build_duration_ms.observe((now - started) * 1000)

    def promoted(self, organ_id: str, state: str, times: dict[str, float], deadline: float | None,
                 started: float | None, now: float, was_auto: bool) -> None:
        """Graduation moved a build one stage (on its verdict, or a human's approve under it): it goes on by
        itself from there (a fresh generation: older timer entries are stale)."""
        del was_auto  # a paused build that a human approved progresses by itself again, like any other
        if deadline is None:
            self._flights.pop(organ_id, None)
            self._count_building(-1)
            if started is not None:
                self.metrics.organ_build_duration_ms.observe((now - started) * 1000)
            return
        flight = self._track(organ_id, state, times, started)
        self._scheduler.push(deadline, organ_id, flight.gen)

    # --- the scheduler's batch ---------------------------------------------------------------------------
    async def _advance(self, due: Due) -> None:
        """Move every due build one stage on, in one transaction (one UPDATE and one INSERT, executemany)."""
        async with self.db.transaction() as tx:
            if self.held_since is not None:  # the gate closed while this batch waited for the writer
                self._scheduler.push_many(self.held_since, due)
                return
            now = time.time()
            delays = self.delays_s
            moves, params, evs, gated = [], [], [], []
            shared: dict[tuple[int, str], dict[str, float]] = {}  # builds that moved together share times
            held, judged = self.is_held, self.gated
            for organ_id, gen in due:
                flight = self._flights.get(organ_id)
                if flight is None or flight.gen != gen:
                    continue  # cancelled, rebuilt or moved by hand since this timer was set
                nxt = NEXT_STAGE.get(flight.state)
                if nxt is None or held(organ_id):
                    continue  # a held build waits for approve (graduation moves it then)
                if judged is not None and flight.state in GATED:
                    gated.append(organ_id)  # its minimum dwell is over: the verdict decides
                    continue
                times = shared.get((id(flight.times), nxt))
                if times is None:
                    times = shared[(id(flight.times), nxt)] = {**flight.times, nxt: now}
                done = nxt == STABLE
                deadline = None if done else now + delays[nxt]
                params.append(store.move(organ_id, nxt, not done, deadline, times, now if done else None, now))
                evs.append(("organ.stage", f"organ:{organ_id}", {"id": organ_id, "state": nxt, "from": flight.state}))
                moves.append((organ_id, flight, nxt, times, deadline))
                if len(moves) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # one transaction, but the loop stays responsive meanwhile
            if gated and judged is not None:
                await judged(tx, gated)
            if not moves:
                return
            await self.events.emit_many(tx, evs)
            await store.apply_moves(tx, params)
            if self.carry is not None:
                await self.carry(tx, [(m[0], m[2]) for m in moves])
            tx.after_commit(lambda: self._moved(moves, now))

    def _moved(self, moves: list[tuple[str, Flight, str, dict[str, float], float | None]], now: float) -> None:
        finished = 0
        timers: dict[float, list[tuple[str, int]]] = {}  # one heap entry per distinct deadline of the batch
        for organ_id, flight, state, times, deadline in moves:
            flight.state, flight.times = state, times
            if deadline is not None:
                timers.setdefault(deadline, []).append((organ_id, flight.gen))
                continue
            self._flights.pop(organ_id, None)
            finished += 1
            if flight.started is not None:
                self.metrics.organ_build_duration_ms.observe((now - flight.started) * 1000)
        for deadline, due in timers.items():
            self._scheduler.push_many(deadline, due)
        self._count_building(-finished)


def waiting(row: Any, held_since: float | None) -> dict[str, Any]:
    """`{waiting_for, held_by}` of an organ's status: a build that progresses by itself waits for its
    `delay`, or for the `gate` (held by `organs_builder`) while the gate is closed; any other waits for nothing."""
    if not (row.auto and row.state in NEXT_STAGE):
        return {"waiting_for": None, "held_by": None}
    if held_since is not None:
        return {"waiting_for": "gate", "held_by": "organs_builder"}
    return {"waiting_for": "delay", "held_by": None}


def status_metrics(row: Any, held_since: float | None = None) -> dict[str, Any]:
    """The `metrics` part of an organ's status, from its row (`next_stage_at` is unknown while held; the time
    left in its stage is `held_left_ms` then)."""
    started, finished = row.build_started_at, row.build_finished_at
    building = row.state in store.BUILDING_STATES
    nxt = NEXT_STAGE.get(row.state) if row.auto else None
    held = held_since is not None and nxt is not None and row.deadline is not None
    return {
        "attempts": row.attempts,
        "stage_times": row.stage_times,
        "build_started_at": started,
        "build_finished_at": finished,
        "build_duration_ms": round((finished - started) * 1000, 3) if started and finished else None,
        "elapsed_ms": round((time.time() - started) * 1000, 3) if started and building else None,
        "next_stage": nxt,
        "next_stage_at": row.deadline if nxt and not held else None,
        "held_left_ms": round(max(0.0, row.deadline - held_since) * 1000, 3) if held else None,
    }
