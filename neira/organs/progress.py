"""Automatic progression: which builds advance by themselves, their timers, and the batched stage moves.

Every in-memory change here runs after the commit of the transaction it mirrors, synchronously (no await
between the commit and the hook), so memory never disagrees with the database. A build's generation
changes with every start and manual move; a timer entry carrying an old generation is simply skipped.

A closed `organs_builder` gate holds every build: no stage moves, and the hold's start is a row (settings
`organs_hold`), so a server started with the gate closed holds them too. Opening the gate moves every deadline
on by the time held (one UPDATE, and the timer heap remapped in place): each build keeps the delay it had
left when the hold began.

Several replicas on one database may time the same build (each resumes every build in flight when it starts):
a batch moves only the rows it claims (`store.claim`, FOR UPDATE SKIP LOCKED) that are still as this process
expects, so each stage moves once; a periodic sweep takes over builds overdue by more than a grace (their
replica died); and a gate flipped elsewhere is followed from the change feed (docs/postgres.md).
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
from neira.storage.feed import RESET, Changed

log = logging.getLogger("neira.organs")

DRAFT, STABLE, FAILED = OrganState.DRAFT.value, OrganState.STABLE.value, OrganState.FAILED.value
YIELD_EVERY = 500  # builds handled between two yields to the event loop inside one batch
# The lifecycle's automatic next stage, as plain strings for the hot loop.
NEXT_STAGE: dict[str, str] = {s.value: n.value for s in OrganState if (n := next_organ_stage(s)) is not None}
GATED = frozenset(ANALYSED_STAGES)  # stages whose end graduation judges when canary analysis is on
DEADLINE_SLACK_S = 0.001  # a claimed row due this much after now still moves (float round trips)
SWEEP_BATCH = 1000  # overdue builds claimed by one sweep transaction (the sweep goes on while it fills them)


class Flight:
    """A build that progresses by itself: its current state, generation, stage times and start."""

    __slots__ = ("gen", "started", "state", "times")

    def __init__(self, state: str, gen: int, times: dict[str, float], started: float | None) -> None:
        self.state, self.gen, self.times, self.started = state, gen, times, started


class Progress:
    """Holds the builds in flight and the one scheduler task that moves them on time."""

    def __init__(self, db: Database, events: EventBus, metrics: Metrics, stage_delays_ms: tuple[int, ...],
                 rows: OrganRows, sweep_ms: tuple[int, int] = (2000, 2000)) -> None:
        self.db, self.events, self.metrics, self.rows = db, events, metrics, rows
        # seconds a build stays in each stage before the next one (draft, canary, experimental)
        self.delays_s = {s.value: d / 1000 for s, d in zip(ORGAN_STAGES, stage_delays_ms, strict=False)}
        self._flights: dict[str, Flight] = {}
        self._generations = itertools.count(1)
        self._building = 0
        self._scheduler = StageScheduler(self._advance)
        self.held_since: float | None = None  # when the closed gate began holding every build
        # the sweep: every `sweep_s` (0: never), builds overdue by more than `grace_s` are taken over
        self.sweep_s, self.grace_s = sweep_ms[0] / 1000, sweep_ms[1] / 1000
        self._sweeper: asyncio.Task[None] | None = None
        self._hold_dirty = False  # another process changed the settings: read the stored hold again
        self._following: asyncio.Task[None] | None = None
        # set by the builder: the cells follow each batch of moves; and, with canary analysis on, graduation
        # decides the moves out of canary and experimental (neira/graduation.py). On PostgreSQL the claim reads
        # the holds from their rows; on SQLite (one writer) graduation's mirror of them is exact.
        self.carry: Callable[[Tx, list[tuple[str, str]]], Awaitable[None]] | None = None
        self.gated: Callable[[Tx, list[str]], Awaitable[None]] | None = None
        self.is_held: Callable[[str], bool] = lambda _organ_id: False  # graduation's mirror of the holds (SQLite)
        db.feed.subscribe("settings", self._settings_changed)

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
        if self.sweep_s > 0:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweeping(), name="neira-organ-sweep")
        return len(rows)

    async def close(self) -> None:
        """Stop the timer task and the sweep, and forget the flights (they are all in the database)."""
        for task in (self._sweeper, self._following):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._sweeper = self._following = None
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
        if await store.release_hold(tx, since, shift):
            for organ_id in self._flights:
                tx.changed("organs", organ_id)  # cached rows carry the old deadlines

        def released() -> None:
            self.held_since = None
            self._scheduler.release(since, shift)

        tx.after_commit(released)

    def _hold(self, since: float) -> None:
        self.held_since = since
        self._scheduler.hold()

    def _settings_changed(self, changes: list[Changed]) -> None:
        """Another process flipped a gate (a change without its value, or a reset after missed notifications):
        the replica that flipped it wrote the hold; this one reads it and holds or releases its own timers,
        writing nothing. Our own flips carry their value and were applied by `gate_changed`'s hooks."""
        if all(c.value is not None for c in changes):
            return
        self._hold_dirty = True
        if self._following is None or self._following.done():
            self._following = asyncio.get_running_loop().create_task(self._follow_hold(), name="neira-organ-hold")

    async def _follow_hold(self) -> None:
        while self._hold_dirty:  # changes heard while reading are read again, in order
            self._hold_dirty = False
            try:
                async with self.db.read() as conn:
                    since = await store.read_hold(conn)
            except Exception as exc:  # the next settings change (or reset after a reconnect) reads it again
                log.warning("reading the organ builder hold failed (%s)", type(exc).__name__)
                return
            self._follow(since)

    def _follow(self, since: float | None) -> None:
        """Mirror a hold another replica stored (`since`) or ended (None)."""
        if since is not None:
            if self.held_since is None:
                log.info("organ builder holds every build: the %s gate was closed elsewhere", "organs_builder")
            self._hold(since)
            return
        held, self.held_since = self.held_since, None
        if held is None:
            return
        # The releasing replica moved every stored deadline on by its own time held; ours is a little longer
        # (the notification's trip), so no timer fires before its row is due — and a claim re-reads the row.
        self._scheduler.release(held, max(0.0, time.time() - held))
        self.rows.forget([RESET])  # cached rows carry the old deadlines

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
        """Move every due build one stage on, in one transaction: one UPDATE and one INSERT (executemany), after,
        on PostgreSQL, one claiming SELECT (the rows locked, those another replica holds skipped). A row that is
        no longer what this process expects — another replica or a human moved it, or a hold elsewhere moved its
        deadline on — is not moved: its flight is dropped (it is someone else's now) or its timer set again."""
        async with self.db.transaction() as tx:
            if self.held_since is not None:  # the gate closed while this batch waited for the writer
                self._scheduler.push_many(self.held_since, due)
                return
            wanted: dict[str, Flight] = {}
            for organ_id, gen in due:
                flight = self._flights.get(organ_id)
                if flight is not None and flight.gen == gen and flight.state in NEXT_STAGE:
                    wanted[organ_id] = flight  # else cancelled, rebuilt or moved by hand since this timer was set
            if not wanted:
                return
            if not self.db.is_sqlite and (since := await store.read_hold(tx.conn)) is not None:
                # closed on another replica, and its notification is still on its way: hold from now on
                self._scheduler.push_many(since, due)
                tx.after_commit(lambda: self._follow(since))
                return
            now = time.time()
            ready: list[tuple[str, Flight]] = []
            lost: list[tuple[str, Flight]] = []
            later: list[tuple[str, Flight, float]] = []
            if self.db.is_sqlite:
                # One writer — this process, under the writer lock — so the flights are what is stored and the
                # holds' mirror is exact: no claim to make (it cost ~5% of the CPU of 10k builds).
                held = self.is_held
                ready = [(organ_id, flight) for organ_id, flight in wanted.items() if not held(organ_id)]
                await self._move(tx, ready, now)
                return
            rows = await store.claim(tx, list(wanted))
            for organ_id, flight in wanted.items():
                row = rows.get(organ_id)
                if row is None or row[0] != flight.state:
                    lost.append((organ_id, flight))  # moved elsewhere, stopped by hand, or locked by its mover
                elif row[2]:
                    continue  # a human holds it: it waits for approve (graduation moves it then)
                elif row[1] is not None and row[1] > now + DEADLINE_SLACK_S:
                    later.append((organ_id, flight, row[1]))  # a hold released elsewhere moved its deadline on
                else:
                    ready.append((organ_id, flight))
            if lost or later:
                tx.after_commit(lambda: self._resync(lost, later))
            await self._move(tx, ready, now)

    def _resync(self, lost: list[tuple[str, Flight]], later: list[tuple[str, Flight, float]]) -> None:
        for organ_id, flight in lost:
            if self._flights.get(organ_id) is flight:
                del self._flights[organ_id]
        for organ_id, flight, deadline in later:
            if self._flights.get(organ_id) is flight:
                self._scheduler.push(deadline, organ_id, flight.gen)

    async def _move(self, tx: Tx, items: list[tuple[str, Flight]], now: float, adopted: bool = False) -> None:
        """Inside `tx`, whose rows of these builds are claimed: each one stage on (or, in a stage graduation
        judges, handed to it). `adopted` flights are this process's from the commit on (the sweep's)."""
        delays = self.delays_s
        moves, params, evs, gated = [], [], [], []
        shared: dict[tuple[int, str], dict[str, float]] = {}  # builds that moved together share times
        judged = self.gated
        for organ_id, flight in items:
            nxt = NEXT_STAGE.get(flight.state)
            if nxt is None:
                continue
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
        if adopted:
            def adopt() -> None:
                for organ_id, flight, *_ in moves:
                    self._flights[organ_id] = flight
                self._moved(moves, now)

            tx.after_commit(adopt)
        else:
            tx.after_commit(lambda: self._moved(moves, now))

    # --- the sweep: builds nobody moves ---------------------------------------------------------------------
    async def sweep(self) -> int:
        """Claim builds whose stage is overdue by more than the grace — their replica died, or is far behind —
        and move them on here; from then on this process's timers carry them. One transaction; rows another
        transaction holds are skipped, so a build is never moved twice. Answers how many rows it claimed."""
        if self.held_since is not None:
            return 0
        async with self.db.transaction() as tx:
            if await store.read_hold(tx.conn) is not None:
                return 0  # the closed gate holds them (this replica will hear of it from the feed)
            now = time.time()
            skip = tuple(GATED) if self.gated is not None else ()  # graduation moves those (the analysis loop)
            rows = await store.overdue(tx, now - self.grace_s, SWEEP_BATCH, skip)
            items = [(r.id, Flight(r.state, next(self._generations), dict(r.stage_times or {}), r.build_started_at))
                     for r in rows]
            await self._move(tx, items, now, adopted=True)
            if not self.db.is_sqlite:  # builds other replicas started and finished: the gauge counts them all
                building = await store.count_building(tx.conn)
                tx.after_commit(lambda: self._count_building(building - self._building))
        if rows:
            log.info("organ builder took over %d overdue builds", len(rows))
        return len(rows)

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)  # a period, not a wait for some other task
            try:
                while await self.sweep() >= SWEEP_BATCH:
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be briefly away; the next period tries again
                log.warning("organ builder sweep failed (%s)", type(exc).__name__)

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
